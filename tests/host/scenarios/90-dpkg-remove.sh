# hosttest-timeout: 90
# dpkg -r: the programs and the rest of the package's files go; what cronrun
# wrote (root's history) and the admin's configuration under /etc stay, and
# dpkg keeps the package as config-files. The list of the package's files is
# left in /var/tmp for 95-dpkg-purge.
. "$HOST_LIB"
expect_eq "dpkg status before" "$(installed cronrun)" "install ok installed"
dpkg -L cronrun > /var/tmp/cronrun-files.list
conffiles=$(dpkg-query -W -f '${Conffiles}' cronrun | awk '{ print $1 }')
run dpkg -r cronrun
expect_eq "dpkg -r exit" "$rc" 0
expect_eq "dpkg status" "$(installed cronrun)" "deinstall ok config-files"
for f in /usr/bin/cronrun /usr/bin/cronprof; do
  [ -e "$f" ] && fail "$f still there after dpkg -r"
done
# Every file of the package is gone but its conffiles.
while read -r f; do
  [ -f "$f" ] || continue
  printf '%s\n' $conffiles | grep -qx "$f" && continue
  fail "$f (the package's) still there after dpkg -r"
done < /var/tmp/cronrun-files.list
[ -f /var/lib/cronrun/history.db ] || fail "root's history was removed by dpkg -r"
for f in $conffiles; do
  [ -f "$f" ] || fail "conffile $f removed by dpkg -r"
done
run systemctl --failed --no-legend --plain
[ -z "$out" ] || fail "failed units after remove: $out"
detail "removed: programs gone, history and conffiles ($(echo $conffiles)) kept"
