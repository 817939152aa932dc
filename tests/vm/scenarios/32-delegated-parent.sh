# vmtest-timeout: 90
# The login-session shape of 30-delegated, with the delegated ancestor named
# explicitly: `--cgroup-parent /user-1000` from a shell in /user-1000/session.
# The runner stays where it is (its cgroup is not the parent, so no leaf move),
# clones the job straight into /user-1000/<job>/<run-id> (allowed: the common
# ancestor /user-1000 is the user's) and the limits hold.
. /vmtest/lib.sh
need_cronrun

D=$CG/user-1000
mkdir $D $D/session || fail "mkdir $D"
echo "+cpu +io +memory +pids" > $D/cgroup.subtree_control || fail "enabling controllers in $D"
for d in $D $D/session; do
  chown 1000:1000 $d $d/cgroup.procs $d/cgroup.subtree_control $d/cgroup.threads || fail "chown $d"
done

CR_PREFIX="sh /vmtest/user-in.sh $D/session keep"
cr poom -n vm-user -v --cgroup-parent /user-1000 --memory 48M -- "$PAYLOAD" mem 100
expect_eq "exit status of mem 100 under --memory 48M (--cgroup-parent /user-1000)" "$rc" 137
summary_written poom
expect_eq "status" "$(j poom status)" oom
expect_eq "isolation.cgroup" "$(j poom cgroup)" v2
path=$(j poom path)
case $path in /user-1000/vm-user/*) ;; *) fail "isolation.path '$path' is not /user-1000/vm-user/<run-id>" ;; esac

cr ppeak -n vm-user --cgroup-parent /user-1000 -- "$PAYLOAD" mem 30 500
CR_PREFIX=
expect_eq "exit status of mem 30 500" "$rc" 0
summary_written ppeak
peak=$(j ppeak memory_peak_bytes)
expect_num "usage.memory_peak_bytes of a 30 MiB job" "$peak" 'x >= 27 * 1048576 && x <= 36 * 1048576'
for p in "$path" "$(j ppeak path)"; do
  [ ! -d "$CG$p" ] || fail "job cgroup $p still exists after the run"
done
detail "oom in $path; peak=$peak"
