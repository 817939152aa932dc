# cronprof on a history written by real cronrun runs: every subcommand, exit codes,
# reading as another user, promtool on the Prometheus export (skipped without it).
cronrun_e2e_test(cronprof_e2e SCRIPT cronprof_e2e.sh NEEDS cronrun cronprof cronrun-payload)
