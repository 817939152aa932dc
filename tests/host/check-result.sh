#!/bin/sh
# One CTest test per host-tier scenario: finds `HOSTTEST <scenario> ...` in the
# results that the host.boot fixture brought back, and prints the scenario's log
# when it did not pass.
#   check-result.sh RUN_DIR SCENARIO      exit 0 PASS, 77 SKIP, 1 FAIL or missing
dir=$1 name=$2
results=$dir/results.txt
if [ ! -r "$results" ]; then
  echo "check-result: no $results (the host.boot fixture did not run or the guest never started the scenarios)"
  [ -r "$dir/entry.log" ] && tail -n 40 "$dir/entry.log"
  exit 1
fi
line=$(grep "^HOSTTEST $name " "$results" | tail -n 1)
if [ -z "$line" ]; then
  if grep -q '^HOSTDONE' "$results"; then
    echo "check-result: $name did not run in the guest (left out by CRONRUN_HOST_ONLY, or new since the last configure?)"
  else
    echo "check-result: the guest stopped before reporting $name; its run so far:"
    tail -n 40 "$dir/entry.log" 2>/dev/null
  fi
  exit 1
fi
case $line in
  "HOSTTEST $name PASS"*) ;;
  *) cat "$dir/$name.log" 2>/dev/null ;;
esac
echo "$line"
case $line in
  "HOSTTEST $name PASS"*) exit 0 ;;
  "HOSTTEST $name SKIP"*) exit 77 ;;
  *) exit 1 ;;
esac
