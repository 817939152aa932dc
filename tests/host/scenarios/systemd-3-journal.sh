# hosttest-timeout: 60
# The journal (DESIGN §9), after systemd-1-root-scope's runs: `journalctl
# CRONRUN_JOB=sd-root` lists that run's START and FINISH with their fields, and
# `journalctl -p warning` shows sd-oom's FINISH (oom) but not sd-root's (ok).
. "$HOST_LIB"
run journalctl -b --no-pager -o verbose CRONRUN_JOB=sd-root
v=$out
printf '%s\n' "$v" | grep -q 'MESSAGE=START job=sd-root ' || fail "no START of sd-root under CRONRUN_JOB=sd-root"
printf '%s\n' "$v" | grep -q 'MESSAGE=FINISH job=sd-root .*status=ok' || fail "no FINISH of sd-root under CRONRUN_JOB=sd-root"
for f in SYSLOG_IDENTIFIER=cronrun CRONRUN_RUN_ID= CRONRUN_STATUS=ok CRONRUN_EXIT=0 CRONRUN_WALL_S= \
         CRONRUN_MEMORY_PEAK_BYTES= CRONRUN_UNIT=cronrun-sd-root- MESSAGE_ID=d84252ef428647e6868944f57373ede2 \
         MESSAGE_ID=a7c4c3166936428d80c376efe4da6100; do
  printf '%s\n' "$v" | grep -q "^ *$f" || fail "sd-root's journal entries lack $f"
done
run journalctl -b --no-pager -o cat -p warning -t cronrun
printf '%s\n' "$out" | grep -q 'FINISH job=sd-oom .*status=oom' || fail "sd-oom's FINISH is not at warning"
printf '%s\n' "$out" | grep -q 'FINISH job=sd-root ' && fail "sd-root's ok FINISH is at warning"
run journalctl -b --no-pager -o cat -p warning CRONRUN_JOB=sd-oom CRONRUN_STATUS=oom
[ -n "$out" ] || fail "journalctl CRONRUN_JOB=sd-oom CRONRUN_STATUS=oom -p warning finds nothing"
detail "CRONRUN_JOB=sd-root: START and FINISH with the fields; -p warning: sd-oom's oom FINISH, not sd-root's"
