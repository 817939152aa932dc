# Planner (cronprof plan/report): crontab parser, cronrun call finder, week
# simulation, HTML report rendering. Pure inputs, no database.
if(TARGET cronrun_planner)
  cronrun_unit_test(crontab_parser_test SOURCES crontab_parser_test.cc LIBS cronrun_planner)
  cronrun_unit_test(crontab_cronrun_test SOURCES crontab_cronrun_test.cc LIBS cronrun_planner)
  # One job model: the option table against the runner, the planner, the config
  # loader, suggest --write, --help, the man page and the bash completion.
  cronrun_unit_test(job_options_test SOURCES job_options_test.cc LIBS cronrun_planner)
  cronrun_unit_test(plan_simulation_test SOURCES plan_simulation_test.cc LIBS cronrun_planner)
  cronrun_unit_test(plan_history_test SOURCES plan_history_test.cc LIBS cronrun_planner)
  cronrun_unit_test(status_test SOURCES status_test.cc LIBS cronrun_planner)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/report_html_test.cc)
    cronrun_unit_test(report_html_test SOURCES report_html_test.cc LIBS cronrun_planner)
  endif()
endif()

