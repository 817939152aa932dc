#!/usr/bin/env bash
# cronprof over a history of 1,000,000 runs (figures for people; not a test).
# Issue 15: `summary` within 1 s; `runs --limit 0`, `suggest`, `report --html`
# and `plan --crontab` streaming, within 64 MiB peak RSS.
#
# usage: bench/history_1m.sh BUILD_DIR [WORK_DIR] [RUNS]
#   BUILD_DIR: a Release build (no sanitizers) with targets history_bench and cronprof:
#     cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#     cmake --build build-rel --target history_bench cronprof
#   WORK_DIR (default /tmp): the history is kept there as cronrun-history-1m/RUNS.db
#   and reused by later runs of this script (delete it to regenerate).
#   RUNS (default 1000000).
#   WARM=0 in the environment skips the untimed first run of each command (when
#   the page cache is known to be warm: `runs --json --limit 0` is minutes).
#
# The history: RUNS runs of 50 jobs over 30 days, made by `history_bench generate`
# (cgroup figures, limits, DB counters on a third of the jobs, ok/failed/oom/skipped),
# then given the rest of the mix a real history has: timeouts, kills, errors, lost
# runs (`running` rows of a runner that is gone, which cronprof reads as lost) and a
# runner note. Each command is run once to warm the page cache, then timed.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [WORK_DIR] [RUNS]}
work=${2:-/tmp}/cronrun-history-1m
runs=${3:-1000000}
hb=$build/bench/history_bench
prof=$build/profiler/cronprof
db=$work/$runs.db
mkdir -p "$work"
if [[ ! -s $db ]]; then
  echo "generating $runs runs of 50 jobs over 30 days into $db ..."
  rm -f "$db" "$db-wal" "$db-shm"
  "$hb" generate "$db" "$runs" 50 30
  sqlite3 "$db" <<'SQL'
BEGIN;
-- One run in 200 timed out, one in 500 was killed, one in 2000 is an error.
UPDATE runs SET status = 'timeout', exit_code = NULL,
  record = json_set(record, '$.status', 'timeout', '$.signal', 9)
  WHERE status = 'ok' AND rowid % 200 = 7;
UPDATE runs SET status = 'killed', exit_code = NULL,
  record = json_set(record, '$.status', 'killed', '$.signal', 15)
  WHERE status = 'ok' AND rowid % 500 = 11;
UPDATE runs SET status = 'error', exit_code = NULL, wall_s = NULL, cpu_s = NULL, memory_peak_bytes = NULL,
  record = json_set(record, '$.status', 'error', '$.skip_reason', 'exec: No such file or directory (errno 2)')
  WHERE status = 'ok' AND rowid % 2000 = 13;
-- Runs whose runner died (another boot): read as lost.
UPDATE runs SET status = 'running', finished_at = NULL, wall_s = NULL, exit_code = NULL, runner_pid = 4194304,
  boot_id = 'an-earlier-boot', record = json_set(record, '$.status', 'running')
  WHERE status = 'ok' AND rowid % 5000 = 17;
-- Runs that used rusage accounting only (no cgroup peak, their RSS stands in).
UPDATE runs SET memory_peak_bytes = NULL WHERE rowid % 97 = 5;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
fi
crontab=$work/crontab.user  # a user crontab: no user field
if [[ ! -s $crontab ]]; then
  for j in $(seq 0 49); do
    echo "$((j % 60)) */$((1 + j % 6)) * * * cronrun -n job-$j -- /usr/local/bin/job-$j --full"
  done >"$crontab"
fi
echo "history: $db ($(du -h "$db" | cut -f1)), $(sqlite3 "$db" 'SELECT count(*) FROM runs') rows"
sqlite3 "$db" "SELECT status, count(*) FROM runs GROUP BY status" | tr '\n' ' '
echo
out=$work/out
mkdir -p "$out"
measure() {
  local name=$1
  shift
  if [[ ${WARM:-1} != 0 ]]; then "$@" >/dev/null 2>&1 || true; fi  # warm the page cache
  /usr/bin/time -f "$name: %e s elapsed, %U s user, %S s sys, %M KB max RSS, exit %x" "$@" \
    >"$out/$name.out" 2>"$out/$name.err" || true
  tail -1 "$out/$name.err"
}
h=(--history "$db")
measure summary "$prof" "${h[@]}" summary --since 3650d
measure summary-json "$prof" "${h[@]}" --json summary --since 3650d
measure runs-limit0 "$prof" "${h[@]}" runs --limit 0 --since 3650d
measure runs-limit0-json "$prof" "${h[@]}" --json runs --limit 0 --since 3650d
measure suggest "$prof" "${h[@]}" suggest --since 3650d
measure report-html "$prof" "${h[@]}" report --html "$out/report.html" --since 3650d
measure plan "$prof" "${h[@]}" plan --crontab "$crontab" --since 3650d --host-memory 64G --host-cpus 16 \
  --week 2026-11-30
measure report-html-crontab "$prof" "${h[@]}" report --html "$out/report-plan.html" --since 3650d \
  --crontab "$crontab" --host-memory 64G --week 2026-11-30
echo "outputs in $out; lines of runs --limit 0: $(wc -l <"$out/runs-limit0.out")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
