#!/usr/bin/env bash
# cronprof end to end: real `cronrun --cgroup off` runs of the payload helper write
# a history; every cronprof subcommand is checked on it (tables and --json), plus
# the exit codes for a missing / corrupt / newer / unreadable history, a lost run
# (runner SIGKILLed mid-run), reading as another user, and promtool on the
# Prometheus export when promtool is installed.
# Environment (set by tests/e2e/CMakeLists.txt): CRONRUN CRONPROF CRONRUN_PAYLOAD.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}" "${CRONRUN_PAYLOAD:?}"
tmp=$(mktemp -d /tmp/cronprof-e2e.XXXXXX)
bg_pids=()
cg_parent=/cronprof-e2e-$$  # the live-figures run's cgroups: ours alone, removed on exit
cleanup() {
  for p in "${bg_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for d in /sys/fs/cgroup"$cg_parent" /sys/fs/cgroup/*"$cg_parent"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
H=$tmp/history.db
P=$CRONRUN_PAYLOAD
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
check() {  # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
prof() { "$CRONPROF" --history "$H" "$@"; }
run() {  # run NAME [cronrun options] -- ARGS; never fails the script
  local name=$1; shift
  "$CRONRUN" -n "$name" --no-lock --cgroup off --history "$H" -q "$@" >/dev/null 2>&1 || true
}
expect_rc() {  # expect_rc CODE description command...
  local want=$1 what=$2; shift 2
  local got=0
  "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" -eq "$want" ]; then ok "$what (exit $got)"; else bad "$what: exit $got, want $want; stderr: $(cat "$tmp/err")"; fi
  # Failures are one line, prefixed, never a trace: usage errors (2) too.
  if [ "$want" -ne 0 ]; then
    local lines; lines=$(wc -l <"$tmp/err")
    [ "$lines" -eq 1 ] && grep -q '^cronprof: ' "$tmp/err" || bad "$what: stderr is not one 'cronprof:' line: $(cat "$tmp/err")"
  fi
}

# Until the lock file $1 names pid $2: cronrun writes its pid there once it holds
# the lock, and an earlier holder's pid stays after it ends, so "not empty" is no
# sign. Polls with a generous bound (a loaded machine is slow to start a run).
wait_lock_holder() {
  local _
  for _ in $(seq 1200); do [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0; sleep 0.05; done
  echo "lock $1 was never held by $2 (it says: $(cat "$1" 2>/dev/null))" >&2
  return 1
}
# A job (sh -c) that ends once the file $1 exists; exit 1 if it never does in 60 s.
hold_until='i=0; while [ ! -e "$0" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; [ -e "$0" ]'

# ---- a history from real runs ----
for i in 1 2 3 4 5 6; do run steady --timeout 60s -- "$P" mem 16 50; done
run steady -- "$P" counter rows_exported 1200
run flaky -- "$P" exit 3
run flaky -- "$P" exit 0
run slow --timeout 1s --kill-after 1s -- "$P" sleep 30
run dbjob --count-db-queries -- "$P" exit 0
# A skipped run: the lock is held by a running job.
"$CRONRUN" -n locked --lock "$tmp/locked.pid" --cgroup off --history "$H" -q -- sh -c "$hold_until" "$tmp/release" &
bg_pids+=($!)
wait_lock_holder "$tmp/locked.pid" "${bg_pids[-1]}" || bad "the locked run never held its lock"
"$CRONRUN" -n locked --lock "$tmp/locked.pid" --on-locked skip --cgroup off --history "$H" -q -- "$P" exit 0 || true
touch "$tmp/release"
wait "${bg_pids[-1]}" || bad "the run holding the lock did not end ok"

# ---- runs ----
n=$(prof --json runs --limit 0 | json 'len(d["runs"])')
check "runs --json lists all 13 runs (got $n)" test "$n" -eq 13
check "runs table: header + one line per run" test "$(prof runs | wc -l)" -eq 14
check "runs --job steady" test "$(prof --json runs --job steady | json 'len(d["runs"])')" -eq 7
check "runs --status failed" test "$(prof --json runs --status failed | json '",".join(r["job"] for r in d["runs"])')" = flaky
check "runs --status timeout" test "$(prof --json runs --status timeout | json 'd["runs"][0]["job"]')" = slow
check "runs --status skipped" test "$(prof --json runs --status skipped | json 'len(d["runs"])')" -eq 1
check "runs --limit 2" test "$(prof --json runs --limit 2 | json 'len(d["runs"])')" -eq 2
newest=$(prof --json runs --limit 1 | json 'd["runs"][0]["job"]')
check "runs newest first (newest is 'locked', got $newest)" test "$newest" = locked
expect_rc 2 "runs --status bogus is a usage error" prof runs --status bogus

# ---- show ----
rid=$(prof --json runs --job flaky --status failed | json 'd["runs"][0]["run_id"]')
prof show "${rid:0:18}" >"$tmp/show"
check "show RUN-ID prefix: the failed run" grep -q "failed, exit 3" "$tmp/show"
check "show: wall, CPU, memory, DB lines" grep -q "wall" "$tmp/show"
check "show: DB not counted without --count-db-queries" grep -q "DB *not counted" "$tmp/show"
check "show JOB --json: schema and job" test "$(prof --json show steady | json 'd["schema"]+" "+d["job"]')" = "cronrun.run/1 steady"
check "show JOB: counters of the newest run" test "$(prof --json show steady | json 'd["counters"]["rows_exported"]')" = 1200
# The DB counter's library is built with cronrun; its run must succeed and show DB figures.
check "dbjob ran with --count-db-queries" test "$(prof --json show dbjob | json 'd["status"]')" = ok
prof show dbjob >"$tmp/showdb"
check "show dbjob: DB line is not 'not counted'" bash -c "! grep -q 'DB *not counted' '$tmp/showdb'"
expect_rc 7 "show of an unknown run or job" prof show no-such-job
# Every run id here starts with the same time prefix: several runs, and no job of that name.
expect_rc 7 "show of a prefix of several run ids (and no such job)" prof show "${rid:0:2}"

# ---- summary ----
prof --json summary >"$tmp/summary.json"
check "summary --json: 5 jobs" test "$(json 'len(d["jobs"])' <"$tmp/summary.json")" -eq 5
check "summary: steady has 7 runs, 0 failures" test "$(json '[ (j["runs"], j["failures"]) for j in d["jobs"] if j["job"]=="steady"][0]' <"$tmp/summary.json")" = "(7, 0)"
check "summary: flaky 1 failure" test "$(json '[j["failures"] for j in d["jobs"] if j["job"]=="flaky"][0]' <"$tmp/summary.json")" -eq 1
check "summary: slow 1 timeout" test "$(json '[j["timeouts"] for j in d["jobs"] if j["job"]=="slow"][0]' <"$tmp/summary.json")" -eq 1
check "summary: locked 1 skipped" test "$(json '[j["skipped"] for j in d["jobs"] if j["job"]=="locked"][0]' <"$tmp/summary.json")" -eq 1
check "summary: wall_s p50<=p95<=max" test "$(json '[ (s["p50"]<=s["p95"]<=s["max"]) for j in d["jobs"] if j["job"]=="steady" for s in [j["wall_s"]]][0]' <"$tmp/summary.json")" = True
check "summary: nearest-rank stated" test "$(json 'd["percentiles"]' <"$tmp/summary.json")" = nearest-rank
check "summary table has every job" test "$(prof summary | tail -n +2 | wc -l)" -eq 5

# ---- suggest ----
prof suggest --job steady >"$tmp/suggest"
check "suggest steady: evidence in words" grep -q "7 runs in 30 days" "$tmp/suggest"
check "suggest steady: a timeout" grep -q "timeout" "$tmp/suggest"
prof suggest --job flaky >"$tmp/suggest2"
check "suggest flaky: too few runs, no suggestion" grep -q "not enough history" "$tmp/suggest2"
cat >"$tmp/steady.json" <<'EOF'
{
  // steady: written by hand, comments must survive
  "memory": "1G",
  "nice": 5
}
EOF
prof suggest --job steady --write --config "$tmp/steady.json" >/dev/null
check "suggest --write keeps comments" grep -q "comments must survive" "$tmp/steady.json"
check "suggest --write keeps other keys, sets timeout" test "$(sed 's|//.*||' "$tmp/steady.json" | json 'str(d["nice"])+" "+str("timeout" in d)+" "+str(d["memory"]!="1G")')" = "5 True True"
check "cronrun accepts the written config" "$CRONRUN" -n steady -c "$tmp/steady.json" --no-lock --cgroup off --dry-run -- "$P" exit 0 >/dev/null 2>&1
expect_rc 7 "suggest for an unknown job" prof suggest --job nope

# ---- export ----
check "export json: 13 records" test "$(prof export --format json | json 'len(d)')" -eq 13
check "export csv: header + 13 rows" test "$(prof export --format csv | wc -l)" -eq 14
prof export --format prometheus --output "$tmp/cronrun.prom"
check "export prometheus: last success per job" grep -q '^cronrun_last_success_timestamp_seconds{cronjob="steady"} [1-9]' "$tmp/cronrun.prom"
check "export prometheus: never-succeeded job exports 0" grep -q '^cronrun_last_success_timestamp_seconds{cronjob="slow"} 0$' "$tmp/cronrun.prom"
# promtool comes with scripts/install-deps.sh (Debian package prometheus).
check "promtool check metrics" bash -c "promtool check metrics < '$tmp/cronrun.prom'"

# ---- ps and lost ----
# The job outlasts every check below (the runner is SIGKILLed, its job dies with it).
"$CRONRUN" -n long --no-lock --cgroup off --history "$H" -q -- "$P" sleep 300 &
runner=$!
bg_pids+=($runner)
deadline=$((SECONDS + 60))  # a time bound: each poll is a cronprof run, slow under load
while [ $SECONDS -lt $deadline ]; do
  [ "$(prof --json ps | json 'len(d["runs"])')" -ge 1 ] && break
  sleep 0.1
done
check "ps shows the run in progress" test "$(prof --json ps | json 'd["runs"][0]["job"]')" = long
check "ps: runner pid and elapsed" test "$(prof --json ps | json 'str(d["runs"][0]["runner_pid"]=='"$runner"') + " " + str(d["runs"][0]["elapsed_s"] >= 0)')" = "True True"
check "ps table" bash -c "'$CRONPROF' --history '$H' ps | grep -q long"
kill -9 "$runner"
wait "$runner" 2>/dev/null || true
check "a SIGKILLed runner's run reads as lost" test "$(prof --json runs --status lost | json 'd["runs"][0]["job"]')" = long
check "ps no longer shows it" test "$(prof --json ps | json 'len(d["runs"])')" -eq 0

# ---- ps with live cgroup figures (root on a host where cronrun can place cgroups) ----
if [ "$(id -u)" -eq 0 ]; then
  CG=$tmp/cg.db  # its own history: the counts below stay as they are
  # --pids: a run makes a pids cgroup (v1/hybrid) or enables pids (v2) only for a
  # pids limit; without one its task count is not measured (null), not 0.
  # The job holds its 32 MiB until the test is done looking (SIGTERM below);
  # ps is read once the run shows up with its memory in place, not after a guess.
  "$CRONRUN" -n livecg --no-lock --cgroup auto --cgroup-parent "$cg_parent" --pids 1000 --history "$CG" -q -- "$P" mem 32 300000 &
  cg_runner=$!
  bg_pids+=($cg_runner)
  deadline=$((SECONDS + 60))  # a time bound: each poll is a cronprof run, slow under load
  while [ $SECONDS -lt $deadline ]; do
    "$CRONPROF" --history "$CG" --json ps >"$tmp/ps.json" 2>/dev/null &&
      [ "$(json 'str(bool(d["runs"]) and (d["runs"][0]["cgroup"] is None or (d["runs"][0]["memory_peak_bytes"] or 0) >= (32 << 20)))' <"$tmp/ps.json")" = True ] &&
      break
    sleep 0.1
  done
  if [ "$(json 'str(bool(d["runs"]) and d["runs"][0]["cgroup"] is not None)' <"$tmp/ps.json")" = True ]; then
    check "ps: live memory from the cgroup (>= 32 MiB)" test "$(json 'd["runs"][0]["memory_current_bytes"] or 0' <"$tmp/ps.json")" -ge $((32 << 20))
    check "ps: live peak memory (>= 32 MiB)" test "$(json 'd["runs"][0]["memory_peak_bytes"] or 0' <"$tmp/ps.json")" -ge $((32 << 20))
    check "ps: live CPU and tasks" test "$(json 'str(d["runs"][0]["cpu_s"] is not None and d["runs"][0]["pids_current"] >= 1)' <"$tmp/ps.json")" = True
  else
    echo "skip - cronrun placed no cgroup on this host; live figures not checked"
  fi
  kill -TERM "$cg_runner"
  wait "$cg_runner" || true

  # suggest's pids limit from real runs under --pids: five whose shell has ten
  # sleeps at once (11 tasks), one whose 60 did not fit under 40 (the shell gives
  # up at the first refused fork). The largest count, 11, x 1.3 is under the 32
  # floor; the refused forks make it at least 40 x 1.3 = 52, rounded up to 56.
  PH=$tmp/pids.db
  for _ in 1 2 3 4 5; do
    "$CRONRUN" -n forky --no-lock --cgroup auto --cgroup-parent "$cg_parent" --pids 64 --history "$PH" -q -- \
      sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3 & done; wait' >/dev/null 2>&1 || true
  done
  "$CRONRUN" -n forky --no-lock --cgroup auto --cgroup-parent "$cg_parent" --pids 40 --history "$PH" -q -- \
    sh -c 'for i in $(seq 60); do sleep 0.5 & done 2>/dev/null; wait' >/dev/null 2>&1 || true
  refused=$("$CRONPROF" --history "$PH" --json runs --job forky --status failed | json 'len(d["runs"])')
  if [ "$("$CRONPROF" --history "$PH" --json show forky | json 'str(d["usage"]["pids_peak"] is not None)')" = True ] &&
    [ "$refused" -eq 1 ]; then
    "$CRONPROF" --history "$PH" suggest --job forky >"$tmp/suggest-pids"
    check "suggest: pids from the largest task count" grep -q "pids: at most 11 tasks over 5 successful runs" "$tmp/suggest-pids"
    check "suggest: raised after the refused forks" grep -q "1 fork refused under the 40 limit, so at least that × headroom → 56" "$tmp/suggest-pids"
    printf '{ "pids": 40 }\n' >"$tmp/forky.json"
    "$CRONPROF" --history "$PH" suggest --job forky --write --config "$tmp/forky.json" >/dev/null
    check "suggest --write sets pids" test "$(json 'd["pids"]' <"$tmp/forky.json")" = 56
    check "cronrun runs under the written pids limit" "$CRONRUN" -n forky -c "$tmp/forky.json" --no-lock --cgroup auto \
      --cgroup-parent "$cg_parent" --history "$PH" -q -- sh -c 'for i in $(seq 50); do sleep 0.3 & done; wait'
  else
    echo "skip - no pids cgroup or no pids.peak on this host; suggest's pids limit not checked end to end"
  fi
fi

# ---- reading needs no root ----
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  chmod 755 "$tmp"
  check "another user reads the history" bash -c "setpriv --reuid=65534 --regid=65534 --clear-groups '$CRONPROF' --history '$H' runs >/dev/null"
  cp "$H" "$tmp/private.db"
  chmod 600 "$tmp/private.db"
  expect_rc 4 "unreadable history" setpriv --reuid=65534 --regid=65534 --clear-groups "$CRONPROF" --history "$tmp/private.db" runs
fi

# ---- broken histories ----
expect_rc 3 "missing history" "$CRONPROF" --history "$tmp/nope.db" runs
expect_rc 6 "corrupt history" "$CRONPROF" --history "$CRONRUN_FIXTURES/history/corrupt.db" summary
cp "$H" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "PRAGMA user_version = 99" 2>/dev/null || python3 -c "import sqlite3; c=sqlite3.connect('$tmp/newer.db'); c.execute('PRAGMA user_version = 99'); c.commit()"
expect_rc 5 "newer schema refused" "$CRONPROF" --history "$tmp/newer.db" runs
expect_rc 2 "unknown subcommand" "$CRONPROF" frobnicate

# ---- gc ----
check "gc --dry-run counts every finished and lost run" test "$(prof --json gc --keep 0s --dry-run | json 'd["would_delete"]')" -eq 14
check "gc --dry-run deletes nothing" test "$(prof --json runs --limit 0 | json 'len(d["runs"])')" -eq 14
# Counting needs no write access: another user who may read the history may count.
chmod 0755 "$tmp"
check "gc --dry-run as a user who may only read counts the same" \
  test "$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CRONPROF" --history "$H" --json gc --keep 0s --dry-run | json 'd["would_delete"]')" -eq 14
prof gc --keep 0s >/dev/null
check "gc --keep 0s leaves an empty history" test "$(prof --json runs --limit 0 | json 'len(d["runs"])')" -eq 0
expect_rc 3 "gc never creates a history" "$CRONPROF" --history "$tmp/nope2.db" gc --keep 1d
expect_rc 6 "a directory is not a history (exit 6, not 4: no permission is wrong)" "$CRONPROF" --history "$tmp" runs
expect_rc 6 "a device is not a history" "$CRONPROF" --history /dev/null runs
check "gc did not create the file" test ! -e "$tmp/nope2.db"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
