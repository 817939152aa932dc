#!/usr/bin/env bash
# Builds the Debian package of this checkout and checks it with lintian.
#
#   tests/package/check.sh OUTDIR [--version VERSION] [--no-lintian]
#
# OUTDIR receives cronrun_<version>_<arch>.deb, cronrun-dbgsym_<version>_<arch>.deb,
# the .buildinfo and .changes, and lintian.txt. The last line on stdout is the
# absolute path of the cronrun .deb; everything else goes to stderr and
# OUTDIR/build.log.
#
# The checkout's files (tracked, plus untracked ones .gitignore does not hide, so
# uncommitted work is packaged too) are copied to OUTDIR/src/cronrun-<version>
# and dpkg-buildpackage -b -us -uc runs there: the repository never sees a build
# output. The copy's path is fixed per OUTDIR, so ccache (used when installed
# and CCACHE_DISABLE is unset) hits across builds.
#
# --version VERSION adds a changelog entry for VERSION to the copy only: the
# host tier builds a second, newer package from the same tree to test an
# upgrade over the first. --no-lintian skips lintian. Exit status: 0 when the
# package built and lintian reported no error or warning; 1 otherwise; 2 usage.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--version VERSION] [--no-lintian]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1
shift
version=
run_lintian=1
while [ $# -gt 0 ]; do
  case $1 in
    --version) [ $# -ge 2 ] || usage; version=$2; shift 2 ;;
    --no-lintian) run_lintian=0; shift ;;
    *) usage ;;
  esac
done

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
mkdir -p "$out"
out=$(cd "$out" && pwd)
case "$out/" in
  "$repo"/*) echo "check.sh: OUTDIR $out is inside the repository $repo; pick one outside it" >&2; exit 2 ;;
esac
log=$out/build.log
: >"$log"

upstream=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
version=${version:-$upstream}
src=$out/src/cronrun-$version
rm -rf "$out/src"
mkdir -p "$src"
# Tracked and untracked-but-not-ignored files, as they are in the work tree.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
   tar --null -T - -cf -) | tar -C "$src" -xf -

if [ "$version" != "$upstream" ]; then
  entry=$(mktemp)
  {
    echo "cronrun ($version) unstable; urgency=medium"
    echo
    echo "  * Test build of version $version (tests/package/check.sh --version)."
    echo
    echo " -- $(dpkg-parsechangelog -l "$repo/debian/changelog" -S Maintainer)  $(date -R)"
    echo
    cat "$src/debian/changelog"
  } >"$entry"
  mv "$entry" "$src/debian/changelog"
fi

if command -v ccache >/dev/null && [ -z "${CCACHE_DISABLE:-}" ]; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}"

echo "check.sh: building cronrun $version in $src (log: $log)" >&2
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >>"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "check.sh: dpkg-buildpackage failed (full log: $log)" >&2
  exit 1
fi

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
changes=$out/src/cronrun_${version}_${arch}.changes
for f in $(sed -n '/^Files:/,/^[^ ]/{/^ /s/.* //p}' "$changes") "$(basename "$changes")"; do
  mv -f "$out/src/$f" "$out/"
done
deb=$out/cronrun_${version}_${arch}.deb
rm -rf "$src"

status=0
# The shipped runner's run path sits together ahead of .text (runner/hot-text.ld,
# bench/text_order.sh): the order file was applied and still names the code a run
# executes (symbols from the -dbgsym package; the binary itself is stripped).
elf=$(mktemp -d)
dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$elf" ./usr/bin/cronrun
dbgsym=$out/cronrun-dbgsym_${version}_${arch}.deb
[ -f "$dbgsym" ] && dpkg-deb --fsys-tarfile "$dbgsym" | tar -xf - -C "$elf" ./usr/lib/debug
read -r hot_start hot_size < <(readelf -SW "$elf/usr/bin/cronrun" |
  awk '{ for (i = 1; i <= NF; i++) if ($i == ".text.cronrun_run") print $(i + 2), $(i + 4) }') || true
build_id=$(readelf -n "$elf/usr/bin/cronrun" | awk '/Build ID:/ { print $3 }')
debug=$elf/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
if [ -z "${hot_start:-}" ] || (( 16#$hot_size < 0x40000 )); then
  echo "check.sh: /usr/bin/cronrun has no .text.cronrun_run section of 256 KiB or more (size 0x${hot_size:-0})" >&2
  status=1
elif [ ! -f "$debug" ]; then
  # DEB_BUILD_OPTIONS=noautodbgsym (the host tier): no symbols to place.
  echo "check.sh: .text.cronrun_run is 0x$hot_size bytes; no -dbgsym package, so its functions were not checked" >&2
else
  for sym in main _ZN7cronrun10parse_argsEiPPc _ZN7cronrun7run_jobERKNS_7JobSpecE _ZN7cronrun5spawnERKNS_12SpawnRequestE \
    _ZN7cronrun7journal6Writer6appendENS0_10RecordTypeERKNS_9RunRecordE; do
    addr=$(nm "$debug" | awk -v s="$sym" '$3 == s { print $1; exit }')
    if [ -z "$addr" ] || (( 16#$addr < 16#$hot_start || 16#$addr >= 16#$hot_start + 16#$hot_size )); then
      echo "check.sh: $sym (at ${addr:-nowhere}) lies outside the run path's section (bench/text_order.sh regenerates runner/hot-text.ld)" >&2
      status=1
    fi
  done
fi
rm -rf "$elf"
if [ $run_lintian = 1 ]; then
  # --fail-on error,warning: lintian's own exit status says whether the package is clean.
  if ! lintian --fail-on error,warning --display-info "$out/cronrun_${version}_${arch}.changes" >"$out/lintian.txt" 2>&1; then
    status=1
  fi
  cat "$out/lintian.txt" >&2
  [ $status = 0 ] || echo "check.sh: lintian reported errors or warnings (see $out/lintian.txt)" >&2
fi
echo "check.sh: $(du -k "$deb" | cut -f1) KiB $deb" >&2
echo "$deb"
exit $status
