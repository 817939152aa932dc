#!/bin/sh
# Prints the directory of a cached Debian 12 image for the host tier, building it
# on first use:
#
#   mkimage.sh [PACKAGE | FILE.deb]...
#
# The directory holds root.img (raw ext4, the whole system), vmlinuz and
# initrd.img (the image's own /boot files, for qemu -kernel/-initrd) and
# packages.txt (what was installed, with versions).
#
# The system is made by mmdebstrap from this machine's own apt sources (the files
# apt reads: /etc/apt/sources.list and sources.list.d/*.list|*.sources, as they
# are), variant "essential" plus what a real Debian host with cron needs:
# systemd-sysv, udev, dbus (and dbus-user-session, which the package recommends:
# without it a lingering user has no /run/user/UID/bus), cron, linux-image-amd64,
# passwd, kmod, the extra PACKAGEs, and the Depends and Pre-Depends of each
# FILE.deb (first alternative, no version), so that `dpkg -i FILE.deb` finds them
# in the guest, which has no network. Recommends are not installed.
#
# Two ordinary users: `linger` (uid 1001, /var/lib/systemd/linger/linger, so
# logind starts its user manager at boot) and `nolinger` (uid 1002). Units a
# test box does not need are masked so that a TCG boot stays short; the only
# added unit is hosttest.service (guest/), which runs what the host put
# on the 9p share and powers off.
#
# Cache: ${CRONRUN_HOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronrun-host}/img-<hash>,
# outside the repository. <hash> covers this script, guest/ and the package list:
# changing the recipe builds a new image (and removes the older ones); anything
# else re-uses it. The image is never written by a boot (run-host.sh boots it
# with a throwaway overlay). CRONRUN_HOST_REBUILD=1 forces a rebuild.
#
# Needs root (mmdebstrap --mode=root, chroot, mke2fs -d keeping ownership).
set -eu

say() { echo "mkimage: $*" >&2; }
here=$(cd "$(dirname "$0")" && pwd)

[ "$(id -u)" = 0 ] || { say "needs root (mmdebstrap --mode=root and file ownership in the image)"; exit 1; }
for tool in mmdebstrap mke2fs sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || {
    say "$tool not found (scripts/install-deps.sh all installs the tier's packages)"
    exit 1
  }
done

base_packages="systemd-sysv udev dbus dbus-user-session cron linux-image-amd64 passwd kmod"
extra=
for arg in "$@"; do
  case $arg in
    *.deb)
      [ -r "$arg" ] || { say "$arg: not readable"; exit 1; }
      extra="$extra $(dpkg-deb -f "$arg" Pre-Depends Depends | sed 's/^[A-Za-z-]*: //' |
                      tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g')" ;;
    *) extra="$extra $arg" ;;
  esac
done
# shellcheck disable=SC2086
packages=$(printf '%s\n' $base_packages $extra | grep -v '^$' | sort -u | tr '\n' ' ')

cache=${CRONRUN_HOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronrun-host}
mkdir -p "$cache"
hash=$( { cat "$0"; find "$here/guest" -type f | sort | xargs cat; echo "$packages"; } |
        sha256sum | cut -c1-16)
dir=$cache/img-$hash

exec 9>"$cache/.lock"
flock 9
if [ -e "$dir/done" ] && [ "${CRONRUN_HOST_REBUILD:-0}" != 1 ]; then
  echo "$dir"
  exit 0
fi

# The suite comes from the sources themselves; the host's codename names the
# release whose Essential set is meant.
sources=
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && [ -s "$f" ] && sources="$sources $f"
done
[ -n "$sources" ] || { say "no apt sources on this machine (/etc/apt/sources.list.d/ is empty)"; exit 1; }
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || { say "/etc/os-release names no VERSION_CODENAME"; exit 1; }

