# vmtest-timeout: 120
# Many at once: 20 concurrent runs of one job (no lock) each get a cgroup of
# their own, run in it at the same time, and leave nothing behind: no run
# cgroup under /cronrun and no other new directory in the hierarchy.
. /vmtest/lib.sh
need_cronrun
n=20

others_before=$(find $CG -type d | grep -v "^$CG/cronrun" | wc -l)
runs_before=$(count_job_cgroups)
rm -f /tmp/many.*
i=1
pids=
while [ $i -le $n ]; do
  "$CRONRUN" --no-lock -n vm-many --summary /tmp/many.$i.json -- /bin/sh -c \
    "cat /proc/self/cgroup > /tmp/many.$i.cg.tmp && mv /tmp/many.$i.cg.tmp /tmp/many.$i.cg;
     i=0; while [ ! -e /tmp/many.go ] && [ \$i -lt 300 ]; do sleep 0.2; i=\$((i+1)); done" \
    > /tmp/many.$i.out 2>&1 &
  pids="$pids $!"
  i=$((i + 1))
done
# All jobs wait at a barrier until every one of them is running in its cgroup.
read -r t0 _ < /proc/uptime
deadline=$(awk "BEGIN { print $t0 + 40 }")
while :; do
  started=$(ls /tmp/ | grep -c '^many\.[0-9]*\.cg$')
  [ "$started" -ge $n ] && break
  read -r now _ < /proc/uptime
  awk "BEGIN { exit !($now > $deadline) }" && break
  sleep 0.2
done
live=$(find $CG/cronrun/vm-many -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
read -r now _ < /proc/uptime
echo "started=$started live run cgroups=$live after $(awk "BEGIN { print $now - $t0 }")s"
if [ "$started" -lt $n ]; then
  i=1
  while [ $i -le $n ]; do
    [ -e /tmp/many.$i.cg ] || { echo "run $i has not started its job:"; sed 's/^/  | /' /tmp/many.$i.out; }
    i=$((i + 1))
  done
  ps -o pid,ppid,stat,args | grep -v ' ps ' | head -n 60
fi
touch /tmp/many.go
# Every run must finish soon after the barrier opens; a hung one is the finding.
t=0
while [ $t -lt 300 ]; do
  running=0
  for p in $pids; do alive $p && running=$((running + 1)); done
  [ $running = 0 ] && break
  sleep 0.2
  t=$((t + 1))
done
if [ $running != 0 ]; then
  ps -o pid,ppid,stat,args | grep -v ' ps ' | head -n 60
  fail "$running of $n concurrent runs still running 60s after their jobs were released"
fi
bad=0
for p in $pids; do
  wait $p || bad=$((bad + 1))
done
[ $bad = 0 ] || { head -n 5 /tmp/many.*.out; fail "$bad of $n concurrent runs exited non-zero"; }
expect_eq "jobs running at the barrier" "$started" $n
expect_eq "run cgroups alive at the barrier" "$live" $n
distinct=$(cat /tmp/many.*.cg | sort -u | wc -l)
expect_eq "distinct cgroups the jobs ran in" "$distinct" $n
i=1
while [ $i -le $n ]; do
  [ -s /tmp/many.$i.json ] || fail "run $i wrote no summary"
  rc=0
  expect_eq "run $i: the job's cgroup vs isolation.path" "$(cat /tmp/many.$i.cg)" "0::$(j many.$i path)"
  i=$((i + 1))
done
sleep 0.5
runs_after=$(count_job_cgroups)
others_after=$(find $CG -type d | grep -v "^$CG/cronrun" | wc -l)
expect_eq "run cgroups under /cronrun after all finished" "$runs_after" "$runs_before"
expect_eq "directories outside /cronrun after the runs" "$others_after" "$others_before"
if [ -x /usr/local/bin/cronprof ]; then
  out=$(/usr/local/bin/cronprof runs --job vm-many --history /var/lib/cronrun/history.db --json 2>&1)
  for f in /tmp/many.*.json; do
    id=$(tr -d '\n' < $f | grep -o '"run_id" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    echo "$out" | grep -q "$id" || fail "history lacks run $id (cronprof runs --job vm-many)"
  done
fi
detail "$n concurrent runs, $live cgroups live at once, $runs_after left after"
