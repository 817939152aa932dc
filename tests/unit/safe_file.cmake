# common/safe_file: checked directory fds, O_NOFOLLOW opens, bounded reads.
cronrun_unit_test(safe_file_test SOURCES safe_file_test.cc LIBS cronrun_common)
