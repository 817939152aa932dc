#!/usr/bin/env bash
# README's demo command: installs what the build needs, builds cronrun and cronprof
# (release), runs a real job under cronrun with limits, a lock, DB-query counting
# and a profile, then shows what cronprof knows about it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-demo}

scripts/install-deps.sh build
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target cronrun cronprof cronrun-db cronrun-payload

state=${DEMO_DIR:-/tmp/cronrun-demo}
mkdir -p "$state"
db="$state/history.db"
job="$state/nightly-report.sh"
cat >"$job" <<'JOB'
#!/bin/sh
# A small "nightly report": builds a table in SQLite, aggregates it, sorts a file.
set -e
dir=$(mktemp -d)
sqlite3 "$dir/r.db" 'CREATE TABLE t(k INTEGER, v REAL);'
i=0
while [ $i -lt 200 ]; do
  echo "INSERT INTO t VALUES ($i, $i * 1.5);"
  i=$((i + 1))
done | sqlite3 "$dir/r.db"
sqlite3 "$dir/r.db" 'SELECT count(*), sum(v) FROM t;' >/dev/null
seq 1 300000 | sort -r | sort -n > "$dir/sorted.txt"
echo "rows_exported $(wc -l < "$dir/sorted.txt")" >> "$CRONRUN_COUNTERS"
rm -rf "$dir"
JOB
chmod +x "$job"

bin="$build/runner/cronrun"
prof="$build/profiler/cronprof"
echo "\$ cronrun --name nightly-report --memory 256M --cpu 150% --timeout 5m --count-db-queries --report -- $job"
for i in 1 2 3; do
  "$bin" --history "$db" --name nightly-report --memory 256M --cpu 150% --timeout 5m \
    --count-db-queries --report --lock "$state/nightly-report.pid" -- "$job"
done
echo
echo "\$ cronprof show nightly-report"
"$prof" --history "$db" show nightly-report
echo
echo "\$ cronprof summary"
"$prof" --history "$db" summary
