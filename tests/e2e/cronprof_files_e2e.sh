#!/usr/bin/env bash
# cronprof's files in places another user may write (issue 14), as root: a symlink
# planted at the report's old temp name (OUT.tmp) or at OUT, a FIFO at OUT, a
# symlink or FIFO at a `suggest --write` config: each refused or defeated, the
# victim unchanged. An explicit --config directory is never created. A FIFO given
# as --crontab makes `plan` and `report` fail at once with one line naming it.
# Environment (set by tests/e2e/CMakeLists.txt): CRONRUN CRONPROF CRONRUN_PAYLOAD.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}" "${CRONRUN_PAYLOAD:?}"
if [ "$(id -u)" -ne 0 ]; then echo "skipped: needs root (a neighbour plants files as uid 65534)"; exit 0; fi
tmp=$(mktemp -d /tmp/cronprof-files-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"  # the neighbour reaches $tmp/shared
H=$tmp/history.db
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
check() {
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
prof() { timeout 10 "$CRONPROF" --history "$H" "$@"; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# expect_fail description needle command...: non-zero, not a timeout, one
# 'cronprof:' line on stderr that contains needle.
expect_fail() {
  local what=$1 needle=$2; shift 2
  local got=0
  "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" -eq 0 ] || [ "$got" -eq 124 ]; then bad "$what: exit $got; stderr: $(cat "$tmp/err")"; return; fi
  if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^cronprof: ' "$tmp/err" && grep -qF -- "$needle" "$tmp/err"; then
    ok "$what (exit $got: $(cat "$tmp/err"))"
  else
    bad "$what: stderr is not one 'cronprof:' line naming '$needle': $(cat "$tmp/err")"
  fi
}

# A root-only victim and a shared sticky directory the neighbour writes into.
victim=$tmp/victim
echo "root's file" >"$victim"
chmod 600 "$victim"
shared=$tmp/shared
mkdir "$shared"
chmod 1777 "$shared"

# ---- report --html ----
as_nobody ln -s "$victim" "$shared/r.html.tmp"
check "report --html: a symlink at OUT.tmp is not written through" prof report --html "$shared/r.html"
check "  victim unchanged" test "$(cat "$victim")" = "root's file"
check "  report written, owned by root" test "$(stat -c %u "$shared/r.html")" = 0
check "  the planted link is still a link" test -L "$shared/r.html.tmp"

as_nobody ln -s "$victim" "$shared/s.html"
expect_fail "report --html: a symlink at OUT is refused" "is a symlink" prof report --html "$shared/s.html"
check "  victim unchanged" test "$(cat "$victim")" = "root's file"

as_nobody mkfifo "$shared/f.html"
expect_fail "report --html: a FIFO at OUT is refused" "is a FIFO" prof report --html "$shared/f.html"
check "  the FIFO is still there" test -p "$shared/f.html"

as_nobody sh -c "echo theirs >'$shared/t.html'"
expect_fail "report --html: another user's file in a sticky dir is refused" "uid 65534" prof report --html "$shared/t.html"
check "  their file unchanged" test "$(cat "$shared/t.html")" = theirs

check "report --html -: to standard output" sh -c "timeout 10 '$CRONPROF' --history '$H' report --html - | grep -q '<html'"

# ---- suggest --write ----
for i in 1 2 3 4 5 6; do
  "$CRONRUN" -n steady --no-lock --cgroup off --history "$H" -q -- "$CRONRUN_PAYLOAD" mem 16 50 >/dev/null 2>&1 || true
done
as_nobody ln -s "$victim" "$shared/steady.json"
expect_fail "suggest --write: a symlink config is refused" "is a symlink" prof suggest --job steady --write --config "$shared/steady.json"
check "  victim unchanged (content)" test "$(cat "$victim")" = "root's file"
check "  victim unchanged (owner, mode)" test "$(stat -c '%u %a' "$victim")" = "0 600"

as_nobody mkfifo "$shared/fifo.json"
expect_fail "suggest --write: a FIFO config fails at once" "is a FIFO" prof suggest --job steady --write --config "$shared/fifo.json"
check "  the FIFO is still there" test -p "$shared/fifo.json"

expect_fail "suggest --write: an explicit config's directory must exist" "does not exist" \
  prof suggest --job steady --write --config "$tmp/nodir/sub/steady.json"
check "  no directory created" test ! -e "$tmp/nodir"

mkdir "$tmp/jobs"
: >"$tmp/jobs/empty.json"
expect_fail "suggest --write: an empty config (cronrun refuses it) is left alone" "is empty, not a JSON object" \
  prof suggest --job steady --write --config "$tmp/jobs/empty.json"
check "  still empty" test ! -s "$tmp/jobs/empty.json"
rm "$tmp/jobs/empty.json"
echo '{ "nice": 5 }' >"$tmp/jobs/steady.json"
check "suggest --write: a regular file of ours is edited" prof suggest --job steady --write --config "$tmp/jobs/steady.json"
check "  memory set, nice kept" grep -q '"memory"' "$tmp/jobs/steady.json"
check "  no temp file left" test "$(ls "$tmp/jobs" | wc -l)" -eq 1

# ---- --crontab FIFO ----
mkfifo "$tmp/crontab.fifo"
expect_fail "plan --crontab FIFO fails at once" "crontab.fifo: is a FIFO" prof plan --crontab "$tmp/crontab.fifo"
expect_fail "report --crontab FIFO fails at once" "crontab.fifo: is a FIFO" \
  prof report --html "$tmp/x.html" --crontab "$tmp/crontab.fifo"
check "  no report written" test ! -e "$tmp/x.html"

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed" >&2; exit 1; fi
echo "all checks passed"
