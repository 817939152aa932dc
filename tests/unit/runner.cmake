# Runner core: unit parsers, job spec / CLI / config, counters, lock, spawn.
cronrun_unit_test(units_test SOURCES units_test.cc LIBS cronrun_common)
cronrun_unit_test(job_spec_test SOURCES job_spec_test.cc LIBS cronrun_runner)
cronrun_unit_test(job_env_test SOURCES job_env_test.cc LIBS cronrun_runner)
cronrun_unit_test(cli_test SOURCES cli_test.cc LIBS cronrun_runner)
cronrun_unit_test(job_paths_test SOURCES job_paths_test.cc LIBS cronrun_runner)
cronrun_unit_test(counters_test SOURCES counters_test.cc LIBS cronrun_runner)
cronrun_unit_test(lock_test SOURCES lock_test.cc LIBS cronrun_runner)
cronrun_unit_test(spawn_test SOURCES spawn_test.cc LIBS cronrun_runner)
cronrun_unit_test(finish_event_test SOURCES finish_event_test.cc LIBS cronrun_runner)
cronrun_unit_test(report_test SOURCES report_test.cc LIBS cronrun_runner)
cronrun_unit_test(cli_rows_test SOURCES cli_rows_test.cc LIBS cronrun_runner)
# The run pipeline and the supervisor on fakes (clock, spawner, cgroups, record sink),
# and the escalation state machine on made-up times.
cronrun_unit_test(escalation_test SOURCES escalation_test.cc LIBS cronrun_runner)
cronrun_unit_test(run_pipeline_test SOURCES run_pipeline_test.cc LIBS cronrun_runner)
cronrun_unit_test(ping_test SOURCES ping_test.cc LIBS cronrun_runner)
# Fleet mode's configuration: fleet.json, groups, --tick, the record's fleet field,
# and the fleet options' usage errors through the real binary.
cronrun_unit_test(fleet_config_test SOURCES fleet_config_test.cc LIBS cronrun_runner)
target_compile_definitions(fleet_config_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>")
add_dependencies(fleet_config_test cronrun)
cronrun_unit_test(fleet_test SOURCES fleet_test.cc LIBS cronrun_runner)
