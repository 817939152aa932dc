#!/usr/bin/env bash
# The example alerts of cronprof(1), tested with `promtool test rules` against
# what Prometheus would really scrape from `cronprof export --format prometheus`
# of a history written by real cronrun runs:
#   - the rules are read from the man page itself (between its BEGIN/END
#     example-alerts markers), so the page cannot drift from what is tested;
#   - each export becomes input series the way a node_exporter scrape makes them:
#     the scrape's own job="node" and instance labels added, and a `job` label in
#     the file renamed to `exported_job` (what Prometheus does with honor_labels
#     false, its default), so an alert keyed on the wrong label fails here;
#   - Unix-time samples (*_timestamp_seconds) are moved by one offset per export
#     so that the export's own time is the test time at which it is scraped: ages
#     (time() - sample) are the real ones.
# Scenario: `backup` succeeds and its newest run is a lock skip (healthy: no
# alert); `flaky` last failed; `never` never succeeded; `ghost` is in the crontab
# (every minute, installed five minutes ago) and never ran: its ticks are missed
# (export --crontab, the computation of `cronprof status`). Then gc removes every
# row and new runs are recorded: cronrun_runs_total must not go down.
# Environment (tests/e2e/CMakeLists.txt): CRONRUN CRONPROF CRONRUN_PAYLOAD.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}" "${CRONRUN_PAYLOAD:?}"
here=$(cd "$(dirname "$0")" && pwd)
man_page=$here/../../man/cronprof.1
if ! command -v promtool >/dev/null; then
  # scripts/install-deps.sh installs it (Debian package prometheus).
  if [ -n "${CI:-}" ]; then echo "promtool missing in CI" >&2; exit 1; fi
  echo "skip - promtool not installed"
  exit 0
