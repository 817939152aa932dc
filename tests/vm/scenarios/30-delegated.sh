# vmtest-timeout: 90
# Unprivileged, delegated (login-session shape): root gives uid 1000 the subtree
# /user-1000 (controllers enabled in it, the directory and its cgroup.procs,
# cgroup.subtree_control and cgroup.threads chowned, like systemd's Delegate=yes);
# the user's shell sits in the leaf /user-1000/session. From that shell, with no
# setuid bit and no root help, cronrun places its jobs inside the delegated
# subtree: --memory is enforced (OOM), memory.peak is measured, the history goes
# to the user's XDG state dir, and the job cgroups are gone afterwards.
. /vmtest/lib.sh
need_cronrun

setuid=$(find / -xdev -perm -4000 -type f 2>/dev/null)
[ -z "$setuid" ] || fail "setuid files in the VM: $setuid"

D=$CG/user-1000
mkdir $D $D/session || fail "mkdir $D"
echo "+cpu +io +memory +pids" > $D/cgroup.subtree_control || fail "enabling controllers in $D"
for d in $D $D/session; do
  chown 1000:1000 $d $d/cgroup.procs $d/cgroup.subtree_control $d/cgroup.threads || fail "chown $d"
done
echo "delegated: $(ls -ld $D | cut -c1-40) controllers: $(cat $D/cgroup.controllers)"

CR_PREFIX="sh /vmtest/user-in.sh $D/session keep"
cr uoom -n vm-user -v --memory 48M -- "$PAYLOAD" mem 100
expect_v2 uoom
expect_eq "exit status of mem 100 under --memory 48M as uid 1000" "$rc" 137
expect_eq "user" "$(j uoom user)" user
expect_eq "status" "$(j uoom status)" oom
path=$(j uoom path)
case $path in /user-1000/*) ;; *) fail "isolation.path '$path' is not inside the delegated /user-1000" ;; esac
expect_num "usage.oom_kills" "$(j uoom oom_kills)" 'x >= 1'

cr upeak -n vm-user -- "$PAYLOAD" mem 30 500
CR_PREFIX=
expect_eq "exit status of mem 30 500 as uid 1000" "$rc" 0
expect_v2 upeak
expect_eq "status" "$(j upeak status)" ok
peak=$(j upeak memory_peak_bytes)
expect_num "usage.memory_peak_bytes of a 30 MiB job" "$peak" 'x >= 27 * 1048576 && x <= 36 * 1048576'

db=/home/user/.local/state/cronrun/history.db
[ -s $db ] || fail "no history at $db (XDG_STATE_HOME=/home/user/.local/state)"
[ "$(stat -c %u $db)" = 1000 ] || fail "$db is owned by uid $(stat -c %u $db)"
for p in "$path" "$(j upeak path)"; do
  [ ! -d "$CG$p" ] || fail "job cgroup $p still exists after the run"
done
echo "left in the delegated subtree:"; find $D -type d | sed "s|^$CG||"
detail "oom in $path; peak=$peak; tree left: $(find $D -mindepth 1 -type d | sed "s|^$D/||" | tr '\n' ' ')"
