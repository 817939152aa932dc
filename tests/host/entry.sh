#!/bin/sh
# First thing run-host.sh's share runs in the guest (as root, from
# hosttest-run): installs the .debs given with --deb, in order, with
# dpkg -i, then runs the --script with a guest-side limit. Its exit status is
# the script's; 253 when a dpkg -i failed, 252 when the script hit the limit.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 HOME=/root
export HOST_SHARE=/host HOST_FILES=/host/files HOST_OUT=/host/out HOST_LIB=/host/lib.sh
cd /root || exit 1
# A settled system: no start job left (the lingering user's manager included).
state=$(timeout 120 systemctl is-system-running --wait 2>&1)
echo "== guest $(uname -r), system $state, uptime $(cut -d' ' -f1 /proc/uptime)s"
for deb in $(cat /host/debs.list 2>/dev/null); do
  echo "== dpkg -i $deb"
  if ! dpkg -i "/host/debs/$deb"; then
    echo "== dpkg -i $deb failed"
    exit 253
  fi
done
limit=$(cat /host/timeout)
echo "== script (limit ${limit}s)"
timeout -k 5 "$limit" sh /host/script
rc=$?
[ "$rc" = 124 ] && { echo "== the script did not finish within ${limit}s"; rc=252; }
echo "== script exit $rc"
exit "$rc"
