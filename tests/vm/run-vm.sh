#!/bin/sh
# Boots the cgroup v2 test VM once and writes its serial console to LOG.
#
#   run-vm.sh LOG [BINARY...]
#
# Fetches (or re-uses) the Debian kernel, builds the initramfs from this source
# directory and the given binaries, and runs qemu under TCG with a host-side
# timeout. Exits 0 when the VM ran every scenario (VMDONE seen), whatever their
# results: the per-scenario tests judge those. Exits non-zero when the VM could
# not be had or did not finish, so the tier fails instead of passing silently.
#
# Environment: CRONRUN_VM_TIMEOUT (host-side limit, s, default 240),
# CRONRUN_VM_ONLY (comma list of scenarios), CRONRUN_VM_ACCEL (default tcg),
# CRONRUN_VM_KERNEL / CRONRUN_VM_CACHE (see fetch-kernel.sh).
set -eu

say() { echo "run-vm: $*" >&2; }
[ $# -ge 1 ] || { say "usage: run-vm.sh LOG [BINARY...]"; exit 2; }
log=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
rm -f "$log"

qemu=${CRONRUN_VM_QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null 2>&1 || {
  say "$qemu not found (Debian: qemu-system-x86; scripts/install-deps.sh installs it)"
  exit 1
}
kernel=$("$here/fetch-kernel.sh") || { say "no kernel for the VM"; exit 1; }

work=$(dirname "$log")
mkdir -p "$work"
initrd="$work/vm-initramfs.cpio"
"$here/mkinitramfs.sh" "$initrd" "$here" "$@"

append="console=ttyS0 panic=-1 oops=panic quiet loglevel=1 random.trust_cpu=on"
append="$append rdinit=/init init_on_free=0"
[ -n "${CRONRUN_VM_ONLY:-}" ] && append="$append vmtest.only=$CRONRUN_VM_ONLY"
limit=${CRONRUN_VM_TIMEOUT:-240}

# 2.5 GiB: the initramfs lives in RAM, and 60-many runs 20 sanitized cronruns at
# once; a debug ASan cronrun's anonymous memory is its relocated data and shadow
# (about 56 MiB each since the job model and journal; a release build's is under
# 1 MiB), and 1.5 GiB ran out (the OOM killer took runs of 60-many).
mem=${CRONRUN_VM_MEM:-2560}
say "booting $kernel under ${CRONRUN_VM_ACCEL:-tcg} (limit ${limit}s), console in $log"
start=$(date +%s)
set +e
timeout -k 5 "$limit" "$qemu" -accel "${CRONRUN_VM_ACCEL:-tcg}" -cpu max -smp 2 -m "$mem" \
  -nographic -no-reboot -nic none \
  -kernel "$kernel" -initrd "$initrd" -append "$append" \
  < /dev/null > "$log.tmp" 2>&1
qrc=$?
set -e
tr -d '\r' < "$log.tmp" > "$log"
rm -f "$log.tmp"
elapsed=$(($(date +%s) - start))

grep '^VMINFO' "$log" >&2 || true
grep '^VMTEST' "$log" >&2 || true
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  say "the VM did not power off within ${limit}s (killed); console tail:"
  tail -n 30 "$log" >&2
  exit 1
fi
if ! grep -q '^VMDONE' "$log"; then
  say "the VM stopped (qemu exit $qrc) before running every scenario; console tail:"
  tail -n 30 "$log" >&2
  exit 1
fi
say "VM run took ${elapsed}s (qemu exit $qrc)"
