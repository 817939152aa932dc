#!/usr/bin/env bash
# What loading a library costs every process that links it: instructions counted
# by callgrind (repeatable whatever else the machine does) for an empty C
# program, linked against nothing, against libsystemd and against libcurl, and
# for the release cronrun (--version, and a run of /bin/true without cgroup or
# lock). cronrun opens libsystemd and libcurl with dlopen only in the runs that
# use them (common/dynlib.h); this shows why. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-bench}
command -v valgrind >/dev/null || { echo "startup.sh: valgrind missing" >&2; exit 1; }
work=$(mktemp -d /tmp/cronrun-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "${NO_BUILD:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRONRUN_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j2 --target cronrun >/dev/null
fi
echo 'int main(void) { return 0; }' >"$work/empty.c"
gcc -O2 "$work/empty.c" -o "$work/empty"
gcc -O2 "$work/empty.c" -o "$work/empty-systemd" -Wl,--no-as-needed -lsystemd
gcc -O2 "$work/empty.c" -o "$work/empty-curl" -Wl,--no-as-needed -lcurl
instr() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | sed -n 's/.*Collected : //p'; }
printf '%-44s %12s %8s\n' program instructions libs
for p in empty empty-systemd empty-curl; do
  printf '%-44s %12s %8s\n' "$p" "$(instr "$work/$p")" "$(ldd "$work/$p" | wc -l)"
done
cr=$build/runner/cronrun
printf '%-44s %12s %8s\n' "cronrun --version" "$(instr "$cr" --version)" "$(ldd "$cr" | wc -l)"
printf '%-44s %12s %8s\n' "cronrun --cgroup off --no-lock -- /bin/true" \
  "$(instr "$cr" -n startup --cgroup off --no-lock --history "$work/h.db" -q -- /bin/true)" "$(ldd "$cr" | wc -l)"
