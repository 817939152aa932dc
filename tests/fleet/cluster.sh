#!/usr/bin/env bash
# The fleet tier's throwaway servers: a 3-member etcd 3.4 cluster and one
# PostgreSQL 15 cluster on loopback, nothing touching the host's own instances.
#
#   cluster.sh start|stop|status|leader|pg-stop-immediate|pg-start [STATE_DIR]
#   cluster.sh kill-member|start-member N [STATE_DIR]       (N = 1..3)
#
# STATE_DIR defaults to $CRONRUN_FLEET_STATE. It becomes a symlink to a fresh
# directory under /dev/shm (else /tmp): the build tree may sit below a 0700 home
# the postgres user cannot enter, socket paths must stay short, and etcd's fsyncs
# on tmpfs cost nothing, so a loaded CI machine does not turn slow disk writes
# into leader elections.
#
# Ports: etcd clients 23791-23793, peers 23801-23803, PostgreSQL 25432, each
# shifted by $CRONRUN_FLEET_PORT_OFFSET (default 0) so that two build trees on one
# machine can run the tier at once; `start` records the ports in STATE_DIR and
# the other commands read them from there.
#
# etcd runs with heartbeat and election timeouts shortened for loopback (a killed
# leader is replaced quickly, so failover tests stay short) and pre-vote, so a
# member that comes back does not depose a healthy leader. PostgreSQL runs as the `postgres`
# user when we are root (it refuses root), else as ourselves; trust auth on
# 127.0.0.1 for the role `cronrun`, which owns the database `cronrun`.
#
# `start` waits until every member is healthy and PostgreSQL accepts
# connections, and writes STATE_DIR/env (shell assignments: CRONRUN_FLEET_ETCD,
# CRONRUN_FLEET_PG). `stop` kills every process it started (by the pids it
# recorded, checked against their command lines) and removes the state.
# `leader` prints the number (1..3) of the current leader, waiting up to 10 s
# for one. `kill-member` is a kill -9; `start-member` restarts a member on its
# data and waits until it is healthy again.
set -euo pipefail
usage="usage: cluster.sh start|stop|status|leader|pg-stop-immediate|pg-start [STATE_DIR]; cluster.sh kill-member|start-member N [STATE_DIR]"
cmd=${1:?$usage}
shift
member=
case "$cmd" in
  kill-member|start-member)
    member=${1:?$usage}; shift
    case "$member" in 1|2|3) ;; *) echo "cluster.sh: member must be 1, 2 or 3, not '$member'" >&2; exit 2 ;; esac ;;
esac
state=${1:-${CRONRUN_FLEET_STATE:-}}
[ -n "$state" ] || { echo "cluster.sh: no STATE_DIR (argument or CRONRUN_FLEET_STATE)" >&2; exit 2; }

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
etcd_bin=$(command -v etcd || echo /usr/bin/etcd)
etcdctl_bin=$(command -v etcdctl || echo /usr/bin/etcdctl)
export ETCDCTL_API=3

