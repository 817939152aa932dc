#!/usr/bin/env bash
# Start latency of a burst: N runs of N distinct jobs released at once, under
# cronrun (one history, lock + cgroup + --memory 1G each) and, side by side, under
# `flock -n` (a lock file each) and under bench/floor doing cronrun's kernel work
# (derived from a traced cronrun run as in overhead.sh; its own history/journal). Every run waits on one barrier (bench/burst_helper:
# each waiter blocks opening a FIFO for reading; opening it for writing releases
# them all), then execs its runner; the job (burst_helper stamp) appends its
# CLOCK_REALTIME at exec to a file. Start latency = that time - the release time.
# Before the bursts each job runs once alone (not measured), so its lock file and
# <job> cgroup directories exist, as for any cron job after its first run. The
# bursts alternate flock / cronrun / floor, REPEAT times each; the table is over all of
# them. Then it checks that the history holds a row for every cronrun run.
# Root, release build. Figures for people, not a test.
#
#   bench/burst.sh [N]        (default 500; REPEAT=3)
source "$(dirname "$0")/lib.sh"
n=${1:-500}
repeat=${REPEAT:-3}
bench_build
bench_header
ulimit -u unlimited 2>/dev/null || true
mkdir -p "$work/locks"
history=$work/burst.db
stamp=("$work/burst_helper" stamp)

run_flock() { flock -n "$work/locks/f$1.lock" "${stamp[@]}" "$2"; }
run_cronrun() {
  "$cronrun" -q --history "$history" --lock "$work/locks/c$1.pid" --name "burst$1" --cgroup-parent "/$parent" \
    --memory 1G -- "${stamp[@]}" "$2"
}
# runner_cmd MODE I: sets the array `runner` to what job I runs under in MODE.
runner_cmd() {
  case $1 in
    flock) runner=(flock -n "$work/locks/f$2.lock") ;;
    cronrun) runner=("$cronrun" -q --history "$history" --lock "$work/locks/c$2.pid" --name "burst$2"
      --cgroup-parent "/$parent" --memory 1G --) ;;
    # bench/floor: cronrun's kernel work for job I (the floor of any runner doing it)
    floor) runner=("$work/floor" "${floor_args[@]//\/burst0//burst$2}" "$work/locks/fl$2.lock" --) ;;
    direct) runner=() ;;  # the job alone: what the barrier and the exec cost
  esac
}

# Warm-up: each job once, alone.
for ((i = 0; i < n; i++)); do
  run_flock "$i" "$work/warm" >/dev/null 2>&1
  run_cronrun "$i" "$work/warm" >/dev/null 2>&1 || { echo "burst.sh: warm-up run $i failed" >&2; exit 1; }
done
# The floor's options from a traced run of job 0 (bench/floor_args.py), per job.
floor_args -q --history "$history" --lock "$work/locks/c0.pid" --name burst0 --cgroup-parent "/$parent" \
  --memory 1G -- "${stamp[@]}" "$work/warm"
rows_before=$(history_rows "$history")

# burst MODE TAG: one burst of n runs; appends latencies (ms) to $work/lat.MODE.
burst() {
  local mode=$1 tag=$2 fifo=$work/fifo.$2 ready=$work/ready.$2 stamps=$work/stamps.$2 i pids=()
  mkfifo "$fifo"
  : >"$ready"
  for ((i = 0; i < n; i++)); do
    runner_cmd "$mode" "$i"
    "$work/burst_helper" wait "$ready" "$fifo" -- "${runner[@]}" "${stamp[@]}" "$stamps" \
      >/dev/null 2>>"$work/errors.$tag" &
    pids+=($!)
  done
  while [ "$(stat -c %s "$ready")" -lt "$n" ]; do sleep 0.05; done
  sleep 0.5  # each waiter is past its write to READY and blocked in open(FIFO)
  local load
  load=$(loadavg)
  "$work/burst_helper" release "$fifo" >"$work/release.$tag"
  local failed=0
  for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
  local t0
  t0=$(cat "$work/release.$tag")
  awk -v t0="$t0" '{ printf "%.3f\n", ($1 - t0) * 1000 }' "$stamps" >>"$work/lat.$mode"
  awk -v t0="$t0" '{ printf "%.3f\n", ($1 - t0) * 1000 }' "$stamps" | stats >"$work/one.$tag"
  read -r p50 p99 max mean cnt <"$work/one.$tag"
  printf "# burst %-10s load %-16s p50 %8s ms  p99 %8s ms  max %8s ms  jobs started %s/%s  runner exit != 0: %s\n" \
    "$tag" "$load" "$p50" "$p99" "$max" "$cnt" "$n" "$failed"
  echo "$failed" >>"$work/failed.$mode"
}

for ((r = 0; r < repeat; r++)); do
  burst flock "flock-$r"
  burst cronrun "cronrun-$r"
  burst floor "floor-$r"
done
burst direct "direct"

echo "# start latency (exec of the job - release), ms, over $repeat bursts of $n each:"
printf "%-8s %9s %9s %9s %9s %8s %8s\n" runner p50 p99 max mean started failed
for m in direct flock floor cronrun; do
  read -r p50 p99 max mean cnt < <(stats <"$work/lat.$m")
  printf "%-8s %9s %9s %9s %9s %8s %8s\n" "$m" "$p50" "$p99" "$max" "$mean" "$cnt" \
    "$(awk '{ s += $1 } END { print s + 0 }' "$work/failed.$m")"
done
read -r _ fp99 _ < <(stats <"$work/lat.flock")
read -r _ cp99 _ < <(stats <"$work/lat.cronrun")
read -r _ lp99 _ < <(stats <"$work/lat.floor")
rows_after=$(history_rows "$history")
echo "# cronrun p99 / flock -n p99 = $(bc -l <<<"$cp99 / $fp99" | xargs printf %.2f) (target <= 1.40); cronrun p99 / floor p99 = $(bc -l <<<"$cp99 / $lp99" | xargs printf %.2f)"
if [[ ${rows_before%% *} =~ ^[0-9]+$ && ${rows_after%% *} =~ ^[0-9]+$ ]]; then
  echo "# history: $((${rows_after%% *} - ${rows_before%% *})) new rows for $((repeat * n)) cronrun runs in the bursts;" \
    "all rows: $rows_after (before the bursts: $rows_before)"
else
  echo "# history: cronprof could not count the rows ($rows_before before, $rows_after after)"
fi
[ -s "$work/errors.cronrun-0" ] && { echo "# cronrun's stderr in the first burst (first lines):"; head -5 "$work/errors.cronrun-0"; }
true
