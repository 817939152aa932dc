# vmtest-timeout: 60
# On v2 the job is started straight into its cgroup with clone3
# CLONE_INTO_CGROUP (cronrun -v says so); the fallback for kernels without clone3
# (plain fork, the child writes "0" to the leaf's cgroup.procs before exec),
# forced with the CRONRUN_FORCE_SPAWN=fork test hook, still succeeds and is
# contained: the job's first process already sits in the job cgroup, and limits
# hold.
. /vmtest/lib.sh
need_cronrun

cr clone3 --no-lock -n vm-spawn -v -- /bin/sh -c 'cat /proc/self/cgroup; exit 3'
expect_eq "exit status (job exits 3)" "$rc" 3
summary_written clone3
expect_eq "status" "$(j clone3 status)" failed
grep -q 'clone3' /tmp/clone3.err && grep -q 'CLONE_INTO_CGROUP' /tmp/clone3.err ||
  fail "cronrun -v does not mention clone3 and CLONE_INTO_CGROUP on v2"
grep -q 'joined' /tmp/clone3.err && fail "cronrun -v says the child joined a cgroup itself on v2 without the test hook"
expect_eq "the job's /proc/self/cgroup (clone3)" "$(cat /tmp/clone3.out)" "0::$(j clone3 path)"

CR_PREFIX="env CRONRUN_FORCE_SPAWN=fork"
cr hs --no-lock -n vm-spawn -v -- /bin/sh -c 'cat /proc/self/cgroup'
expect_eq "exit status (fork+join)" "$rc" 0
summary_written hs
expect_eq "status (fork+join)" "$(j hs status)" ok
grep -q 'fork+join.*joined .*cgroup.procs' /tmp/hs.err || fail "cronrun -v does not say the child joined cgroup.procs with CRONRUN_FORCE_SPAWN=fork"
expect_eq "the job's /proc/self/cgroup (fork+join)" "$(cat /tmp/hs.out)" "0::$(j hs path)"

cr hsoom --no-lock -n vm-spawn --memory 48M -- "$PAYLOAD" mem 100
CR_PREFIX=
expect_eq "exit status of mem 100 under --memory 48M (fork+join)" "$rc" 137
summary_written hsoom
expect_eq "status (fork+join, over the limit)" "$(j hsoom status)" oom
detail "clone3: $(grep -m1 -o '[^:]*clone3[^.]*' /tmp/clone3.err | head -c 80); fork+join contained"
