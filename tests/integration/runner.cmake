# End-to-end runs of the real cronrun binary as root on this host's cgroups.
cronrun_integration_test(runner_integration_test SOURCES runner_test.cc harness.cc LIBS cronrun_common cronrun_history)
add_dependencies(runner_integration_test cronrun)
target_compile_definitions(runner_integration_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>")

# Cgroup placement seen from the runner: partial limits, IO source, the fallback
# warning, runs whose runner was SIGKILLed.
cronrun_integration_test(placement_integration_test SOURCES placement_test.cc harness.cc LIBS cronrun_common)
add_dependencies(placement_integration_test cronrun)
target_compile_definitions(placement_integration_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>")

# The history under faults (locked, unwritable, damaged, symlinked, non-UTF-8 records).
cronrun_integration_test(history_faults_test SOURCES history_faults_test.cc harness.cc LIBS cronrun_common cronrun_history)
add_dependencies(history_faults_test cronrun cronprof)
target_compile_definitions(history_faults_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>"
                                                       CRONPROF_BIN="$<TARGET_FILE:cronprof>")
