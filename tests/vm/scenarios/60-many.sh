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
  "$CRONRUN" --no-lock -n vm-many --summary /tmp/many.$i.json -- sh -c \
    "cat /proc/self/cgroup > /tmp/many.$i.cg.tmp && mv /tmp/many.$i.cg.tmp /tmp/many.$i.cg;
     i=0; while [ ! -e /tmp/many.go ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i+1)); done" \
    > /tmp/many.$i.out 2>&1 &
  pids="$pids $!"
  i=$((i + 1))
done
# All jobs wait at a barrier until every one of them is running in its cgroup.
t=0
while [ "$(ls /tmp/many.*.cg 2>/dev/null | wc -l)" -lt $n ] && [ $t -lt 600 ]; do
  sleep 0.1
  t=$((t + 1))
done
started=$(ls /tmp/many.*.cg 2>/dev/null | wc -l)
live=$(find $CG/cronrun/vm-many -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
echo "started=$started live run cgroups=$live after $((t / 10))s"
touch /tmp/many.go
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
