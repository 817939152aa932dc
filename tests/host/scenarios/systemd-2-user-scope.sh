# hosttest-timeout: 150
# Ordinary users' crontabs on a systemd host (DESIGN §9). `linger` has a user
# manager (lingering, /run/user/1001/bus): its job gets a delegated scope in the
# user manager's cronrun.slice, and the limits cronrun writes there hold (a
# --memory 64M job allocating 200 MiB is OOM-killed: 137, oom). `nolinger` has
# none: the run falls back (no cgroup), and its one warning line, and the
# record's note, name `loginctl enable-linger nolinger`.
. "$HOST_LIB"
lhome=$(getent passwd linger | cut -d: -f6)
nhome=$(getent passwd nolinger | cut -d: -f6)
rm -f "$lhome"/sd-* "$nhome"/sd-*
[ -S /run/user/1001/bus ] || fail "linger has no user bus (/run/user/1001/bus): no user manager to test with"
cat > /tmp/sd-linger.cron <<'CRON'
* * * * * cronrun --name sd-linger --memory 64M --pids 50 --summary $HOME/sd-linger.json -- sh -c 'cat /proc/self/cgroup > $HOME/sd-linger.cg; cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max > $HOME/sd-linger.max; head -c 200M /dev/zero | tail > /dev/null'; echo $? > $HOME/sd-linger.rc
CRON
cat > /tmp/sd-nolinger.cron <<'CRON'
* * * * * cronrun --name sd-nolinger --memory 64M --summary $HOME/sd-nolinger.json -- true 2> $HOME/sd-nolinger.err; echo $? > $HOME/sd-nolinger.rc
CRON
run crontab -u linger /tmp/sd-linger.cron
run crontab -u nolinger /tmp/sd-nolinger.cron
cron_arm
wait_for 90 "linger's run" test -s "$lhome/sd-linger.rc"
wait_for 30 "nolinger's run" test -s "$nhome/sd-nolinger.rc"
run crontab -u linger -r
run crontab -u nolinger -r
cg=$(cat "$lhome/sd-linger.cg")
note "linger's job ran in $cg"
case $cg in
  0::/user.slice/user-1001.slice/user@1001.service/cronrun.slice/cronrun-sd-linger-*.scope/job) ;;
  *) fail "linger's job is not in a scope of its user manager's cronrun.slice: $cg" ;;
esac
expect_eq "memory.max of linger's job leaf" "$(cat "$lhome/sd-linger.max")" 67108864
expect_eq "linger: cronrun's exit status" "$(cat "$lhome/sd-linger.rc")" 137
expect_eq "linger: status" "$(jget status < "$lhome/sd-linger.json")" oom
expect_eq "linger: isolation.cgroup" "$(jget cgroup < "$lhome/sd-linger.json")" v2
case $(jget unit < "$lhome/sd-linger.json") in cronrun-sd-linger-*.scope) ;; *) fail "linger's record names no scope" ;; esac

expect_eq "nolinger: cronrun's exit status" "$(cat "$nhome/sd-nolinger.rc")" 0
expect_eq "nolinger: status" "$(jget status < "$nhome/sd-nolinger.json")" ok
expect_eq "nolinger: isolation.cgroup" "$(jget cgroup < "$nhome/sd-nolinger.json")" none
note "nolinger's stderr:"
sed 's/^/   | /' "$nhome/sd-nolinger.err"
expect_eq "nolinger: lines on stderr" "$(wc -l < "$nhome/sd-nolinger.err")" 1
grep -q 'loginctl enable-linger nolinger' "$nhome/sd-nolinger.err" || fail "nolinger's warning does not name loginctl enable-linger"
jget note < "$nhome/sd-nolinger.json" | grep -q 'loginctl enable-linger nolinger' ||
  fail "nolinger's record note does not name loginctl enable-linger"
gone() { [ -z "$(as_user linger env XDG_RUNTIME_DIR=/run/user/1001 systemctl --user list-units --all --plain --no-legend 'cronrun-*' 2>/dev/null)" ]; }
wait_for 20 "linger's scope collected" gone
detail "linger: scope in its manager's cronrun.slice, memory.max 64M enforced (137 oom); nolinger: fallback naming loginctl enable-linger"
