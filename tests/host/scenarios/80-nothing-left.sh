# hosttest-timeout: 60
# After every run above (root's, the users', the systemd scenarios'): no systemd
# unit failed, no transient unit or cgroup of ours is left (cronrun.slice
# itself may stay), no cronrun process is alive, and no crontab line of ours
# is left in cron's spool.
. "$HOST_LIB"
run systemctl --failed --no-legend --plain
[ -z "$out" ] || fail "failed units: $out"
if [ -S /run/user/1001/bus ]; then
  run as_user linger env XDG_RUNTIME_DIR=/run/user/1001 systemctl --user --failed --no-legend --plain
  [ -z "$out" ] || fail "failed units in linger's user manager: $out"
fi
left=$(our_units)
[ -z "$left" ] || fail "units of ours left: $(echo $left)"
left=$(our_cgroups)
[ -z "$left" ] || fail "cgroups of ours left: $(echo $left)"
left=$(pgrep -a -x cronrun || true)
[ -z "$left" ] || fail "cronrun processes left: $left"
left=$(ls /var/spool/cron/crontabs 2>/dev/null)
[ -z "$left" ] || fail "crontabs left in the spool: $left"
detail "systemctl --failed empty; no unit, cgroup or process of ours left"