as_postgres() { # run as postgres when root, else as ourselves
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The real directory behind STATE_DIR (empty when there is none).
real_dir() {
  if [ -L "$state" ]; then readlink -f "$state" || true
  elif [ -d "$state" ]; then echo "$state"
  fi
}

load_ports() {
  local dir=$1
  [ -f "$dir/ports" ] || { echo "cluster.sh: $dir/ports missing: is the cluster started (cluster.sh start)?" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$dir/ports"
}

client_url() { echo "http://127.0.0.1:$((client_base + $1 - 1))"; }
peer_url() { echo "http://127.0.0.1:$((peer_base + $1 - 1))"; }
all_endpoints() { echo "$(client_url 1),$(client_url 2),$(client_url 3)"; }

# pid of member N if it is alive and really our etcd (a recycled pid is not).
member_pid() {
  local dir=$1 n=$2 pid
  pid=$(cat "$dir/etcd$n.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  local args=()
  mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ " ${args[*]} " == *" --data-dir $dir/etcd$n "* ]] || return 1
  echo "$pid"
}

# Whether pid runs (a zombie does not: our init may be slow to reap a killed member).
alive() {
  local st
  st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

member_healthy() { # member_healthy N: it serves a linearizable read (it has a leader)
  "$etcdctl_bin" --endpoints="$(client_url "$1")" --dial-timeout=500ms --command-timeout=1s \
    endpoint health >/dev/null 2>&1
}

launch_member() {
  local dir=$1 n=$2
  local cluster="m1=$(peer_url 1),m2=$(peer_url 2),m3=$(peer_url 3)"
  # setsid + every descriptor redirected: ctest's fixture test returns at once
  # and nothing keeps its pipes open.
  setsid "$etcd_bin" --name "m$n" --data-dir "$dir/etcd$n" \
    --listen-client-urls "$(client_url "$n")" --advertise-client-urls "$(client_url "$n")" \
    --listen-peer-urls "$(peer_url "$n")" --initial-advertise-peer-urls "$(peer_url "$n")" \
    --initial-cluster "$cluster" --initial-cluster-state new \
    --initial-cluster-token "cronrun-fleet-$(basename "$dir")" \
    --heartbeat-interval 100 --election-timeout 1000 --pre-vote \
    --logger zap --log-level warn --log-outputs "$dir/etcd$n.log" \
    </dev/null >>"$dir/etcd$n.out" 2>&1 &
  echo $! >"$dir/etcd$n.pid"
}

wait_healthy() { # wait_healthy SECONDS N...
  local secs=$1; shift
  local deadline=$((SECONDS + secs)) n ok
  while :; do
    ok=1
    for n in "$@"; do member_healthy "$n" || { ok=0; break; }; done
    [ "$ok" -eq 1 ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

pg_running() {
  local dir=$1
  [ -f "$dir/pg/postmaster.pid" ] || return 1
  local pid; pid=$(head -1 "$dir/pg/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && alive "$pid"
}

pg_start() {
  local dir=$1
  as_postgres "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 start >/dev/null || {
    echo "cluster.sh: postgres did not start; log:" >&2; tail -5 "$dir/pg.log" >&2; return 1; }
  local deadline=$((SECONDS + 30))
  until "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U cronrun -d postgres; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "cluster.sh: postgres on 127.0.0.1:$pg_port does not accept connections" >&2; return 1; }
    sleep 0.1
  done
}

pg_stop_immediate() {
  local dir=$1
  pg_running "$dir" || return 0
  local pid; pid=$(head -1 "$dir/pg/postmaster.pid")
  as_postgres "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  if alive "$pid"; then
    kill -9 "$pid" 2>/dev/null || true
  fi
}

stop() {
  local dir; dir=$(real_dir)
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    local n pid pids=()
    for n in 1 2 3; do
      if pid=$(member_pid "$dir" "$n"); then kill -9 "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    pg_stop_immediate "$dir"
    # Any postgres backend or etcd left over (a postmaster killed -9 leaves its
    # children): every process whose command line names our directory.
    local p args
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = "$$" ] && continue
      args=()
      mapfile -d '' args 2>/dev/null <"/proc/$p/cmdline" || continue
      if [[ " ${args[*]} " == *"$dir/"* ]]; then
        kill -9 "$p" 2>/dev/null || true; pids+=("$p")
      fi
    done
    for pid in "${pids[@]}"; do
      for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    done
    case "$dir" in /dev/shm/cronrun-fleet.*|/tmp/cronrun-fleet.*) rm -rf "$dir" ;; esac
  fi
  if [ -L "$state" ]; then rm -f "$state"; fi
}

start() {
  command -v "$etcd_bin" >/dev/null || { echo "cluster.sh: etcd not installed (etcd-server)" >&2; exit 1; }
  [ -n "$pg_bin" ] || { echo "cluster.sh: PostgreSQL server not installed" >&2; exit 1; }
  stop  # leftovers of an interrupted run of ours
  local offset=${CRONRUN_FLEET_PORT_OFFSET:-0}
  client_base=$((23791 + offset)) peer_base=$((23801 + offset)) pg_port=$((25432 + offset))
  local port
  for port in $client_base $((client_base + 1)) $((client_base + 2)) $peer_base $((peer_base + 1)) $((peer_base + 2)) $pg_port; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "cluster.sh: 127.0.0.1:$port is already in use (another fleet tier run?); set CRONRUN_FLEET_PORT_OFFSET (cmake -DCRONRUN_FLEET_PORT_OFFSET=...)" >&2
      exit 1
    fi
  done
  local base=/dev/shm
  [ -d "$base" ] && [ -w "$base" ] || base=/tmp
  local link=$state dir
  dir=$(mktemp -d "$base/cronrun-fleet.XXXXXX")
  mkdir -p "$(dirname "$link")"
  ln -sfn "$dir" "$link"
  chmod 0755 "$dir"
  cat >"$dir/ports" <<PORTS
client_base=$client_base
peer_base=$peer_base
pg_port=$pg_port
PORTS

  local n
  for n in 1 2 3; do launch_member "$dir" "$n"; done

  # PostgreSQL while etcd elects.
  mkdir -p "$dir/pg" "$dir/run"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/pg" "$dir/run"; fi
  touch "$dir/pg.log"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/pg.log"; fi
  as_postgres "$pg_bin/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    echo "cluster.sh: initdb failed:" >&2; tail -5 "$dir/initdb.log" >&2; stop; exit 1; }
  cat >>"$dir/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$dir/run'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 60
# Segments in the data directory, not /dev/shm: an immediate stop (pg-stop-immediate,
# stop) would leave them behind there.
dynamic_shared_memory_type = mmap
CONF
  pg_start "$dir" || { stop; exit 1; }
  "$pg_bin/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres \
    -c "CREATE ROLE cronrun LOGIN" -c "CREATE DATABASE cronrun OWNER cronrun" >/dev/null || {
    echo "cluster.sh: could not create role/database cronrun" >&2; stop; exit 1; }

  if ! wait_healthy 60 1 2 3; then
    echo "cluster.sh: etcd members not healthy within 60 s; logs:" >&2
    for n in 1 2 3; do tail -3 "$dir/etcd$n.log" "$dir/etcd$n.out" >&2 2>/dev/null || true; done
    stop; exit 1
  fi
  cat >"$dir/env" <<ENV
CRONRUN_FLEET_ETCD=$(all_endpoints)
CRONRUN_FLEET_PG=postgresql://cronrun@127.0.0.1:$pg_port/cronrun
ENV
}

status() {
  local dir; dir=$(real_dir)
  [ -n "$dir" ] || { echo "not started"; return 1; }
  load_ports "$dir"
  local n rc=0 pid
  for n in 1 2 3; do
    if pid=$(member_pid "$dir" "$n"); then
      if member_healthy "$n"; then echo "etcd m$n $(client_url "$n") pid $pid healthy"
      else echo "etcd m$n $(client_url "$n") pid $pid unhealthy"; rc=1; fi
    else echo "etcd m$n $(client_url "$n") down"; rc=1; fi
  done
  if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then echo "postgres 127.0.0.1:$pg_port up"
  else echo "postgres 127.0.0.1:$pg_port down"; rc=1; fi
  return $rc
}

leader() {
  local dir; dir=$(real_dir)
  [ -n "$dir" ] || { echo "cluster.sh: not started" >&2; exit 1; }
  load_ports "$dir"
  local deadline=$((SECONDS + 10)) n line
  while :; do
    for n in 1 2 3; do
      member_pid "$dir" "$n" >/dev/null || continue
      # simple format: endpoint, id, version, db size, is leader, is learner, ...
      line=$("$etcdctl_bin" --endpoints="$(client_url "$n")" --dial-timeout=500ms --command-timeout=1s \
        endpoint status 2>/dev/null || true)
      if [ "$(echo "$line" | awk -F', ' '{print $5}')" = "true" ]; then echo "$n"; return 0; fi
    done
    [ "$SECONDS" -lt "$deadline" ] || { echo "cluster.sh: no leader within 10 s" >&2; exit 1; }
    sleep 0.1
  done
}

kill_member() {
  local dir; dir=$(real_dir)
  [ -n "$dir" ] || { echo "cluster.sh: not started" >&2; exit 1; }
  local pid
  pid=$(member_pid "$dir" "$member") || return 0  # already down
  kill -9 "$pid"
  for _ in $(seq 200); do alive "$pid" || return 0; sleep 0.01; done
  echo "cluster.sh: member $member (pid $pid) survived kill -9" >&2; exit 1
}

start_member() {
  local dir; dir=$(real_dir)
  [ -n "$dir" ] || { echo "cluster.sh: not started" >&2; exit 1; }
  load_ports "$dir"
  if ! member_pid "$dir" "$member" >/dev/null; then launch_member "$dir" "$member"; fi
  wait_healthy 30 "$member" || { echo "cluster.sh: member $member not healthy within 30 s" >&2; exit 1; }
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  leader) leader ;;
  kill-member) kill_member ;;
  start-member) start_member ;;
  pg-stop-immediate) d=$(real_dir); [ -n "$d" ] || exit 1; pg_stop_immediate "$d" ;;
  pg-start) d=$(real_dir); [ -n "$d" ] || exit 1; load_ports "$d"; pg_running "$d" || pg_start "$d" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
