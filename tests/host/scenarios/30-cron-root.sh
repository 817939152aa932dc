# hosttest-timeout: 150
# Root's crontab, run by the real cron daemon: two lines, one job that succeeds
# and one that exits 3. Both runs land in root's history (/var/lib/cronrun) with
# their status and exit code, cron logged that it ran them, and cronrun's FINISH
# lines are in the journal.
. "$HOST_LIB"
cat > /root/host.cron <<'CRON'
* * * * * cronrun --name host-cron-root-ok -- sh -c 'id -u > /var/tmp/host-cron-root-ok'
* * * * * cronrun --name host-cron-root-fail -- sh -c 'echo failing on purpose; exit 3'
CRON
run crontab /root/host.cron
expect_eq "crontab exit" "$rc" 0
rm -f /var/tmp/host-cron-root-ok
cron_arm
wait_run root host-cron-root-ok 90
expect_eq "ok run status" "$(printf '%s' "$run_json" | jget status)" ok
expect_eq "ok run exit_code" "$(printf '%s' "$run_json" | jget exit_code)" 0
expect_eq "ok run user" "$(printf '%s' "$run_json" | jget user)" root
expect_eq "the job's own output file" "$(cat /var/tmp/host-cron-root-ok 2>/dev/null)" 0
wait_run root host-cron-root-fail 60
expect_eq "failing run status" "$(printf '%s' "$run_json" | jget status)" failed
expect_eq "failing run exit_code" "$(printf '%s' "$run_json" | jget exit_code)" 3
# No more ticks for these lines: the next scenarios count units and cgroups.
run crontab -r
journalctl -b -q --no-pager -u cron.service -o cat | grep -q 'CMD (cronrun --name host-cron-root-ok' ||
  fail "cron.service's journal has no CMD line for host-cron-root-ok"
wait_for 20 "FINISH of host-cron-root-fail in the journal" journal_has 'FINISH .*host-cron-root-fail'
journal_has 'FINISH .*host-cron-root-ok' || fail "no FINISH of host-cron-root-ok in the journal"
journalctl -b -q --no-pager -t cronrun -o cat | grep 'host-cron-root' | sed 's/^/   journal| /'
detail "cron ran root's lines at $(date -u -d "@$CRON_TICK" +%T): ok and failed (3) recorded, FINISH in the journal"
