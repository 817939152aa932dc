# hosttest-timeout: 120
# dpkg -i of this checkout's package (new.deb) over the previous build: a real
# upgrade (the old prerm/postrm run with "upgrade"), the new version installed,
# and the history kept: the previous build's run is still there and readable by
# the new cronprof; the directories and the admin's files under /etc/cronrun stay.
. "$HOST_LIB"
new=$(sed -n 's/^new //p' "$HOST_DEBS/versions")
prev=$(sed -n 's/^prev //p' "$HOST_DEBS/versions")
expect_eq "installed version before" "$(dpkg-query -W -f '${Version}' cronrun)" "$prev"
echo '{ "memory": "64M" }' > /etc/cronrun/jobs.d/admin-kept.json
sum_before=$(sha256sum /var/lib/cronrun/history.db | cut -d' ' -f1)

run dpkg -i "$HOST_DEBS/new.deb"
expect_eq "dpkg -i new.deb exit" "$rc" 0
case $out in *"Preparing to unpack"*"over ($prev)"*) ;; *) fail "dpkg did not unpack over $prev (no upgrade?)" ;; esac
expect_eq "dpkg status" "$(installed cronrun)" "install ok installed"
expect_eq "installed version" "$(dpkg-query -W -f '${Version}' cronrun)" "$new"
run dpkg --audit
[ -z "$out" ] || fail "dpkg --audit reports: $out"

sum_after=$(sha256sum /var/lib/cronrun/history.db | cut -d' ' -f1)
expect_eq "history.db content across the upgrade" "$sum_after" "$sum_before"
run cronprof runs --job before-upgrade --json
expect_eq "cronprof runs exit" "$rc" 0
case $out in *'"before-upgrade"'*) ;; *) fail "the previous build's run is gone from the history" ;; esac
[ -f /etc/cronrun/jobs.d/admin-kept.json ] || fail "the admin's job config was removed by the upgrade"
rm -f /etc/cronrun/jobs.d/admin-kept.json
run systemctl --failed --no-legend --plain
[ -z "$out" ] || fail "failed units after upgrade: $out"
detail "upgraded $prev -> $new; history and /etc/cronrun kept"
