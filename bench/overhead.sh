#!/usr/bin/env bash
# Per-run overhead of cronrun on /bin/true, side by side and interleaved with:
#   flock -n      the lock alone (the issue's yardstick)
#   floor         bench/floor.c doing exactly the kernel work cronrun did on this
#                 host when the script ran: derived from `strace -f -y` of a real
#                 cronrun run (bench/floor_args.py: the same leaves, limit writes,
#                 joins, reads, clone3/wait, counters file, history or journal
#                 appends), and no failing opens
#   time          /usr/bin/time -v (rusage only)
#   cgexec        cgroup-tools, an existing cgroup (memory), moved into by pid
#   cronrun       lock + fresh cgroup + --memory 1G + history (journal or SQLite,
#                 whatever this build writes)
#   cronrun --version   the runner's start-up and exit alone
# Rounds of RUNS/ROUNDS runs of each command, the order rotated every round, so
# that load drift hits all alike; ratios are the median over rounds of the
# per-round ratio. Then SPACED runs one at a time after a pause, as cron runs them.
# "CPU ms": user + system time per back-to-back run (the runner and its job), which
# waiting for a CPU on a loaded machine does not inflate; quote it beside wall time.
# Root, release build. Figures for people, not a test.
#
#   bench/overhead.sh [RUNS]     (default 600 per command; ROUNDS=30 SPACED=30)
#   NO_BUILD=1 BUILD_DIR=dir bench/overhead.sh   to measure an existing release build
#   CRONRUN_B=path bench/overhead.sh   adds row `cronrun-b`: another cronrun binary (an
#       experiment) with the same arguments, interleaved with the rest
source "$(dirname "$0")/lib.sh"
runs=${1:-600}
rounds=${ROUNDS:-30}
spaced=${SPACED:-30}
per=$(((runs + rounds - 1) / rounds))
command -v cgexec >/dev/null || { echo "overhead.sh: cgexec missing (apt-get install cgroup-tools)" >&2; exit 1; }
command -v strace >/dev/null || { echo "overhead.sh: strace missing" >&2; exit 1; }
bench_build
bench_header

cronrun_args=(-q --history "$work/h.db" --lock "$work/c.pid" --cgroup-parent "/$parent" --memory 1G -- /bin/true)
floor_args "${cronrun_args[@]}"
echo "# floor: $(tr '\n' ' ' <<<"${floor_args[*]}" | sed "s|$work/||g; s|/sys/fs/cgroup/||g; s|/$parent||g")"
cgcreate -g memory:/$parent-cgexec
cgset -r memory.limit_in_bytes=1G $parent-cgexec

# One function per command (arguments stay arrays: a limit value may hold a space).
run_flock() { flock -n "$work/flock.lock" /bin/true; }
run_floor() { "$work/floor" "${floor_args[@]}" "$work/floor.lock" -- /bin/true; }
run_time() { /usr/bin/time -v -o /dev/null /bin/true; }
run_cgexec() { cgexec -g "memory:/$parent-cgexec" /bin/true; }
run_cronrun() { "$cronrun" "${cronrun_args[@]}"; }
run_cronrun-version() { "$cronrun" --version; }
order=(flock floor cronrun time cgexec cronrun-version)
if [ -n "${CRONRUN_B:-}" ]; then
  run_cronrun-b() { "$CRONRUN_B" "${cronrun_args[@]}"; }
  order+=(cronrun-b)
fi
for k in "${order[@]}"; do "run_$k" >/dev/null || { echo "overhead.sh: $k failed" >&2; exit 1; }; done
declare -A per_round spaced_us cpu_ms
for k in "${order[@]}"; do cpu_ms[$k]=0; done
# CPU time (user + system) of the shell's reaped children so far, in ms: the same
# figure as wall time on an idle machine, but not inflated by waiting for a CPU
# when other work shares the machine (clock-tick resolution, summed over all runs).
# (`times` in this shell, not in a $(...) subshell, which has no children of its own.)
children_cpu_ms() { times >"$work/times"; awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
  printf "%d\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }' "$work/times"; }

# Back to back: per-round mean ms of each command, order rotated each round.
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#order[@]}; j++)); do
    k=${order[$(((j + r) % ${#order[@]}))]}
    children_cpu_ms >"$work/c0"
    t0=${EPOCHREALTIME/./}
    for ((i = 0; i < per; i++)); do "run_$k" >/dev/null 2>&1; done
    t1=${EPOCHREALTIME/./}
    per_round[$k]+="$(((t1 - t0) / per)) "
    children_cpu_ms >"$work/c1"
    cpu_ms[$k]=$((cpu_ms[$k] + $(cat "$work/c1") - $(cat "$work/c0")))
  done
done
load_b2b=$(loadavg)
# Spaced out: each run alone after a pause (cold caches, the kernel's deferred work done).
for ((i = 0; i < spaced; i++)); do
  for k in "${order[@]}"; do
    sleep 0.05
    t0=${EPOCHREALTIME/./}
    "run_$k" >/dev/null 2>&1
    t1=${EPOCHREALTIME/./}
    spaced_us[$k]+="$((t1 - t0)) "
  done
done

# median of a list; median over rounds of a/b
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ratio() { paste -d' ' <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
  awk '{print $1/$2}' | median; }
echo "# $rounds rounds x $per runs back to back, $spaced spaced runs; load average after the back-to-back part: $load_b2b, at the end: $(loadavg)"
printf "%-16s %10s %8s %8s %11s %8s %8s %9s %8s %8s\n" command "ms b2b" "x flock" "x floor" "ms spaced" "x flock" \
  "x floor" "CPU ms" "x flock" "x floor"
for k in "${order[@]}"; do
  b=$(median <<<"${per_round[$k]}")
  s=$(median <<<"${spaced_us[$k]}")
  c=$(bc -l <<<"${cpu_ms[$k]} / ($rounds * $per)")
  printf "%-16s %10.3f %8.2f %8.2f %11.3f %8.2f %8.2f %9.3f %8.2f %8.2f\n" "$k" "$(bc -l <<<"$b/1000")" \
    "$(ratio "${per_round[$k]}" "${per_round[flock]}")" "$(ratio "${per_round[$k]}" "${per_round[floor]}")" \
    "$(bc -l <<<"$s/1000")" "$(ratio "${spaced_us[$k]}" "${spaced_us[flock]}")" \
    "$(ratio "${spaced_us[$k]}" "${spaced_us[floor]}")" "$c" "$(bc -l <<<"${cpu_ms[$k]} / ${cpu_ms[flock]}")" \
    "$(bc -l <<<"${cpu_ms[$k]} / ${cpu_ms[floor]}")"
done
echo "# targets: cronrun <= 1.30 x flock, <= 1.10 x floor; history rows after the runs: $(history_rows "$work/h.db")"
