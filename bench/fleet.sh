#!/usr/bin/env bash
# Per-run overhead of fleet mode (DESIGN.md section 10) against local mode, on
# loopback, side by side and interleaved: each round runs every row once, in an
# order rotated every round, so load drift hits all rows alike. Rows, each
# `cronrun --cgroup off -- /bin/true` with its own history and lock:
#   local       local mode (pid-file lock, journal)
#   fleet       + --fleet-config (etcd: 3 members on loopback) and a fresh --tick per
#               run: membership read, lease grant, the claim transaction, keepalive
#               process, lease revoke
#   fleet+pg    the same with `history` in fleet.json: each run also starts its
#               detached forwarder to PostgreSQL (off the run's path: measured is
#               the runner's exit, the forwarder's CPU shows in "CPU ms")
#   fleet+group the fleet row with --group (the groups config read from etcd)
#   fleet-named the fleet row with the endpoints given by name (localhost):
#               the cost of libcurl's resolver against numeric addresses
# Per row: wall ms p50 / p90 / p99 of a run (the runner's start to its exit), CPU
# ms per run (user + system of the runner and what it started, mean), and the
# p50 / p99 differences to the local row. Then the etcd lock itself, as fleet
# mode takes it: lease grant + claim txn, and the revoke, through cronrun's own
# client (bench/fleet_lock_bench, via the leader and via a follower) when the
# build has it, and from Python (a new connection per request).
# A throwaway cluster (tests/fleet/cluster.sh, ports shifted by
# CRONRUN_FLEET_PORT_OFFSET, default 300) is started and stopped by the script.
# Root, release build. Figures for people, not a test.
#
# On a machine others load, wall times are mostly waits for a CPU (each etcd
# round trip wakes three members in turn). BENCH_NICE=-20 runs the etcd members
# and the measured runs at that nice level, which approximates the machine to
# ourselves for the length of the bench (the load others make still shows in
# the load average printed).
#
#   bench/fleet.sh [RUNS]          (default 300 per row)
#   NO_BUILD=1 BUILD_DIR=dir bench/fleet.sh   to measure an existing release build
source "$(dirname "$0")/lib.sh"
runs=${1:-300}
export CRONRUN_FLEET_PORT_OFFSET=${CRONRUN_FLEET_PORT_OFFSET:-300}
bench_build
bench_header

state=$work/state
fleet_cleanup() { bash tests/fleet/cluster.sh stop "$state" >/dev/null 2>&1 || true; bench_cleanup; }
trap fleet_cleanup EXIT
bash tests/fleet/cluster.sh start "$state" >/dev/null
# shellcheck disable=SC1091
. "$state/env"
nice_run=()
if [ -n "${BENCH_NICE:-}" ]; then
  for n in 1 2 3; do renice -n "$BENCH_NICE" -p "$(cat "$state/etcd$n.pid")" >/dev/null; done
  nice_run=(nice -n "$BENCH_NICE")
  echo "# etcd members and measured runs at nice $BENCH_NICE"
fi
: "${CRONRUN_FLEET_ETCD:?cluster.sh start wrote no env}" "${CRONRUN_FLEET_PG:?}"
prefix=/bench/fleet-$$
endpoints=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1].split(",")))' "$CRONRUN_FLEET_ETCD")
printf '{"etcd": %s, "prefix": "%s", "lease_ttl": "15s", "host": "bench1"}\n' "$endpoints" "$prefix" >"$work/fleet.json"
printf '{"etcd": %s, "prefix": "%s", "lease_ttl": "15s", "host": "bench1", "history": "%s"}\n' \
  "$endpoints" "$prefix" "$CRONRUN_FLEET_PG" >"$work/fleet-pg.json"
printf '{"etcd": %s, "prefix": "%s", "lease_ttl": "15s", "host": "bench1"}\n' "${endpoints//127.0.0.1/localhost}" \
  "$prefix" >"$work/fleet-named.json"
ETCDCTL_API=3 etcdctl --endpoints "$CRONRUN_FLEET_ETCD" put "$prefix/config" '{"groups": {"bench": ["bench1"]}}' >/dev/null
chmod 644 "$work"/fleet*.json

