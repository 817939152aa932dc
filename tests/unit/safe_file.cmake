# common/safe_file: checked directory fds, O_NOFOLLOW opens, bounded reads.
cronrun_unit_test(safe_file_test SOURCES safe_file_test.cc LIBS cronrun_common)
# --summary's target rules, which are built on it.
cronrun_unit_test(summary_test SOURCES summary_test.cc LIBS cronrun_runner)
