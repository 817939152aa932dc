#!/usr/bin/env bash
# A/B of cronrun binaries (experiments) on the benchmark's run: lock + fresh
# cgroup + --memory 1G + journal, on /bin/true. ROUNDS rounds, each running every
# binary RUNS times back to back under `perf stat` (order rotated per round), so
# that load drift hits all alike. Per binary: the median and the spread (min–max
# over rounds) of CPU ms per run (task-clock of cronrun and its job: not inflated
# by waiting for a CPU on a loaded machine, unlike wall time) and of wall ms, page
# faults per run, and, once, instructions counted by callgrind (repeatable
# whatever else the machine does; the runner alone, not its job): "run*" is the
# run up to pidfd_open, which valgrind 3.19 does not know (the run then records
# its failure and exits), and --version the start-up and exit alone. Root.
#
#   bench/ab.sh NAME=BINARY [NAME=BINARY ...]      (ROUNDS=15 RUNS=40)
#   ARGS='--cgroup off --no-lock' bench/ab.sh ...   other cronrun options
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "ab.sh: run as root (cgroups)" >&2; exit 1; }
command -v perf >/dev/null || { echo "ab.sh: perf missing (linux-perf)" >&2; exit 1; }
(($#)) || { echo "usage: ab.sh NAME=BINARY..." >&2; exit 2; }
rounds=${ROUNDS:-15} runs=${RUNS:-40}
work=$(mktemp -d /tmp/cronrun-ab.XXXXXX)
parent=cronrun-ab-$$
cleanup() {
  local m
  for m in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$m$parent" ] && find "$m$parent" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
names=() bins=()
for a in "$@"; do names+=("${a%%=*}"); bins+=("${a#*=}"); done
# shellcheck disable=SC2206
extra=(${ARGS:---memory 1G})
args() { echo -q --history "$work/$1.db" --lock "$work/$1.pid" --cgroup-parent "/$parent" "${extra[@]}" -- /bin/true; }
for i in "${!names[@]}"; do
  # shellcheck disable=SC2046
  "${bins[$i]}" $(args "${names[$i]}") || { echo "ab.sh: ${names[$i]} failed" >&2; exit 1; }
done
declare -A cpu wall faults
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#names[@]}; j++)); do
    i=$(((j + r) % ${#names[@]}))
    n=${names[$i]}
    t0=${EPOCHREALTIME/./}
    # shellcheck disable=SC2046
    out=$(perf stat -x, -e task-clock,page-faults -r "$runs" "${bins[$i]}" $(args "$n") 2>&1 >/dev/null)
    t1=${EPOCHREALTIME/./}
    cpu[$n]+="$(awk -F, '$3 == "task-clock" { print $1 }' <<<"$out") "
    faults[$n]+="$(awk -F, '$3 == "page-faults" { print $1 }' <<<"$out") "
    wall[$n]+="$(bc -l <<<"($t1 - $t0) / $runs / 1000") "
  done
done
# "p50 (min-max)" of a list
summ() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
  printf "%.3f (%.3f-%.3f)", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'; }
echo "# ab.sh: $rounds rounds x $runs runs, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); cronrun $(args X | sed "s|$work/||g; s|/$parent|/P|")"
printf "%-14s %-24s %-24s %-22s %12s %12s\n" binary "CPU ms p50 (min-max)" "wall ms p50 (min-max)" "faults p50 (min-max)" "instr run*" "instr --version"
for n in "${names[@]}"; do
  i=0; for k in "${!names[@]}"; do if [ "${names[$k]}" = "$n" ]; then i=$k; fi; done
  ins=- ver=-
  if command -v valgrind >/dev/null; then
    # shellcheck disable=SC2046
    ins=$( (valgrind --tool=callgrind --callgrind-out-file=/dev/null "${bins[$i]}" $(args "$n") 2>&1 >/dev/null || true) |
          sed -n 's/.*Collected : //p')
    ver=$( (valgrind --tool=callgrind --callgrind-out-file=/dev/null "${bins[$i]}" --version 2>&1 >/dev/null || true) |
          sed -n 's/.*Collected : //p')
  fi
  printf "%-14s %-24s %-24s %-22s %12s %12s\n" "$n" "$(summ <<<"${cpu[$n]}")" "$(summ <<<"${wall[$n]}")" \
    "$(summ <<<"${faults[$n]}")" "$ins" "$ver"
done
