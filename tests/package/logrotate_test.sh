#!/usr/bin/env bash
# contrib/logrotate/cronrun keeps 30 days of job logs, as it says: logrotate run
# with the shipped rules (log directory moved under a temp dir) and a state file
# saying every log was last rotated three days ago, so `daily` is due for all.
# Logs whose mtime is 40 days old go (an empty one too); 2- and 29-day-old ones
# stay, untouched and not renamed.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v logrotate >/dev/null || { echo "logrotate not installed (scripts/install-deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
logs=$tmp/log
mkdir -p "$logs/nightly-report" "$logs/backup"
chmod 0750 "$logs/nightly-report" "$logs/backup"
sed "s|/var/log/cronrun|$logs|" "$src/contrib/logrotate/cronrun" >"$tmp/cronrun.conf"
grep -q "^$logs/\*/\*.log {" "$tmp/cronrun.conf" || { echo "FAIL: the shipped file's path pattern changed"; exit 1; }

aged() {  # aged FILE DAYS [CONTENT]
  printf '%s' "${3-}" >"$1"
  touch -d "@$(($(date +%s) - $2 * 86400))" "$1"
}
aged "$logs/nightly-report/old.log" 40 "output of a run 40 days ago"
aged "$logs/nightly-report/young.log" 2 "output of a run 2 days ago"
aged "$logs/backup/edge.log" 29 "output of a run 29 days ago"
aged "$logs/backup/old-empty.log" 40 ""

{
  echo "logrotate state -- version 2"
  three_days_ago=$(date -d '3 days ago' +%Y-%-m-%-d-%-H:%-M:%-S)
  for f in "$logs"/*/*.log; do echo "\"$f\" $three_days_ago"; done
} >"$tmp/state"
chmod 0600 "$tmp/state"

logrotate -v -s "$tmp/state" "$tmp/cronrun.conf" >"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "FAIL: logrotate failed"; exit 1; }

fail=0
for gone in nightly-report/old.log backup/old-empty.log; do
  [ ! -e "$logs/$gone" ] || { echo "FAIL: $gone (40 days old) was kept"; fail=1; }
done
for kept in nightly-report/young.log backup/edge.log; do
  [ -s "$logs/$kept" ] || { echo "FAIL: $kept (under 30 days old) was deleted or emptied"; fail=1; }
done
leftover=$(find "$logs" -type f ! -name '*.log')
[ -z "$leftover" ] || { echo "FAIL: rotated copies left behind: $leftover"; fail=1; }
if [ $fail = 1 ]; then cat "$tmp/out"; exit 1; fi
echo "ok: 40-day-old logs deleted, 2- and 29-day-old logs kept"
