# Helpers for scripts run in the host-tier guest (sourced by /bin/sh, dash, as
# root): `. "$HOST_LIB"`. The scenario protocol (scenarios.sh): exit 0 = PASS,
# 77 = SKIP, anything else = FAIL; `detail "..."` gives the one-line result.
HOSTTEST_DETAIL=${HOSTTEST_DETAIL:-/dev/null}

detail() { echo "$*" > "$HOSTTEST_DETAIL"; }
fail() { echo "FAIL: $*" >&2; detail "$*"; exit 1; }
skip() { echo "SKIP: $*" >&2; detail "$*"; exit 77; }
# note: a step in the log, stamped with the guest's uptime (where time goes).
note() { echo "== [$(cut -d' ' -f1 /proc/uptime)] $*"; }

# run CMD...: echoes the command, runs it, shows its output and exit status in
# the log; sets $rc and leaves the output in $out.
run() {
  note "$*"
  out=$("$@" 2>&1)
  rc=$?
  [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/   | /' | head -n 60
  echo "   exit $rc"
  return 0
}

# expect_eq WHAT ACTUAL WANTED
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

# wait_for SECONDS WHAT CMD...: polls CMD once a second until it succeeds; fails
# the scenario with WHAT when SECONDS pass first.
wait_for() {
  _limit=$1 _what=$2
  shift 2
  _i=0
  while ! "$@" >/dev/null 2>&1; do
    _i=$((_i + 1))
    [ "$_i" -ge "$_limit" ] && fail "$_what: not within ${_limit}s"
    sleep 1
  done
}

# as_user USER CMD...: CMD as USER with a login-like environment (no session:
# what cron gives a crontab line is similar, and is what cron itself runs).
as_user() {
  _u=$1
  shift
  runuser -u "$_u" -- env HOME="$(getent passwd "$_u" | cut -d: -f6)" USER="$_u" LOGNAME="$_u" "$@"
}

# cron_arm: makes cron's next minute tick come within about 5 s instead of up to
# a minute: stops cron, moves the clock forward to second 55 of the minute
# (never backwards, which journald and cron dislike), starts cron again (which
# reads every crontab afresh). Sets CRON_TICK to the epoch second of that tick.
cron_arm() {
  systemctl stop cron.service
  _now=$(date +%s)
  _tick=$(((_now / 60 + 1) * 60))
  [ $((_tick - _now)) -lt 5 ] && _tick=$((_tick + 60))
  date -s "@$((_tick - 5))" >/dev/null
  systemctl start cron.service
  CRON_TICK=$_tick
  note "cron armed: tick at $(date -u -d "@$CRON_TICK" +%T) UTC"
}

# installed PACKAGE: dpkg's status word for it (e.g. "install ok installed",
# "deinstall ok config-files"), or nothing when dpkg does not know it.
installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null; }

# our_cgroups: every cgroup directory named after cronrun, anywhere (the
# cronrun.slice itself excepted); empty when nothing of ours is left.
our_cgroups() {
  find /sys/fs/cgroup -mindepth 1 -type d -name '*cronrun*' ! -name cronrun.slice 2>/dev/null
}

# our_units: loaded systemd units of ours, system manager and the lingering
# user's (cronrun.slice excepted).
our_units() {
  systemctl list-units --all --plain --no-legend 'cronrun*' | awk '$1 != "cronrun.slice" { print $1 }'
  if [ -S /run/user/1001/bus ]; then
    as_user linger env XDG_RUNTIME_DIR=/run/user/1001 \
      systemctl --user list-units --all --plain --no-legend 'cronrun*' |
      awk '$1 != "cronrun.slice" { print $1 }'
  fi
}

# jget KEY: the first scalar value of "KEY" in the JSON on stdin, quotes
# removed ("null" stays null; a missing key prints nothing). Enough for
# cronprof's pretty-printed output without python in the guest.
jget() {
  tr -d '\n' | grep -o "\"$1\" *: *\(\"[^\"]*\"\|[^,}]*\)" | head -n 1 |
    sed 's/^"[^"]*" *: *//; s/ *$//; s/^"\(.*\)"$/\1/'
}

# runs_of USER JOB: `cronprof runs --json --job JOB` as USER (root reads
# /var/lib/cronrun, a user their $XDG_STATE_HOME default).
runs_of() {
  if [ "$1" = root ]; then
    cronprof runs --json --job "$2" 2>&1
  else
    as_user "$1" cronprof runs --json --job "$2" 2>&1
  fi
}

# wait_run USER JOB SECONDS: waits until JOB has a finished run (any status but
# running or lost) in USER's history; leaves `cronprof runs --json` in
# $run_json. Fails the scenario when none comes within SECONDS. `lost` is
# waited out too: cronprof can read a run's start, then find its runner gone
# because the runner wrote the finish and exited in between; the next read
# shows the finish. Seen under a loaded TCG guest; it is logged when it happens.
wait_run() {
  _i=0
  while :; do
    run_json=$(runs_of "$1" "$2")
    _st=$(printf '%s' "$run_json" | jget status)
    case $_st in
      '' | running) ;;
      lost) note "$1's run of $2 read as lost; reading again" ;;
      *) break ;;
    esac
    _i=$((_i + 1))
    [ "$_i" -ge "$3" ] && fail "no finished run of $2 in $1's history within ${3}s (last: ${_st:-none})"
    sleep 1
  done
  note "$1's run of $2: status $_st"
}

# journal_has PATTERN: cronrun's journal lines (syslog identifier cronrun) since
# boot contain the extended regex PATTERN.
journal_has() { journalctl -b -q --no-pager -t cronrun -o cat | grep -Eq "$1"; }
