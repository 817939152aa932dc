#!/bin/sh
# The host tier's --script (run-host.sh runs it in the guest as root): runs every
# scenario in $HOST_FILES/scenarios, one after another in one boot, each with a
# limit, and writes for the host (check-result.sh):
#   $HOST_OUT/results.txt   HOSTTEST <name> PASS|FAIL|SKIP <detail> (<seconds>s)
#                           ... and HOSTDONE <count> at the end
#   $HOST_OUT/<name>.log    the scenario's output (with a journal tail on failure)
#
# Order: by name, where a `systemd-X` scenario counts as `50-systemd-X`. The
# package's own scenarios bracket the rest: 10-* installs the previous build,
# 20-* upgrades to this checkout's, 30-*/40-* use it with the real cron, 50 is
# the systemd scenarios' slot, 80-* checks that nothing of ours is left, 90-*
# removes and purges. Scenarios share one system: each leaves it as it found it
# apart from what it documents.
#
# A scenario is a /bin/sh script; exit 0 = PASS, 77 = SKIP, else FAIL; `detail`
# (lib.sh) sets the one-line result. `# hosttest-timeout: N` in its first lines
# sets its limit (default 120 s). $HOST_FILES/only, when present, lists the
# scenarios to run (one name a line).
export HOST_DEBS=$HOST_FILES/debs
results=$HOST_OUT/results.txt
: > "$results"
only=
[ -f "$HOST_FILES/only" ] && only=$(cat "$HOST_FILES/only")

list=$(for s in "$HOST_FILES"/scenarios/*.sh; do
         n=$(basename "$s" .sh)
         case $n in systemd-*) echo "50-$n $s" ;; *) echo "$n $s" ;; esac
       done | sort | cut -d' ' -f2)
count=0
for script in $list; do
  name=$(basename "$script" .sh)
  if [ -n "$only" ] && ! printf '%s\n' "$only" | grep -qx "$name"; then
    continue
  fi
  count=$((count + 1))
  limit=$(head -n 5 "$script" | sed -n 's/^# hosttest-timeout: *\([0-9]*\).*/\1/p')
  limit=${limit:-120}
  log=$HOST_OUT/$name.log
  detail=/run/hosttest-$name.detail
  : > "$detail"
  t0=$(date +%s.%N)
  since=$(date '+%F %T')
  (cd /root && HOSTTEST_NAME=$name HOSTTEST_DETAIL=$detail HOSTTEST_TIMEOUT=$limit \
     exec timeout -k 5 "$limit" sh "$script") > "$log" 2>&1 < /dev/null
  rc=$?
  secs=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
  text=$(head -n 1 "$detail")
  case $rc in
    0) result=PASS ;;
    77) result=SKIP ;;
    124 | 137) result=FAIL text="timed out after ${limit}s${text:+; $text}" ;;
    *) result=FAIL text="exit $rc${text:+; $text}" ;;
  esac
  if [ "$result" = FAIL ]; then
    { echo "--- journal since the scenario started (tail)"
      journalctl --no-pager -q --since "$since" | tail -n 40
      echo "--- systemctl --failed"
      systemctl --failed --no-pager --no-legend; } >> "$log" 2>&1
  fi
  echo "HOSTTEST $name $result ${text:-ok} (${secs}s)" | tee -a "$results"
done
echo "HOSTDONE $count" | tee -a "$results"
