#!/usr/bin/env bash
# README's test command: installs every dependency, builds the sanitized test build
# (ASan + UBSan, warnings as errors) and runs every test tier under CTest:
# unit, integration (root, host cgroups), vm (cgroup v2 kernel under qemu), db
# (real PostgreSQL / MariaDB / SQLite), e2e, host (the .deb installed in a Debian 12
# system with systemd and cron under qemu, tests/host/README.md; its image is
# cached in ~/.cache/cronrun-host). Then a smoke run of the fuzzers
# (tests/fuzz/README.md) in a clang build of their own, one lane of fuzzers per core
# (FUZZ_LANES); CRONRUN_FUZZ_SMOKE=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-test}

scripts/install-deps.sh all
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCRONRUN_SANITIZE=ON -DCRONRUN_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
# detect_leaks=0: the runner forks/execs and exits through paths that leave
# intentional process-lifetime allocations; ASan's other checks stay on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@")

if [ "${CRONRUN_FUZZ_SMOKE:-1}" != 0 ]; then
  fuzz_build=${FUZZ_BUILD_DIR:-build-fuzz}
  CC=clang-16 CXX=clang++-16 cmake -S . -B "$fuzz_build" -DCRONRUN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$fuzz_build" -j"$(nproc)" --target fuzzers
  # Saved inputs replayed, then each fuzzer for FUZZ_SECONDS. A libFuzzer run is
  # one process on one core, so the harnesses are dealt into one lane per core
  # (FUZZ_LANES): each still fuzzes its full FUZZ_SECONDS, and the phase takes
  # half the wall time on two cores (14 x 20 s: 4.7 min in one lane); 20 s keeps
  # the whole CI run near 30 min.
  mapfile -t fuzzers < <(find "$fuzz_build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x -printf '%f\n' |
                         sed 's/^fuzz_//' | sort)
  ((${#fuzzers[@]})) || { echo "test.sh: no fuzzers in $fuzz_build/tests/fuzz" >&2; exit 1; }
  lanes=${FUZZ_LANES:-$(nproc)}
  lane_dir=$(mktemp -d "${TMPDIR:-/tmp}/cronrun-fuzz-lanes.XXXXXX")
  pids=()
  for ((l = 0; l < lanes; l++)); do
    mine=()
    for ((i = l; i < ${#fuzzers[@]}; i += lanes)); do mine+=("${fuzzers[$i]}"); done
    ((${#mine[@]})) || continue
    tests/fuzz/run.sh --build "$fuzz_build" --seconds "${FUZZ_SECONDS:-20}" "${mine[@]}" >"$lane_dir/$l.out" 2>&1 &
    pids+=($!)
  done
  fuzz_status=0
  for pid in "${pids[@]}"; do wait "$pid" || fuzz_status=1; done
  cat "$lane_dir"/*.out
  rm -rf "$lane_dir"
  exit $fuzz_status
fi