start=$(date +%s)
# The downloaded .debs are kept for the next build (a changed recipe, a
# rebuild): apt takes a cached file only when its checksum matches the index.
mkdir -p "$cache/archives"
tmp=$(mktemp -d "$cache/.build.XXXXXX")
# A killed mmdebstrap may leave /proc, /sys or /dev mounted inside the new root:
# unmount before removing, and never cross into another file system.
cleanup() {
  awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
say "building $dir ($suite from$sources: $packages)"

# Customisation, inside the new root (mmdebstrap passes it as $1).
cat > "$tmp/customize.sh" <<'EOF'
#!/bin/sh
set -eu
root=$1 guest=$2
chroot "$root" useradd --create-home --uid 1001 --user-group --shell /bin/sh linger
chroot "$root" useradd --create-home --uid 1002 --user-group --shell /bin/sh nolinger
mkdir -p "$root/var/lib/systemd/linger"
touch "$root/var/lib/systemd/linger/linger"
echo hosttest > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 hosttest\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 rw,noatime,errors=remount-ro 0 1\n' > "$root/etc/fstab"
passwd -R "$root" -d root >/dev/null
# Nothing on tty1 or the serial line asks for a login: the test unit reports.
for unit in getty@.service serial-getty@.service getty.target \
            systemd-timesyncd.service e2scrub_all.timer e2scrub_reap.service fstrim.timer \
            apt-daily.timer apt-daily-upgrade.timer man-db.timer dpkg-db-backup.timer \
            systemd-networkd.service systemd-networkd-wait-online.service \
            systemd-pstore.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
            systemd-hwdb-update.service ldconfig.service systemd-firstboot.service \
            systemd-random-seed.service modprobe@.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
install -m 0755 "$guest/hosttest-run" "$root/usr/local/sbin/hosttest-run"
install -m 0644 "$guest/hosttest.service" "$root/etc/systemd/system/hosttest.service"
ln -sf /etc/systemd/system/hosttest.service \
  "$root/etc/systemd/system/multi-user.target.wants/hosttest.service"
# A fixed machine-id: every boot is the same machine, and no first-boot setup runs.
echo 0123456789abcdef0123456789abcdef > "$root/etc/machine-id"
# The path-excludes above only keep the image small: the package under test
# installs its man pages and docs as on any host.
rm -f "$root/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' > "$root/packages.txt"
EOF
chmod 755 "$tmp/customize.sh"

# Before the kernel is installed: its initramfs gets only what this machine's
# disk needs (virtio PCI and block, ext4) instead of every storage driver, which
# makes it smaller to build and faster to unpack under TCG.
cat > "$tmp/essential.sh" <<'EOF'
#!/bin/sh
set -eu
root=$1
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
echo MODULES=list > "$root/etc/initramfs-tools/conf.d/hosttest"
printf 'virtio_pci\nvirtio_blk\next4\n' > "$root/usr/share/initramfs-tools/modules.d/hosttest"
EOF
chmod 755 "$tmp/essential.sh"

# shellcheck disable=SC2086
mmdebstrap --mode=root --variant=essential --quiet \
  --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --include="$(echo $packages | tr ' ' ',')" \
  --skip=essential/unlink \
  --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
  --setup-hook="sync-in $cache/archives /var/cache/apt/archives" \
  --essential-hook="$tmp/essential.sh \"\$1\"" \
  --customize-hook="$tmp/customize.sh \"\$1\" $here/guest" \
  --customize-hook="sync-out /var/cache/apt/archives $cache/archives" \
  "$suite" "$tmp/root" $sources >&2

mkdir -p "$tmp/out"
kernel=$(ls "$tmp"/root/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$tmp"/root/boot/initrd.img-* | sort -V | tail -n 1)
[ -r "$kernel" ] && [ -r "$initrd" ] || { say "no /boot/vmlinuz-* or initrd.img-* in the image"; exit 1; }
cp "$kernel" "$tmp/out/vmlinuz"
cp "$initrd" "$tmp/out/initrd.img"
mv "$tmp/root/packages.txt" "$tmp/out/packages.txt"
# Room for the journal, the packages under test and their history.
used_mib=$(du -sm "$tmp/root" | cut -f1)
mke2fs -q -t ext4 -L hosttest -d "$tmp/root" \
  "$tmp/out/root.img" "$((used_mib + 768))M" >&2
rm -rf "$tmp/root"
echo "$packages" > "$tmp/out/recipe.txt"
date -u +%FT%TZ > "$tmp/out/done"

for old in "$cache"/img-*; do
  [ "$old" != "$dir" ] && [ -d "$old" ] && rm -rf "$old"
done
rm -rf "$dir"
mv "$tmp/out" "$dir"
say "built $dir in $(($(date +%s) - start))s ($(du -sm "$dir/root.img" | cut -f1) MiB used)"
echo "$dir"
