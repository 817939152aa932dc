# Planner e2e: the HTML report in headless Chromium (skips without it), and — once
# the runner builds — `cronprof plan` / `cronprof report` over a history written
# by real cronrun runs. Screenshots and pages land in ${CMAKE_CURRENT_BINARY_DIR}/
# report-artifacts for people (and CI) to look at.
if(TARGET cronrun_planner)
  add_executable(report_render_test report_render_test.cc)
  cronrun_target(report_render_test)
  target_link_libraries(report_render_test PRIVATE cronrun_planner GTest::gtest_main)
  target_compile_definitions(report_render_test PRIVATE
    CRONRUN_E2E_ARTIFACTS="${CMAKE_CURRENT_BINARY_DIR}/report-artifacts")
  gtest_discover_tests(report_render_test PROPERTIES LABELS e2e TIMEOUT 300 DISCOVERY_TIMEOUT 60)
endif()
if(TARGET cronrun_planner AND TARGET cronrun AND TARGET cronprof AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/report_history_test.sh)
  add_test(NAME report_history_e2e
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/report_history_test.sh $<TARGET_FILE:cronrun> $<TARGET_FILE:cronprof>
                   $<TARGET_FILE:cronrun-payload> ${CMAKE_CURRENT_BINARY_DIR}/report-artifacts
                   ${CMAKE_SOURCE_DIR}/tests/fixtures/crontab)
  set_tests_properties(report_history_e2e PROPERTIES LABELS e2e TIMEOUT 300)
endif()
