#!/usr/bin/env bash
# README's test command: installs every dependency, builds the sanitized test build
# (ASan + UBSan, warnings as errors) and runs every test tier under CTest:
# unit, integration (root, host cgroups), vm (cgroup v2 kernel under qemu), db
# (real PostgreSQL / MariaDB / SQLite), e2e, host (the .deb installed in a Debian 12
# system with systemd and cron under qemu, tests/host/README.md; its image is
# cached in ~/.cache/cronrun-host). Then a smoke run of the fuzzers
# (tests/fuzz/README.md) in a clang build of their own; CRONRUN_FUZZ_SMOKE=0 skips it.
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
  # Saved inputs replayed, then each fuzzer for FUZZ_SECONDS (about 5 minutes in all).
  tests/fuzz/run.sh --build "$fuzz_build" --seconds "${FUZZ_SECONDS:-30}"
fi
