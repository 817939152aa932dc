# cronrun's command line: usage errors exit 125 with one line and leave no lock,
# history or cgroup; where options end; cron's %; --dry-run text and --json.
cronrun_e2e_test(cli_e2e SCRIPT cli_e2e.sh NEEDS cronrun)
