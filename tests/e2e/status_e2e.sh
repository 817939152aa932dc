#!/usr/bin/env bash
# cronprof status end to end: real `cronrun --cgroup off` runs of the payload helper
# write a history; crontab files (their mtimes set back so earlier ticks are
# expected) name the jobs; status must say up / failing / missed / running /
# never run, show a lock skip as skipped but ran, exit 8 on failing or missed and
# 0 otherwise, print --json with a schema, integers and UTC timestamps, ignore a
# cron.d file with one bad line as cron does, and read this machine's real
# /etc/cron.d and the Debian package crontabs copied in tests/fixtures without a
# rejection.
# Environment (set by tests/e2e/CMakeLists.txt): CRONRUN CRONPROF CRONRUN_PAYLOAD CRONRUN_FIXTURES.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}" "${CRONRUN_PAYLOAD:?}" "${CRONRUN_FIXTURES:?}"
tmp=$(mktemp -d /tmp/cronprof-status-e2e.XXXXXX)
bg_pids=()
cleanup() {
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
H=$tmp/history.db P=$CRONRUN_PAYLOAD
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
run() {  # run NAME [cronrun options] -- ARGS; never fails the script
  local name=$1; shift
  "$CRONRUN" -n "$name" --cgroup off --history "$H" --lock "$tmp/$name.pid" -q "$@" >/dev/null 2>&1 || true
}
export TZ=UTC

# The crontab: every job every minute, a grace of 90 s so the runs made now are on
# time for this minute's tick whatever second the test starts at.
mkdir "$tmp/cron.d"
cat > "$tmp/cron.d/app" <<EOF
* * * * * root cronrun -n healthy --cgroup off -- $P exit 0
* * * * * root cronrun -n broken -- $P exit 3
* * * * * root cronrun -n locked --on-locked skip -- $P exit 0
* * * * * root cronrun -n busy -- $P sleep 60
0 0 1 1 * root cronrun -n yearly -- $P exit 0
*/5 * * * * root /usr/bin/logger not a cronrun job
EOF
cat > "$tmp/cron.d/forgotten" <<EOF
* * * * * root cronrun -n forgotten -- $P exit 0
EOF
# One bad line (no user field): cron ignores the whole file, so its good line too.
cat > "$tmp/cron.d/nouser" <<EOF
* * * * * root cronrun -n in-ignored-file -- $P exit 0
* * * * * cronrun -n no-user -- $P exit 0
EOF
cat > "$tmp/cron.d/app.dpkg-old" <<EOF
* * * * * root cronrun -n leftover -- $P exit 0
EOF
# app was installed just before this minute's tick: only that tick is expected.
# forgotten was installed five minutes ago and never ran: its ticks are missed.
minute_start=$(( $(date +%s) / 60 * 60 ))
touch -d "@$((minute_start - 20))" "$tmp/cron.d/app"
touch -d "@$((minute_start - 300 - 20))" "$tmp/cron.d/forgotten"

run healthy -- "$P" exit 0
run broken -- "$P" exit 3
run locked -- "$P" exit 0
# The lock held by someone else: the next tick's run is a skip.
exec 9>>"$tmp/locked.pid"
flock -n 9 || bad "could not take the lock for the skip"
run locked --on-locked skip -- "$P" exit 0
exec 9>&-
# Running through every check below however slow they are (cleanup ends it).
"$CRONRUN" -n busy --cgroup off --history "$H" --lock "$tmp/busy.pid" -q -- "$P" sleep 300 >/dev/null 2>&1 & bg_pids+=($!)
deadline=$((SECONDS + 60))  # a time bound: each poll is a cronprof run, slow under load
while [ $SECONDS -lt $deadline ]; do
  "$CRONPROF" --history "$H" --json runs --job busy 2>/dev/null | grep -q '"running"' && break
  sleep 0.1
done

rc=0
"$CRONPROF" --history "$H" status --crontab "$tmp/cron.d" --grace 90s > "$tmp/status.txt" 2> "$tmp/status.err" || rc=$?
cat "$tmp/status.txt"
[ "$rc" -eq 8 ] && ok "failing and missed jobs: exit 8" || bad "status exit $rc, want 8: $(cat "$tmp/status.err")"
rc=0
"$CRONPROF" --history "$H" --json status --crontab "$tmp/cron.d" --grace 90s > "$tmp/status.json" || rc=$?
[ "$rc" -eq 8 ] && ok "--json: exit 8" || bad "status --json exit $rc, want 8"
python3 - "$tmp/status.json" <<'EOF' && ok "states, counts and JSON form" || bad "status JSON (above)"
import json, re, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "cronrun.status/1", d["schema"]
state = {j["job"]: j["state"] for j in d["jobs"]}
want = {"healthy": "up", "broken": "failing", "locked": "up", "busy": "running", "yearly": "never_run",
        "forgotten": "missed"}
assert state == want, state
jobs = {j["job"]: j for j in d["jobs"]}
assert jobs["locked"]["last_run"]["status"] == "skipped", jobs["locked"]
assert jobs["locked"]["last_executed"]["status"] == "ok", jobs["locked"]
assert jobs["broken"]["last_run"]["exit_code"] == 3, jobs["broken"]
assert jobs["forgotten"]["missed"] >= 4 and isinstance(jobs["forgotten"]["missed"], int), jobs["forgotten"]
assert jobs["healthy"]["missed"] == 0 and jobs["healthy"]["ticks"] == 1, jobs["healthy"]
assert d["jobs"][0]["state"] == "failing"  # most urgent first
stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
for j in d["jobs"]:
    for k in ("last_success_at", "last_tick_at", "next_tick_at"):
        assert j[k] is None or stamp.match(j[k]), (k, j[k])
    if j["last_run"]:
        assert stamp.match(j["last_run"]["started_at"]), j["last_run"]
    assert isinstance(j["grace_s"], int) and j["grace_s"] == 90, j
rejected = [(r["file"].rsplit("/", 1)[1], r["line"]) for r in d["rejected"]]
assert ("nouser", 2) in rejected and ("nouser", 0) in rejected, rejected
assert ("app.dpkg-old", 0) in rejected, rejected
assert "in-ignored-file" not in state and "leftover" not in state, state
EOF
tr -s " \n" " " < "$tmp/status.txt" | grep -q "rejected: [^ ]*/nouser: cron ignores the whole file" \
  && ok "the text output says the file is ignored" || bad "no rejected line for nouser"
widest=$(awk '{ if (length($0) > w) w = length($0) } END { print w }' "$tmp/status.txt")
[ "$widest" -le 80 ] && ok "table fits 80 columns" || bad "status output is $widest columns wide"
# --wide: the table unfitted, whatever $COLUMNS says (cronprof's global flag).
COLUMNS=30 "$CRONPROF" --history "$H" --wide status --crontab "$tmp/cron.d" --grace 90s > "$tmp/wide.txt" 2>/dev/null || true
head -n 1 "$tmp/wide.txt" | grep -q 'CRONTAB$' && grep -q 'forgotten ' "$tmp/wide.txt" && grep -q '\* \* \* \* \*' "$tmp/wide.txt" \
  && ok "--wide prints whole cells" || bad "--wide still fitted the table: $(head -n 2 "$tmp/wide.txt")"

# Only healthy jobs: exit 0.
rc=0
"$CRONPROF" --history "$H" status --crontab "$tmp/cron.d" --grace 90s --job healthy > /dev/null || rc=$?
[ "$rc" -eq 0 ] && ok "--job healthy: exit 0" || bad "--job healthy: exit $rc"
# Bad input: exit 2, one line naming the flag.
rc=0
"$CRONPROF" --history "$H" status --crontab "$tmp/cron.d" --grace soon > /dev/null 2> "$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--grace" "$tmp/err" && ok "bad --grace: exit 2" || bad "bad --grace: exit $rc $(cat "$tmp/err")"
rc=0
"$CRONPROF" --history "$H" status --crontab "$tmp/nope" > /dev/null 2> "$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--crontab" "$tmp/err" && ok "missing --crontab file: exit 2" \
  || bad "missing crontab: exit $rc $(cat "$tmp/err")"
# No history yet: every due job is missed, nothing is an error.
rc=0
"$CRONPROF" --history "$tmp/none.db" --json status --crontab "$tmp/cron.d/forgotten" > "$tmp/none.json" || rc=$?
[ "$rc" -eq 8 ] && grep -q '"missed"' "$tmp/none.json" && ok "no history: missed, exit 8" || bad "no history: exit $rc"

# Without --crontab a user reads the defaults where readable and their own
# crontab through `crontab -l` (the spool is not readable by users): a stand-in
# crontab(1) on PATH prints one, and status, run as nobody, watches its job.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  mkdir -p "$tmp/bin"
  printf '#!/bin/sh\n[ "$1" = -l ] || exit 2\nprintf "*/5 * * * * cronrun -n mine -- /bin/true\\n"\n' > "$tmp/bin/crontab"
  chmod 755 "$tmp" "$tmp/bin" "$tmp/bin/crontab"
  rc=0
  setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$tmp/bin:$PATH" \
    "$CRONPROF" --history "$tmp/none.db" --json status > "$tmp/user.json" 2> "$tmp/err" || rc=$?
  python3 - "$tmp/user.json" <<'EOF' && ok "a user's crontab -l is read (exit $rc)" || bad "crontab -l as nobody: exit $rc $(cat "$tmp/err")"
import json, sys
d = json.load(open(sys.argv[1]))
mine = [j for j in d["jobs"] if j["job"] == "mine"]
assert mine and mine[0]["sources"][0]["file"].startswith("crontab -l"), d
EOF
fi

# Real crontabs: this machine's /etc/cron.d and the Debian packages' files copied
# in tests/fixtures are read as cron reads them, with nothing rejected.
for src in /etc/cron.d "$CRONRUN_FIXTURES/crontab/debian/etc/crontab" "$CRONRUN_FIXTURES/crontab/debian/etc/cron.d"; do
  [ -e "$src" ] || continue
  rc=0
  "$CRONPROF" --history "$H" --json status --crontab "$src" > "$tmp/real.json" || rc=$?
  python3 - "$tmp/real.json" <<'EOF' && [ "$rc" -eq 0 ] && ok "real crontab $src: read, nothing rejected" \
    || bad "real crontab $src (exit $rc)"
import json, sys
d = json.load(open(sys.argv[1]))
bad = [r for r in d["rejected"] if not r["file"].rsplit("/", 1)[1].startswith(".")]
assert not bad, bad
EOF
done

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed" >&2; exit 1; }
echo "all status checks passed"
