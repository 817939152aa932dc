#!/bin/sh
# Builds the VM tier's initramfs (an uncompressed newc cpio: nothing to inflate
# under TCG).
#
#   mkinitramfs.sh OUT.cpio VM_SOURCE_DIR [BINARY...]
#
# Contents: busybox-static with a symlink per applet, /init and the scenarios from
# VM_SOURCE_DIR, each BINARY in /usr/local/bin under its own name together with
# the shared libraries ldd names for it (the loader included; a sanitized build
# brings libasan/libubsan along the same way), and an /etc/passwd + /etc/group
# with root and an ordinary user 1000. Binaries are copied with debug info
# stripped: they only need to run, and the archive stays small.
set -eu

say() { echo "mkinitramfs: $*" >&2; }
[ $# -ge 2 ] || { say "usage: mkinitramfs.sh OUT.cpio VM_SOURCE_DIR [BINARY...]"; exit 2; }
out=$1 src=$2
shift 2

busybox=${CRONRUN_VM_BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || { say "busybox not found (Debian: busybox-static)"; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
  say "$busybox is dynamically linked; the initramfs needs busybox-static"
  exit 1
fi
command -v cpio >/dev/null || { say "cpio not found"; exit 1; }

umask 022
root=$(mktemp -d "${TMPDIR:-/tmp}/cronrun-initramfs.XXXXXX")
chmod 755 "$root"  # becomes / in the VM: uid 1000 must traverse it
trap 'rm -rf "$root"' EXIT
for d in bin sbin etc proc sys dev tmp run root home/user usr/bin usr/sbin usr/local/bin \
         lib lib64 vmtest/scenarios; do
  mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# Libraries at the paths ldd resolves them to, the loader at its absolute path.
copy_libs() {
  ldd "$1" 2>/dev/null | awk '
    $2 == "=>" && $3 ~ /^\// { print $3 }
    $1 ~ /^\// { print $1 }' | while read -r lib; do
      if [ ! -e "$root$lib" ]; then
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
      fi
    done
}

for bin in "$@"; do
  [ -x "$bin" ] || { say "$bin: not an executable"; exit 1; }
  dest="$root/usr/local/bin/$(basename "$bin")"
  cp -L "$bin" "$dest"
  command -v strip >/dev/null && strip --strip-debug "$dest" 2>/dev/null || true
  copy_libs "$bin"
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
user:x:1000:
nogroup:x:65534:
GROUP
echo 'root:*:19000:0:99999:7:::' > "$root/etc/shadow"
printf 'passwd: files\ngroup: files\nhosts: files\n' > "$root/etc/nsswitch.conf"
echo 'cronrun-vm' > "$root/etc/hostname"
printf '127.0.0.1 localhost cronrun-vm\n' > "$root/etc/hosts"

cp "$src/init" "$root/init"
chmod 755 "$root/init"
cp "$src/lib.sh" "$src/user-in.sh" "$root/vmtest/"
cp "$src"/scenarios/*.sh "$root/vmtest/scenarios/"

# Owners in the archive are taken from the files; as non-root everything would be
# the builder's, so force root:root except the user's home (fixed up by /init).
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
say "wrote $out ($(du -k "$out" | cut -f1) KiB)"
