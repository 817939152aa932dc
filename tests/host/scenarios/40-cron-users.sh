# hosttest-timeout: 150
# Users' crontabs (installed with `crontab -u USER`, in cron's spool), run by the
# real cron daemon as `linger` (lingering, user manager running) and `nolinger`:
# each run lands in that user's own history ($XDG_STATE_HOME default,
# ~/.local/state/cronrun/history.db), owned by the user, with the job's status;
# root's history gets nothing of theirs; FINISH lines are in the journal.
. "$HOST_LIB"
for u in linger nolinger; do
  cat > "/tmp/$u.cron" <<CRON
* * * * * cronrun --name host-cron-$u -- sh -c 'id -un > \$HOME/host-cron-$u.out'
CRON
  run crontab -u "$u" "/tmp/$u.cron"
  expect_eq "crontab -u $u exit" "$rc" 0
done
cron_arm
for u in linger nolinger; do
  wait_run "$u" "host-cron-$u" 90
  expect_eq "$u's run status" "$(printf '%s' "$run_json" | jget status)" ok
  expect_eq "$u's run user" "$(printf '%s' "$run_json" | jget user)" "$u"
  home=$(getent passwd "$u" | cut -d: -f6)
  expect_eq "$u's job output" "$(cat "$home/host-cron-$u.out" 2>/dev/null)" "$u"
  db=$home/.local/state/cronrun/history.db
  [ -f "$db" ] || fail "no $db"
  expect_eq "owner of $db" "$(stat -c %U "$db")" "$u"
  note "$u: isolation $(printf '%s' "$run_json" | tr -d '\n' | grep -o '"isolation": *{[^}]*}' | tr -s ' ')"
  run crontab -u "$u" -r
  journal_has "FINISH .*host-cron-$u" || fail "no FINISH of host-cron-$u in the journal"
done
run cronprof runs --json --job host-cron-linger
[ -z "$(printf '%s' "$out" | jget status)" ] || fail "a user's run is in root's history"
detail "cron ran linger's and nolinger's lines: recorded in each user's own history, FINISH in the journal"
