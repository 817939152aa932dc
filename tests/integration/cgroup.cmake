# Real job cgroups on this host (hybrid here), as root: limits enforced by the
# kernel, counters read back, whole-tree kills. Each test makes its own parent
# /cronrun-test-<pid> and removes it in teardown.
cronrun_integration_test(cgroup_host_test SOURCES cgroup_host_test.cc LIBS cronrun_cgroup)
