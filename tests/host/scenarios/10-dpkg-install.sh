# hosttest-timeout: 120
# dpkg -i of the previous build (prev.deb) on a clean system: the package is
# installed and configured, its programs run (every shared library found), the
# directories of DESIGN §9 exist with their modes, and nothing failed in systemd.
. "$HOST_LIB"
prev=$(sed -n 's/^prev //p' "$HOST_DEBS/versions")

expect_eq "dpkg status before install" "$(installed cronrun)" ""
run dpkg -i "$HOST_DEBS/prev.deb"
expect_eq "dpkg -i prev.deb exit" "$rc" 0
expect_eq "dpkg status" "$(installed cronrun)" "install ok installed"
expect_eq "installed version" "$(dpkg-query -W -f '${Version}' cronrun)" "$prev"
run dpkg --audit
[ -z "$out" ] || fail "dpkg --audit reports: $out"

for f in /usr/bin/cronrun /usr/bin/cronprof; do
  [ -x "$f" ] || fail "$f not installed"
  missing=$(ldd "$f" | grep 'not found')
  [ -z "$missing" ] || fail "$f: $missing"
done
run cronrun --version
expect_eq "cronrun --version exit" "$rc" 0
run cronprof --help
expect_eq "cronprof --help exit" "$rc" 0
for f in /usr/share/man/man1/cronrun.1.gz /usr/share/man/man1/cronprof.1.gz \
         /usr/share/man/man5/cronrun.json.5.gz \
         /usr/share/bash-completion/completions/cronrun /usr/share/bash-completion/completions/cronprof \
         /usr/share/zsh/vendor-completions/_cronrun /usr/share/zsh/vendor-completions/_cronprof \
         /etc/logrotate.d/cronrun /usr/lib/tmpfiles.d/cronrun.conf; do
  [ -f "$f" ] || fail "$f not installed"
done
for d in /etc/cronrun/jobs.d /var/lib/cronrun /var/log/cronrun /run/cronrun; do
  [ -d "$d" ] || fail "$d missing after install"
done
# tmpfiles.d applied at install time, with the mode cronrun checks for.
expect_eq "/run/cronrun owner and mode" "$(stat -c '%U:%G %a' /run/cronrun)" "root:root 755"

run systemctl --failed --no-legend --plain
[ -z "$out" ] || fail "failed units after install: $out"
detail "cronrun $prev installed; binaries run, directories and files in place"
