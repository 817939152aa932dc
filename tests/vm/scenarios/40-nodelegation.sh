# vmtest-timeout: 60
# Unprivileged, no delegation: uid 1000 in a root-owned cgroup gets the
# fallback: one line on stderr saying why and what the admin can do,
# isolation.cgroup "none" with the reason in isolation.note, rlimit + rusage
# accounting (no cgroup figures: null, not 0), the run recorded in the user's
# history; --cgroup required refuses with exit 125 instead.
. /vmtest/lib.sh
need_cronrun

N=$CG/vmtest-session
mkdir $N || fail "mkdir $N"
CR_PREFIX="sh /vmtest/user-in.sh $N keep"

# 150 MiB: a child's ru_maxrss also counts what it inherited at fork (the kernel
# keeps the pre-exec high-water mark), i.e. the runner's own resident memory,
# which a sanitized cronrun with the fleet code puts near 90 MiB; the job must
# be the larger for the figure to be the job's.
cr nd -n vm-nodeleg -- "$PAYLOAD" mem 150 300
expect_eq "exit status" "$rc" 0
summary_written nd
expect_eq "status" "$(j nd status)" ok
expect_eq "isolation.cgroup" "$(j nd cgroup)" none
expect_eq "isolation.accounting" "$(j nd accounting)" rusage
note=$(j nd note)
[ -n "$note" ] && [ "$note" != null ] || fail "isolation.note is empty: the reason must be recorded"
expect_eq "usage.memory_peak_bytes without a cgroup" "$(j nd memory_peak_bytes)" null
expect_num "usage.max_rss_bytes (rusage)" "$(j nd max_rss_bytes)" 'x >= 147 * 1048576 && x <= 170 * 1048576'
lines=$(grep -c '^cronrun: ' /tmp/nd.err)
expect_eq "cronrun's stderr lines about the fallback" "$lines" 1
warning=$(grep '^cronrun: ' /tmp/nd.err)
echo "$warning" | grep -qi 'cgroup' || fail "the fallback warning does not mention cgroups: $warning"
db=/home/user/.local/state/cronrun/history.db
[ -s $db ] || fail "run not recorded: no history at $db"

cr ndmem -n vm-nodeleg --memory 48M -- "$PAYLOAD" mem 100
[ "$rc" != 0 ] || fail "mem 100 under --memory 48M succeeded without a cgroup: no rlimit applied"
expect_num "limits.memory_max_bytes (rlimit)" "$(j ndmem memory_max_bytes)" 'x == 50331648'
case $(j ndmem status) in failed|oom|killed) ;; *) fail "status '$(j ndmem status)' for a job stopped by the memory rlimit" ;; esac

cr req -n vm-nodeleg --cgroup required -- "$PAYLOAD" exit 0
CR_PREFIX=
expect_eq "exit status with --cgroup required and no writable cgroup" "$rc" 125
grep -q '^cronrun: ' /tmp/req.err || fail "--cgroup required: no 'cronrun: ' error line on stderr"

if [ -x /usr/local/bin/cronprof ]; then
  out=$(/usr/local/bin/cronprof runs --history $db --json 2>&1)
  echo "$out" | grep -q "$(j nd run_id)" || fail "cronprof runs does not list run $(j nd run_id): $out"
fi
detail "fallback: $warning"
