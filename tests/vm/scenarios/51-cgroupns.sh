# vmtest-timeout: 90
# Root inside a cgroup namespace, as in a container with a private cgroup
# namespace. With the namespace's own cgroup2 mount (mountinfo root "/"), job
# cgroups go under the namespace's root: the box's cgroup seen from the host. The
# limits hold there, and nothing is made outside the box. With the host's mount
# inherited (`unshare -C` without a new mount: root "/.." in mountinfo), the
# kernel would refuse every cgroup the mount names outside the namespace. cronrun
# says why in one line, runs the job without a cgroup, and --cgroup required is 125.
. /vmtest/lib.sh
need_cronrun
UNSHARE=/usr/local/bin/unshare  # util-linux's: busybox's has no -C
[ -x "$UNSHARE" ] || fail "util-linux unshare is not in the initramfs"

# enter.sh BOX CMD...: join BOX (a host cgroup), then a new cgroup + mount namespace.
cat > /tmp/enter.sh <<X
echo \$\$ > "\$1/cgroup.procs" || exit 125
shift
exec $UNSHARE -C -m "\$@"
X
# fresh.sh CMD...: the container's own cgroup2 mount, init in a leaf of its own,
# controllers enabled at the namespace's root (now without processes).
cat > /tmp/fresh.sh <<'X'
umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup || exit 125
mkdir /sys/fs/cgroup/init && echo $$ > /sys/fs/cgroup/init/cgroup.procs || exit 125
echo "+memory +pids" > /sys/fs/cgroup/cgroup.subtree_control || exit 125
exec "$@"
X

box=$CG/vm-ns-box
mkdir "$box" || fail "cannot make $box"
CR_PREFIX="sh /tmp/enter.sh $box sh /tmp/fresh.sh"
cr nsoom --no-lock --no-history -n vm-ns --memory 64M -- "$PAYLOAD" mem 200
expect_eq "exit status of mem 200 under --memory 64M in the namespace" "$rc" 137
expect_v2 nsoom
expect_eq "status" "$(j nsoom status)" oom
path=$(j nsoom path)
case "$path" in
  /cronrun/vm-ns/*) ;;
  *) fail "job cgroup path '$path', want /cronrun/vm-ns/<run> (the namespace's view)" ;;
esac
[ -d "$box/cronrun/vm-ns" ] || fail "no $box/cronrun/vm-ns: the job cgroup was not made under the box"
[ ! -d "$box$path" ] || fail "the run's cgroup $box$path is still there"
[ ! -d "$CG/cronrun/vm-ns" ] || fail "$CG/cronrun/vm-ns was made outside the namespace"

box2=$CG/vm-ns-inherited
mkdir "$box2" || fail "cannot make $box2"
CR_PREFIX="sh /tmp/enter.sh $box2"
cr nsinh --no-lock --no-history -n vm-ns-inh -- "$PAYLOAD" mem 20 200
expect_eq "exit status with an inherited cgroup mount" "$rc" 0
summary_written nsinh
expect_eq "isolation.cgroup" "$(j nsinh cgroup)" none
note=$(j nsinh note)
echo "$note" | grep -q "outside this process's cgroup namespace" ||
  fail "isolation.note does not give the inherited mount as the reason: '$note'"
expect_eq "cronrun's stderr lines about the fallback" "$(grep -c '^cronrun: ' /tmp/nsinh.err)" 1
cr nsreq --no-lock --no-history -n vm-ns-inh --cgroup required -- "$PAYLOAD" exit 0
CR_PREFIX=
expect_eq "exit status with --cgroup required and an inherited mount" "$rc" 125
[ ! -d "$CG/cronrun/vm-ns-inh" ] || fail "$CG/cronrun/vm-ns-inh was made outside the namespace"

for d in "$box/cronrun/vm-ns" "$box/cronrun" "$box/init" "$box" "$box2"; do
  rmdir "$d" || fail "cannot remove $d (something left in it?)"
done
detail "own mount: oom in $path under the box; inherited mount: $(echo "$note" | cut -c1-90)..."
