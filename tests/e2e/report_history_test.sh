#!/usr/bin/env bash
# cronprof plan and report over a history written by real cronrun runs of the
# payload helper: the crontab joins its history by job name, two jobs whose runs
# coincide at 02:00 make the peak and the stagger separates them, the report
# opens in headless Chromium without errors and with every chart drawn, and an
# empty history gives a report that says so.
# Runs as the e2e tier runs everything: no root-only features (--cgroup off, locks
# in its own directory), so memory is the runs' max RSS. Paths come from the
# environment (tests/e2e/CMakeLists.txt): CRONRUN, CRONPROF, CRONRUN_PAYLOAD,
# CRONRUN_BIN_DIR; the pages, DOM dumps and screenshots stay in
# $CRONRUN_BIN_DIR/tests/e2e/report-artifacts.
set -euo pipefail
cronrun=$CRONRUN cronprof=$CRONPROF payload=$CRONRUN_PAYLOAD
art=${CRONRUN_BIN_DIR:-/tmp}/tests/e2e/report-artifacts
mkdir -p "$art"
tmp=$(mktemp -d /tmp/cronrun-report-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
H=$tmp/history.db
mkdir "$tmp/logs"  # --log-dir DIR must exist
fail() { echo "FAIL: $*" >&2; exit 1; }

# run NAME [cronrun options] -- PAYLOAD ARGS
run() {
  local name=$1; shift
  "$cronrun" -n "$name" --cgroup off --history "$H" --lock "$tmp/$name.pid" --log-dir "$tmp/logs" -q "$@" || true
}
for i in 1 2 3; do
  run backup -- "$payload" mem 64 300
  run report --memory 512M -- "$payload" mem 32 200
  run export -- "$payload" counter rows_exported $((1000 + i))
done
run report --memory 512M -- "$payload" exit 3

mkdir -p "$tmp/cron.d"
cat > "$tmp/cron.d/app" <<EOF
MAILTO=""
0 2 * * * root cronrun -n backup -- $payload mem 64 300
0 2 * * * root /usr/bin/cronrun --name report --memory 512M -- $payload mem 32 200
*/5 * * * * root /usr/bin/cronrun -n ghost -- /bin/true
30 3 * * * root test -x /usr/sbin/logrotate && /usr/sbin/logrotate /etc/logrotate.conf
0 4 * * * nobody cronrun -n other-user -- /bin/true
0 5 * * * root cronrun --history /srv/elsewhere.db -n own-history -- /bin/true
EOF
# One bad line and cron ignores the whole file: its good line is not planned either.
printf '0 2 * * * root cronrun -n broken-file-job -- /bin/true\n61 * * * * root /bin/true\n' > "$tmp/cron.d/broken"

"$cronprof" --history "$H" plan --crontab "$tmp/cron.d" --host-memory 1G --host-cpus 2 --week 2026-11-30 \
  > "$art/plan.txt" || fail "cronprof plan exited $?"
"$cronprof" --history "$H" --json plan --crontab "$tmp/cron.d" --host-memory 1G --host-cpus 2 --week 2026-11-30 \
  > "$art/plan.json" || fail "cronprof plan --json exited $?"
# The reason is prose: wrapped to the terminal's width, so read it with its line breaks undone.
tr -s ' \n' '  ' <"$art/plan.txt" | grep -q "cronrun job 'own-history', no runs in the window: cronrun records this job in /srv/elsewhere.db" || fail "the plan does not say where own-history's runs are recorded (see $art/plan.txt)"
python3 - "$art/plan.json" <<'EOF' || fail "plan JSON (see $art/plan.json)"
import json, os, sys
p = json.load(open(sys.argv[1]))
status = {e["job"] or e["command"][:20]: e["status"] for e in p["entries"]}
assert status["backup"] == "profiled", status
assert status["report"] == "profiled", status
assert status["ghost"] == "no_history", status
# Unprofiled because their runs are recorded elsewhere, and the entry says where.
notes = {e["job"]: e.get("note", "") for e in p["entries"] if e["job"]}
if os.geteuid() == 0:  # ghost runs as root, the reader's own user: its history is the one read
    assert notes["ghost"] == "", notes
assert status["other-user"] == "no_history", status
assert "runs as nobody" in notes["other-user"], notes
assert "/nonexistent/.local/state/cronrun/history.db" in notes["other-user"], notes
assert status["own-history"] == "no_history", status
assert "/srv/elsewhere.db (its --history)" in notes["own-history"], notes
assert any(v == "not_cronrun" for v in status.values()), status
rej = [(os.path.basename(r["file"]), r["line"]) for r in p["rejected"]]
assert rej == [("broken", 2), ("broken", 0)], p["rejected"]
assert "cron ignores the whole file" in p["rejected"][1]["reason"], p["rejected"]
assert "broken-file-job" not in status, status
peak = p["pessimistic"]["memory_peak"]
assert peak["at"] == "Mon 02:00", peak
assert sorted(j["job"] for j in peak["jobs"]) == ["backup", "report"], peak
assert peak["memory_bytes"] > 0
st = p["stagger"]
assert len(st["moves"]) == 1, st
assert st["memory_peak_after_bytes"] < st["memory_peak_before_bytes"], st
assert p["host"]["memory_bytes"] == 1 << 30
print("plan ok:", peak["at"], peak["memory_bytes"], "->", st["memory_peak_after_bytes"], st["moves"][0]["to"])
EOF

"$cronprof" --history "$H" report --html "$art/history-report.html" --crontab "$tmp/cron.d" --week 2026-11-30 \
  || fail "cronprof report exited $?"
"$cronprof" --history "$tmp/none.db" report --html "$art/empty-report.html" || fail "report of a missing history"
grep -q 'No runs recorded' "$art/empty-report.html" || fail "empty report does not say so"
for page in history-report empty-report; do
  grep -q 'c0-mem\|No runs recorded' "$art/$page.html" || fail "$page: no charts and no message"
done

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  # CI installs chromium (scripts/install-deps.sh); only a partial dev machine may skip.
  [ -n "${CI:-}" ] && fail "chromium missing in CI"
  echo "SKIP browser checks: chromium not installed"
  exit 0
fi
open_page() {  # open_page NAME EXTRA-FLAGS... (#expand-all: every job's section open, its charts drawn)
  local name=$1; shift
  local profile
  profile=$(mktemp -d "$tmp/chromium.XXXXXX")
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage --enable-logging=stderr --v=0 \
    --virtual-time-budget=5000 --user-data-dir="$profile" "$@" "file://$art/$name.html#expand-all" \
    > "$art/$name.dom" 2> "$art/$name.log"
}
for page in history-report empty-report; do
  open_page "$page" --dump-dom || fail "$page: chromium exited $?"
  html_tag=$(grep -o '<html[^>]*>' "$art/$page.dom" | head -1)
  echo "$page: $html_tag"
  [[ $html_tag == *'data-ready="1"'* ]] || fail "$page: scripts did not finish"
  [[ $html_tag == *'data-errors="0"'* ]] || fail "$page: script errors"
  ! grep -q ':CONSOLE' "$art/$page.log" || fail "$page: console output: $(grep ':CONSOLE' "$art/$page.log" | head -3)"
  expected=$(sed -n 's/.*data-charts-expected="\([0-9]*\)".*/\1/p' <<<"$html_tag")
  drawn=$(sed -n 's/.*data-charts-drawn="\([0-9]*\)".*/\1/p' <<<"$html_tag")
  [ "$expected" = "$drawn" ] || fail "$page: $drawn of $expected charts drawn"
done
# 3 jobs x (memory, wall). DB-query charts need the preload counter; the synthetic
# report in report_render_test.cc draws them.
[[ $(grep -o '<html[^>]*>' "$art/history-report.dom") == *'data-charts-expected="6"'* ]] \
  || fail "history report: expected 6 charts (3 jobs x memory + wall)"
open_page history-report --hide-scrollbars --window-size=1280,2400 --screenshot="$art/history-report.png" \
  || fail "screenshot"
[ -s "$art/history-report.png" ] || fail "no screenshot"
echo "ok: artifacts in $art"
