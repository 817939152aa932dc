#!/bin/sh
# Boots the host tier's Debian 12 image (systemd as PID 1) under qemu, runs one
# script in it as root, and brings back its output and exit status.
#
#   run-host.sh --script FILE [--deb PKG.deb]... [--file PATH]... [--package NAME]...
#               [--out DIR] [--timeout SECONDS]
#
#   --script FILE   run in the guest by /bin/sh as root, from /root, after boot
#                   (multi-user.target reached, cron running, the lingering
#                   user's manager started by logind)
#   --deb PKG.deb   installed with `dpkg -i` before the script, in the given order;
#                   its Depends are put in the image (mkimage.sh)
#   --file PATH     copied to /host/files/<basename> in the guest (a directory whole)
#   --package NAME  one more Debian package in the image; a FILE.deb puts its
#                   Depends there (for a .deb the script installs itself)
#   --out DIR       keep the run here: console.log (serial), entry.log (the
#                   script's output), and whatever the script wrote to
#                   $HOST_OUT. Emptied first (it must be empty or an earlier
#                   --out). Default: a temp dir, removed afterwards.
#   --timeout S     the script's limit inside the guest (default 300)
#
# In the guest: $HOST_FILES, $HOST_OUT (written back to --out), $HOST_LIB
# (tests/host/lib.sh, helpers for scenarios). The guest has no network.
#
# Exit status: the script's own. 253: a dpkg -i failed. 252: the script hit
# --timeout. 254: the guest never reported (no boot, no share, killed after the
# host-side limit; console tail on stderr). 2: usage.
#
# The image is mkimage.sh's, cached; each boot writes to a throwaway overlay
# (qemu snapshot=on), so runs never see each other's changes. Environment:
# CRONRUN_HOST_ACCEL (default tcg), CRONRUN_HOST_MEM (MiB, default 1536),
# CRONRUN_HOST_SMP (default 2), CRONRUN_HOST_BOOT_LIMIT (seconds allowed for
# boot and poweroff on top of --timeout, default 300), CRONRUN_HOST_CACHE (see
# mkimage.sh), CRONRUN_HOST_IMAGE (an image directory to boot instead of
# mkimage.sh's, for debugging), CRONRUN_HOST_ONLY (a,b: written to $HOST_FILES/only, which
# scenarios.sh reads).
set -eu

say() { echo "run-host: $*" >&2; }
usage() { say "usage: run-host.sh --script FILE [--deb PKG.deb]... [--file PATH]... [--package NAME]... [--out DIR] [--timeout S]"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)

script='' out='' limit=300 debs='' files='' extra=''
nl='
'
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --script) script=$2 ;;
    --deb) debs="$debs$2$nl" ;;
    --file) files="$files$2$nl" ;;
    --package) extra="$extra$2$nl" ;;
    --out) out=$2 ;;
    --timeout) limit=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[ -n "$script" ] || usage
[ -r "$script" ] || { say "--script $script: not readable"; exit 2; }
case $limit in '' | *[!0-9]*) say "--timeout $limit: expected whole seconds"; exit 2 ;; esac

qemu=${CRONRUN_HOST_QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null 2>&1 || {
  say "$qemu not found (Debian: qemu-system-x86; scripts/install-deps.sh all installs it)"
  exit 254
}

# What the .debs need is put in the image (mkimage.sh reads their Depends).
IFS=$nl
for deb in $debs; do
  [ -r "$deb" ] || { say "--deb $deb: not readable"; exit 2; }
done
# shellcheck disable=SC2086
if [ -n "${CRONRUN_HOST_IMAGE:-}" ]; then
  image=$CRONRUN_HOST_IMAGE
else
  image=$("$here/mkimage.sh" $extra $debs) || { say "no image (mkimage.sh failed)"; exit 254; }
fi
unset IFS

keep=1
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/cronrun-host.XXXXXX")
  keep=0
fi
# A previous run's results must never pass for this one's: DIR is emptied, but
# only when run-host.sh made it (its marker) or it is empty.
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
  [ -f "$out/.run-host" ] || { say "--out $out: not empty and not a run-host.sh directory; refusing to empty it"; exit 2; }
  find "$out" -mindepth 1 -delete
fi
mkdir -p "$out"
: > "$out/.run-host"
share=$out/share
mkdir -p "$share/debs" "$share/files" "$share/out"
cp "$here/entry.sh" "$share/entry.sh"
cp "$here/lib.sh" "$share/lib.sh"
cp "$script" "$share/script"
echo "$limit" > "$share/timeout"
: > "$share/debs.list"
IFS=$nl
for deb in $debs; do
  cp "$deb" "$share/debs/"
  basename "$deb" >> "$share/debs.list"
done
for f in $files; do
  [ -e "$f" ] || { say "--file $f: does not exist"; exit 2; }
  cp -r "$f" "$share/files/"
done
unset IFS
# scenarios.sh runs only these (comma list of scenario names).
[ -n "${CRONRUN_HOST_ONLY:-}" ] && echo "$CRONRUN_HOST_ONLY" | tr ',' '\n' > "$share/files/only"

append="root=/dev/vda rootfstype=ext4 rw console=ttyS0 quiet loglevel=3 panic=-1"
append="$append systemd.show_status=0 random.trust_cpu=on net.ifnames=0 mitigations=off"
host_limit=$((limit + ${CRONRUN_HOST_BOOT_LIMIT:-300}))
say "booting $image under ${CRONRUN_HOST_ACCEL:-tcg} (limit ${host_limit}s), console in $out/console.log"
start=$(date +%s)
set +e
timeout -k 5 "$host_limit" "$qemu" -accel "${CRONRUN_HOST_ACCEL:-tcg}" -cpu max \
  -smp "${CRONRUN_HOST_SMP:-2}" -m "${CRONRUN_HOST_MEM:-1536}" \
  -nographic -no-reboot -nic none \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$append" \
  -drive "file=$image/root.img,format=raw,if=virtio,snapshot=on" \
  -fsdev "local,id=share,path=$share,security_model=none" \
  -device virtio-9p-pci,fsdev=share,mount_tag=cronrunhost \
  < /dev/null > "$out/console.raw" 2>&1
qrc=$?
set -e
tr -d '\r' < "$out/console.raw" > "$out/console.log"
rm -f "$out/console.raw"
elapsed=$(($(date +%s) - start))

[ -f "$share/out/entry.log" ] && cp "$share/out/entry.log" "$out/entry.log"
rc=254
if [ -f "$share/out/rc" ]; then
  rc=$(cat "$share/out/rc")
  cat "$out/entry.log"
  say "guest ran the script: exit $rc; qemu ran ${elapsed}s ($(grep -o 'HOSTUP uptime_s=[0-9.]*' "$out/console.log" | sed 's/.*=/boot /')s)"
else
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    say "the guest did not power off within ${host_limit}s (killed)"
  else
    say "the guest stopped (qemu exit $qrc) without reporting an exit status"
  fi
  [ -f "$out/entry.log" ] && { say "script output so far:"; cat "$out/entry.log" >&2; }
  say "console tail:"
  tail -n 40 "$out/console.log" >&2
fi
# What the script left in $HOST_OUT comes back beside the logs.
for f in "$share/out"/*; do
  [ -e "$f" ] || continue
  case ${f##*/} in entry.log | rc) ;; *) cp -r "$f" "$out/" ;; esac
done
if [ "$keep" = 0 ]; then
  rm -rf "$out"
else
  rm -rf "$share"
fi
exit "$rc"
