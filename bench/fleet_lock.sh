#!/usr/bin/env bash
# Fleet lock latency on loopback: fleet mode's acquire (lease_grant + the claim
# txn) and release (lease_revoke) through cronrun's etcd client, SAMPLES rounds
# (default 1000), p50 / p99 / max. Starts the fleet tier's 3-member cluster
# (tests/fleet/cluster.sh, etcd on tmpfs: no disk fsync in the figures) unless
# CRONRUN_FLEET_ETCD names a running one; stops it afterwards. The client talks
# to the first endpoint, which may be the leader or a follower (a follower
# forwards to the leader: one more loopback hop); both are measured.
#
#   bench/fleet_lock.sh [SAMPLES]      BUILD_DIR (default build-bench), NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-1000}
build=${BUILD_DIR:-build-bench}
if [ -z "${NO_BUILD:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRONRUN_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j2 --target fleet_lock_bench >/dev/null
fi
bench=$build/bench/fleet_lock_bench
if [ -z "${CRONRUN_FLEET_ETCD:-}" ]; then
  state=$(mktemp -d /tmp/cronrun-fleet-lock.XXXXXX)
  trap 'tests/fleet/cluster.sh stop "$state/cluster"; rm -rf "$state"' EXIT
  tests/fleet/cluster.sh start "$state/cluster"
  # shellcheck disable=SC1091
  . "$state/cluster/env"
  leader=$(tests/fleet/cluster.sh leader "$state/cluster")
else
  leader=
fi
IFS=, read -r -a eps <<<"$CRONRUN_FLEET_ETCD"
echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p'), $(nproc) CPUs, $(uname -r)"
if [ -n "$leader" ]; then
  follower=$(( leader % 3 + 1 ))
  echo "== via the leader (member $leader)"
  "$bench" "${eps[$((leader - 1))]}" "$samples"
  echo "== via a follower (member $follower)"
  "$bench" "${eps[$((follower - 1))]}" "$samples"
else
  "$bench" "$CRONRUN_FLEET_ETCD" "$samples"
fi
