#!/usr/bin/env bash
# cronrun beside the "stack floor": bench/stack_floor.cc does bench/floor.c's
# kernel work of the benchmark run (lock + fresh cgroup + --memory 1G + journal,
# on /bin/true) plus only what the mandated stack cannot avoid (CLI11 parsing
# the same command line, one spdlog logger, the two journal records built with
# nlohmann::json), compiled and linked as the release cronrun is. So
#   stack_floor / floor    what the stack itself costs (C++ runtime, CLI11, JSON, spdlog)
#   cronrun / stack_floor  what cronrun does beyond it: its own code
# Side by side: flock -n (the issue's yardstick), floor (dynamic, as
# bench/overhead.sh builds it), floor-static (no loader), stack_floor and
# cronrun; every command runs RUNS/ROUNDS times back to
# back per round, the order rotated each round; figures are medians over rounds
# of the per-round mean: wall µs, CPU µs (perf stat task-clock of the command and
# its job), page faults; then instructions counted by callgrind, the code and
# data touched (64-byte lines missed from a cold cache, by cachegrind) and the top
# of each program's inclusive profile. The medians leave out cronrun's journal
# fold (one run in about a hundred lands in a few rounds): they are the run path.
# On a shared machine wall time is mostly waiting for a CPU: CPU time and
# instructions are the figures that hold.
# valgrind 3.19 knows neither clone3 nor pidfd_open, so the instruction counts
# are marked *: floor stops at clone3 (its records are memset filler, nothing to
# count after); stack_floor forks instead and counts its whole run; cronrun forks
# instead too, fails at pidfd_open and writes its `finished` record for the
# failed start, so its count lacks the wait and the post-run reads (system calls
# mostly) and, if anything, understates cronrun / stack_floor.
# Root, release build (BUILD_DIR, default build-bench).
#
#   bench/stack_floor.sh [RUNS]      (default 400 per command; ROUNDS=20; TOP=15)
#   NO_BUILD=1 BUILD_DIR=build-rel bench/stack_floor.sh
#   CG_OUT=dir bench/stack_floor.sh  (keeps the callgrind profiles there)
#   PERF_OUT=dir bench/stack_floor.sh  (each command's CPU by object, kernel
#                                      included; perf profiles kept there;
#                                      PERF_G=1 records call chains too)
#   FAULTS=1 bench/stack_floor.sh      (each command's page faults by phase,
#                                      before/after the fork and in the child,
#                                      and by mapping: bench/faults_by_phase.py)
source "$(dirname "$0")/lib.sh"
runs=${1:-400}
rounds=${ROUNDS:-20}
top=${TOP:-15}
per=$(((runs + rounds - 1) / rounds))
command -v strace >/dev/null || { echo "stack_floor.sh: strace missing" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRONRUN_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j2 --target cronrun stack_floor >/dev/null
fi
NO_BUILD=1 bench_build
stack_floor=$PWD/$build/bench/stack_floor
[ -x "$stack_floor" ] || { echo "stack_floor.sh: $stack_floor missing (build the stack_floor target)" >&2; exit 1; }
bench_header

cc -O2 -Wall -Wextra -static -o "$work/floor-static" bench/floor.c \
  "$(pkg-config --variable=libdir sqlite3)/libsqlite3.a" -lm -ldl -lpthread 2>"$work/floor-static.log" ||
  { cat "$work/floor-static.log" >&2; exit 1; }

cronrun_args=(-q --history "$work/h.db" --lock "$work/c.pid" --cgroup-parent "/$parent" --memory 1G -- /bin/true)
floor_args "${cronrun_args[@]}"
# stack_floor journals into its own file (its records are framed as cronrun's),
# with a history file beside it to stat, as floor's.
touch "$work/stack-h.db"
sf_args=()
for a in "${floor_args[@]}"; do
  [ "$a" = "$work/floor-h.db.journal" ] && a=$work/stack-h.db.journal
  sf_args+=("$a")
done
echo "# floor's work: ${floor_args[*]}"
declare -A cmd
cmd[floor]="$work/floor ${floor_args[*]} $work/floor.lock -- /bin/true"
cmd[floor-static]="$work/floor-static ${floor_args[*]} $work/floor.lock -- /bin/true"
cmd[stack_floor]="$stack_floor ${sf_args[*]} $work/stack.lock --cronrun ${cronrun_args[*]}"
cmd[cronrun]="$cronrun ${cronrun_args[*]}"
# The issue's yardstick, the lock alone, in the same rounds.
cmd[flock]="flock -n $work/flock.lock /bin/true"
order=(flock floor floor-static stack_floor cronrun)
for k in "${order[@]}"; do
  # shellcheck disable=SC2086
  ${cmd[$k]} >/dev/null || { echo "stack_floor.sh: $k failed: ${cmd[$k]}" >&2; exit 1; }
done

have_perf=$(command -v perf || true)
declare -A per_round cpu_round fault_round load_round
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#order[@]}; j++)); do
    k=${order[$(((j + r) % ${#order[@]}))]}
    t0=${EPOCHREALTIME/./}
    # shellcheck disable=SC2086
    for ((i = 0; i < per; i++)); do
      ${cmd[$k]} >/dev/null 2>"$work/err" || { echo "stack_floor.sh: $k failed: $(head -2 "$work/err")" >&2; exit 1; }
    done
    t1=${EPOCHREALTIME/./}
    per_round[$k]+="$(((t1 - t0) / per)) "
    if [ -n "$have_perf" ]; then
      # shellcheck disable=SC2086
      perf_out=$(perf stat -x, -e task-clock,page-faults -r "$per" ${cmd[$k]} 2>&1 >/dev/null) ||
        { echo "stack_floor.sh: perf stat of $k failed: $(grep -v , <<<"$perf_out" | head -2)" >&2; exit 1; }
      cpu_round[$k]+="$(awk -F, '$3 == "task-clock" { printf "%d", $1 * 1000 }' <<<"$perf_out") "
      fault_round[$k]+="$(awk -F, '$3 == "page-faults" { printf "%d", $1 }' <<<"$perf_out") "
    fi
  done
  load_round[$r]=$(cut -d' ' -f1 /proc/loadavg)
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {printf "%d\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2) + 0.5}'; }
declare -A us cpu faults ins code_kib data_kib
for k in "${order[@]}"; do
  us[$k]=$(median <<<"${per_round[$k]}"); cpu[$k]=$(median <<<"${cpu_round[$k]:-0}"); faults[$k]=$(median <<<"${fault_round[$k]:-0}")
done
load_min=$(printf '%s\n' "${load_round[@]}" | sort -g | head -1)
load_max=$(printf '%s\n' "${load_round[@]}" | sort -g | tail -1)

# A floor that valgrind stops at clone3 leaves its counters file (floor-PID.counters):
# removed here once its process is gone, or a later floor with that pid fails.
counters_dir=
for ((i = 0; i + 1 < ${#floor_args[@]}; i++)); do
  if [ "${floor_args[$i]}" = --counters ]; then counters_dir=${floor_args[$((i + 1))]}; fi
done
remove_stale_counters() {
  local f p
  [ -n "$counters_dir" ] || return 0
  for f in "$counters_dir"/floor-*.counters; do
    [ -e "$f" ] || continue
    p=${f##*/floor-}; p=${p%.counters}
    [ -e "/proc/$p" ] || rm -f -- "$f"
  done
}
if command -v valgrind >/dev/null; then
  for k in "${order[@]}"; do
    # shellcheck disable=SC2086
    ins[$k]="$( (valgrind --tool=callgrind --callgrind-out-file="$work/cg.$k" ${cmd[$k]} 2>&1 >/dev/null || true) |
      sed -n 's/.*Collected : //p')*"
    remove_stale_counters
    # Code and data touched, in 64-byte lines: cachegrind's last-level misses from a
    # cold cache (its LL is larger than a run's footprint, so each line misses once).
    # A cold start pays for every line it touches, which instructions do not show.
    cg_out=$( (valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file=/dev/null ${cmd[$k]} 2>&1 >/dev/null ||
      true))
    code_kib[$k]=$(awk '/LLi misses:/ { gsub(",", "", $4); printf "%d", $4 * 64 / 1024 }' <<<"$cg_out")
    data_kib[$k]=$(awk '/LLd misses:/ { gsub(",", "", $4); printf "%d", $4 * 64 / 1024 }' <<<"$cg_out")
    remove_stale_counters
  done
fi

echo "# $rounds rounds x $per runs, order rotated; 1-minute load average over the rounds: $load_min-$load_max (end: $(loadavg))"
printf "%-14s %10s %10s %12s %14s %10s %10s\n" command "wall µs" "CPU µs" "page faults" "instructions" "code KiB*" \
  "data KiB*"
for k in "${order[@]}"; do
  printf "%-14s %10d %10d %12d %14s %10s %10s\n" "$k" "${us[$k]}" "${cpu[$k]}" "${faults[$k]}" "${ins[$k]:--}" \
    "${code_kib[$k]:--}" "${data_kib[$k]:--}"
done
ratio() { bc -l <<<"scale=2; $1 / $2"; }
num() { tr -d '*,' <<<"$1"; }
echo "# ratios              CPU    faults  instructions*   wall"
for pair in "cronrun stack_floor" "stack_floor floor" "cronrun floor" "stack_floor floor-static" "cronrun flock" \
  "floor flock"; do
  read -r a b <<<"$pair"
  printf "  %-22s %5s  %6s  %12s  %6s\n" "$a/$b" "$(ratio "${cpu[$a]}" "${cpu[$b]}")" \
    "$(ratio "${faults[$a]}" "${faults[$b]}")" \
    "$([ -n "${ins[$a]:-}" ] && ratio "$(num "${ins[$a]}")" "$(num "${ins[$b]}")" || echo -)" \
    "$(ratio "${us[$a]}" "${us[$b]}")"
done
if command -v callgrind_annotate >/dev/null && [ -n "${ins[cronrun]:-}" ]; then
  for k in stack_floor cronrun; do
    echo "# $k: callgrind inclusive by function, top $top"
    callgrind_annotate --inclusive=yes "$work/cg.$k" 2>/dev/null |
      awk -v top="$top" '/^-+$/ {n++; next} n >= 3 && NF && shown++ <= top {print}' | cut -c1-150
    [ -n "${CG_OUT:-}" ] && cp "$work/cg.$k" "$CG_OUT/callgrind.$k"
  done
fi
# PERF_OUT=dir: where each command's CPU goes, kernel included (the instruction
# counts above are user space only): perf samples the CPU clock (no hardware
# counters needed) over RUNS runs of each command and splits the time of the
# command's own process (its job, /bin/true, is left out) by object: kernel,
# loader, libc, the program itself; µs a run. Profiles kept in dir
# (perf report -i dir/COMMAND.data) with the command line (dir/COMMAND.cmd; the
# files it names were in the script's work directory, removed at exit).
if [ -n "${PERF_OUT:-}" ] && [ -n "$have_perf" ]; then
  mkdir -p "$PERF_OUT"
  echo "# the command's own process (not its job): CPU µs a run by object, perf cpu-clock samples over $runs runs"
  printf "%-14s %8s %8s %8s %8s %8s %8s\n" command kernel loader libc program other total
  for k in "${order[@]}"; do
    # shellcheck disable=SC2086,SC2016
    perf record -q ${PERF_G:+-g} -e cpu-clock -F 20000 -o "$PERF_OUT/$k.data" -- bash -c \
      'n=$1; shift; for ((i = 0; i < n; i++)); do "$@" >/dev/null || exit 1; done' _ "$runs" ${cmd[$k]} 2>/dev/null ||
      { echo "stack_floor.sh: perf record of $k failed" >&2; continue; }
    echo "${cmd[$k]}" >"$PERF_OUT/$k.cmd"
    prog=$(basename "$(cut -d' ' -f1 <<<"${cmd[$k]}")")
    perf report -i "$PERF_OUT/$k.data" --sort comm,dso --stdio --no-children -g none -F period,comm,dso 2>/dev/null |
      awk -v runs="$runs" -v k="$k" -v comm="${prog:0:15}" -v prog="$prog" '
        /^#/ || NF < 3 || $2 != comm { next }
        { n = $1; d = $3
          if (d ~ /kernel/) kern += n; else if (d ~ /^ld-linux/) ld += n; else if (d ~ /^libc\./) c += n
          else if (d == prog) p += n; else o += n; total += n }
        END { us = 1e-3 / runs
          printf "%-14s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f\n", k, kern * us, ld * us, c * us, p * us, o * us, total * us }'
  done
fi
# FAULTS=1: where each command's page faults are: in its own process before the
# fork and after it, and in the forked child until it execs the job; by mapping
# (bench/faults_by_phase.py). 20 runs of each under perf (page faults are counted
# exactly, not sampled), per run.
if [ -n "${FAULTS:-}" ] && [ -n "$have_perf" ]; then
  echo "# page faults a run by phase and mapping (20 runs each; the job after its exec left out)"
  for k in "${order[@]}"; do
    # shellcheck disable=SC2086,SC2016
    perf record -q -e page-faults -c 1 -d -e syscalls:sys_enter_clone3 -e syscalls:sys_enter_clone \
      -o "$work/faults.$k.data" -- bash -c \
      'for ((i = 0; i < 20; i++)); do "$@" >/dev/null || exit 1; done' _ ${cmd[$k]} 2>/dev/null ||
      { echo "stack_floor.sh: perf record of $k's page faults failed" >&2; continue; }
    echo "$k"
    perf script -i "$work/faults.$k.data" -F comm,pid,event,addr --show-mmap-events 2>/dev/null |
      bench/faults_by_phase.py "$(basename "$(cut -d' ' -f1 <<<"${cmd[$k]}")")" 20
  done
fi
