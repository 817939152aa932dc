# vmtest-timeout: 60
# Container-like: root in a mount namespace where /sys/fs/cgroup is read-only
# (what a container without cgroup delegation sees) gets the fallback with the
# reason, not an error; --cgroup required refuses with 125.
. /vmtest/lib.sh
need_cronrun

cat > /tmp/ro.sh <<'X'
mount -o remount,bind,ro /sys/fs/cgroup || { echo "ro.sh: remount failed" >&2; exit 125; }
if mkdir /sys/fs/cgroup/ro-probe 2>/dev/null; then
  rmdir /sys/fs/cgroup/ro-probe; echo "ro.sh: cgroupfs still writable" >&2; exit 125
fi
exec "$@"
X
CR_PREFIX="unshare -m sh /tmp/ro.sh"
cr ro -n vm-ro -- "$PAYLOAD" mem 20 200
expect_eq "exit status on a read-only cgroupfs" "$rc" 0
summary_written ro
expect_eq "status" "$(j ro status)" ok
expect_eq "isolation.cgroup" "$(j ro cgroup)" none
note=$(j ro note)
echo "$note" | grep -Eqi 'read-only|readonly|EROFS|ro mount|mounted ro' ||
  fail "isolation.note does not give the read-only mount as the reason: '$note'"
lines=$(grep -c '^cronrun: ' /tmp/ro.err)
expect_eq "cronrun's stderr lines about the fallback" "$lines" 1

cr roreq -n vm-ro --cgroup required -- "$PAYLOAD" exit 0
CR_PREFIX=
expect_eq "exit status with --cgroup required on a read-only cgroupfs" "$rc" 125
mkdir $CG/rw-probe && rmdir $CG/rw-probe || fail "the host namespace's cgroupfs became read-only"
detail "note: $note"
