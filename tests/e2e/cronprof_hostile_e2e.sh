#!/usr/bin/env bash
# cronprof on a hostile and damaged history. Real cronrun runs write the history;
# then rows are rewritten with SQLite the way another user who controls a job's
# argv or counters (or a damaged disk) could leave them: terminal escape sequences,
# CR/LF, C1 controls and bytes that are not UTF-8 in job names, commands, hosts,
# counters, notes and paths; a record that is not JSON; absurd figures. Every
# subcommand's output must carry no raw control byte and be UTF-8, every --json
# must parse, a damaged row is skipped and named while the rest is shown (exit 0),
# and `suggest --write` never writes a config that the real cronrun refuses.
# Environment (set by tests/e2e/CMakeLists.txt): CRONRUN CRONPROF CRONRUN_PAYLOAD.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}" "${CRONRUN_PAYLOAD:?}"
tmp=$(mktemp -d /tmp/cronprof-hostile.XXXXXX)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
H=$tmp/history.db
P=$CRONRUN_PAYLOAD
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
check() {  # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
run() {  # run NAME [cronrun options] -- ARGS
  local name=$1; shift
  "$CRONRUN" -n "$name" --no-lock --cgroup off --history "$H" -q "$@" >/dev/null 2>&1 || true
}
# safe FILE: no C0 control but newline, no DEL, valid UTF-8, no C1 control or bidi override.
safe() {
  python3 - "$1" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
for i, b in enumerate(data):
    if (b < 0x20 and b != 0x0a) or b == 0x7f:
        sys.exit(f"raw control byte 0x{b:02x} at offset {i}: {data[max(0, i - 30):i + 10]!r}")
try:
    text = data.decode('utf-8')
except UnicodeDecodeError as e:
    sys.exit(f"not UTF-8: {e}")
for i, ch in enumerate(text):
    if 0x80 <= ord(ch) <= 0x9f or 0x202a <= ord(ch) <= 0x202e or 0x2066 <= ord(ch) <= 0x2069:
        sys.exit(f"C1 control / bidi override U+{ord(ch):04X} at {i}")
EOF
}
is_json() { python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$1"; }
# out NAME cronprof-args...: runs cronprof, stdout to $tmp/NAME, stderr to $tmp/NAME.err; returns its exit code.
out() {
  local name=$1; shift
  local rc=0
  "$CRONPROF" --history "$H" "$@" >"$tmp/$name" 2>"$tmp/$name.err" || rc=$?
  echo "$rc" >"$tmp/$name.rc"
}
rc_of() { cat "$tmp/$1.rc"; }

# ---- a history from real runs ----
for i in 1 2 3 4 5 6; do run steady --timeout 60s -- "$P" mem 16 50; done
for i in 1 2 3 4 5 6; do run huge -- "$P" exit 0; done
for i in 1 2 3 4 5 6; do run escape -- "$P" exit 0; done
run badutf8 -- "$P" exit 0
run garbage -- "$P" exit 0
run nonumber -- "$P" exit 0
total=21
# Runs land in the run journal; fold them into the history the neighbour rewrites.
"$CRONRUN" --flush --history "$H" >/dev/null

# ---- ... rewritten by a hostile neighbour ----
python3 - "$H" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
evil = "x\x1b[2J\r\n\u009b\x1b]0;pwned\x07\u202ey"   # JSON carries these as \u escapes
# Job "steady": every string of the record and the job column made hostile.
for run_id, rec in db.execute("SELECT run_id, record FROM runs WHERE job = 'steady'").fetchall():
    r = json.loads(rec)
    r["job"] = "steady" + evil
    r["host"] = "host" + evil
    r["user"] = "user" + evil
    r["command"] = r["command"] + ["arg" + evil]
    r.setdefault("counters", {})["rows" + evil] = 5
    r.setdefault("isolation", {})["note"] = "note" + evil
    r.setdefault("lock", {})["path"] = "/lock" + evil
    db.execute("UPDATE runs SET job = ?, record = ? WHERE run_id = ?", ("steady" + evil, json.dumps(r), run_id))
# Job "huge": absurd figures (infinite wall, CPU far beyond any host, an exabyte
# peak) in the columns and the record.
for run_id, rec in db.execute("SELECT run_id, record FROM runs WHERE job = 'huge'").fetchall():
    r = json.loads(rec)
    r["wall_s"] = 1e300
    r.setdefault("usage", {})["cpu_user_s"] = 1e306
    r["usage"]["memory_peak_bytes"] = 18446744073709551615
    text = json.dumps(r)
    db.execute("UPDATE runs SET wall_s = 9e999, cpu_s = 1e306, memory_peak_bytes = 9223372036854775807, "
               "record = ? WHERE run_id = ?", (text, run_id))
# Job "escape": a name that would leave jobs.d as a path (suggest --write's default file).
for run_id, rec in db.execute("SELECT run_id, record FROM runs WHERE job = 'escape'").fetchall():
    r = json.loads(rec)
    r["job"] = "../escaped"
    db.execute("UPDATE runs SET job = ?, record = ? WHERE run_id = ?", ("../escaped", json.dumps(r), run_id))
# A command argument and job name with a byte that is not UTF-8 (0xff), raw in the text.
run_id, rec = db.execute("SELECT run_id, record FROM runs WHERE job = 'badutf8'").fetchone()
raw = rec.encode().replace(b'"badutf8"', b'"bad\xffutf8"', 1).replace(b'"exit"', b'"ex\xffit"', 1)
db.execute("UPDATE runs SET job = CAST(? AS TEXT), record = CAST(? AS TEXT) WHERE run_id = ?",
           (b"bad\xffutf8", raw, run_id))
# Damage: a record that is not JSON, and a figure column holding text.
db.execute("UPDATE runs SET record = 'garbage' WHERE job = 'garbage'")
db.execute("UPDATE runs SET wall_s = 'garbage' WHERE job = 'nonumber'")
db.commit()
EOF
garbage_id=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT run_id FROM runs WHERE job='garbage'\").fetchone()[0])" "$H")
steady_id=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT run_id FROM runs WHERE job LIKE 'steady%' LIMIT 1\").fetchone()[0])" "$H")

