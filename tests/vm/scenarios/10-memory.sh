# vmtest-timeout: 60
# Root on pure v2: --memory is memory.max (an over-limit job is OOM-killed: exit
# 137, status oom, oom_kills counted) and memory_peak_bytes is memory.peak
# (within 10% of what the job touched).
. /vmtest/lib.sh
need_cronrun

cr oom --no-lock -n vm-oom --memory 64M -- "$PAYLOAD" mem 200
expect_eq "exit status of mem 200 under --memory 64M" "$rc" 137
summary_written oom
expect_eq "status" "$(j oom status)" oom
expect_eq "isolation.cgroup" "$(j oom cgroup)" v2
expect_eq "isolation.accounting" "$(j oom accounting)" cgroup
expect_num "limits.memory_max_bytes" "$(j oom memory_max_bytes)" 'x == 67108864'
expect_num "usage.oom_kills" "$(j oom oom_kills)" 'x >= 1'
expect_num "usage.memory_max_events" "$(j oom memory_max_events)" 'x >= 1'
# memory.peak cannot pass memory.max by more than the kernel's charge batch.
expect_num "usage.memory_peak_bytes under the limit" "$(j oom memory_peak_bytes)" \
  'x >= 32 * 1048576 && x <= 66 * 1048576'
path=$(j oom path)
[ -n "$path" ] && [ ! -d "$CG$path" ] || fail "job cgroup '$path' still exists after the run"

cr peak --no-lock -n vm-peak -- "$PAYLOAD" mem 150 1000
expect_eq "exit status of mem 150 1000" "$rc" 0
summary_written peak
expect_eq "status" "$(j peak status)" ok
peak=$(j peak memory_peak_bytes)
expect_num "usage.memory_peak_bytes of a 150 MiB job" "$peak" \
  'x >= 0.9 * 150 * 1048576 && x <= 1.1 * 150 * 1048576'
expect_num "usage.max_rss_bytes of a 150 MiB job" "$(j peak max_rss_bytes)" \
  'x >= 0.9 * 150 * 1048576 && x <= 1.1 * 150 * 1048576'
expect_eq "limits.memory_max_bytes without --memory" "$(j peak memory_max_bytes)" null
detail "oom_kills=$(j oom oom_kills) peak_under_64M=$(j oom memory_peak_bytes) peak_150MiB=$peak"
