# Planner e2e: the HTML report in headless Chromium (skips without it), and
# `cronprof plan` / `cronprof report` over a history written by real cronrun runs
# (report_history_test.sh). Pages, DOM dumps and screenshots land in
# ${CMAKE_CURRENT_BINARY_DIR}/report-artifacts for people (and CI) to look at.
if(TARGET cronrun_planner)
  add_executable(report_render_test report_render_test.cc)
  cronrun_target(report_render_test)
  target_link_libraries(report_render_test PRIVATE cronrun_planner GTest::gtest_main)
  target_compile_definitions(report_render_test PRIVATE
    CRONRUN_E2E_ARTIFACTS="${CMAKE_CURRENT_BINARY_DIR}/report-artifacts")
  gtest_discover_tests(report_render_test PROPERTIES LABELS e2e TIMEOUT 300 DISCOVERY_TIMEOUT 60)
endif()
if(COMMAND cronrun_e2e_test)
  cronrun_e2e_test(report_history_e2e SCRIPT report_history_test.sh NEEDS cronrun cronprof cronrun-payload cronrun_planner)
  # The on-call page checked in headless Chromium (report_page_test.sh + report_probe.js).
  cronrun_e2e_test(report_page_e2e SCRIPT report_page_test.sh NEEDS cronrun cronprof cronrun-payload cronrun_planner)
endif()
