#!/usr/bin/env bash
# History benchmarks (figures for people; not a test):
#   1. `cronprof summary` over 1,000,000 runs of 500 jobs (target: under 2 s);
#   2. the runner's per-run history cost (begin_run + finish_run, each a durable
#      transaction) at 0, 100k and 1M rows already in the history (target: flat).
# usage: bench/history_bench.sh BUILD_DIR [WORK_DIR]
#   BUILD_DIR: a Release build (no sanitizers) with targets history_bench and cronprof:
#     cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
#     cmake --build build-bench --target history_bench cronprof
# Generating the 1M-row history takes minutes and ~1.5 GB in WORK_DIR (default /tmp).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [WORK_DIR]}
work=${2:-/tmp}/cronrun-history-bench
hb=$build/bench/history_bench
prof=$build/profiler/cronprof
mkdir -p "$work"
cd "$work"
rm -f 0.db* 100k.db* 1m.db*
echo "generating 100k and 1M synthetic runs of 500 jobs over 30 days..."
"$hb" generate 100k.db 100000 500 30
"$hb" generate 1m.db 1000000 500 30
echo "== summary over 1,000,000 runs (3 times; elapsed, user, sys) =="
for _ in 1 2 3; do
  /usr/bin/time -f "summary: %e s elapsed, %U s user, %S s sys, %M KB max RSS" \
    "$prof" --history 1m.db summary --since 3650d >/dev/null
done
/usr/bin/time -f "summary --json (30d window): %e s" "$prof" --history 1m.db --json summary >/dev/null
/usr/bin/time -f "suggest (all jobs): %e s" "$prof" --history 1m.db suggest --since 3650d >/dev/null
/usr/bin/time -f "export prometheus: %e s" "$prof" --history 1m.db export --format prometheus >/dev/null
echo "== runner insert cost (begin_run + finish_run), 300 runs each =="
for db in 0 100k 1m; do
  printf '%5s rows before: ' "$db"
  "$hb" insert "$db.db" 300
done
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
