#!/usr/bin/env bash
# Overhead of --count-db-queries (libcronrun-db.so), each figure with and without
# the library: per wrapped call, per process start, and a 100k-query loopback
# loop against a throwaway PostgreSQL (tests/db/servers.sh). Prints a table.
#
#   bench/db_overhead.sh BUILD_DIR [CALLS] [QUERIES] [STARTS]
set -euo pipefail
build=${1:?usage: db_overhead.sh BUILD_DIR [CALLS] [QUERIES] [STARTS]}
calls=${2:-5000000}
queries=${3:-100000}
starts=${4:-1000}
here=$(cd "$(dirname "$0")" && pwd)
bench=$build/bench/db_bench
run=$build/tests/db/dbcount-run
state=$(mktemp -d /tmp/cronrun-dbbench.XXXXXX)
chmod 0755 "$state"  # servers.sh runs the servers as their service users when root
out=$state/out.json
trap '"$here/../tests/db/servers.sh" stop "$state/srv" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

with() { "$run" --out "$out" -- "$@"; }
field() { awk -v k="$1" '$1 == k { print $2 }'; }
best() { sort -g | head -1; }  # best of repeated runs: least disturbed by noise

echo "== per wrapped call ($calls calls, best of 5)"
for k in pq_exec_null_ns pq_getresult_null_ns sqlite_step_reset_ns; do
  a=$(for _ in 1 2 3 4 5; do "$bench" calls "$calls" | field $k; done | best)
  b=$(for _ in 1 2 3 4 5; do with "$bench" calls "$calls" | field $k; done | best)
  printf '%-24s without %8.1f ns   with %8.1f ns   overhead %6.1f ns/call\n' "$k" "$a" "$b" "$(echo "$b - $a" | bc -l)"
done

echo "== per process start ($starts x posix_spawn /bin/true, best of 5; wall and the children's CPU)"
for k in spawn_us spawn_child_cpu_us; do
  a=$(for _ in 1 2 3 4 5; do "$bench" spawn "$starts" /bin/true | field $k; done | best)
  i=$(for _ in 1 2 3 4 5; do LD_PRELOAD=$build/preload/libcronrun-db.so "$bench" spawn "$starts" /bin/true | field $k; done | best)
  b=$(for _ in 1 2 3 4 5; do with "$bench" spawn "$starts" /bin/true | field $k; done | best)
  printf '%-20s without %7.1f us   preloaded, inert %7.1f us   attached %7.1f us   overhead %6.1f us/process\n' \
    "$k" "$a" "$i" "$b" "$(echo "$b - $a" | bc -l)"
done

echo "== $queries x PQexec('SELECT 1') over loopback (best of 3)"
"$here/../tests/db/servers.sh" start "$state/srv" >/dev/null
set -a; . "$state/srv/env"; set +a
a=$(for _ in 1 2 3; do "$bench" loop "$queries" | field loop_s; done | best)
b=$(for _ in 1 2 3; do with "$bench" loop "$queries" | field loop_s; done | best)
printf 'without %.3f s   with %.3f s   slower by %.2f %%\n' "$a" "$b" "$(echo "($b - $a) / $a * 100" | bc -l)"
