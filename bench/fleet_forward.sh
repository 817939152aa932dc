#!/usr/bin/env bash
# Forwarding throughput into the central history (records/s per batch size):
# RUNS fleet runs (default 5000: 10,000 journal records) forwarded by the fleet
# forwarder (runner/forward.h) into PostgreSQL, once per batch size (default 1,
# 100, 500), each into rows of its own. Starts the fleet tier's cluster
# (tests/fleet/cluster.sh: PostgreSQL 15 on loopback with fsync off, as the
# tests run it) unless CRONRUN_FLEET_PG names a running database. Aim (issue 17):
# >= 5,000 records/s.
#
# Prints where the time went per record: the forwarder's CPU, the server's CPU
# (the cluster started here, or CRONRUN_BENCH_PG_PID = the postmaster of
# CRONRUN_FLEET_PG when that is local), and wall.
#
#   bench/fleet_forward.sh [RUNS] [BATCH...]    BUILD_DIR (default build-bench), NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5000}
shift || true
batches=("$@")
[ ${#batches[@]} -gt 0 ] || batches=(1 100 500)
build=${BUILD_DIR:-build-bench}
if [ -z "${NO_BUILD:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRONRUN_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j2 --target fleet_forward_bench >/dev/null
fi
bench=$build/bench/fleet_forward_bench
if [ -z "${CRONRUN_FLEET_PG:-}" ]; then
  state=$(mktemp -d /tmp/cronrun-fleet-fwd.XXXXXX)
  trap 'tests/fleet/cluster.sh stop "$state/cluster"; rm -rf "$state"' EXIT
  tests/fleet/cluster.sh start "$state/cluster"
  # shellcheck disable=SC1091
  . "$state/cluster/env"
  CRONRUN_BENCH_PG_PID=$(head -1 "$state/cluster/pg/postmaster.pid")
  export CRONRUN_BENCH_PG_PID
fi
echo "PostgreSQL $(psql -X -At "$CRONRUN_FLEET_PG" -c 'SHOW server_version'), $(nproc) CPUs, $(uname -r)"
echo "$runs runs = $((runs * 2)) journal records per batch size"
"$bench" "$CRONRUN_FLEET_PG" "$runs" "${batches[@]}"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
