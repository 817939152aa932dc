# The run journal under SIGKILL at every phase, 500 concurrent runs, torn records,
# another user's cronprof, skipped runs (common/journal.cc, runner/journal_sink.cc).
cronrun_integration_test(journal_crash_test SOURCES journal_crash_test.cc harness.cc LIBS cronrun_common cronrun_history)
add_dependencies(journal_crash_test cronrun cronprof)
target_compile_definitions(journal_crash_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>"
                                                      CRONPROF_BIN="$<TARGET_FILE:cronprof>")
