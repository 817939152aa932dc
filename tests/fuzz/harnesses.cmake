# The harnesses, shared by the fuzz build (tests/fuzz/CMakeLists.txt, clang) and
# the g++ unit test that replays the saved inputs (tests/unit/fuzz.cmake).
#   name -> source file, and the libraries it needs.
set(CRONRUN_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
set(CRONRUN_FUZZ_HARNESSES units job_config counters cgroup_host cgroup_files crontab cronrun_call run_record
    history_row journal seccomp_profile etcd_answer
    fleet_config central_row)
set(CRONRUN_FUZZ_LIBS_units cronrun_common)
set(CRONRUN_FUZZ_LIBS_job_config cronrun_runner)
set(CRONRUN_FUZZ_LIBS_counters cronrun_runner)
set(CRONRUN_FUZZ_LIBS_cgroup_host cronrun_cgroup)
set(CRONRUN_FUZZ_LIBS_cgroup_files cronrun_cgroup)
set(CRONRUN_FUZZ_LIBS_crontab cronrun_planner)
set(CRONRUN_FUZZ_LIBS_cronrun_call cronrun_planner)
set(CRONRUN_FUZZ_LIBS_run_record cronrun_common nlohmann_json::nlohmann_json)
set(CRONRUN_FUZZ_LIBS_history_row cronrun_history)
set(CRONRUN_FUZZ_LIBS_journal cronrun_common)
set(CRONRUN_FUZZ_LIBS_seccomp_profile cronrun_seccomp)
set(CRONRUN_FUZZ_LIBS_etcd_answer cronrun_common)
set(CRONRUN_FUZZ_LIBS_fleet_config cronrun_runner)
set(CRONRUN_FUZZ_LIBS_central_row cronrun_profiler)

# The pure job config parser arrives with issue 14's CLI work; until then the
# harness goes through load_job_config() and a temporary file.
file(READ ${CMAKE_SOURCE_DIR}/runner/cli.h cronrun_cli_h)
string(FIND "${cronrun_cli_h}" "parse_job_config(" cronrun_has_parse_job_config)
set(CRONRUN_FUZZ_DEFINES "")
if(NOT cronrun_has_parse_job_config EQUAL -1)
  list(APPEND CRONRUN_FUZZ_DEFINES CRONRUN_FUZZ_HAVE_PARSE_JOB_CONFIG)
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/runner/cli.h)
