# Planner (cronprof plan/report): crontab parser, cronrun call finder, week
# simulation, HTML report rendering. Pure inputs, no database.
if(TARGET cronrun_planner)
  cronrun_unit_test(crontab_parser_test SOURCES crontab_parser_test.cc LIBS cronrun_planner)
  cronrun_unit_test(crontab_cronrun_test SOURCES crontab_cronrun_test.cc LIBS cronrun_planner)
  cronrun_unit_test(plan_simulation_test SOURCES plan_simulation_test.cc LIBS cronrun_planner)
  cronrun_unit_test(plan_history_test SOURCES plan_history_test.cc LIBS cronrun_planner)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/report_html_test.cc)
    cronrun_unit_test(report_html_test SOURCES report_html_test.cc LIBS cronrun_planner)
  endif()
endif()

# bench/plan_bench.cc: 500 crontab entries x a week, budget 1 s in an optimised
# build. Under the sanitizers the same run is checked against a looser budget, so
# the test still catches an accidental quadratic.
if(TARGET cronrun_planner)
  add_executable(plan_bench ${CMAKE_SOURCE_DIR}/bench/plan_bench.cc)
  cronrun_target(plan_bench)
  target_link_libraries(plan_bench PRIVATE cronrun_planner)
  if(CRONRUN_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
    set(plan_budget_ms 20000)
  else()
    set(plan_budget_ms 1000)
  endif()
  add_test(NAME plan_bench_500 COMMAND plan_bench --entries 500 --budget-ms ${plan_budget_ms})
  set_tests_properties(plan_bench_500 PROPERTIES LABELS "unit;bench" TIMEOUT 120)
endif()
