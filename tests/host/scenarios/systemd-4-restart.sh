# hosttest-timeout: 180
# While root's cron jobs run in their scopes: `systemctl restart cron` leaves
# them running and their records complete; `systemctl daemon-reload` changes
# nothing (the scope stays active, the job's leaf and its memory.max stay).
. "$HOST_LIB"
rm -f /var/tmp/sd-restart.*
cat > /root/sd-restart.cron <<'CRON'
* * * * * cronrun --name sd-restart --memory 100M --summary /var/tmp/sd-restart.json -- sh -c 'cat /proc/self/cgroup > /var/tmp/sd-restart.cg; sleep 40; echo done > /var/tmp/sd-restart.out'
CRON
run crontab /root/sd-restart.cron
cron_arm
wait_for 60 "sd-restart's job started" test -s /var/tmp/sd-restart.cg
run crontab -r
leaf=/sys/fs/cgroup$(cut -d: -f3 /var/tmp/sd-restart.cg)
unit=$(basename "$(dirname "$leaf")")
expect_eq "memory.max before" "$(cat "$leaf/memory.max")" 104857600
pid=$(head -n 1 "$(dirname "$leaf")/supervisor/cgroup.procs")
[ -n "$pid" ] || fail "no cronrun in $unit's supervisor leaf"
expect_eq "the supervisor is cronrun" "$(cat /proc/$pid/comm)" cronrun
run systemctl restart cron.service
expect_eq "restart cron exit" "$rc" 0
sleep 1
kill -0 "$pid" 2>/dev/null || fail "cronrun (pid $pid) died with cron's restart"
expect_eq "$unit after restarting cron" "$(systemctl show -p ActiveState --value "$unit")" active
run systemctl daemon-reload
expect_eq "daemon-reload exit" "$rc" 0
sleep 1
kill -0 "$pid" 2>/dev/null || fail "cronrun (pid $pid) died with daemon-reload"
expect_eq "$unit after daemon-reload" "$(systemctl show -p ActiveState --value "$unit")" active
expect_eq "memory.max after daemon-reload" "$(cat "$leaf/memory.max" 2>/dev/null)" 104857600
expect_eq "the job's leaf after daemon-reload" "$(cut -d: -f3 /proc/$(cat "$leaf/cgroup.procs" | head -n 1)/cgroup 2>/dev/null)" "$(cut -d: -f3 /var/tmp/sd-restart.cg)"
wait_for 90 "sd-restart's record" test -s /var/tmp/sd-restart.json
expect_eq "sd-restart status" "$(jget status < /var/tmp/sd-restart.json)" ok
expect_eq "the job's own output" "$(cat /var/tmp/sd-restart.out 2>/dev/null)" done
wait_wait() { [ -z "$(systemctl list-units --all --plain --no-legend "$unit" 2>/dev/null)" ]; }
wait_for 20 "$unit collected" wait_wait
detail "restart cron and daemon-reload mid-run: job kept running in $unit, memory.max kept, record ok"
