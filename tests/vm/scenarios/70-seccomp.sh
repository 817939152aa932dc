# vmtest-timeout: 90
# seccomp on pure v2, as root and as an ordinary user in a delegated cgroup (no
# setuid, no_new_privs): --seccomp baseline refuses unshare -U with EPERM and counts
# it once with its pid and command, also when a grandchild makes it, while the job
# still runs in its own v2 cgroup; --seccomp strict lets the payload helper (glibc,
# allocation, children) run with nothing denied.
. /vmtest/lib.sh
need_cronrun
UNSHARE=/usr/local/bin/unshare  # util-linux's (glibc), not busybox's applet
[ -x "$UNSHARE" ] || fail "util-linux unshare is not in the initramfs"

cr sb --no-lock -n vm-sc --seccomp baseline -- "$UNSHARE" -U true
expect_v2 sb
[ "$rc" -ne 0 ] || fail "unshare -U passed --seccomp baseline"
expect_eq "seccomp.profile" "$(j sb profile)" baseline
expect_eq "seccomp.violations_total" "$(j sb violations_total)" 1
expect_eq "first violation" "$(j sb syscall)" unshare
expect_eq "its command" "$(j sb comm)" unshare
expect_num "its pid" "$(j sb first_pid)" 'x > 1'

cr sg --no-lock -n vm-sc --seccomp baseline -- sh -c "sh -c '$UNSHARE -U true'; exit 0"
expect_eq "exit status of a job whose grandchild was refused" "$rc" 0
expect_eq "grandchild's violation" "$(j sg syscall)" unshare
expect_eq "counted once" "$(j sg violations_total)" 1

cr ss --no-lock -n vm-sc --seccomp strict -- "$PAYLOAD" mem 20 200
expect_eq "exit status of the payload under strict" "$rc" 0
expect_eq "violations under strict" "$(j ss violations_total)" 0

D=$CG/user-1000-sc
mkdir $D $D/session || fail "mkdir $D"
echo "+memory +pids" > $D/cgroup.subtree_control || fail "enabling controllers in $D"
for d in $D $D/session; do
  chown 1000:1000 $d $d/cgroup.procs $d/cgroup.subtree_control $d/cgroup.threads || fail "chown $d"
done
CR_PREFIX="sh /vmtest/user-in.sh $D/session keep"
cr su -n vm-sc-user --memory 64M --seccomp baseline -- "$UNSHARE" -U true
CR_PREFIX=
expect_v2 su
expect_eq "user" "$(j su user)" user
[ "$rc" -ne 0 ] || fail "unshare -U passed --seccomp baseline as uid 1000"
expect_eq "uid 1000's violation" "$(j su syscall)" unshare
case $(j su path) in /user-1000-sc/*) ;; *) fail "isolation.path '$(j su path)' is not in the delegated subtree" ;; esac
detail "root: unshare refused+counted (pid $(j sb first_pid)), grandchild counted, strict payload ok; uid 1000 delegated: refused+counted in $(j su path)"
