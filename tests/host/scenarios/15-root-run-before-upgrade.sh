# hosttest-timeout: 90
# A run of the previous build, recorded in root's history, for 20-dpkg-upgrade
# to find after the upgrade.
. "$HOST_LIB"
run cronrun --name before-upgrade -- sh -c 'echo made by the previous build'
expect_eq "cronrun exit" "$rc" 0
[ -f /var/lib/cronrun/history.db ] || fail "no /var/lib/cronrun/history.db after a root run"
run cronprof runs --job before-upgrade --json
case $out in *'"before-upgrade"'*) ;; *) fail "the run is not in root's history" ;; esac
detail "root run recorded by the previous build"