# ---- every subcommand: exit 0, no raw control byte, UTF-8, JSON parses ----
out runs runs --limit 0
out runs_json --json runs --limit 0
out show show "$steady_id"
out show_json --json show "$steady_id"
out show_bad show bad
out summary summary
out summary_json --json summary
out suggest suggest
out suggest_json --json suggest
out csv export --format csv
out export_json export --format json
out prom export --format prometheus
out ps ps
out report report --html "$tmp/report.html"
cp "$tmp/report.html" "$tmp/report_html"; cp "$tmp/report.rc" "$tmp/report_html.rc"; : >"$tmp/report_html.err"
for o in runs runs_json show show_json summary summary_json suggest suggest_json csv export_json prom ps report report_html; do
  check "$o: exit 0 (got $(rc_of $o); stderr: $(head -c 300 "$tmp/$o.err"))" test "$(rc_of $o)" -eq 0
  check "$o: stdout has no raw control byte and is UTF-8" safe "$tmp/$o"
  check "$o: stderr has no raw control byte and is UTF-8" safe "$tmp/$o.err"
done
for o in runs_json show_json summary_json suggest_json export_json; do
  check "$o parses as JSON" is_json "$tmp/$o"
done
check "show: the hostile strings are shown escaped" grep -qF 'x\x1b[2J\r\n\u{009b}\x1b]0;pwned\x07\u{202e}y' "$tmp/show"
check "runs: the absurd wall time prints as >100y" grep -q '>100y' "$tmp/runs"
check "runs: no overflowed duration" bash -c "! grep -q -- '-2562047788015215h' '$tmp/runs'"

