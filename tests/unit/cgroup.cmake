# The cgroup module's pure parsers and placement decisions, on fixture text and
# fake directory trees (no root, no real cgroups).
cronrun_unit_test(cgroup_parse_test SOURCES cgroup_parse_test.cc LIBS cronrun_cgroup)
cronrun_unit_test(cgroup_detect_test SOURCES cgroup_detect_test.cc LIBS cronrun_cgroup)
cronrun_unit_test(cgroup_usage_test SOURCES cgroup_usage_test.cc LIBS cronrun_cgroup_read)
# Only the cgroups a run needs: the controller choice, what is left unmeasured, and
# the v2 backend's subtree_control writes on a fake tree.
cronrun_unit_test(cgroup_leaves_test SOURCES cgroup_leaves_test.cc LIBS cronrun_cgroup)
