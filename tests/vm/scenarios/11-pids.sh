# vmtest-timeout: 60
# --pids is pids.max: a fork burst of 50 gets fewer than 10 children, the
# cgroup's pids.peak lands in usage.pids_peak, and the one fork refused (forkburst
# stops at its first failure) in usage.pids_max_events.
. /vmtest/lib.sh
need_cronrun

cr pids --no-lock -n vm-pids --pids 10 -- "$PAYLOAD" forkburst 50 1000
expect_eq "exit status of forkburst 50 under --pids 10" "$rc" 0
summary_written pids
forked=$(sed -n 's/^forked \([0-9]*\)$/\1/p' /tmp/pids.out)
expect_num "children forked under --pids 10 (job stdout 'forked K')" "$forked" 'x >= 1 && x < 10'
expect_num "limits.pids_max" "$(j pids pids_max)" 'x == 10'
peak=$(j pids pids_peak)
# The main process counts too: peak is forked + 1, never above the limit.
expect_num "usage.pids_peak" "$peak" "x >= $forked + 1 && x <= 10"
expect_num "usage.pids_max_events (forkburst stops at the first refused fork)" "$(j pids pids_max_events)" 'x == 1'
detail "forked=$forked pids_peak=$peak"
