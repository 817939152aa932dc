# cronprof and files another user controls (report --html, suggest --write, --crontab), as root.
cronrun_e2e_test(cronprof_files_e2e SCRIPT cronprof_files_e2e.sh NEEDS cronrun cronprof cronrun-payload)
