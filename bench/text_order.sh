#!/usr/bin/env bash
# Regenerates runner/hot-text.ld, the order file of cronrun's run path (see
# bench/text_order.py for why): links the release cronrun again with a link map,
# records which code one benchmark run executes (callgrind, exact, up to
# pidfd_open) and which code RUNS runs execute after it (perf cpu-clock:u samples),
# writes the linker script, relinks with it and prints the page faults a run takes
# in cronrun's text before and after (perf page-faults, every fault). Run it after
# a change that moves much code in or out of the run path; commit the .ld.
# Root, release build (BUILD_DIR, default build-bench).
#
#   bench/text_order.sh [RUNS]      (default 1500)
source "$(dirname "$0")/lib.sh"
runs=${1:-1500}
command -v valgrind >/dev/null || { echo "text_order.sh: valgrind missing" >&2; exit 1; }
command -v perf >/dev/null || { echo "text_order.sh: perf missing (linux-perf)" >&2; exit 1; }
bench_build
bench_header
link_txt=$build/runner/CMakeFiles/cronrun.dir/link.txt
[ -f "$link_txt" ] || { echo "text_order.sh: $link_txt missing" >&2; exit 1; }
# relink OUT [LDFLAGS...]: cronrun's own link command without its order file, the
# output renamed
relink() {
  local out=$1
  shift
  (cd "$build/runner" &&
    eval "$(sed "s|-Wl,-T,[^ ]*hot-text.ld||; s|-o cronrun |-o $out $* |" CMakeFiles/cronrun.dir/link.txt)")
}
relink "$work/cronrun" "-Wl,-Map=$work/cronrun.map"
args=(-q --history "$work/h.db" --lock "$work/c.pid" --cgroup-parent "/$parent" --memory 1G -- /bin/true)
"$work/cronrun" "${args[@]}"  # makes the history and the <job> directories
valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$work/cg" "$work/cronrun" "${args[@]}" \
  >/dev/null 2>&1 || true
perf record -q -e cpu-clock:u -F 49000 -o "$work/u.data" -- bash -c \
  'n=$1; shift; for ((i = 0; i < n; i++)); do "$@" || exit 1; done' _ "$runs" "$work/cronrun" "${args[@]}"
perf script -i "$work/u.data" --no-demangle -F comm,pid,ip,sym,symoff,dso >"$work/u.txt" 2>/dev/null
python3 bench/text_order.py "$work/cronrun.map" "$work/cronrun" "$work/cg" "$work/u.txt" runner/hot-text.ld

# text_faults BINARY: page faults a run in BINARY's text (instruction fetches), 50 runs
text_faults() {
  perf record -q -c 1 -e page-faults -d -o "$work/pf.data" -- bash -c \
    'for ((i = 0; i < 50; i++)); do "$@" || exit 1; done' _ "$1" "${args[@]}"
  # comm ADDR (DSO) IP (DSO): an instruction fetch when ADDR is IP
  perf script -i "$work/pf.data" -F comm,addr,ip,dso 2>/dev/null |
    awk -v b="($1)" '$2 == $4 && $3 == b { n++ } END { printf "%.1f", n / 50 }'
}
relink "$work/cronrun-ordered" "-Wl,-T,$PWD/runner/hot-text.ld"
relink "$work/cronrun-plain"
echo "# page faults a run in cronrun's text (runner and forked child): without the order file" \
  "$(text_faults "$work/cronrun-plain"), with it $(text_faults "$work/cronrun-ordered")"
