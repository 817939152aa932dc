# hosttest-timeout: 150
# Root's crontab on a systemd host (DESIGN §9): the job runs in its own leaf of a
# transient scope cronrun-<job>-<run>.scope in cronrun.slice that systemd
# delegated to cronrun (Delegate=yes), with cronrun in the scope's supervisor
# leaf; the record names the unit. A --memory 64M job that allocates 200 MiB is
# OOM-killed by the kernel in that leaf: cronrun exits 137 and records `oom`,
# and systemd leaves the scope (and cronrun) alone. Afterwards neither scope is
# loaded and no cgroup of theirs is left.
. "$HOST_LIB"
rm -f /var/tmp/sd-root.* /var/tmp/sd-oom.*
cat > /root/sd-root.cron <<'CRON'
* * * * * cronrun --name sd-root --summary /var/tmp/sd-root.json -- sh -c 'cat /proc/self/cgroup > /var/tmp/sd-root.cg; cat /proc/$PPID/cgroup > /var/tmp/sd-root.runner; sleep 4'
* * * * * cronrun --name sd-oom --memory 64M --summary /var/tmp/sd-oom.json -- sh -c 'head -c 200M /dev/zero | tail > /dev/null'; echo $? > /var/tmp/sd-oom.rc
CRON
run crontab /root/sd-root.cron
expect_eq "crontab exit" "$rc" 0
cron_arm
wait_for 60 "sd-root's job started" test -s /var/tmp/sd-root.cg
run systemctl list-units --all --plain --no-legend 'cronrun-sd-root-*'
unit=$(printf '%s\n' "$out" | awk '{ print $1 }' | head -n 1)
case $unit in cronrun-sd-root-*.scope) ;; *) fail "no cronrun-sd-root-*.scope loaded while the job runs (got '$unit')" ;; esac
run systemctl show -p Delegate -p Slice -p ControlGroup -p ActiveState "$unit"
printf '%s\n' "$out" | grep -qx 'Delegate=yes' || fail "$unit is not delegated"
printf '%s\n' "$out" | grep -qx 'Slice=cronrun.slice' || fail "$unit is not in cronrun.slice"
printf '%s\n' "$out" | grep -qx 'ActiveState=active' || fail "$unit is not active"
expect_eq "the job's cgroup" "$(cat /var/tmp/sd-root.cg)" "0::/cronrun.slice/$unit/job"
expect_eq "cronrun's own cgroup" "$(cat /var/tmp/sd-root.runner)" "0::/cronrun.slice/$unit/supervisor"
wait_for 60 "sd-root's summary" test -s /var/tmp/sd-root.json
expect_eq "sd-root status" "$(jget status < /var/tmp/sd-root.json)" ok
expect_eq "sd-root isolation.unit" "$(jget unit < /var/tmp/sd-root.json)" "$unit"
expect_eq "sd-root isolation.path" "$(jget path < /var/tmp/sd-root.json)" "/cronrun.slice/$unit/job"
wait_for 60 "sd-oom's exit status" test -s /var/tmp/sd-oom.rc
run crontab -r
expect_eq "sd-oom: cronrun's exit status" "$(cat /var/tmp/sd-oom.rc)" 137
expect_eq "sd-oom status" "$(jget status < /var/tmp/sd-oom.json)" oom
expect_eq "sd-oom exit_code" "$(jget exit_code < /var/tmp/sd-oom.json)" 137
expect_eq "sd-oom memory_max_bytes" "$(jget memory_max_bytes < /var/tmp/sd-oom.json)" 67108864
oom_unit=$(jget unit < /var/tmp/sd-oom.json)
case $oom_unit in cronrun-sd-oom-*.scope) ;; *) fail "sd-oom's record names no scope (unit '$oom_unit')" ;; esac
# The scopes end with cronrun, their last process; systemd collects them.
gone() { [ -z "$(systemctl list-units --all --plain --no-legend 'cronrun-sd-*' 2>/dev/null)" ] &&
         [ -z "$(find /sys/fs/cgroup/cronrun.slice -mindepth 1 -type d -name 'cronrun-sd-*' 2>/dev/null)" ]; }
wait_for 20 "both scopes collected and their cgroups removed" gone
run systemctl --failed --no-legend --plain
[ -z "$out" ] || fail "failed units: $out"
detail "job in cronrun.slice/$unit/job, cronrun in .../supervisor; --memory 64M: 137 oom in $oom_unit; both collected"
