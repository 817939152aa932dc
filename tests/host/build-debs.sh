#!/bin/sh
# Builds the two packages the host tier installs, into OUTDIR:
#   OUTDIR/new.deb    this checkout's package (tests/package/check.sh, lintian
#                     left to the host.lintian test)
#   OUTDIR/prev.deb   the same package with a lower version (<version>~prev), so
#                     that installing new.deb over it is a real dpkg upgrade:
#                     prerm/postrm of the old, postinst configure <old-version>
#   OUTDIR/versions   "prev <version>" and "new <version>"
#   OUTDIR/cronrun_<version>_<arch>.changes (and the files it lists), for lintian
#
# The previous build is repacked rather than compiled a second time: what an
# upgrade exercises (maintainer scripts, conffiles, files replaced, state kept)
# is the same, and a second Release build would cost the tier minutes on two
# cores. check.sh needs its OUTDIR outside the repository: the build happens in
# ${CRONRUN_HOST_CACHE:-~/.cache/cronrun-host}/deb (a fixed path, so ccache hits
# across runs) and the results are copied to OUTDIR. CRONRUN_HOST_DEB=PATH.deb
# takes a package check.sh built before instead (development; not in CI).
set -eu
say() { echo "build-debs: $*" >&2; }
[ $# = 1 ] || { say "usage: build-debs.sh OUTDIR"; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ -f "$repo/debian/control" ] || { say "$repo has no debian/ (the package is built from it)"; exit 1; }
[ "$(id -u)" = 0 ] || command -v fakeroot >/dev/null 2>&1 || { say "needs root or fakeroot (dpkg-deb -b)"; exit 1; }

cache=${CRONRUN_HOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronrun-host}
mkdir -p "$cache" "$out"
exec 9>"$cache/.deb-lock"
flock 9
start=$(date +%s)
if [ -n "${CRONRUN_HOST_DEB:-}" ]; then
  # A package built before (by check.sh): its directory holds the .changes too.
  new=$CRONRUN_HOST_DEB
  [ -r "$new" ] || { say "CRONRUN_HOST_DEB=$new is not readable"; exit 1; }
  build=$(cd "$(dirname "$new")" && pwd)
  say "using $new (CRONRUN_HOST_DEB), not building"
else
  build=$cache/deb
  rm -rf "$build"
  new=$("$repo/tests/package/check.sh" "$build" --no-lintian | tail -n 1)
  [ -r "$new" ] || { say "check.sh printed no .deb"; exit 1; }
  say "built $(basename "$new") in $(($(date +%s) - start))s"
fi

rm -rf "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out/prev"
cp "$build"/*.deb "$out/"
cp "$build"/*.changes "$build"/*.buildinfo "$out/" 2>/dev/null || true
cp "$new" "$out/new.deb"
version=$(dpkg-deb -f "$new" Version)
prev=$version~prev

# dpkg-deb -R/-b keep owners and modes; as non-root, fakeroot supplies them.
fr=
[ "$(id -u)" = 0 ] || fr=fakeroot
$fr sh -c '
  set -e
  dpkg-deb -R "$1" "$2/prev"
  sed -i "s/^Version: .*/Version: $3/" "$2/prev/DEBIAN/control"
  dpkg-deb -b "$2/prev" "$2/prev.deb" >/dev/null
' sh "$new" "$out" "$prev"
rm -rf "$out/prev"
printf 'prev %s\nnew %s\n' "$prev" "$version" > "$out/versions"
say "prev.deb $prev, new.deb $version in $out"
