#!/bin/sh
# Prints the path of a Debian 6.1 kernel image (bzImage) for the cgroup v2 VM tier,
# fetching it on first use.
#
# The kernel is Debian's own linux-image-6.1.0-NN-amd64 (newest non-rt, non-cloud
# ABI that apt-cache knows), fetched with `apt-get download` and unpacked with
# dpkg-deb (never installed). Only boot/vmlinuz-* and boot/config-* are kept, in
#   ${CRONRUN_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronrun-vm}/<package>/
# outside the repository, and re-used while present (CRONRUN_VM_REFRESH=1 asks apt
# again). CRONRUN_VM_KERNEL=/path/to/bzImage skips all of this.
#
# Everything the tier needs is built in (8250 serial console, cgroup v2 with
# memory/cpu/io/pids, PSI, devtmpfs, tmpfs, initramfs); check-config below fails
# loudly if a future package changes that, rather than booting into a confusing hang.
set -eu

say() { echo "fetch-kernel: $*" >&2; }

if [ -n "${CRONRUN_VM_KERNEL:-}" ]; then
  [ -r "$CRONRUN_VM_KERNEL" ] || { say "CRONRUN_VM_KERNEL=$CRONRUN_VM_KERNEL is not readable"; exit 1; }
  echo "$CRONRUN_VM_KERNEL"
  exit 0
fi

cache=${CRONRUN_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronrun-vm}
mkdir -p "$cache"

# Built-ins the tier relies on; a module would need loading from the initramfs.
check_config() {
  missing=
  for opt in SERIAL_8250 SERIAL_8250_CONSOLE BLK_DEV_INITRD DEVTMPFS TMPFS CGROUPS MEMCG \
             CGROUP_PIDS CGROUP_SCHED CFS_BANDWIDTH BLK_CGROUP PSI ACPI; do
    grep -q "^CONFIG_$opt=y" "$1" || missing="$missing $opt"
  done
  if [ -n "$missing" ]; then
    say "$1: not built in:$missing (the VM init loads no modules)"
    return 1
  fi
}

newest_cached() {
  ls -d "$cache"/linux-image-6.1.0-*-amd64 2>/dev/null | sort -V | tail -n 1
}

pick_package() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
    sed -n 's/^\(linux-image-6\.1\.0-[0-9]*-amd64\) .*/\1/p' | sort -V | tail -n 1
}

fetch() {
  pkg=$(pick_package)
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    say "apt-cache knows no 6.1 kernel yet; apt-get update"
    apt-get update -qq >&2 || true
    pkg=$(pick_package)
  fi
  if [ -z "$pkg" ]; then
    say "apt-cache knows no linux-image-6.1.0-NN-amd64 (needs Debian 12 apt sources; elsewhere set CRONRUN_VM_KERNEL=/path/to/bzImage)"
    return 1
  fi
  [ -r "$cache/$pkg/vmlinuz" ] && return 0
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  chmod 755 "$tmp"  # apt-get download hands the file to the _apt user
  say "downloading $pkg into $cache"
  if ! (cd "$tmp" && apt-get download -q "$pkg" >&2); then
    rm -rf "$tmp"
    say "apt-get download $pkg failed"
    return 1
  fi
  # Only ./boot is needed; skipping the ~400 MB of modules keeps this fast.
  dpkg-deb --fsys-tarfile "$tmp"/"$pkg"_*.deb | tar -x -C "$tmp" ./boot
  mkdir -p "$tmp/out"
  mv "$tmp"/boot/vmlinuz-* "$tmp/out/vmlinuz"
  mv "$tmp"/boot/config-* "$tmp/out/config"
  check_config "$tmp/out/config" || { rm -rf "$tmp"; return 1; }
  rm -rf "$cache/$pkg"
  mv "$tmp/out" "$cache/$pkg"
  rm -rf "$tmp"
}

# Two build trees may run the tier at once: one fetch at a time.
exec 9>"$cache/.lock"
command -v flock >/dev/null 2>&1 && flock 9

dir=$(newest_cached)
if [ -z "$dir" ] || [ "${CRONRUN_VM_REFRESH:-0}" = 1 ]; then
  fetch || { [ -n "$dir" ] && say "keeping cached $dir"; [ -n "$dir" ] || exit 1; }
  dir=$(newest_cached)
fi
check_config "$dir/config"
echo "$dir/vmlinuz"
