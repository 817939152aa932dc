#!/usr/bin/env bash
# The HTML report as the on-call page, checked the way an engineer would meet it:
# a history written by real cronrun runs (ok, failed, OOM-killed under --memory
# when this host can, an ok run with an OOM kill inside, a timeout, a lock skip),
# `cronprof report --html`, and the page opened in headless Chromium at 1400 px
# with report_probe.js inserted into a copy. The probe asks the DOM and the layout
# (not the page's own self-check) for: script errors, the page's width and any box
# whose content is cut off, each job's row in the first table, how "ok" and
# "skipped" look, the suggested limits as a reader would copy them, every in-page
# link's target, whether a run's log tail is reached by links from its job's row,
# hostile log text staying text, and the charts' x axes, bad-run and limit series.
# Paths come from the environment (tests/e2e/CMakeLists.txt); pages, DOM dumps and
# screenshots stay in $CRONRUN_BIN_DIR/tests/e2e/report-artifacts.
set -euo pipefail
cronrun=$CRONRUN cronprof=$CRONPROF payload=$CRONRUN_PAYLOAD
here=$(cd "$(dirname "$0")" && pwd)
art=${CRONRUN_BIN_DIR:-/tmp}/tests/e2e/report-artifacts
mkdir -p "$art"
tmp=$(mktemp -d /tmp/cronrun-page-e2e.XXXXXX)
parent=/cronrun-test-page-$$
cleanup() {
  for d in /sys/fs/cgroup/unified$parent /sys/fs/cgroup$parent /sys/fs/cgroup/*$parent; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
H=$tmp/history.db
mkdir "$tmp/logs"
fail() { echo "FAIL: $*" >&2; exit 1; }

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  [ -n "${CI:-}" ] && fail "chromium missing in CI"
  echo "SKIP: chromium not installed (scripts/install-deps.sh)"
  exit 0
fi

# Until the lock file $1 names pid $2: cronrun writes its pid there once it holds
# the lock (a guessed sleep is too short on a loaded machine).
wait_lock_holder() {
  local _
  for _ in $(seq 1200); do [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0; sleep 0.05; done
  fail "lock $1 was never held by $2 (it says: $(cat "$1" 2>/dev/null))"
}
# A job (sh -c) that ends once the file $1 exists; exit 1 if it never does in 60 s.
hold_until='i=0; while [ ! -e "$0" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; [ -e "$0" ]'

# run NAME [cronrun options] -- COMMAND...
run() {
  local name=$1; shift
  "$cronrun" -n "$name" --history "$H" --lock "$tmp/$name.pid" --log-dir "$tmp/logs" -q "$@" >/dev/null 2>&1 || true
}

# Can this host OOM-kill a job under --memory (a memory cgroup cronrun may make)?
oom=0
if "$cronrun" -n oomprobe --no-history --no-lock --cgroup required --cgroup-parent "$parent" --memory 64M \
     --summary "$tmp/probe.json" -q -- "$payload" mem 128 100 >/dev/null 2>&1; then :; fi
if [ -s "$tmp/probe.json" ] && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["status"] != "oom")' \
     "$tmp/probe.json"; then
  oom=1
else
  echo "NOTE: this host cannot OOM-kill under --memory (no memory cgroup for cronrun); OOM runs left out"
fi

# Five ok runs: enough for `cronprof suggest` to suggest limits.
for i in 1 2 3 4 5; do run nightly --cgroup off -- "$payload" mem 16 50; done
# Hostile output: if the page ever turned log text into markup, these would run.
hostile='<script>window.cronrunPwned=1</script><img src=x onerror="window.cronrunPwned=1">'
for i in 1 2; do run broken --cgroup off -- sh -c "echo 'MARKER-broken-log $hostile'; exit 3"; done
run slow --cgroup off --timeout 1s -- "$payload" sleep 5
if [ $oom = 1 ]; then
  for i in 1 2; do run oomjob --cgroup-parent "$parent" --memory 64M -- "$payload" mem 128 100; done
  # The job's last run is a skip: the lock is held by another job's run.
  "$cronrun" -n holder --history "$H" --lock "$tmp/oomjob.pid" --cgroup off -q -- sh -c "$hold_until" "$tmp/release" &
  holder=$!
  wait_lock_holder "$tmp/oomjob.pid" $holder
  run oomjob --cgroup-parent "$parent" --memory 64M -- "$payload" mem 128 100
  touch "$tmp/release"
  wait $holder || true
  # Ended ok, but the OOM killer killed a process inside it.
  run oomkid --cgroup-parent "$parent" --memory 64M -- sh -c "$payload mem 128 100; exit 0"
else
  # Without OOM kills the lock skip still makes a job whose last run is skipped.
  run oomjob --cgroup off -- "$payload" exit 1
  "$cronrun" -n holder --history "$H" --lock "$tmp/oomjob.pid" --cgroup off -q -- sh -c "$hold_until" "$tmp/release" &
  holder=$!
  wait_lock_holder "$tmp/oomjob.pid" $holder
  run oomjob --cgroup off -- "$payload" exit 0
  touch "$tmp/release"
  wait $holder || true
fi

"$cronprof" --history "$H" --json runs --limit 0 > "$tmp/runs.json" || fail "cronprof runs exited $?"
python3 - "$tmp/runs.json" "$oom" <<'EOF' || fail "the history does not hold the runs this test needs"
import json, sys
st = {}
for r in reversed(json.load(open(sys.argv[1]))["runs"]):
    st.setdefault(r["job"], []).append(r["status"])
print("history:", st)
assert st["nightly"] == ["ok"] * 5
assert st["broken"] == ["failed"] * 2
assert st["slow"] == ["timeout"]
assert "skipped" in st["oomjob"]
if sys.argv[2] == "1":
    assert st["oomjob"].count("oom") == 2, st
    assert st["oomkid"] == ["ok"], st
EOF

# A log replaced by a symlink to a file the job's owner may not read: the page
# must not follow it (it says why the log was not read instead).
slow_log=$(python3 -c 'import json,sys; print([r["log"]["path"] for r in json.load(open(sys.argv[1]))["runs"]
                                               if r["job"] == "slow"][0])' "$tmp/runs.json")
echo "SECRET-NOT-FOR-THE-PAGE" > "$tmp/secret"
ln -sf "$tmp/secret" "$slow_log"

"$cronprof" --history "$H" report --html "$art/page.html" || fail "cronprof report exited $?"
! grep -q SECRET-NOT-FOR-THE-PAGE "$art/page.html" || fail "the page followed a symlinked log"
grep -q "log not read: .*$(basename "$slow_log")" "$art/page.html" || fail "the page does not say why slow's log was not read"
# probed PAGE OUT: PAGE with report_probe.js inserted before </body>.
probed() {
  python3 - "$1" "$here/report_probe.js" "$2" <<'EOF'
import sys
page, probe, out = sys.argv[1:]
html = open(page, encoding="utf-8").read()
setup = ('<script>window.cronrunProbeJobs=["nightly","broken","slow","oomjob","oomkid","ghost","tick"];'
         'window.cronrunProbeReach={"broken":"MARKER-broken-log"};</script>\n')
cut = html.rindex("</body>")
open(out, "w", encoding="utf-8").write(html[:cut] + setup + "<script>" + open(probe).read() + "</script>\n" + html[cut:])
EOF
}
probed "$art/page.html" "$art/page-probe.html"

chrome() {  # chrome TAG EXTRA-FLAGS... URL
  local tag=$1; shift
  local profile
  profile=$(mktemp -d "$tmp/chromium.XXXXXX")
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --enable-logging=stderr --v=0 --virtual-time-budget=15000 --user-data-dir="$profile" "$@" \
    > "$art/$tag.out" 2> "$art/$tag.log"
}
probe() {  # probe TAG: load $art/TAG.html at 1400 px, write $art/TAG.json
  chrome "$1" --window-size=1400,900 --dump-dom "file://$art/$1.html" || fail "chromium exited $?"
  python3 - "$art/$1.out" > "$art/$1.json" <<'EOF' || fail "no probe output in $art/$1.out"
import html, re, sys
m = list(re.finditer(r"<pre id=\"cronrun-probe\">(.*?)</pre>", open(sys.argv[1], encoding="utf-8").read(), re.S))[-1]
print(html.unescape(m.group(1)))
EOF
  ! grep ':CONSOLE' "$art/$1.log" || fail "console output while loading $1 (see $art/$1.log)"
}
probe page-probe
cp "$art/page-probe.json" "$art/probe.json"

python3 - "$art/probe.json" "$oom" "$cronrun" <<'EOF' || fail "page checks (probe: $art/probe.json)"
import json, re, subprocess, sys
p = json.load(open(sys.argv[1]))
oom = sys.argv[2] == "1"
cronrun = sys.argv[3]
assert "probe_failed" not in p, p
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)
        print("  FAILED:", what, file=sys.stderr)

check(not p["errors"], f"script errors: {p['errors']}")
check(p["page_width"] <= 1400, f"page is {p['page_width']} px wide at a 1400 px window")
check(not p["clipped"], f"boxes cut off at 1400 px: {p['clipped']}")

rows = p["jobs"]
print("rows:", json.dumps(rows, indent=1))
for job in ["nightly", "broken", "slow", "oomjob"]:
    check(rows.get(job) is not None, f"no row for {job} in the first table")
def row(job): return rows.get(job) or ""
check("failing" in row("broken"), f"broken (2 failed runs) not shown failing: {row('broken')}")
check("failing" in row("slow"), f"slow (timed out) not shown failing: {row('slow')}")
# The OOM-killed job whose last run was a lock skip: its state is its last real outcome.
check("failing" in row("oomjob"), f"oomjob's row does not say failing: {row('oomjob')}")
check(re.search(r"\bup\b", row("nightly")) is not None, f"nightly (all ok) not shown up: {row('nightly')}")
if oom:
    check("OOM kill" in row("oomjob"), f"oomjob's row does not count its OOM kills: {row('oomjob')}")
    check("OOM kill" in row("oomkid"), f"oomkid (ok, one OOM kill inside) shown as plain ok: {row('oomkid')}")

# The state filter shows the failing jobs only.
want_failing = {"broken", "slow", "oomjob"}
check(p["filter"] is not None and set(p["filter"]) == want_failing,
      f"filtering by failing shows {p['filter']}, expected {sorted(want_failing)}")

# A skipped run does not look like a good one.
ok_styles, skip_styles = set(p["badges"]["ok"]), set(p["badges"]["skipped"])
check(skip_styles, "no run shown as skipped")
check(ok_styles and skip_styles and not (ok_styles & skip_styles),
      f"skipped looks like ok: ok {ok_styles}, skipped {skip_styles}")

# Suggested limits are real cronrun flags a reader can copy and paste.
flags = [f for f in p["flags"] if f["visible"]]
check(flags, "no suggested limits shown as flags")
flag_re = re.compile(r"^--(memory|cpu|timeout) \S+( --(memory|cpu|timeout) \S+)*$")
for f in flags:
    check(f["copied"] == f["text"], f"copying {f['text']!r} gives {f['copied']!r}")
    check(flag_re.match(f["copied"]) is not None, f"not cronrun flags: {f['copied']!r}")
    if flag_re.match(f["copied"]):
        r = subprocess.run([cronrun, "--dry-run", "--no-history", "--no-lock", "--cgroup", "off",
                            *f["copied"].split(" "), "--", "/bin/true"], capture_output=True, text=True)
        check(r.returncode == 0, f"cronrun refuses {f['copied']!r}: {r.stderr.strip()}")

# Links: there are some, every one lands on an element, and a failed run's log is
# reached from its job's row.
check(p["links"]["count"] > 0, "no in-page links")
check(not p["links"]["missing"], f"links to missing anchors: {p['links']['missing'][:5]}")
reach = p["reach"]["broken"]
check(reach.get("found") is not None, f"broken's log tail is not reached by links from its row: {reach}")
check(not p["xss"], "hostile log text ran as script")

# Charts over real time: a numeric x axis spanning the window, distinct tick
# labels, bad runs drawn apart, the limits the runs had drawn.
charts = p["charts"]
check(charts, "no charts")
for c in charts:
    check(c["x_type"] != "category", f"{c['id']}: categorical x axis")
    labels = c["tick_labels"]
    check(len(labels) >= 2 and len(set(labels)) == len(labels), f"{c['id']}: x tick labels {labels}")
def chart(word, job):
    return [c for c in charts if job in c["job"] and word in c["job"]]
def series(cs, pattern):
    return sum(d["points"] for c in cs for d in c["datasets"] if re.search(pattern, d["label"] or "", re.I))
check(series(chart("duration", "broken"), "bad") >= 2, "broken's bad runs not marked on its duration chart")
check(series(chart("duration", "slow"), "timeout") >= 1, "slow's timeout not drawn on its duration chart")
if oom:
    check(series(chart("memory", "oomjob"), "limit") >= 1, "oomjob's memory limit not drawn")
    check(series(chart("memory", "oomkid"), "bad") >= 1, "oomkid's OOM-killed run not marked")
sys.exit(1 if errors else 0)
EOF

# Against the schedule (--crontab, cronprof status' computation): a job whose
# every-minute ticks found no run is missed, listed after the failing jobs and
# before the good ones; a frequent job no longer reads 100 in every heat-map hour.
for i in 1 2; do run tick --cgroup off -- "$payload" mem 8 20; done
mkdir "$tmp/cron.d"
cat > "$tmp/cron.d/page" <<CRON
0 0 1 1 * root cronrun -n nightly -- $payload mem 16 50
0 0 1 1 * root cronrun -n broken -- /bin/false
* * * * * root cronrun -n ghost -- /bin/true
*/5 * * * * root cronrun -n tick -- $payload mem 8 20
CRON
touch -d '-2 hours' "$tmp/cron.d/page"
"$cronprof" --history "$H" report --html "$art/page-crontab.html" --crontab "$tmp/cron.d/page" --host-memory 64G \
  || fail "cronprof report --crontab exited $?"
probed "$art/page-crontab.html" "$art/page-crontab-probe.html"
probe page-crontab-probe
python3 - "$art/page-crontab-probe.json" <<'EOF' || fail "page checks with --crontab (probe: $art/page-crontab-probe.json)"
import json, sys
p = json.load(open(sys.argv[1]))
bad = []
def check(cond, what):
    if not cond:
        bad.append(what)
        print("  FAILED:", what, file=sys.stderr)
rows = p["jobs"]
print("rows:", json.dumps({k: v for k, v in rows.items() if k in ("ghost", "tick", "nightly", "broken")}, indent=1))
check(not p["errors"], f"script errors: {p['errors']}")
check(not p["clipped"] and p["page_width"] <= 1400, f"cut off: {p['clipped']}, width {p['page_width']}")
check(rows.get("ghost") and "missed" in rows["ghost"], f"ghost (never ran, ticks every minute) not missed: {rows.get('ghost')}")
check(rows.get("tick") and "missed tick" in rows["tick"], f"tick (ticks every 5 minutes, ran twice) shows no missed ticks: {rows.get('tick')}")
check(rows.get("broken") and "failing" in rows["broken"], f"broken not failing: {rows.get('broken')}")
check(rows.get("nightly") and "up" in rows["nightly"].split(), f"nightly not up: {rows.get('nightly')}")
order = [j for j in p["row_order"] if j in ("broken", "ghost", "nightly")]
check(order == ["broken", "ghost", "nightly"], f"rows in order {order}: failing, missed, up expected")
cells = [c for c in (p["heat"] or []) if c]
check(cells, "no heat-map cells with demand")
check(cells and any(c != "100" for c in cells), f"every heat-map hour reads 100: {sorted(set(cells))}")
sys.exit(1 if bad else 0)
EOF

# The screenshot a person looks at (kept as an artifact).
chrome page-shot --hide-scrollbars --window-size=1400,1600 --screenshot="$art/page.png" "file://$art/page-crontab.html" \
  || fail "screenshot"
[ -s "$art/page.png" ] || fail "no screenshot"
echo "ok: artifacts in $art"
