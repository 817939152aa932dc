# cronprof status on a history written by real cronrun runs and on real Debian
# crontab files (this machine's /etc/cron.d, the package files in tests/fixtures).
cronrun_e2e_test(status_e2e SCRIPT status_e2e.sh NEEDS cronrun cronprof cronrun-payload)
