# Helpers for the VM scenarios (sourced by busybox sh; see init for the protocol).
#
# Every cronrun invocation goes through `cr`, which echoes the command, its exit
# status, stderr and summary into the scenario log, so a failure report shows
# what was run and what came back without re-running anything.
CRONRUN=/usr/local/bin/cronrun
PAYLOAD=/usr/local/bin/cronrun-payload
ASUSER=/usr/local/bin/cronrun-vm-asuser
CG=/sys/fs/cgroup

detail() { echo "$*" > "$VMTEST_DETAIL"; }
fail() { echo "FAIL: $*" >&2; detail "$*"; exit 1; }
skip() { echo "SKIP: $*" >&2; detail "$*"; exit 77; }
note() { echo "== $*"; }

need_cronrun() {
  [ -x "$CRONRUN" ] || fail "cronrun is not in the initramfs (target not built?)"
  [ -x "$PAYLOAD" ] || fail "cronrun-payload is not in the initramfs"
}

# cr TAG [cronrun args...]: runs cronrun with --summary /tmp/TAG.json, stdout in
# /tmp/TAG.out, stderr in /tmp/TAG.err; sets $rc. Prefix with an env assignment
# through CR_PREFIX (e.g. CR_PREFIX="$ASUSER 1000 1000").
cr() {
  tag=$1
  shift
  rm -f "/tmp/$tag.json"
  note "$tag: ${CR_PREFIX:+$CR_PREFIX }cronrun --summary /tmp/$tag.json $*"
  read -r _t0 _ < /proc/uptime
  $CR_PREFIX "$CRONRUN" --summary "/tmp/$tag.json" "$@" > "/tmp/$tag.out" 2> "/tmp/$tag.err"
  rc=$?
  read -r _t1 _ < /proc/uptime
  echo "   exit $rc after $(awk "BEGIN { printf \"%.2f\", $_t1 - $_t0 }")s"
  [ -s "/tmp/$tag.out" ] && sed 's/^/   out| /' "/tmp/$tag.out" | head -n 20
  [ -s "/tmp/$tag.err" ] && sed 's/^/   err| /' "/tmp/$tag.err" | head -n 40
  if [ -s "/tmp/$tag.json" ]; then
    echo "   summary| $(tr -d '\n' < "/tmp/$tag.json" | tr -s ' ')"
  else
    echo "   (no summary written)"
  fi
  return 0
}

# j TAG KEY: the first scalar value of "KEY" in /tmp/TAG.json, quotes removed
# ("null" stays null; a missing key prints nothing). Works on compact and
# pretty-printed output alike; keys are unique enough in cronrun.run/1.
j() {
  tr -d '\n' < "/tmp/$1.json" 2>/dev/null |
    grep -o "\"$2\" *: *\(\"[^\"]*\"\|[^,}]*\)" | head -n 1 |
    sed 's/^"[^"]*" *: *//; s/ *$//; s/^"\(.*\)"$/\1/'
}
# jobj TAG KEY: the flat object value of "KEY" ({...}), or nothing.
jobj() {
  tr -d '\n' < "/tmp/$1.json" 2>/dev/null | grep -o "\"$2\" *: *{[^}]*}" | head -n 1 |
    sed 's/^"[^"]*" *: *//' | tr -s ' '
}

# expect_eq WHAT ACTUAL WANTED
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '${2}', want '$3'"; }
# is_num VALUE: a JSON number (not null, not empty)
is_num() { echo "$1" | grep -Eq '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'; }
# expect_num WHAT VALUE AWK-CONDITION-ON-x, e.g. expect_num oom_kills "$v" 'x >= 1'
expect_num() {
  is_num "$2" || fail "$1: got '${2}', want a number with $3"
  awk -v x="$2" "BEGIN { exit !($3) }" || fail "$1: got $2, want $3"
}
summary_written() { [ -s "/tmp/$1.json" ] || fail "$1: no summary JSON written (exit $rc)"; }
# expect_v2 TAG: the run had a v2 cgroup; otherwise fail with cronrun's own reason.
expect_v2() {
  summary_written "$1"
  [ "$(j "$1" cgroup)" = v2 ] ||
    fail "$1 ran with isolation.cgroup '$(j "$1" cgroup)', want v2; isolation.note: $(j "$1" note)"
}

# Processes: is PID alive (and not a zombie)?
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# Job cgroup dirs currently under $CG/cronrun (0 when the dir does not exist).
count_job_cgroups() {
  [ -d "$CG/cronrun" ] || { echo 0; return; }
  find "$CG/cronrun" -mindepth 2 -maxdepth 2 -type d | wc -l
}
