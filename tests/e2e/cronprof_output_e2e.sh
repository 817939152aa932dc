#!/usr/bin/env bash
# What every cronprof subcommand prints, on a history written by real cronrun
# runs (DESIGN sections 4 and 6):
#   - each --json document carries a `schema` ("cronrun.NAME/N"), every timestamp
#     in it has the run record's one form (2026-11-23T02:10:00.123Z; a plain date
#     is a date), and no whole number is written as a real (1200.0) except where
#     the figure is a real quantity (seconds, cores, percent);
#   - each table fits the terminal: $COLUMNS, else 80 when stdout is not a
#     terminal; no line wider, none wrapped (one line per row); --wide prints it all.
# Environment (tests/e2e/CMakeLists.txt): CRONRUN CRONPROF CRONRUN_PAYLOAD.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}" "${CRONRUN_PAYLOAD:?}"
tmp=$(mktemp -d /tmp/cronprof-output.XXXXXX)
bg_pids=()
cleanup() {
  # TERM: the runner stops its job and records the run (SIGKILL would orphan it).
  for p in "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
H=$tmp/history.db
P=$CRONRUN_PAYLOAD
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
run() {
  local name=$1; shift
  "$CRONRUN" -n "$name" --no-lock --cgroup off --history "$H" -q "$@" >/dev/null 2>&1 || true
}
long=nightly-report-for-the-finance-department-with-a-long-name
for _ in 1 2 3 4 5 6; do run steady --timeout 60s -- "$P" counter rows_exported 1200; done
for _ in 1 2 3; do run "$long" -- "$P" mem 8 20; done
run flaky -- "$P" exit 3
run slow --timeout 1s --kill-after 1s -- "$P" sleep 30
cat >"$tmp/crontab" <<EOF
*/5 * * * * cronrun -n steady --timeout 60s -- $P counter rows_exported 1200 --and-a-very-long-argument-list-that-goes-on-and-on-and-on
0 3 * * * cronrun -n $long -- $P mem 8 20
17 * * * * cronrun -n flaky -- $P exit 3
EOF
# A run in progress for `ps`.
"$CRONRUN" -n "$long" --no-lock --cgroup off --history "$H" -q -- "$P" sleep 300 >/dev/null 2>&1 &
live=$!
bg_pids+=($live)
deadline=$((SECONDS + 60))  # a time bound: each poll is a cronprof run, slow under load
while [ $SECONDS -lt $deadline ]; do
  "$CRONPROF" --history "$H" --json ps | grep -q '"run_id"' && break
  sleep 0.1
done

cat >"$tmp/check.py" <<'EOF'
import json, re, sys
TS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
DATE = re.compile(r'^\d{4}-\d\d-\d\d$')
LOOKS_LIKE_TIME = re.compile(r'^\d{4}-\d\d-\d\d')
# Figures that are real quantities: a whole value there may print as 0.0.
REAL = re.compile(r'(_s|_s_mean|_pct|_cores|cores|cpus|headroom)$')
name = sys.argv[1]
doc = json.load(sys.stdin)
problems = []
def walk(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(x, path + [k])
    elif isinstance(v, list):
        for x in v:
            walk(x, path)
    elif isinstance(v, float):
        if v.is_integer() and not any(REAL.search(p) for p in path):
            problems.append("%s is %r: a whole number written as a real" % ("/".join(path), v))
    elif isinstance(v, str):
        if LOOKS_LIKE_TIME.match(v) and not TS.match(v) and not DATE.match(v):
            problems.append("%s = %r: not the one timestamp form" % ("/".join(path), v))
for d in (doc if isinstance(doc, list) else [doc]):
    if not (isinstance(d, dict) and isinstance(d.get("schema"), str) and re.match(r'^cronrun\.[a-z]+/\d+$', d["schema"])):
        problems.append("no schema")
walk(doc, [])
print("; ".join(problems[:5]) if problems else "clean")
EOF
json_check() {  # json_check NAME cronprof-args...
  local name=$1; shift
  local verdict
  # The exit code is the subcommand's own (status exits 8 when a job is failing).
  "$CRONPROF" --history "$H" --json "$@" >"$tmp/doc" 2>"$tmp/err" || true
  verdict=$(python3 "$tmp/check.py" "$name" <"$tmp/doc" 2>&1) || verdict="not JSON: $(head -c 300 "$tmp/err")"
  if [ "$verdict" = clean ]; then ok "--json $name: schema, timestamps, integers"; else bad "--json $name: $verdict"; fi
}

# ---- every subcommand's JSON ----
json_check runs runs
json_check show show steady
json_check summary summary
json_check suggest suggest
json_check plan plan --crontab "$tmp/crontab"
json_check report report --html "$tmp/report.html"
json_check ps ps
json_check gc gc --keep 3650d --dry-run
# status (issue 19 section 1) where this build has it.
if "$CRONPROF" --help 2>&1 | grep -q '^  status'; then json_check status status --crontab "$tmp/crontab"; fi
# --output - and /dev/stdout are standard output (as report --html's OUT), never a file named "-".
for out in - /dev/stdout; do
  a=$(cd "$tmp" && "$CRONPROF" --history "$H" export --format csv --output "$out" | md5sum)
  b=$("$CRONPROF" --history "$H" export --format csv | md5sum)
  if [ "$a" = "$b" ] && [ ! -e "$tmp/-" ]; then ok "export --output $out writes to stdout"; else bad "export --output $out: not stdout"; fi
done
# export json is a list of run records, each with its own schema.
verdict=$("$CRONPROF" --history "$H" export --format json | python3 "$tmp/check.py" export)
if [ "$verdict" = clean ]; then ok "export --format json: every record's schema, timestamps, integers"; else bad "export json: $verdict"; fi
# The counter the payload wrote is the integer it is.
n=$("$CRONPROF" --history "$H" --json show steady | python3 -c 'import json,sys; v=json.load(sys.stdin)["counters"]["rows_exported"]; print(type(v).__name__, v)')
if [ "$n" = "int 1200" ]; then ok "counters: rows_exported is the integer 1200"; else bad "counters: rows_exported is $n"; fi

# ---- tables fit the terminal ----
fits() {  # fits WIDTH NAME cronprof-args... (COLUMNS=WIDTH, or none for the 80 default)
  local width=$1 name=$2; shift 2
  local env=()
  [ "$width" = default ] && width=80 || env=(COLUMNS="$width")
  env "${env[@]}" "$CRONPROF" --history "$H" "$@" >"$tmp/table" 2>/dev/null || true
  local widest
  widest=$(python3 -c 'import sys; print(max((len(l.rstrip("\n")) for l in open(sys.argv[1], encoding="utf-8")), default=0))' "$tmp/table")
  if [ "$widest" -le "$width" ] && [ -s "$tmp/table" ]; then ok "$name fits $width columns (widest $widest)"; else
    bad "$name at $width columns: widest line $widest"; cat "$tmp/table" >&2; fi
}
for w in default 80 60 132; do
  fits "$w" runs runs --limit 0
  fits "$w" summary summary
  fits "$w" ps ps
  fits "$w" plan plan --crontab "$tmp/crontab"
done
# One line per row: the runs table has the header and one line per run.
rows=$(COLUMNS=60 "$CRONPROF" --history "$H" runs --limit 0 | wc -l)
want=$(( $("$CRONPROF" --history "$H" --json runs --limit 0 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))') + 1 ))
if [ "$rows" -eq "$want" ]; then ok "runs at 60 columns: one line per run, nothing wrapped"; else bad "runs at 60 columns: $rows lines, want $want"; fi
# Shortened, not lost: the long name is cut with an ellipsis, --wide shows it whole.
if COLUMNS=80 "$CRONPROF" --history "$H" summary | grep -q 'nightly-rep.*…'; then ok "a long job name is shortened with an ellipsis"; else bad "no shortened job name in the 80-column summary"; fi
if COLUMNS=80 "$CRONPROF" --history "$H" --wide summary | grep -q "$long"; then ok "--wide prints the whole name"; else bad "--wide does not print the whole name"; fi
if [ "$(COLUMNS=80 "$CRONPROF" --history "$H" --wide summary | head -1 | wc -L)" -gt 150 ]; then ok "--wide prints every column"; else bad "--wide summary is narrow"; fi

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
