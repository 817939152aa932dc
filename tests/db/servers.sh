#!/usr/bin/env bash
# Starts / stops the DB tier's throwaway servers: PostgreSQL and MariaDB on
# loopback ports, nothing touching the host's own instances. As root (CI) the
# servers run as their service users (postgres refuses root); otherwise as the
# calling user. Data and sockets live in a fresh directory under /tmp (the build
# tree may sit below a 0700 home the service users cannot enter, and socket paths
# must stay short); STATE_DIR becomes a symlink to it. `start` writes
# STATE_DIR/env (shell assignments the tests source) and waits until both servers
# accept connections; `stop` stops them and removes both.
#
#   servers.sh start STATE_DIR     servers.sh stop STATE_DIR
set -euo pipefail
cmd=${1:?usage: servers.sh start|stop STATE_DIR}
state=${2:?usage: servers.sh start|stop STATE_DIR}
pg_port=${CRONRUN_DB_PG_PORT:-55432}
my_port=${CRONRUN_DB_MY_PORT:-53306}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_user() { # as_user USER CMD...: run as USER when root, else as ourselves
  local u=$1; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$u" -- "$@"; else "$@"; fi
}

stop() {
  local dir=$state
  [ -L "$state" ] && dir=$(readlink -f "$state")
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_user postgres "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/my/mariadbd.pid" ]; then
    local pid; pid=$(cat "$dir/my/mariadbd.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  case "$dir" in /tmp/cronrun-dbtier.*) rm -rf "$dir" ;; esac
  rm -f "$state"
}

start() {
  [ -n "$pg_bin" ] || { echo "servers.sh: PostgreSQL server not installed" >&2; exit 1; }
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || { echo "servers.sh: mariadbd not installed" >&2; exit 1; }
  stop  # leftovers of an interrupted run of ours
  local port
  for port in "$pg_port" "$my_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "servers.sh: 127.0.0.1:$port is already in use (another DB tier run?); set CRONRUN_DB_PG_PORT / CRONRUN_DB_MY_PORT" >&2
      exit 1
    fi
  done
  local link=$state
  state=$(mktemp -d /tmp/cronrun-dbtier.XXXXXX)
  mkdir -p "$(dirname "$link")"
  ln -sfn "$state" "$link"
  mkdir -p "$state/pg" "$state/my/data" "$state/my/tmp" "$state/run"
  chmod 0755 "$state"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$state/pg" "$state/run"
    chown -R mysql: "$state/my"
    chmod 1777 "$state/run"
  fi
  # PostgreSQL: trust auth on loopback only, sockets in our run dir.
  as_user postgres "$pg_bin/initdb" -D "$state/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  cat >>"$state/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$state/run'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 40
shared_preload_libraries = 'pg_stat_statements'
CONF
  as_user postgres "$pg_bin/pg_ctl" -D "$state/pg" -l "$state/pg/log" -w -t 60 start >/dev/null || {
    echo "servers.sh: postgres did not start; log:" >&2; tail -5 "$state/pg/log" >&2; exit 1; }

  # MariaDB: root with an empty password over TCP, our socket, no grant tables from the host.
  local myuser=mysql; [ "$(id -u)" -eq 0 ] || myuser=$(id -un)
  mariadb-install-db --no-defaults --user="$myuser" --datadir="$state/my/data" --tmpdir="$state/my/tmp" \
    --auth-root-authentication-method=normal --skip-test-db >"$state/my/install.log" 2>&1 || {
    echo "servers.sh: mariadb-install-db failed:" >&2; grep -i error "$state/my/install.log" | head -5 >&2; exit 1; }
  local my_args=(--no-defaults --user="$myuser" --datadir="$state/my/data" --port="$my_port"
    --bind-address=127.0.0.1 --tmpdir="$state/my/tmp" --socket="$state/run/mysqld.sock" --pid-file="$state/my/mariadbd.pid"
    --skip-name-resolve --innodb-buffer-pool-size=32M --innodb-flush-log-at-trx-commit=0
    --log-error="$state/my/error.log")
  /usr/sbin/mariadbd "${my_args[@]}" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 300); do
    if mariadb-admin --no-defaults -h127.0.0.1 -P"$my_port" -uroot ping >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  mariadb-admin --no-defaults -h127.0.0.1 -P"$my_port" -uroot ping >/dev/null || {
    echo "servers.sh: mariadbd did not start; log:" >&2; tail -20 "$state/my/error.log" >&2; exit 1; }
  mariadb --no-defaults -h127.0.0.1 -P"$my_port" -uroot -e 'CREATE DATABASE IF NOT EXISTS cronrun_test'

  cat >"$state/env" <<ENV
PGHOST=127.0.0.1
PGPORT=$pg_port
PGUSER=postgres
PGDATABASE=postgres
MYSQL_HOST=127.0.0.1
MYSQL_TCP_PORT=$my_port
MYSQL_USER=root
MYSQL_DATABASE=cronrun_test
ENV
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: servers.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