tick0=$(($(date +%s) - 4 * runs - 600))
tick() { date -u -d "@$((tick0 + $1))" +%Y-%m-%dT%H:%M:%SZ; }
common=(-q --cgroup off --kill-after 2s)
run_local() { "${nice_run[@]}" "$cronrun" "${common[@]}" -n b-local --history "$work/local.db" --lock "$work/local.pid" -- /bin/true; }
run_fleet() { "${nice_run[@]}" "$cronrun" "${common[@]}" -n b-fleet --history "$work/fleet.db" --lock "$work/fleet.pid" \
  --fleet-config "$work/fleet.json" --tick "$(tick "$1")" -- /bin/true; }
run_fleet+pg() { "${nice_run[@]}" "$cronrun" "${common[@]}" -n b-fleetpg --history "$work/fleetpg.db" --lock "$work/fleetpg.pid" \
  --fleet-config "$work/fleet-pg.json" --tick "$(tick "$1")" -- /bin/true; }
run_fleet+group() { "${nice_run[@]}" "$cronrun" "${common[@]}" -n b-group --history "$work/group.db" --lock "$work/group.pid" \
  --fleet-config "$work/fleet.json" --group bench --tick "$(tick "$1")" -- /bin/true; }
run_fleet-named() { "${nice_run[@]}" "$cronrun" "${common[@]}" -n b-named --history "$work/named.db" --lock "$work/named.pid" \
  --fleet-config "$work/fleet-named.json" --tick "$(tick "$1")" -- /bin/true; }
order=(local fleet fleet+pg fleet+group fleet-named)
# One run each first: a row that fails is a broken setup, not a figure.
for k in "${order[@]}"; do
  "run_$k" 0 >/dev/null 2>"$work/err" || { echo "fleet.sh: $k failed: $(cat "$work/err")" >&2; exit 1; }
