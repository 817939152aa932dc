#!/usr/bin/env bash
# What one run of cronrun asks of the system beyond the job (issue 15's per-run
# costs), seen with strace: the invoking user is looked up once (one read of
# /etc/passwd, however many parts want the name), the UTC timestamps never load
# the local time zone (/etc/localtime), and with neither journald nor a syslog
# daemon listening no message is sent to /dev/log (glibc's syslog(3) would try
# to connect for each one). As root, the same for a run with a lock, a cgroup of
# its own and --memory, the benchmark's run. An existing lock file is opened, not
# first tried as a new one; the built-in seccomp lists are read-only data (not
# relocated at start). The child's code between fork and exec calls libc through
# the GOT, bound at start, not through lazily bound PLT stubs (a binding in the
# child costs it page faults). Skipped without strace.
# Environment (set by tests/e2e/CMakeLists.txt): CRONRUN.
set -euo pipefail
: "${CRONRUN:?}"
command -v strace >/dev/null || { echo "skip: strace missing"; exit 0; }
tmp=$(mktemp -d /tmp/cronrun-run-path-e2e.XXXXXX)
cg_parent=/cronrun-run-path-e2e-$$
cleanup() {
  for d in /sys/fs/cgroup"$cg_parent" /sys/fs/cgroup/*"$cg_parent"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }

# check NAME ARGS...: runs cronrun ARGS under strace and checks the trace.
check() {
  local name=$1; shift
  local trace=$tmp/$name.trace
  # TZ unset: glibc then reads /etc/localtime when anything asks for local time.
  if ! env -u TZ strace -f -qq -o "$trace" -e trace=openat,open,connect "$CRONRUN" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; then
    bad "$name: cronrun failed: $(head -c 300 "$tmp/err")"
    return
  fi
  local passwd
  passwd=$(grep -c '"/etc/passwd"' "$trace" || true)
  if [ "$passwd" -le 1 ]; then ok "$name: /etc/passwd read $passwd time(s)"; else bad "$name: /etc/passwd read $passwd times, want at most 1"; fi
  if grep -q '"/etc/localtime"' "$trace"; then bad "$name: /etc/localtime read: $(grep '"/etc/localtime"' "$trace" | head -1)"
  else ok "$name: no /etc/localtime"; fi
  if [ ! -e /dev/log ] && [ ! -e /run/systemd/journal/socket ]; then
    local logc
    logc=$(grep -c 'connect(.*"/dev/log"' "$trace" || true)
    if [ "$logc" -eq 0 ]; then ok "$name: no connect to /dev/log (no syslog daemon)"
    else bad "$name: $logc connect(s) to /dev/log with no syslog daemon listening"; fi
  fi
}

check plain -q --no-lock --cgroup off --history "$tmp/h.db" -- /bin/true
check plain-again -q --no-lock --cgroup off --history "$tmp/h.db" -- /bin/true
# A lock file that exists (every run but a job's first) is opened as it is, not
# first tried as a new file (a create failing with EEXIST is a lookup under the
# directory's lock, every run).
"$CRONRUN" -q --lock "$tmp/l.pid" --cgroup off --history "$tmp/h.db" -- /bin/true
strace -qq -o "$tmp/lock.trace" -e trace=openat "$CRONRUN" -q --lock "$tmp/l.pid" --cgroup off --history "$tmp/h.db" -- /bin/true
if grep -q '"l.pid".*EEXIST' "$tmp/lock.trace"; then bad "existing lock file: create tried first: $(grep '"l.pid"' "$tmp/lock.trace" | head -1)"
elif grep -q '"l.pid".*= [0-9]' "$tmp/lock.trace"; then ok "existing lock file opened without a failed create"
else bad "existing lock file: no open of it seen in the trace"; fi
# The built-in seccomp lists are read-only data: a table of pointers would be
# relocated, so written (pages copied), by the loader at every start of the PIE.
tables=$(nm -C "$CRONRUN" 2>/dev/null | grep -E 'seccomp::.*(kStrictAllowed|kBaselineDenied|kAlwaysAllowed)$' || true)
if [ -z "$tables" ]; then echo "skip: no symbols in $CRONRUN (stripped, or nm missing)"
elif [ "$(grep -c ' [rR] ' <<<"$tables")" -eq 3 ]; then ok "seccomp's built-in lists are read-only data"
else bad "seccomp's built-in lists are not all read-only data: $(tr '\n' ';' <<<"$tables")"; fi
# The child's code (spawn.cc, -fno-plt) makes no PLT call.
child_code=$(objdump -d --no-show-raw-insn -C "$CRONRUN" 2>/dev/null |
  awk '/^[0-9a-f]+ <cronrun::\(anonymous namespace\)::child_(main|fail)\(/ { f = 1; next } /^$/ { f = 0 } f' || true)
if [ -z "$child_code" ]; then echo "skip: child code not found in $CRONRUN (stripped, or objdump missing)"
elif grep -q '@plt>' <<<"$child_code"; then bad "the child's code calls through the PLT: $(grep -m3 '@plt>' <<<"$child_code" | tr -s ' ' | tr '\n' ';')"
else ok "the child's code calls libc through the GOT (no lazy binding after fork)"; fi
if [ "$(id -u)" -eq 0 ]; then
  # The benchmark's run; the first run makes the job's cgroup directories.
  B=(-q --lock "$tmp/b.pid" --history "$tmp/b.db" --cgroup-parent "$cg_parent" --memory 1G -- /bin/true)
  if "$CRONRUN" "${B[@]}" 2>"$tmp/err"; then
    check cgroup "${B[@]}"
  else
    echo "skip: cgroup run: $(head -c 200 "$tmp/err")"
  fi
fi

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)" >&2; exit 1; fi
echo "all ok"
