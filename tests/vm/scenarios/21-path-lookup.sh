# vmtest-timeout: 60
# COMMAND without a '/' is looked up in $PATH by the spawned child (which must
# not allocate, so the parent lays out every candidate beforehand). 24 short
# runs, six at a time, must all find /bin/sh behind four PATH entries that do
# not have it. A candidate list pointing into freed memory shows up here as
# sporadic "sh: No such file or directory" / "Permission denied" (exit 127/126)
# in a plain build, and as an ASan heap-use-after-free report in a sanitized one.
. /vmtest/lib.sh
need_cronrun

rounds=4 width=6
bad=0 total=0
r=1
while [ $r -le $rounds ]; do
  pids=
  i=1
  while [ $i -le $width ]; do
    "$CRONRUN" --no-lock --no-history -n vm-path -- sh -c 'exit 7' > /tmp/path.$r.$i.out 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
  done
  i=1
  for p in $pids; do
    wait $p
    code=$?
    total=$((total + 1))
    if [ $code != 7 ]; then
      bad=$((bad + 1))
      echo "round $r run $i: exit $code"
      sed 's/^/  | /' /tmp/path.$r.$i.out
    fi
    i=$((i + 1))
  done
  r=$((r + 1))
done
[ $bad = 0 ] || fail "$bad of $total runs of 'cronrun -- sh -c \"exit 7\"' did not run sh: $(grep -h -o -E '^cronrun: .*|ERROR: AddressSanitizer: [a-z-]+ ' /tmp/path.*.out | sort | uniq -c | head -n 3 | tr -s ' ' | tr '\n' ';')"
detail "$total runs found sh through PATH"