fi
tmp=$(mktemp -d /tmp/cronprof-alerts.XXXXXX)
bg_pids=()
cleanup() {
  for p in "${bg_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
H=$tmp/history.db
P=$CRONRUN_PAYLOAD
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
check() {
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
run() {  # run NAME [cronrun options] -- ARGS; never fails the script
  local name=$1; shift
  "$CRONRUN" -n "$name" --no-lock --cgroup off --history "$H" -q "$@" >/dev/null 2>&1 || true
}
# Until the lock file $1 names pid $2: cronrun writes its pid there once it holds
# the lock, and an earlier holder's pid stays after it ends, so "not empty" is no
# sign. Polls with a generous bound (a loaded machine is slow to start a run).
wait_lock_holder() {
  local _
  for _ in $(seq 1200); do [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0; sleep 0.05; done
  echo "lock $1 was never held by $2 (it says: $(cat "$1" 2>/dev/null))" >&2
  return 1
}
# A job (sh -c) that ends once the file $1 exists; exit 1 if it never does in 60 s.
hold_until='i=0; while [ ! -e "$0" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; [ -e "$0" ]'
export_prom() { "$CRONPROF" --history "$H" export --format prometheus --crontab "$tmp/cron.d" --output "$1"; }
export TZ=UTC
mkdir "$tmp/cron.d"
echo "* * * * * root cronrun -n ghost -- $P exit 0" >"$tmp/cron.d/jobs"
touch -d "@$(( $(date +%s) / 60 * 60 - 320 ))" "$tmp/cron.d/jobs"

# ---- a real history ----
run backup -- "$P" exit 0
run flaky -- "$P" exit 0
run flaky -- "$P" exit 3
run never -- "$P" exit 1
# backup's newest run: skipped, its lock held by a run still going (until the
# test releases it, however long the skip takes to run).
"$CRONRUN" -n backup --lock "$tmp/backup.pid" --cgroup off --history "$H" -q -- sh -c "$hold_until" "$tmp/release1" &
bg_pids+=($!)
wait_lock_holder "$tmp/backup.pid" "${bg_pids[-1]}" || bad "the first backup run never held its lock"
"$CRONRUN" -n backup --lock "$tmp/backup.pid" --on-locked skip --cgroup off --history "$H" -q -- "$P" exit 0 || true
touch "$tmp/release1"
wait "${bg_pids[-1]}" || bad "the first backup run did not end ok"
# Now the newest row of backup is the long run (ok); one more skip on top of it.
# The first holder's pid is still in the lock file: wait for this holder's.
"$CRONRUN" -n backup --lock "$tmp/backup.pid" --cgroup off --history "$H" -q -- sh -c "$hold_until" "$tmp/release2" &
bg_pids+=($!)
wait_lock_holder "$tmp/backup.pid" "${bg_pids[-1]}" || bad "the second backup run never held its lock"
"$CRONRUN" -n backup --lock "$tmp/backup.pid" --on-locked skip --cgroup off --history "$H" -q -- "$P" exit 0 || true
touch "$tmp/release2"
wait "${bg_pids[-1]}" || bad "the second backup run did not end ok"
newest=$("$CRONPROF" --history "$H" --json runs --job backup --limit 1 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["status"])')
check "backup's newest run is a skip (got $newest)" test "$newest" = skipped

export_prom "$tmp/1.prom"
check "promtool check metrics (first export)" bash -c "promtool check metrics < '$tmp/1.prom'"
missed=$(sed -n 's/^cronrun_missed_ticks{cronjob="ghost"} //p' "$tmp/1.prom")
check "the job that never ran has its missed ticks exported (${missed:-none})" test "${missed:-0}" -ge 4
check "and its state is missed" grep -q '^cronrun_job_state{cronjob="ghost",state="missed"} 1$' "$tmp/1.prom"
check "jobs not in the crontab have no schedule series" bash -c "! grep -q '^cronrun_missed_ticks{cronjob=\"backup\"}' '$tmp/1.prom'"

# ---- gc removes every row; new runs after it ----
"$CRONPROF" --history "$H" gc --keep 0s >/dev/null
run backup -- "$P" exit 0
run flaky -- "$P" exit 0
run flaky -- "$P" exit 3
export_prom "$tmp/2.prom"
check "promtool check metrics (after gc)" bash -c "promtool check metrics < '$tmp/2.prom'"
check "cronrun_runs_total is a counter" grep -q '^# TYPE cronrun_runs_total counter$' "$tmp/2.prom"
python3 - "$tmp/1.prom" "$tmp/2.prom" >"$tmp/monotonic" 2>&1 <<'EOF' || true
import re, sys
def totals(path):
    out = {}
    for line in open(path):
        m = re.match(r'^cronrun_runs_total\{(.*)\} (\S+)$', line)
        if m: out[m.group(1)] = float(m.group(2))
    return out
a, b = totals(sys.argv[1]), totals(sys.argv[2])
bad = [k for k in a if b.get(k, -1) < a[k]]
print("decreased:", bad if bad else ("none" if a else "no cronrun_runs_total series at all"))
print("first:", a.get('cronjob="flaky",status="failed"'), "second:", b.get('cronjob="flaky",status="failed"'))
EOF
check "no cronrun_runs_total series went down across gc ($(head -1 "$tmp/monotonic"))" grep -q '^decreased: none$' "$tmp/monotonic"
check "flaky's failures counted on: 1 then 2 ($(tail -1 "$tmp/monotonic"))" grep -q '^first: 1.0 second: 2.0$' "$tmp/monotonic"

# ---- the man page's rules ----
python3 - "$man_page" "$tmp/rules.yml" <<'EOF'
# Unescapes the roff of the example block; an escape it does not know fails the
# test rather than silently differ from what man(1) shows.
import re, sys
src = open(sys.argv[1]).read().splitlines()
try:
    a = src.index('.\\" BEGIN example-alerts') + 1
    b = src.index('.\\" END example-alerts')
except ValueError:
    sys.exit("man page: no BEGIN/END example-alerts markers")
out = []
for line in src[a:b]:
    if line.startswith('.'):
        continue  # .nf .fi .RS .RE
    line = line.replace('\\-', '-').replace('\\(aq', "'").replace('\\(dq', '"').replace('\\&', '')
    line = line.replace('\\e', '\x00')
    if '\\' in line:
        sys.exit("man page: unknown roff escape in: " + line)
    out.append(line.replace('\x00', '\\'))
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
EOF
check "the man page's rules pass promtool check rules" promtool check rules "$tmp/rules.yml"

# Series as a scrape would store them: export 1 scraped from 0m to 9m, export 2
# from 10m for three days (nothing newer arrives: the export goes stale).
python3 - "$tmp/1.prom" "$tmp/2.prom" >"$tmp/series.yml" <<'EOF'
import re, sys
INTERVAL = 60
starts = [0, 600]
end = 3 * 86400 + 3600
def parse(path):
    samples, export = {}, None
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line.strip())
        name, labels, value = m.group(1), m.group(2) or '', float(m.group(3))
        pairs = re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', labels)
        # The scrape: honor_labels false renames a clashing `job` label.
        pairs = [('exported_job' if k == 'job' else k, v) for k, v in pairs]
        pairs += [('job', 'node'), ('instance', 'host1:9100')]
        key = name + '{' + ','.join('%s="%s"' % kv for kv in sorted(pairs)) + '}'
        samples[key] = (name, value)
        if name == 'cronrun_export_timestamp_seconds':
            export = value
    return samples, export
snaps = [parse(p) for p in sys.argv[1:]]
keys = sorted(set(k for s, _ in snaps for k in s))
print('rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:')
for key in keys:
    parts = []
    for i, (samples, export) in enumerate(snaps):
        until = starts[i + 1] if i + 1 < len(starts) else end
        n = (until - starts[i]) // INTERVAL
        if key not in samples:
            parts.append('_x%d' % n)
            continue
        name, v = samples[key]
        if name.endswith('_timestamp_seconds'):
            v -= export - starts[i]  # this export's time is its scrape's time
        parts.append('%s+0x%d' % (repr(v), n - 1))
    print("      - series: '%s'\n        values: '%s'" % (key, ' '.join(parts)))
EOF
# What must fire when, with the labels an on-call engineer reads.
cat >>"$tmp/series.yml" <<'EOF'
    alert_rule_test:
      # Export 1: flaky's last run failed, never never succeeded. backup's newest
      # row is a lock skip: no alert for it.
      - eval_time: 5m
        alertname: CronJobFailed
        exp_alerts:
          - exp_labels: {severity: warning, cronjob: flaky, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job flaky on host1:9100: its last run failed"}
          - exp_labels: {severity: warning, cronjob: never, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job never on host1:9100: its last run failed"}
      - eval_time: 5m
        alertname: CronJobNoRecentSuccess
        exp_alerts:
          - exp_labels: {severity: critical, cronjob: never, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job never on host1:9100: no successful run for more than a day"}
      - eval_time: 5m
        alertname: CronrunExportStale
        exp_alerts: []
      - eval_time: 5m
        alertname: CronJobMissedRuns
        exp_alerts:
          - exp_labels: {severity: warning, cronjob: ghost, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job ghost on host1:9100: scheduled runs did not start"}
      # Export 2, after gc: backup ran fine again, flaky failed again.
      - eval_time: 15m
        alertname: CronJobFailed
        exp_alerts:
          - exp_labels: {severity: warning, cronjob: flaky, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job flaky on host1:9100: its last run failed"}
      # `never` has no rows left, only its count: no last-run or last-success
      # series, so a job whose rows have all been removed stops alerting.
      - eval_time: 15m
        alertname: CronJobNoRecentSuccess
        exp_alerts: []
      # Two days later with no new export: the export is stale, and no job has
      # succeeded for more than a day.
      - eval_time: 2d
        alertname: CronrunExportStale
        exp_alerts:
          - exp_labels: {severity: warning, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cronrun export on host1:9100 not updated for more than 15 minutes"}
      - eval_time: 2d
        alertname: CronJobNoRecentSuccess
        exp_alerts:
          - exp_labels: {severity: critical, cronjob: backup, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job backup on host1:9100: no successful run for more than a day"}
          - exp_labels: {severity: critical, cronjob: flaky, instance: "host1:9100", job: node}
            exp_annotations: {summary: "cron job flaky on host1:9100: no successful run for more than a day"}
EOF
(cd "$tmp" && promtool test rules series.yml) >"$tmp/promtool.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" -eq 0 ]; then ok "promtool test rules: the man page's alerts fire as expected"; else
  bad "promtool test rules failed:"; cat "$tmp/promtool.out" >&2; echo "--- series.yml" >&2; head -40 "$tmp/series.yml" >&2
fi

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
