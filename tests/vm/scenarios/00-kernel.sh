# vmtest-timeout: 20
# The VM itself: a pure cgroup v2 hierarchy with nsdelegate, every controller the
# tier relies on available and enabled at the root, and the v2 interface files
# the runner's v2 paths read or write present in a fresh child.
. /vmtest/lib.sh

controllers=$(cat $CG/cgroup.controllers)
echo "cgroup.controllers: $controllers"
expect_eq "cgroup.controllers" "$controllers" "cpuset cpu io memory hugetlb pids rdma misc"
expect_eq "subtree_control" "$(cat $CG/cgroup.subtree_control)" "cpu io memory pids"
grep -q ' /sys/fs/cgroup cgroup2 .*nsdelegate' /proc/mounts || fail "cgroup2 not mounted with nsdelegate: $(grep cgroup /proc/mounts)"
if grep -q ' cgroup ' /proc/mounts; then fail "a v1 hierarchy is mounted: $(grep ' cgroup ' /proc/mounts)"; fi

mkdir $CG/vmtest-probe || fail "mkdir $CG/vmtest-probe"
present=
for f in cgroup.kill cgroup.events cgroup.procs memory.max memory.peak memory.events memory.swap.max \
         memory.high memory.pressure cpu.max cpu.stat cpu.pressure io.pressure pids.max pids.current; do
  [ -e "$CG/vmtest-probe/$f" ] || { rmdir $CG/vmtest-probe; fail "$f missing in a v2 child cgroup"; }
done
# Newer kernels only: report, do not require.
for f in pids.peak memory.swap.peak pids.events.local; do
  [ -e "$CG/vmtest-probe/$f" ] && present="$present $f"
done
rmdir $CG/vmtest-probe
echo "optional files present:${present:- none}"
detail "v2 + nsdelegate, controllers '$controllers'; optional:${present:- none}"