done
children_cpu_ms() { times >"$work/times"; awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
  printf "%d\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }' "$work/times"; }
declare -A cpu_ms
for k in "${order[@]}"; do cpu_ms[$k]=0; : >"$work/wall.$k"; done
for ((r = 1; r <= runs; r++)); do
  for ((j = 0; j < ${#order[@]}; j++)); do
    k=${order[$(((j + r) % ${#order[@]}))]}
    children_cpu_ms >"$work/c0"
    t0=${EPOCHREALTIME/./}
    "run_$k" "$r" >/dev/null 2>&1
    t1=${EPOCHREALTIME/./}
    children_cpu_ms >"$work/c1"
    echo "$(((t1 - t0)))" >>"$work/wall.$k"
    cpu_ms[$k]=$((cpu_ms[$k] + $(cat "$work/c1") - $(cat "$work/c0")))
  done
done
sleep 1  # the last detached forwarders
echo "# $runs runs per row, interleaved (order rotated each round); load average at the end: $(loadavg)"
# p50 p90 p99 of microseconds on stdin, in ms.
pcts() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f %.3f %.3f\n", v[int((NR - 1) * 0.50) + 1] / 1000,
  v[int((NR - 1) * 0.90) + 1] / 1000, v[int((NR - 1) * 0.99) + 1] / 1000 }'; }
printf "%-12s %9s %9s %9s %9s %11s %11s\n" row "p50 ms" "p90 ms" "p99 ms" "CPU ms" "+p50 ms" "+p99 ms"
read -r lp50 _ lp99 <<<"$(pcts <"$work/wall.local")"
for k in "${order[@]}"; do
  read -r p50 p90 p99 <<<"$(pcts <"$work/wall.$k")"
  printf "%-12s %9.3f %9.3f %9.3f %9.3f %11.3f %11.3f\n" "$k" "$p50" "$p90" "$p99" \
    "$(bc -l <<<"${cpu_ms[$k]} / $runs")" "$(bc -l <<<"$p50 - $lp50")" "$(bc -l <<<"$p99 - $lp99")"
done
# Which runs really ran (not skipped): every fleet run must have claimed its tick.
for k in fleet fleet+pg fleet+group fleet-named; do
  db=$work/${k//+/}.db
  [ "$k" = fleet+pg ] && db=$work/fleetpg.db
  [ "$k" = fleet+group ] && db=$work/group.db
  [ "$k" = fleet-named ] && db=$work/named.db
  echo "# $k: history rows $(history_rows "$db")"
done
pg_rows=$(psql "$CRONRUN_FLEET_PG" -XAt -c "SELECT count(*) FROM runs WHERE job = 'b-fleetpg'" 2>/dev/null || echo "?")
echo "# fleet+pg: rows in PostgreSQL $pg_rows (of $((runs + 1)))"

# The lock alone through cronrun's client (one kept-alive connection, as a run
# makes its calls), via the leader and via a follower.
lock_bench=$PWD/$build/bench/fleet_lock_bench
if [ -x "$lock_bench" ]; then
  leader=$(bash tests/fleet/cluster.sh leader "$state")
  IFS=, read -r -a eps <<<"$CRONRUN_FLEET_ETCD"
  for m in "$leader" $((leader % 3 + 1)); do
    role=follower; [ "$m" = "$leader" ] && role=leader
    echo "# etcd lock through cronrun's client via the $role (member $m), $runs samples:"
    "${nice_run[@]}" "$lock_bench" "${eps[$((m - 1))]}" "$runs" "$prefix/lockbench-$m/" | sed 's/^/#   /'
  done
fi
# The lock alone from Python: lease grant + claim txn + lease revoke over the
# JSON gateway, one HTTP connection per request.
"${nice_run[@]}" python3 - "$CRONRUN_FLEET_ETCD" "$prefix" "$runs" <<'EOF'
import base64, json, sys, time, urllib.request
ep = sys.argv[1].split(",")[0]
prefix, n = sys.argv[2], int(sys.argv[3])
b = lambda s: base64.b64encode(s.encode()).decode()
def call(m, body):
    req = urllib.request.Request(ep + "/v3/" + m, data=json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.loads(r.read())
acq, rel = [], []
for i in range(n):
    lk, tk = f"{prefix}/locks/lat", f"{prefix}/runs/lat/{i:06d}"
    t0 = time.perf_counter()
    lease = call("lease/grant", {"TTL": 15})["ID"]
    r = call("kv/txn", {"compare": [{"key": b(lk), "target": "CREATE", "create_revision": 0},
                                   {"key": b(tk), "target": "CREATE", "create_revision": 0}],
                        "success": [{"request_put": {"key": b(lk), "value": b("{}"), "lease": lease}},
                                    {"request_put": {"key": b(tk), "value": b("{}")}}],
                        "failure": [{"request_range": {"key": b(lk)}}]})
    t1 = time.perf_counter()
    assert r.get("succeeded"), r
    call("lease/revoke", {"ID": lease})
    t2 = time.perf_counter()
    acq.append((t1 - t0) * 1000); rel.append((t2 - t1) * 1000)
def pct(v, p):
    v = sorted(v); return v[int((len(v) - 1) * p)]
print(f"# etcd lock from Python (grant + txn | revoke), {n} times: acquire p50 {pct(acq, .5):.2f} ms "
      f"p99 {pct(acq, .99):.2f} ms; release p50 {pct(rel, .5):.2f} ms p99 {pct(rel, .99):.2f} ms")
EOF
# The server's own side of a write, from the leader's metrics over the whole
# bench: WAL fsync (the cluster keeps its data on tmpfs), backend commit, and
# the peer round trip. The bucket a quantile falls in is printed (upper bound).
leader=$(bash tests/fleet/cluster.sh leader "$state")
IFS=, read -r -a eps <<<"$CRONRUN_FLEET_ETCD"
python3 - "${eps[$((leader - 1))]}/metrics" <<'EOF'
import re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
def q(name, p):
    b = [(float(le), float(v)) for le, v in re.findall(name + r'_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)', text)]
    if not b or b[-1][1] == 0: return "-"
    total = b[-1][1]
    le = next(le for le, v in b if v >= p * total)
    return f"<= {le * 1000:g} ms" if le != float("inf") else "> last bucket"
for name, what in [("etcd_disk_wal_fsync_duration_seconds", "WAL fsync"),
                   ("etcd_disk_backend_commit_duration_seconds", "backend commit"),
                   ("etcd_network_peer_round_trip_time_seconds", "peer round trip")]:
    print(f"# leader {what}: p50 {q(name, .5)}, p99 {q(name, .99)}")
EOF
echo "# aim: fleet adds <= 5 ms p50 per run"
