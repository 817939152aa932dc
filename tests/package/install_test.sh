#!/usr/bin/env bash
# `cmake --install` of the build tree under DESTDIR: everything DESIGN §9 lists
# that the build installs lands below DESTDIR + CMAKE_INSTALL_PREFIX (the
# logrotate file in the prefix's sysconfdir), nothing is missing.
set -euo pipefail
: "${CRONRUN_BIN_DIR:?}"
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR=$dest cmake --install "$CRONRUN_BIN_DIR" >"$dest.log" 2>&1 || { cat "$dest.log"; rm -f "$dest.log"; echo "FAIL: cmake --install"; exit 1; }
rm -f "$dest.log"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$CRONRUN_BIN_DIR/CMakeCache.txt")
sysconf=$(sed -n 's/^CMAKE_INSTALL_SYSCONFDIR:PATH=//p' "$CRONRUN_BIN_DIR/CMakeCache.txt")
fail=0
for f in bin/cronrun bin/cronprof share/man/man1/cronrun.1 share/man/man1/cronprof.1 share/man/man5/cronrun.json.5 \
         share/bash-completion/completions/cronrun share/bash-completion/completions/cronprof \
         share/zsh/vendor-completions/_cronrun share/zsh/vendor-completions/_cronprof \
         lib/tmpfiles.d/cronrun.conf; do
  [ -f "$dest$prefix/$f" ] || { echo "FAIL: $prefix/$f not installed"; fail=1; }
done
[ -n "$(find "$dest$prefix" -path '*/cronrun/libcronrun-db.so')" ] || { echo "FAIL: libcronrun-db.so not installed"; fail=1; }
[ -n "$(find "$dest" -path "*${sysconf#"$prefix"}/logrotate.d/cronrun")" ] || { echo "FAIL: logrotate.d/cronrun not installed"; fail=1; }
[ $fail = 0 ] && echo "ok: installed under DESTDIR$prefix"
exit $fail
