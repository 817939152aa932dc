#!/bin/sh
# One CTest test per VM scenario: finds `VMTEST <scenario> ...` in the console log
# that the vm.boot fixture wrote, prints the scenario's output when it did not pass.
#   check-result.sh LOG SCENARIO      exit 0 PASS, 77 SKIP, 1 FAIL or missing
log=$1 name=$2
if [ ! -r "$log" ]; then
  echo "check-result: no console log $log (the vm.boot fixture did not run or failed)"
  exit 1
fi
line=$(grep "^VMTEST $name " "$log" | tail -n 1)
if [ -z "$line" ]; then
  if grep -q '^VMDONE' "$log"; then
    echo "check-result: $name did not run in the VM (filtered out by CRONRUN_VM_ONLY, or new since the last configure?)"
  else
    echo "check-result: the VM stopped before reporting $name; console tail:"
    tail -n 40 "$log"
  fi
  exit 1
fi
grep "^VMOUT $name: " "$log" | sed "s/^VMOUT $name: //"
echo "$line"
case $line in
  "VMTEST $name PASS"*) exit 0 ;;
  "VMTEST $name SKIP"*) exit 77 ;;
  *) exit 1 ;;
esac
