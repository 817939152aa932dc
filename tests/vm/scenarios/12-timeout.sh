# vmtest-timeout: 60
# --timeout 2s --kill-after 1s on a job that ignores SIGTERM and leaves a
# daemon behind (double fork + setsid, also ignoring SIGTERM): exit 124, status
# timeout, and afterwards no process of the job is alive, the escaped daemon
# included: the kill goes through the cgroup (cgroup.kill on v2), not the tree.
. /vmtest/lib.sh
need_cronrun

rm -f /tmp/t12.daemon.pid
cr timeout --no-lock -n vm-timeout -v --timeout 2s --kill-after 1s -- \
  /bin/sh -c "trap '' TERM; $PAYLOAD daemon 60 /tmp/t12.daemon.pid; exec $PAYLOAD ignore-term 60"
expect_eq "exit status after --timeout" "$rc" 124
summary_written timeout
expect_eq "status" "$(j timeout status)" timeout
expect_num "limits.timeout_s" "$(j timeout timeout_s)" 'x == 2'
wall=$(j timeout wall_s)
expect_num "wall_s (2s timeout + 1s grace)" "$wall" 'x >= 2.9 && x <= 10'
[ -s /tmp/t12.daemon.pid ] || fail "the job's daemon never wrote /tmp/t12.daemon.pid"
daemon=$(cat /tmp/t12.daemon.pid)
# The daemon is reaped by whoever adopted it; give that a moment.
i=0
while alive "$daemon" && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
alive "$daemon" && fail "the daemonized process $daemon survived the timeout: $(cat /proc/$daemon/status | head -n 3 | tr '\n' ' ') cgroup $(cat /proc/$daemon/cgroup)"
for p in $(pidof cronrun-payload); do
  fail "a payload process ($p, $(tr '\0' ' ' < /proc/$p/cmdline)) is still alive"
done
path=$(j timeout path)
[ -n "$path" ] && [ ! -d "$CG$path" ] || fail "job cgroup '$path' still exists after the run"
how=$(grep -o 'cgroup\.kill' /tmp/timeout.err | head -n 1)
detail "exit 124 after ${wall}s, daemon $daemon gone${how:+, -v names cgroup.kill}"
