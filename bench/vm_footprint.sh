#!/usr/bin/env bash
# The supervisor's memory while a job runs, on Debian 12's own kernel (6.1) with pure
# cgroup v2: boots the `vm` tier's VM (tests/vm) with a release build and the one
# scenario bench/vm/90-footprint.sh, and prints its figures.
# The initramfs is a ramfs, so the binary's pages show as RssShmem there.
#
#   bench/vm_footprint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target cronrun cronrun-payload cronrun-vm-asuser >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r tests/vm "$work/vm"
rm "$work"/vm/scenarios/*.sh
cp bench/vm/90-footprint.sh "$work/vm/scenarios/"
"$work/vm/run-vm.sh" "$work/out/vm.log" "$build/runner/cronrun" "$build/tests/payload/cronrun-payload" \
  "$build/tests/vm/cronrun-vm-asuser" 2>/dev/null || { tail -n 30 "$work/out/vm.log" >&2; exit 1; }
grep '^VMTEST' "$work/out/vm.log" | sed 's/^VMTEST 90-footprint //'
