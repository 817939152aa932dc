# vmtest-timeout: 60
# Not a test (bench/vm_footprint.sh boots it): the supervisor's memory while a job
# runs, on Debian 12's own kernel, pure v2, in the steady state (the job's cgroup
# exists from an earlier run).
. /vmtest/lib.sh
need_cronrun
mkdir -p /tmp/fp
set -- -q --history /tmp/fp/h.db --lock /tmp/fp/l.pid --memory 1G --cpu 100% --pids 100 -n fp --
"$CRONRUN" "$@" sleep 0
"$CRONRUN" "$@" sleep 2 &
p=$!  # cronrun itself, not a subshell
sleep 1
figures=$(grep -E 'VmHWM|VmRSS|RssAnon|RssFile|RssShmem' /proc/$p/status | tr -s ' \t' ' ' | tr '\n' ' ')
pss=$(grep -E '^Pss:' /proc/$p/smaps_rollup | tr -s ' \t' ' ')
wait $p || fail "the run failed"
detail "cronrun supervisor on $(uname -r): $figures$pss"
