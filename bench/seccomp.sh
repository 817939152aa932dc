#!/usr/bin/env bash
# What a seccomp profile costs a job (issue 18, DESIGN §11), on this host:
#   1. per syscall: a loop of N getppid() under off / baseline / strict / learn
#      (getppid is allowed by all three profiles: the filter's full decision path);
#   2. a syscall-heavy real workload (tar of /usr/share/doc to /dev/null) under
#      each profile, side by side with no filter (aim: <= 5% under strict);
#   3. start cost per run: compiling the profile in the runner (libseccomp, export
#      to memory) and fork-to-exec with the filter installed (aim: <= 0.1 ms);
#   4. a counted violation: keyctl() denied through the listener (a round trip to
#      the supervisor) against an allowed syscall;
#   5. cronrun itself: CPU per run of `cronrun --seccomp P -- /bin/true` against off
#      (aim for the difference: <= 0.1 ms).
# CPU time of the job (user + system), best of REPS (default 5), for the loops;
# median of STARTS (default 50) runs for
# the start cost. Runs the test supervisor's `seccomp-run` from a Release build
# of its own (BUILD, default build-bench): no sanitizers in the measurements.
#   bench/seccomp.sh [N]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$src/build-bench}
n=${1:-5000000}
reps=${REPS:-5}
starts=${STARTS:-50}
violations=${VIOLATIONS:-20000}
RUNS=${RUNS:-200}

if [ -f /work/ccache-env.sh ]; then . /work/ccache-env.sh; fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target seccomp-run seccomp-probe cronrun >/dev/null
run=$build/tests/integration/seccomp-run
probe=$build/tests/integration/seccomp-probe

# best_cpu PROFILE CMD...: the smallest CPU time (user + system, µs) of $reps
# runs: on a shared host, wall time measures the neighbours more than the filter.
best_cpu() { best cpu_us "$@"; }
# best FIELD PROFILE CMD...: the smallest FIELD of $reps runs.
best() {
  local field=$1 profile=$2; shift 2
  "$run" --profile "$profile" --repeat "$reps" -- "$@" 2>/dev/null |
    sed -n "s/.* $field=\([0-9]*\) .*/\1/p" | sort -n | head -1
}
# median FIELD PROFILE CMD...: the median of FIELD over $starts runs.
median() {
  local field=$1 profile=$2; shift 2
  "$run" --profile "$profile" --cache "$cache" --repeat "$starts" -- "$@" 2>/dev/null |
    sed -n "s/.* $field=\([0-9]*\) .*/\1/p" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "host: $(uname -r), $(nproc) CPUs, libseccomp $(pkg-config --modversion libseccomp)"
echo
echo "1. per syscall: $n x getppid()"
printf '%-9s %12s %12s %12s\n' profile cpu_ms ns/syscall +ns/syscall
base=
for p in off baseline strict learn; do
  w=$(best_cpu "$p" "$probe" getppid-loop "$n")
  [ -n "$base" ] || base=$w
  awk -v p="$p" -v w="$w" -v b="$base" -v n="$n" \
    'BEGIN { printf "%-9s %12.1f %12.1f %12.1f\n", p, w / 1000, w * 1000 / n, (w - b) * 1000 / n }'
done

echo
echo "2. syscall-heavy workload: tar -cf /dev/null /usr/share/doc"
printf '%-9s %12s %10s\n' profile cpu_ms overhead
base=
for p in off baseline strict learn; do
  w=$(best_cpu "$p" /usr/bin/tar -cf /dev/null /usr/share/doc)
  [ -n "$base" ] || base=$w
  awk -v p="$p" -v w="$w" -v b="$base" 'BEGIN { printf "%-9s %12.1f %9.1f%%\n", p, w / 1000, (w - b) * 100 / b }'
done

echo
echo "3. start cost per run (/bin/true, median of $starts). resolve: a cronrun process's first (and"
echo "   only) profile resolution (baseline also builds the native syscall table); compile: libseccomp"
echo "   (a first run); load: the runner's path, the program read back from its cache; fork-exec with"
echo "   the filter installed"
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
printf '%-9s %11s %12s %9s %14s\n' profile resolve_us compile_us load_us fork-exec_us
for p in off baseline strict learn; do
  r=$("$run" --profile "$p" -- /bin/true 2>/dev/null | sed -n 's/.* resolve_us=\([0-9]*\) .*/\1/p')
  c=$(median compile_us "$p" /bin/true)
  l=$(median load_us "$p" /bin/true)
  e=$(median exec_us "$p" /bin/true)
  printf '%-9s %11s %12s %9s %14s\n' "$p" "$r" "$c" "$l" "$e"
done

echo
echo "4. a counted violation: $violations x keyctl() under baseline (EPERM via the listener)"
# Wall time here: the round trip includes the supervisor's work.
allowed=$(best wall_us baseline "$probe" getppid-loop "$violations")
denied=$(best wall_us baseline "$probe" denied-loop "$violations")
awk -v a="$allowed" -v d="$denied" -v n="$violations" \
  'BEGIN { printf "allowed %.1f ms, denied %.1f ms: %.2f us per counted violation\n", a / 1000, d / 1000, (d - a) / n }'

echo
echo "5. cronrun end to end: CPU (user + system of cronrun and /bin/true) per run, $RUNS runs each,"
echo "   best of $reps; the difference to off is what the profile costs a run"
printf '%-9s %12s %14s\n' profile us/run +us/run
for p in off baseline strict learn; do
  python3 - "$build/runner/cronrun" "$p" "$RUNS" "$reps" <<'PY'
import resource, subprocess, sys
cronrun, profile, runs, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
argv = [cronrun, "-q", "--no-history", "--no-lock", "--cgroup", "off", "--seccomp", profile, "--", "/bin/true"]
subprocess.run(argv, check=True)  # warm: the filter cache is written here
best = None
for _ in range(reps):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        subprocess.run(argv, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    us = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1e6 / runs
    best = us if best is None else min(best, us)
print(f"{profile:<9} {best:12.1f}")
PY
done | awk 'NR == 1 { base = $2 } { printf "%-9s %12.1f %14.1f\n", $1, $2, $2 - base }'
