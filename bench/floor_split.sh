#!/usr/bin/env bash
# Where the time between cronrun and the floor goes, measured: the benchmark's
# run (lock + fresh cgroup + --memory 1G + journal, on /bin/true) split into
#   exec+exit     an empty static C program (the kernel's cost of any process)
#   kernel work   bench/floor.c doing exactly cronrun's kernel work, linked
#                 statically (no loader), minus exec+exit
#   dynamic linking   cronrun minus the same cronrun linked statically (-static:
#                 no ld.so, no relocations against libc/libm, no lazy binding);
#                 for comparison floor minus floor-static, a C program on libc alone
#   our code      cronrun-static minus floor-static: everything the runner does
#                 in user space beyond the kernel work (option parsing, records,
#                 cgroup discovery, ...)
# Every command runs RUNS/ROUNDS times back to back per round, the order rotated
# each round (load drift hits all alike); figures are medians over rounds of the
# per-round mean, in µs. Also instructions counted by callgrind (the runner alone;
# valgrind 3.19 stops cronrun at pidfd_open, so "run*" is the run up to there).
# The static cronrun is a measurement device, not a product: a static glibc
# cannot dlopen libsystemd/libcurl for the runs that need them, and getpwuid
# loads NSS modules at run time. Root, release build.
#
#   bench/floor_split.sh [RUNS]      (default 400 per command; ROUNDS=20)
#   NO_BUILD=1 BUILD_DIR=dir bench/floor_split.sh
source "$(dirname "$0")/lib.sh"
runs=${1:-400}
rounds=${ROUNDS:-20}
per=$(((runs + rounds - 1) / rounds))
command -v strace >/dev/null || { echo "floor_split.sh: strace missing" >&2; exit 1; }
bench_build
bench_header

# The static variants: the same objects and archives, linked with -static.
cc -O2 -Wall -Wextra -static -o "$work/floor-static" bench/floor.c \
  "$(pkg-config --variable=libdir sqlite3)/libsqlite3.a" -lm -ldl -lpthread 2>"$work/floor-static.log" ||
  { cat "$work/floor-static.log" >&2; exit 1; }
echo 'int main(void) { return 0; }' >"$work/empty.c"
cc -O2 -o "$work/empty" "$work/empty.c"
cc -O2 -static -o "$work/empty-static" "$work/empty.c"
link=$(cat "$build/runner/CMakeFiles/cronrun.dir/link.txt")
cronrun_static=$work/cronrun-static
if (cd "$build/runner" && eval "${link/ -o cronrun / -static -o $cronrun_static }") >"$work/static.log" 2>&1; then
  :
else
  echo "# cronrun could not be linked statically: $(head -3 "$work/static.log" | tr '\n' ' ')"
  cronrun_static=
fi

cronrun_args=(-q --history "$work/h.db" --lock "$work/c.pid" --cgroup-parent "/$parent" --memory 1G -- /bin/true)
floor_args "${cronrun_args[@]}"
run_empty() { "$work/empty"; }
run_empty-static() { "$work/empty-static"; }
run_floor() { "$work/floor" "${floor_args[@]}" "$work/floor.lock" -- /bin/true; }
run_floor-static() { "$work/floor-static" "${floor_args[@]}" "$work/floor.lock" -- /bin/true; }
run_cronrun-version() { "$cronrun" --version; }
run_cronrun() { "$cronrun" "${cronrun_args[@]}"; }
order=(empty empty-static floor floor-static cronrun-version cronrun)
if [ -n "$cronrun_static" ]; then
  # (No static --version: CLI11 ends it by throwing, and a static binary's first
  # throw sorts every FDE of the program, 28 M instructions; the run throws none.)
  run_cronrun-static() { "$cronrun_static" "${cronrun_args[@]}"; }
  order+=(cronrun-static)
fi
for k in "${order[@]}"; do "run_$k" >/dev/null || { echo "floor_split.sh: $k failed" >&2; exit 1; }; done

