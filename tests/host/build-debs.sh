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
# ${CRONRUN_HOST_CACHE:-~/.cache/cronrun-host}/deb (through ccache when it is
# installed, hitting across runs and cache directories: see below) and the
# results are copied to OUTDIR. CRONRUN_HOST_DEB=PATH.deb
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
  # The package as debian/rules builds it, without debug information: -g0 after
  # dpkg-buildflags' -g, and no -dbgsym package. The code compiled is the same
  # (-g does not change it) and the tier installs no -dbgsym, but the compiler
  # spends about a quarter less CPU (39.5 -> 29.0 s on run.cc, cli.cc and
  # run_record.cc) and dh_dwz/dh_strip have no debug sections to rewrite.
  # A caller's DEB_BUILD_OPTIONS / DEB_*FLAGS_APPEND win.
  export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-"parallel=$(nproc) noautodbgsym"}
  export DEB_CFLAGS_APPEND=${DEB_CFLAGS_APPEND:--g0} DEB_CXXFLAGS_APPEND=${DEB_CXXFLAGS_APPEND:--g0}
  # check.sh compiles through ccache when it is installed, but debhelper (compat
  # 13) points HOME into the source copy and clears XDG_CACHE_HOME, so ccache's
  # default directory was a fresh one inside the build, removed with it: the
  # package was compiled from nothing every time. Name the caller's cache
  # directory, and make paths relative to the source copy so that a build under
  # another CRONRUN_HOST_CACHE hits the same entries.
  if command -v ccache >/dev/null 2>&1 && [ -z "${CCACHE_DISABLE:-}" ]; then
    ccache_dir=${CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null || true)}
    if [ -n "$ccache_dir" ]; then
      export CCACHE_DIR="$ccache_dir" CCACHE_BASEDIR="$build/src"
    else
      say "ccache does not name its cache directory (ccache -k cache_dir); the package is compiled without a cache"
    fi
  fi
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
