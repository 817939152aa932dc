#!/usr/bin/env bash
# cronrun's command line end to end: a usage error (an unknown option, a value
# that does not parse, a config that cannot be read) exits 125 with one
# `cronrun: ` line naming it, and leaves nothing behind: no lock file, no history,
# no cgroup. Where options end (`--`, the first non-option), cron's `%` cut, the
# CPU count bound, and --dry-run's text and --json forms.
# Environment (set by tests/e2e/CMakeLists.txt): CRONRUN.
set -euo pipefail
: "${CRONRUN:?}"
tmp=$(mktemp -d /tmp/cronrun-cli-e2e.XXXXXX)
# A cgroup parent of our own: if a usage error ever creates a cgroup, it is here.
cg_parent=/cronrun-cli-e2e-$$
cleanup() {
  for d in /sys/fs/cgroup"$cg_parent" /sys/fs/cgroup/*"$cg_parent"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }

L=$tmp/locks/job.pid
H=$tmp/state/history.db
mkdir -p "$tmp/locks" "$tmp/state"
# Every run below writes its lock and history under $tmp, so "nothing recorded"
# is a fact about files we can list.
C=("$CRONRUN" --lock "$L" --history "$H" --cgroup-parent "$cg_parent")

# v2: /sys/fs/cgroup/PARENT; v1 and hybrid: /sys/fs/cgroup/HIERARCHY/PARENT.
cgroups_made() { ls -d /sys/fs/cgroup"$cg_parent" /sys/fs/cgroup/*"$cg_parent" 2>/dev/null | head -1; }

# usage_error DESCRIPTION WANT_IN_STDERR ARGS...: exit 125, one `cronrun: ` line
# containing WANT, and no lock, history or cgroup.
usage_error() {
  local what=$1 want=$2; shift 2
  local got=0
  timeout 20 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || got=$?
  if [ "$got" -ne 125 ]; then bad "$what: exit $got, want 125; stderr: $(head -c 300 "$tmp/err")"; return; fi
  if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q '^cronrun: ' "$tmp/err"; then
    bad "$what: stderr is not one 'cronrun:' line: $(head -c 300 "$tmp/err")"; return
  fi
  if ! grep -qF -- "$want" "$tmp/err"; then bad "$what: stderr does not say '$want': $(cat "$tmp/err")"; return; fi
  local left; left=$(find "$tmp/locks" "$tmp/state" -mindepth 1 | head -3)
  if [ -n "$left" ]; then bad "$what: left files behind: $left"; rm -rf "$tmp/locks"/* "$tmp/state"/*; return; fi
  if [ -n "$(cgroups_made)" ]; then bad "$what: created a cgroup: $(cgroups_made)"; return; fi
  if [ -s "$tmp/out" ]; then bad "$what: wrote to stdout: $(head -c 200 "$tmp/out")"; return; fi
  ok "$what (exit 125: $(cat "$tmp/err"))"
}

# ---- an unknown option never becomes the COMMAND ----
usage_error "a mistyped option" "unknown option '--memroy'" "${C[@]}" --memroy 2G -- true
usage_error "a mistyped option, cgroups off" "unknown option '--memroy'" "${C[@]}" --cgroup off --memroy 2G -- true
usage_error "a mistyped option after valid ones, before --dry-run" "unknown option '--dryrun'" \
  "${C[@]}" --memory 1G --dryrun -- true
usage_error "an unknown short option" "unknown option '-x'" "${C[@]}" -x -- true

# ---- where options end ----
got=0
"${C[@]}" --cgroup off --memory 64M printf '%s\n' --memory --foo >"$tmp/out" 2>"$tmp/err" || got=$?
if [ "$got" -eq 0 ] && [ "$(cat "$tmp/out")" = $'--memory\n--foo' ]; then
  ok "the first non-option starts the COMMAND; its own options are its arguments"
else
  bad "cronrun --memory 64M printf ... --memory --foo: exit $got, out '$(cat "$tmp/out")', err '$(cat "$tmp/err")'"
fi
rm -rf "$tmp/locks"/* "$tmp/state"/*
got=0
"${C[@]}" --cgroup off -- -weird >"$tmp/out" 2>"$tmp/err" || got=$?
if [ "$got" -eq 127 ]; then ok "-- -weird runs (and does not find) the command -weird (exit 127)"; else
  bad "-- -weird: exit $got, want 127; $(cat "$tmp/err")"; fi
rm -rf "$tmp/locks"/* "$tmp/state"/*

# ---- cron's % and the CPU count ----
# `cronrun --cpu 150% -- job` in a crontab reaches cronrun as `cronrun --cpu 150`.
usage_error "a %-cut crontab line says how to escape %" 'cron cuts the line at an unescaped % (write \%' \
  "${C[@]}" --cpu 150
usage_error "more cores than any host has asks for percent" "did you mean 999%?" "${C[@]}" --cpu 999 -- true

# ---- values that do not parse or make no sense ----
usage_error "--memory 0" "--memory: expected a size above 0" "${C[@]}" --memory 0 -- true
usage_error "--memory-high 0" "--memory-high: expected a size above 0" "${C[@]}" --memory-high 0 -- true
usage_error "--log-max 0" "--log-max: expected a size above 0" "${C[@]}" --log-dir "$tmp/logs" --log-max 0 -- true
usage_error "--name .." "--name: expected a job name" "${C[@]}" --name .. -- true
usage_error "--name ." "--name: expected a job name" "${C[@]}" --name . -- true
usage_error "a huge --lock-wait" "--lock-wait: expected a duration of at most 36500d" \
  "${C[@]}" --lock-wait 99999999999d -- true
usage_error "a huge --timeout" "--timeout: expected a duration of at most 36500d" "${C[@]}" --timeout 99999999999d -- true
usage_error "--json without --dry-run" "--json: only with --dry-run" "${C[@]}" --json -- true
usage_error "--dry-run with --flush (a flush writes)" "--dry-run: not with --flush" "${C[@]}" --dry-run --flush

# ---- the job config ----
echo '{"nice": 1e999}' >"$tmp/huge.json"
usage_error "a config number out of range" "config $tmp/huge.json: key 'nice'" "${C[@]}" -c "$tmp/huge.json" -- true
usage_error "--config /dev/zero" "/dev/zero: is a character device, expected a regular file" "${C[@]}" -c /dev/zero -- true
mkfifo "$tmp/fifo.json"
usage_error "a FIFO as --config (no writer: must not hang)" "$tmp/fifo.json: is a FIFO, expected a regular file" \
  "${C[@]}" -c "$tmp/fifo.json" -- true
# A config sets the job's environment (LD_PRELOAD too): root obeys only a file that
# nobody else could have written or planted.
if [ "$(id -u)" -eq 0 ]; then
  mkdir -m 1777 "$tmp/shared"
  echo '{"env": {"PLANTED": "1"}}' >"$tmp/shared/other.json"
  chown 65534 "$tmp/shared/other.json"
  usage_error "another user's config in a shared directory" "owned by uid 65534" \
    "${C[@]}" -c "$tmp/shared/other.json" -- true
  cp -p "$tmp/shared/other.json" "$tmp/other.json"
  usage_error "another user's config" "job config $tmp/other.json: owned by uid 65534, expected root" \
    "${C[@]}" -c "$tmp/other.json" -- true
  echo '{"env": {"FROM_CONFIG": "yes"}}' >"$tmp/mine.json"
  chmod 664 "$tmp/mine.json"
  usage_error "a group-writable config" "writable by its group (mode 0664)" "${C[@]}" -c "$tmp/mine.json" -- true
  chmod 644 "$tmp/mine.json"
  ln -s "$tmp/mine.json" "$tmp/shared/link.json"
  chown -h 65534 "$tmp/shared/link.json"
  usage_error "another user's symlink to root's config" "is a symlink owned by uid 65534; refusing to follow it" \
    "${C[@]}" -c "$tmp/shared/link.json" -- true
  ln -s mine.json "$tmp/link.json"
  got=0
  "${C[@]}" -c "$tmp/link.json" --dry-run -- true >"$tmp/out" 2>"$tmp/err" || got=$?
  [ "$got" -eq 0 ] && grep -q FROM_CONFIG "$tmp/out" && ok "root's own symlink to root's config is followed" \
    || bad "a trusted config symlink: exit $got $(head -c 300 "$tmp/err")"
fi
head -c 2000000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
usage_error "an oversized config" "$tmp/big.json: larger than the" "${C[@]}" -c "$tmp/big.json" -- true

# ---- --dry-run ----
got=0
"${C[@]}" --dry-run --nice 5 --ionice idle --env A=1 --log-dir "$tmp/logs" --count-db-queries --keep-orphans \
  --lock-wait 30s --report --timeout 5m -- true >"$tmp/out" 2>"$tmp/err" || got=$?
missing=""
for want in "nice:" "ionice:" "env:" "log-dir:" "count-db-queries:" "keep-orphans:" "lock-wait:" "report:" \
  "history:" "lock:" "kill-after:" "cgroup:" "why:"; do
  grep -q "^ *$want" "$tmp/out" || missing="$missing $want"
done
if [ "$got" -eq 0 ] && [ -z "$missing" ] && ! grep -q '^{' "$tmp/out"; then
  ok "--dry-run prints text only, every field resolved"
else
  bad "--dry-run: exit $got, missing:$missing; out: $(head -c 400 "$tmp/out")"
fi
grep -qF "$tmp/logs/true/<run-id>.log" "$tmp/out" && grep -qF "$L" "$tmp/out" && grep -qF "$H" "$tmp/out" \
  && ok "--dry-run shows the resolved lock, history and log paths" || bad "--dry-run paths: $(cat "$tmp/out")"
got=0
"${C[@]}" --dry-run --json --nice 5 -- true >"$tmp/out" 2>"$tmp/err" || got=$?
if [ "$got" -eq 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "cronrun.dry-run/1" and d["nice"] == 5 and d["lock"]["path"] == sys.argv[2], d
assert "cgroup" in d and "why" in d["cgroup"], d
' "$tmp/out" "$L"; then
  ok "--dry-run --json prints one JSON document"
else
  bad "--dry-run --json: exit $got: $(head -c 400 "$tmp/out") $(cat "$tmp/err")"
fi
left=$(find "$tmp/locks" "$tmp/state" -mindepth 1 | head -3)
[ -z "$left" ] && [ -z "$(cgroups_made)" ] && ok "--dry-run created nothing" || bad "--dry-run left: $left $(cgroups_made)"

# ---- started with stdout (or all three) closed ----
# The lock file must not take fd 1 and fill with the job's output; the next run
# must find a cronrun lock file.
for closed in "1" "0 1 2"; do
  redir=""
  for fd in $closed; do redir="$redir $fd>&-"; done
  rm -rf "$tmp/locks"/* "$tmp/state"/* "$tmp/closed-logs"; mkdir "$tmp/closed-logs"
  got=0
  eval '"${C[@]}" -q --cgroup off --log-dir "$tmp/closed-logs" -- sh -c "seq 1 20000"' "$redir" || got=$?
  again=0
  "${C[@]}" -q --cgroup off -- true >/dev/null 2>&1 </dev/null || again=$?
  size=$(stat -c %s "$L" 2>/dev/null || echo missing)
  logged=$(cat "$tmp/closed-logs/sh/"*.log 2>/dev/null | wc -l)
  if [ "$got" -eq 0 ] && [ "$again" -eq 0 ] && [ "$size" != missing ] && [ "$size" -lt 64 ] && [ "$logged" -eq 20000 ]; then
    ok "fds $closed closed: the lock holds a pid ($size bytes), the log all 20000 lines, the next run runs"
  else
    bad "fds $closed closed: exit $got, next run $again, lock $size bytes, log $logged lines"
  fi
done

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
