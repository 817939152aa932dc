# hosttest-timeout: 90
# dpkg -P after dpkg -r: dpkg forgets the package and no file of it is left:
# none of the files it shipped, no conffile, nothing in /etc/cronrun,
# /var/lib/cronrun, /var/log/cronrun, /run/cronrun, and no other path named
# after cronrun, but what belongs to the users (their histories under /home,
# their runtime and lock directories /run/user/UID/cronrun, /tmp/cronrun-UID)
# and systemd's own bookkeeping of units it ran (/run/systemd).
. "$HOST_LIB"
expect_eq "dpkg status before" "$(installed cronrun)" "deinstall ok config-files"
run dpkg -P cronrun
expect_eq "dpkg -P exit" "$rc" 0
expect_eq "dpkg status" "$(installed cronrun)" ""
while read -r f; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  # What another package owns too stays (/usr/bin, /etc/logrotate.d ...).
  dpkg -S "$f" >/dev/null 2>&1 && continue
  # Directories that other files still fill stay.
  [ -d "$f" ] && [ -n "$(ls -A "$f" 2>/dev/null)" ] && continue
  fail "$f still there after purge"
done < /var/tmp/cronrun-files.list
for d in /etc/cronrun /var/lib/cronrun /var/log/cronrun /run/cronrun; do
  [ -e "$d" ] && fail "$d still there after purge"
done
left=$(find / -xdev \( -path /home -o -path /tmp -o -path /proc -o -path /sys -o -path /host \) -prune -o \
         -name '*cronrun*' ! -path /var/tmp/cronrun-files.list -print 2>/dev/null)
left2=$(find /run /tmp \( -path /run/systemd -o -path /run/user \) -prune -o \
          -name '*cronrun*' ! -name 'cronrun-[1-9]*' -print 2>/dev/null)
[ -z "$left$left2" ] || fail "left after purge: $(echo $left $left2)"
run systemctl --failed --no-legend --plain
[ -z "$out" ] || fail "failed units after purge: $out"
rm -f /var/tmp/cronrun-files.list
detail "purged: dpkg forgot cronrun, no file of it left"
