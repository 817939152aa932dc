# vmtest-timeout: 90
# The login-session shape of 30-delegated (here /u1000-login with the shell in
# /u1000-login/session), with the delegated ancestor named
# explicitly: `--cgroup-parent /u1000-login` from the shell in the session leaf.
# The runner stays where it is (its cgroup is not the parent, so no leaf move),
# clones the job straight into /u1000-login/<job>/<run-id> (allowed: the common
# ancestor /u1000-login is the user's) and the limits hold.
. /vmtest/lib.sh
need_cronrun

D=$CG/u1000-login
mkdir $D $D/session || fail "mkdir $D"
echo "+cpu +io +memory +pids" > $D/cgroup.subtree_control || fail "enabling controllers in $D"
for d in $D $D/session; do
  chown 1000:1000 $d $d/cgroup.procs $d/cgroup.subtree_control $d/cgroup.threads || fail "chown $d"
done

CR_PREFIX="sh /vmtest/user-in.sh $D/session keep"
cr poom -n vm-user -v --cgroup-parent /u1000-login --memory 48M -- "$PAYLOAD" mem 100
expect_v2 poom
expect_eq "exit status of mem 100 under --memory 48M (--cgroup-parent /u1000-login)" "$rc" 137
expect_eq "status" "$(j poom status)" oom
path=$(j poom path)
case $path in /u1000-login/vm-user/*) ;; *) fail "isolation.path '$path' is not /u1000-login/vm-user/<run-id>" ;; esac

cr ppeak -n vm-user --cgroup-parent /u1000-login -- "$PAYLOAD" mem 30 500
CR_PREFIX=
expect_eq "exit status of mem 30 500" "$rc" 0
expect_v2 ppeak
peak=$(j ppeak memory_peak_bytes)
expect_num "usage.memory_peak_bytes of a 30 MiB job" "$peak" 'x >= 27 * 1048576 && x <= 36 * 1048576'
for p in "$path" "$(j ppeak path)"; do
  [ ! -d "$CG$p" ] || fail "job cgroup $p still exists after the run"
done
detail "oom in $path; peak=$peak"
