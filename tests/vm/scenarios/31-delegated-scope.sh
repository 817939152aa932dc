# vmtest-timeout: 90
# Unprivileged, delegated (`systemd-run --user --scope cronrun ...` shape): each
# run starts as the only process of a fresh cgroup owned by uid 1000 whose
# subtree has no controllers enabled yet. cronrun moves itself into a leaf of its
# own, enables the controllers it needs and creates the job cgroup beside it:
# the limit is enforced and the peak measured, without privilege.
. /vmtest/lib.sh
need_cronrun

scope() {
  mkdir "$1" || fail "mkdir $1"
  chown 1000:1000 "$1" "$1/cgroup.procs" "$1/cgroup.subtree_control" "$1/cgroup.threads" || fail "chown $1"
}
S1=$CG/u1000-run1.scope S2=$CG/u1000-run2.scope
scope $S1
scope $S2

CR_PREFIX="sh /vmtest/user-in.sh $S1 exec"
cr soom -n vm-scope -v --memory 48M -- "$PAYLOAD" mem 100
expect_v2 soom
expect_eq "exit status of mem 100 under --memory 48M (scope)" "$rc" 137
expect_eq "status" "$(j soom status)" oom
path=$(j soom path)
case $path in /u1000-run1.scope/*) ;; *) fail "isolation.path '$path' is not inside the scope" ;; esac

CR_PREFIX="sh /vmtest/user-in.sh $S2 exec"
cr speak -n vm-scope -- "$PAYLOAD" mem 30 500
CR_PREFIX=
expect_eq "exit status of mem 30 500 (scope)" "$rc" 0
expect_v2 speak
peak=$(j speak memory_peak_bytes)
expect_num "usage.memory_peak_bytes of a 30 MiB job" "$peak" 'x >= 27 * 1048576 && x <= 36 * 1048576'
for p in "$path" "$(j speak path)"; do
  [ ! -d "$CG$p" ] || fail "job cgroup $p still exists after the run"
done
echo "left:"; find $S1 $S2 -type d | sed "s|^$CG||"
detail "oom in $path; peak=$peak"
