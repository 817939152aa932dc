# Shared by bench/overhead.sh, burst.sh and footprint.sh (sourced, not run).
# Builds the release cronrun (no sanitizers) in $BUILD_DIR (default build-bench),
# the C helpers into $work, and owns one cgroup parent, /$parent, removed at exit
# in every hierarchy (only the directories under it, which this script made).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-bench}
[ "$(id -u)" -eq 0 ] || { echo "$(basename "$0"): run as root (cgroups)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$(basename "$0"): python3 missing" >&2; exit 1; }

work=$(mktemp -d /tmp/cronrun-bench.XXXXXX)
parent=cronrun-bench-$$
bench_cleanup() {
  local m d
  for m in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    for d in "$m$parent" "$m$parent-cgexec"; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  rm -rf "$work"
}
trap bench_cleanup EXIT

bench_build() {
  if [ -z "${NO_BUILD:-}" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRONRUN_SANITIZE=OFF >/dev/null
    cmake --build "$build" -j2 --target cronrun cronprof >/dev/null
  fi
  if grep -q 'CRONRUN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "$(basename "$0"): $build is a sanitizer build; use a release build dir (BUILD_DIR)" >&2
    exit 1
  fi
  # CRONRUN=path measures another cronrun binary (an experiment) with the same script.
  cronrun=${CRONRUN:-$PWD/$build/runner/cronrun}
  cronprof=$PWD/$build/profiler/cronprof
  # SQLite linked as cronrun links it (the static archive), for the floor of a
  # runner that still writes its history to SQLite per run. -fno-plt as cronrun's
  # spawn.cc: the forked child binds no symbol lazily (no page faults for it).
  cc -O2 -fno-plt -Wall -Wextra -o "$work/floor" bench/floor.c "$(pkg-config --variable=libdir sqlite3)/libsqlite3.a" \
    -lm -ldl -lpthread
  cc -O2 -Wall -Wextra -o "$work/burst_helper" bench/burst_helper.c
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

bench_header() {
  echo "# $(basename "$0") on $(git rev-parse --short HEAD) ($(git log -1 --format=%s | cut -c1-60))"
  echo "# $(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), load average at start: $(loadavg)"
}

# floor_args CRONRUN-ARGS... -- COMMAND: runs cronrun twice (the first run makes
# the <job> cgroup directories, as any cron job's first run does), the second
# under strace -f -y, and sets the array `floor_args` to bench/floor's options
# for the same kernel work (bench/floor_args.py; FLOOR_HIERARCHIES="unified memory"
# keeps only those leaves, a what-if).
floor_args() {
  "$cronrun" "$@" >/dev/null 2>&1 || true
  strace -f -y -s 256 -qq -o "$work/trace" \
    -e trace=openat,mkdirat,write,writev,fdatasync,fsync,clone3,pwrite64,newfstatat,statfs,faccessat2,getdents64,wait4 "$cronrun" "$@" >/dev/null
  mapfile -t floor_args < <(python3 bench/floor_args.py "$work/trace")
  local i
  for i in "${!floor_args[@]}"; do
    case ${floor_args[$i]} in
      --history-sqlite)
        # The floor writes rows into a history cronrun created (schema, indexes).
        [ -f "$work/floor.db" ] || "$cronrun" -q --history "$work/floor.db" --no-lock --cgroup off -- /bin/true
        floor_args[$i]="--history=$work/floor.db" ;;
      JOURNAL)
        # FILE without ".journal" is the history the floor stats beside it, as cronrun does.
        touch "$work/floor-h.db"
        floor_args[$i]="$work/floor-h.db.journal" ;;
    esac
  done
  # --history=DB as two arguments
  local out=()
  for i in "${floor_args[@]}"; do
    case $i in --history=*) out+=(--history "${i#--history=}") ;; *) out+=("$i") ;; esac
  done
  floor_args=("${out[@]}")
}

# Statistics over numbers on stdin, one a line: "p50 p99 max mean n".
stats() {
  sort -g | awk '{ v[NR] = $1; s += $1 } END {
    if (NR == 0) { print "- - - - 0"; exit }
    p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
    printf "%.3f %.3f %.3f %.3f %d\n", p50, p99, v[NR], s / NR, NR }'
}

# The runs the history at $1 holds, as cronprof sees them (it reads what the
# runner wrote, folded or not): "COUNT status:n ..."; "?" if cronprof cannot say.
history_rows() {
  "$cronprof" --history "$1" export --format json 2>/dev/null | python3 -c '
import collections, json, sys
runs = json.load(sys.stdin)
c = collections.Counter(r.get("status") for r in runs)
print(len(runs), " ".join("%s:%d" % kv for kv in sorted(c.items())))' 2>/dev/null || echo "?"
}
