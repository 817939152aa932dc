#!/usr/bin/env bash
# Per-run overhead of cronrun on /bin/true, side by side with its peers:
#   flock -n (lock only), /usr/bin/time -v (rusage only), cgexec (existing cgroup),
#   cronrun with lock + fresh cgroup + limits + SQLite history, reduced forms of it,
#   and `floor` (bench/floor.c): the same lock and cgroup kernel work done by a
#   plain C program, i.e. what any runner doing it on this host pays; `floor+hist`
#   adds the two SQLite history writes (cronrun's schema and settings).
# Prints ms per run and the ratio to `flock -n`, back to back and spaced out (one
# run at a time after a pause, as cron runs them), plus cronrun's own memory while
# a job runs. Root, release build. Not a test: figures for people.
#
#   bench/overhead.sh [RUNS]        (default 300 runs per command, interleaved rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
build=${BUILD_DIR:-build-bench}
[ "$(id -u)" -eq 0 ] || { echo "overhead.sh: run as root (cgroups)" >&2; exit 1; }
command -v cgexec >/dev/null || { echo "overhead.sh: cgexec missing (apt-get install cgroup-tools)" >&2; exit 1; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target cronrun >/dev/null
cronrun="$build/runner/cronrun"

work=$(mktemp -d)
parent=cronrun-bench-$$
cleanup() {
  # (cgdelete -g memory,cpu,pids removes only the first hierarchy's group here.)
  for m in /sys/fs/cgroup/*/; do
    for d in "$m/$parent" "$m/$parent-cgexec"; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT
# SQLite linked as cronrun links it (the static archive).
cc -O2 -Wall -Wextra -o "$work/floor" bench/floor.c "$(pkg-config --variable=libdir sqlite3)/libsqlite3.a" -lm -ldl \
  -lpthread
cgcreate -g memory,cpu,pids:/$parent-cgexec
cgset -r memory.limit_in_bytes=1G -r cpu.cfs_quota_us=100000 -r pids.max=100 $parent-cgexec

declare -A cmd=(
  [true]="/bin/true"
  [flock]="flock -n $work/flock.lock /bin/true"
  [time]="/usr/bin/time -v -o /dev/null /bin/true"
  [cgexec]="cgexec -g memory,cpu,pids:/$parent-cgexec /bin/true"
  [cronrun]="$cronrun -q --history $work/h.db --lock $work/c.pid --cgroup-parent /$parent --memory 1G --cpu 100% --pids 100 -- /bin/true"
  [cronrun-nohist]="$cronrun -q --no-history --lock $work/c.pid --cgroup-parent /$parent --memory 1G --cpu 100% --pids 100 -- /bin/true"
  [cronrun-nocg]="$cronrun -q --no-history --lock $work/c.pid --cgroup off -- /bin/true"
)
# One run first: the job's cgroup directories exist from then on, as they do for any
# cron job after its first run, and `floor` makes its run leaves in the same ones.
${cmd[cronrun]} >/dev/null
# floor+hist writes into a history of its own that cronrun created (schema, indexes).
$cronrun -q --history $work/f.db --no-lock --cgroup off -- /bin/true
mapfile -t job_dirs < <(find /sys/fs/cgroup -maxdepth 3 -type d -path "*/$parent/true")
[ ${#job_dirs[@]} -gt 0 ] || { echo "overhead.sh: cronrun made no job cgroup under /$parent" >&2; exit 1; }
cmd[floor]="$work/floor $work/floor.lock ${job_dirs[*]} -- /bin/true"
cmd[floor+hist]="$work/floor --history $work/f.db $work/floor.lock ${job_dirs[*]} -- /bin/true"
order=(true flock time cgexec floor floor+hist cronrun-nocg cronrun-nohist cronrun)
declare -A total_us spaced_us
for k in "${order[@]}"; do total_us[$k]=0; spaced_us[$k]=0; done

# 1. Back to back, in interleaved rounds so that drift in machine load hits every
#    command alike.
rounds=10
per=$((runs / rounds))
for ((r = 0; r < rounds; r++)); do
  for k in "${order[@]}"; do
    t0=${EPOCHREALTIME/./}
    for ((i = 0; i < per; i++)); do ${cmd[$k]} >/dev/null 2>&1; done
    t1=${EPOCHREALTIME/./}
    total_us[$k]=$((total_us[$k] + t1 - t0))
  done
done

# 2. Spaced out, as cron runs them: each run alone after a pause. This is where a
#    cgroup migration by pid shows: the kernel's threadgroup lock then waits for an
#    RCU grace period (several ms), which back-to-back runs largely hide because
#    the lock's fast path is still disabled from the previous run.
spaced=${SPACED_RUNS:-30}
for ((i = 0; i < spaced; i++)); do
  for k in "${order[@]}"; do
    sleep 0.05
    t0=${EPOCHREALTIME/./}
    ${cmd[$k]} >/dev/null 2>&1
    t1=${EPOCHREALTIME/./}
    spaced_us[$k]=$((spaced_us[$k] + t1 - t0))
  done
done

flock_ms=$(echo "${total_us[flock]} / ($per * $rounds) / 1000" | bc -l)
flock_sp=$(echo "${spaced_us[flock]} / $spaced / 1000" | bc -l)
printf "%-16s %12s %8s %12s %8s\n" command "ms/run b2b" "x flock" "ms spaced" "x flock"
for k in "${order[@]}"; do
  ms=$(echo "${total_us[$k]} / ($per * $rounds) / 1000" | bc -l)
  sp=$(echo "${spaced_us[$k]} / $spaced / 1000" | bc -l)
  printf "%-16s %12.3f %8.2f %12.3f %8.2f\n" "$k" "$ms" "$(echo "$ms / $flock_ms" | bc -l)" \
    "$sp" "$(echo "$sp / $flock_sp" | bc -l)"
done

# The supervisor's own memory while a job runs, in the steady state of a cron job:
# its <job> cgroup exists from an earlier run.
$cronrun -q --history $work/h.db --lock $work/r.pid --cgroup-parent /$parent --memory 1G -- /bin/sleep 0
$cronrun -q --history $work/h.db --lock $work/r.pid --cgroup-parent /$parent --memory 1G -- /bin/sleep 1 &
pid=$!
sleep 0.5
echo
# RSS counts the pages of the binary and of libc it has touched (shared with every
# other process mapping them); RssAnon and Pss are what it really costs.
grep -E 'VmHWM|VmRSS|RssAnon|RssFile' /proc/$pid/status | sed 's/^/cronrun supervisor /'
grep -E '^Pss:' /proc/$pid/smaps_rollup | sed 's/^/cronrun supervisor /'
wait $pid
echo "history rows: $(sqlite3 $work/h.db 'select count(*) from runs')"
