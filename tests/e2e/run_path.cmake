# One run's work beyond the job, seen with strace: one passwd lookup, no local
# time zone, no syslog connects with no syslog daemon (issue 15's per-run costs).
cronrun_e2e_test(run_path_e2e SCRIPT run_path_e2e.sh NEEDS cronrun)