# ---- one damaged row does not hide the others ----
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]))' "$tmp/runs_json" || echo -1)
check "runs --json: every readable row ($n of $total; the 'garbage' record skipped)" test "$n" -eq $((total - 1))
check "runs --json: the skipped row is named on stderr" grep -q "skipped unreadable history row, run $garbage_id: stored record is not valid JSON" "$tmp/runs_json.err"
check "runs --json: and counted" grep -q "skipped 1 unreadable row of" "$tmp/runs_json.err"
check "runs --json: the non-UTF-8 row is read (U+FFFD)" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert any(r["job"] == "bad\ufffdutf8" and "ex\ufffdit" in r["command"] for r in d["runs"])' "$tmp/runs_json"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/export_json" || echo -1)
check "export json: every readable row ($n)" test "$n" -eq $((total - 1))
check "export json: says one was skipped" grep -q "skipped 1 unreadable row" "$tmp/export_json.err"
check "export csv: header + every readable row" test "$(wc -l <"$tmp/csv")" -eq $total
check "export csv: says one was skipped" grep -q "skipped 1 unreadable row" "$tmp/csv.err"
check "runs table: the row whose wall_s is text is skipped and named" grep -q "wall_s is not a number" "$tmp/runs.err"
check "runs table: every other row" test "$(wc -l <"$tmp/runs")" -eq $total
check "summary: names the skipped row" grep -q "skipped 1 unreadable row" "$tmp/summary.err"
check "report: names the skipped row" grep -q "skipped 1 unreadable row" "$tmp/report.err"
check "prometheus: every job but the damaged one" test "$(grep -c '^cronrun_last_success_timestamp_seconds{' "$tmp/prom")" -eq 5
if command -v promtool >/dev/null; then
  check "promtool check metrics on the hostile export" bash -c "promtool check metrics < '$tmp/prom'"
fi

# ps: a damaged row among the runs in progress (a copy of the history, so the
# counts above stay as they are).
cp "$H" "$tmp/ps.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE runs SET status='running', record='garbage' WHERE job='garbage'\"); c.commit()" "$tmp/ps.db"
rc=0
"$CRONPROF" --history "$tmp/ps.db" ps >"$tmp/ps2" 2>"$tmp/ps2.err" || rc=$?
check "ps with a damaged running row: exit 0 (got $rc: $(head -c 200 "$tmp/ps2.err"))" test "$rc" -eq 0
check "ps: says it skipped the row" grep -q "skipped 1 unreadable row" "$tmp/ps2.err"

# ---- suggest --write never writes what cronrun refuses ----
# Absurd figures: whatever is written, the real cronrun accepts it.
printf '{\n  // by hand\n  "nice": 5\n}\n' >"$tmp/huge.json"
out write_huge suggest --job huge --write --config "$tmp/huge.json"
check "suggest --write on absurd figures: exit 0 or 1 (got $(rc_of write_huge))" test "$(rc_of write_huge)" -le 1
check "suggest --write on absurd figures: cronrun accepts the file" \
  "$CRONRUN" -n huge -c "$tmp/huge.json" --no-lock --cgroup off --dry-run -- "$P" exit 0
check "suggest --write on absurd figures: no timeout from an infinite wall" bash -c "! grep -q timeout '$tmp/huge.json'"
# A config cronrun already refuses (unknown key) is not made worse or replaced.
printf '{ "memroy": "1G" }\n' >"$tmp/typo.json"
cp "$tmp/typo.json" "$tmp/typo.orig"
out write_typo suggest --job huge --write --config "$tmp/typo.json"
check "suggest --write refuses to write a config cronrun would refuse (exit $(rc_of write_typo))" test "$(rc_of write_typo)" -eq 1
check "... and says why in one line" grep -q "cronrun would refuse the result" "$tmp/write_typo.err"
check "... leaving the file as it was" cmp -s "$tmp/typo.json" "$tmp/typo.orig"
check "... and no temp file beside it" test "$(ls "$tmp" | grep -c '^typo.json.')" -eq 0
# The hostile job's default file: the name from the history never becomes a path.
mkdir -p "$tmp/xdg" && chmod 777 "$tmp/xdg" && chmod 755 "$tmp"
as_user=()
if [ "$(id -u)" -eq 0 ]; then as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
rc=0
env XDG_CONFIG_HOME="$tmp/xdg" HOME="$tmp/xdg" "${as_user[@]}" "$CRONPROF" --history "$H" suggest --write \
  >"$tmp/write_default" 2>"$tmp/write_default.err" || rc=$?
check "suggest --write (default files): exit 1 for the jobs it refuses (got $rc)" test "$rc" -eq 1
check "... names the refusal" grep -q "not a cronrun job name" "$tmp/write_default.err"
check "... wrote nothing outside jobs.d" test ! -e "$tmp/xdg/cronrun/escaped.json"
check "... and no file named after the hostile job" test "$(find "$tmp/xdg" -type f | grep -c -v '/jobs.d/huge.json$' || true)" -eq 0
check "... its output has no raw control byte" safe "$tmp/write_default.err"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