# CPU time too (perf stat's task-clock of the command and its job, in µs): on a
# machine others load, wall time mostly measures waiting for a CPU.
declare -A cmd
cmd[empty]="$work/empty"
cmd[empty-static]="$work/empty-static"
cmd[floor]="$work/floor ${floor_args[*]} $work/floor.lock -- /bin/true"
cmd[floor-static]="$work/floor-static ${floor_args[*]} $work/floor.lock -- /bin/true"
cmd[cronrun-version]="$cronrun --version"
cmd[cronrun]="$cronrun ${cronrun_args[*]}"
[ -n "$cronrun_static" ] && cmd[cronrun-static]="$cronrun_static ${cronrun_args[*]}"
have_perf=$(command -v perf || true)
declare -A per_round cpu_round fault_round
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#order[@]}; j++)); do
    k=${order[$(((j + r) % ${#order[@]}))]}
    t0=${EPOCHREALTIME/./}
    for ((i = 0; i < per; i++)); do "run_$k" >/dev/null 2>&1; done
    t1=${EPOCHREALTIME/./}
    per_round[$k]+="$(((t1 - t0) / per)) "
    if [ -n "$have_perf" ]; then
      # shellcheck disable=SC2086
      out=$(perf stat -x, -e task-clock,page-faults -r "$per" ${cmd[$k]} 2>&1 >/dev/null)
      cpu_round[$k]+="$(awk -F, '$3 == "task-clock" { printf "%d", $1 * 1000 }' <<<"$out") "
      fault_round[$k]+="$(awk -F, '$3 == "page-faults" { printf "%d", $1 }' <<<"$out") "
    fi
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {printf "%d\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2) + 0.5}'; }
instr() { (valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null || true) | sed -n 's/.*Collected : //p'; }
declare -A us ins cpu faults
for k in "${order[@]}"; do
  us[$k]=$(median <<<"${per_round[$k]}"); cpu[$k]=$(median <<<"${cpu_round[$k]:-0}"); faults[$k]=$(median <<<"${fault_round[$k]:-0}")
done
if command -v valgrind >/dev/null; then
  ins[empty]=$(instr "$work/empty"); ins[empty-static]=$(instr "$work/empty-static")
  ins[floor]=$(instr "$work/floor" "${floor_args[@]}" "$work/floor.lock" -- /bin/true)
  ins[floor-static]=$(instr "$work/floor-static" "${floor_args[@]}" "$work/floor.lock" -- /bin/true)
  ins[cronrun-version]=$(instr "$cronrun" --version); ins[cronrun]="$(instr "$cronrun" "${cronrun_args[@]}")*"
  if [ -n "$cronrun_static" ]; then
    ins[cronrun-static]="$(instr "$cronrun_static" "${cronrun_args[@]}")*"
  fi
fi
echo "# $rounds rounds x $per runs, order rotated; load average at the end: $(loadavg)"
printf "%-24s %10s %10s %12s %14s\n" command "wall µs" "CPU µs" "page faults" "instructions"
for k in "${order[@]}"; do
  printf "%-24s %10d %10d %12d %14s\n" "$k" "${us[$k]}" "${cpu[$k]}" "${faults[$k]}" "${ins[$k]:--}"
done
# show_split NAME: the run split by the figures in array NAME (wall or CPU µs)
show_split() {
  local -n v=$1
  echo "# the run split, $2 µs:"
  printf "  %-44s %8d\n" "exec+exit of a static process" "${v[empty-static]}"
  printf "  %-44s %8d\n" "kernel work (floor-static - empty-static)" "$((v[floor-static] - v[empty-static]))"
  printf "  %-44s %8d\n" "libc dynamic linking (floor - floor-static)" "$((v[floor] - v[floor-static]))"
  if [ -n "$cronrun_static" ]; then
    printf "  %-44s %8d\n" "our code (cronrun-static - floor-static)" "$((v[cronrun-static] - v[floor-static]))"
    printf "  %-44s %8d\n" "cronrun's dynamic linking (cronrun - static)" "$((v[cronrun] - v[cronrun-static]))"
  fi
  printf "  %-44s %8d   (x%.2f floor)\n" "cronrun" "${v[cronrun]}" "$(bc -l <<<"${v[cronrun]} / ${v[floor]}")"
}
show_split us wall
if [ -n "$have_perf" ]; then show_split cpu CPU; fi
