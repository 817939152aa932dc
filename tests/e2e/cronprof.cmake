# cronprof on a history written by real cronrun runs: every subcommand, exit codes,
# reading as another user, promtool on the Prometheus export (skipped without it).
cronrun_e2e_test(cronprof_e2e SCRIPT cronprof_e2e.sh NEEDS cronrun cronprof cronrun-payload)
# cronprof on a history rewritten by a hostile neighbour and damaged rows: no raw
# control byte in any output, damaged rows skipped and named, suggest --write
# checked by the real cronrun --dry-run.
cronrun_e2e_test(cronprof_hostile_e2e SCRIPT cronprof_hostile_e2e.sh NEEDS cronrun cronprof cronrun-payload)
# seccomp learn -> `cronprof suggest --seccomp` -> the profile file, with python3.
cronrun_e2e_test(seccomp_suggest_e2e SCRIPT seccomp_suggest_e2e.sh NEEDS cronrun cronprof)
set_tests_properties(seccomp_suggest_e2e PROPERTIES SKIP_RETURN_CODE 77)
# The man page's example alerts, read from the page, run by `promtool test rules`
# on series made from real exports of a real history (before and after gc).
cronrun_e2e_test(cronprof_alerts_e2e SCRIPT cronprof_alerts_e2e.sh NEEDS cronrun cronprof cronrun-payload)
# Every subcommand's --json (schema, one timestamp form, integers as integers) and
# every table fitted to the terminal's width, on a history of real runs.
cronrun_e2e_test(cronprof_output_e2e SCRIPT cronprof_output_e2e.sh NEEDS cronrun cronprof cronrun-payload)
# cronprof's command line: every usage error one `cronprof: ` line naming the
# option or subcommand (exit 2), every --help with its exit statuses.
cronrun_e2e_test(cronprof_cli_e2e SCRIPT cronprof_cli_e2e.sh NEEDS cronprof)
