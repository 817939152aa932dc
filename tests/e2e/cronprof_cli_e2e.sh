#!/usr/bin/env bash
# cronprof's command line end to end: a usage error (an unknown option or
# subcommand, an unexpected argument, a value that does not parse or fails its
# check, a missing value or argument) exits 2 with exactly one `cronprof: ` line on
# stderr naming it and what was expected, nothing on stdout and no history
# created; every --help (cronprof's and each subcommand's) goes to stdout, exits
# 0 and ends with the exit statuses that apply.
# Environment (set by tests/e2e/CMakeLists.txt): CRONPROF.
set -euo pipefail
: "${CRONPROF:?}"
tmp=$(mktemp -d /tmp/cronprof-cli-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }

# A history path no usage error may create.
H=$tmp/history.db
P=("$CRONPROF" --history "$H")

# usage_error DESCRIPTION WANT_IN_STDERR ARGS...: exit 2, one `cronprof: ` line
# containing WANT, nothing on stdout, no history file.
usage_error() {
  local what=$1 want=$2; shift 2
  local got=0
  timeout 20 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || got=$?
  if [ "$got" -ne 2 ]; then bad "$what: exit $got, want 2; stderr: $(head -c 300 "$tmp/err")"; return; fi
  if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q '^cronprof: ' "$tmp/err"; then
    bad "$what: stderr is not one 'cronprof:' line: $(head -c 300 "$tmp/err")"; return
  fi
  if ! grep -qF -- "$want" "$tmp/err"; then bad "$what: stderr does not say '$want': $(cat "$tmp/err")"; return; fi
  if [ -s "$tmp/out" ]; then bad "$what: wrote to stdout: $(head -c 200 "$tmp/out")"; return; fi
  if [ -e "$H" ]; then bad "$what: created the history $H"; rm -f "$H"; return; fi
  ok "$what (exit 2: $(cat "$tmp/err"))"
}

# ---- unknown names ----
usage_error "unknown global option is named" "cronprof: unknown option '--bogus' (see cronprof --help)" "${P[@]}" --bogus
usage_error "unknown option before the subcommand" "runs: unknown option '--bogus'" "${P[@]}" --bogus runs
usage_error "unknown option of a subcommand" "runs: unknown option '--bogus' (see cronprof runs --help)" "${P[@]}" runs --bogus
usage_error "unknown option with a value: the name alone" "runs: unknown option '--bogus'" "${P[@]}" runs --bogus=5
usage_error "unknown short option" "runs: unknown option '-x'" "${P[@]}" runs -x
# summary has no --limit (runs has): the option is named, not its value.
usage_error "another subcommand's option" "summary: unknown option '--limit'" "${P[@]}" summary --limit x
usage_error "first unknown option in command-line order" "unknown option '--first'" "${P[@]}" runs --first --second
usage_error "unknown subcommand, with the ones that exist" \
  "cronprof: unknown subcommand 'frobnicate' (expected runs, show, summary, suggest, plan, report, export, ps, gc, status or fleet)" \
  "${P[@]}" frobnicate
usage_error "no subcommand: which exist" "cronprof: a subcommand is required: runs, show," "${P[@]}"
usage_error "only global options: a subcommand is required" "a subcommand is required: runs" "${P[@]}" --json
usage_error "unexpected argument" "runs: unexpected argument 'extra' (see cronprof runs --help)" "${P[@]}" runs extra
usage_error "one argument too many" "show: unexpected argument 'b'" "${P[@]}" show a b

# ---- values ----
usage_error "value that is not a number" "cronprof: runs: --limit: expected a whole number, 0 or more, got 'x' (see cronprof runs --help)" "${P[@]}" runs --limit x
# CLI11 alone reads -1 into an unsigned option as 2^64 - 1.
usage_error "negative whole number" "cronprof: runs: --limit: expected a whole number, 0 or more, got '-1' (see cronprof runs --help)" "${P[@]}" runs --limit -1
usage_error "option without its value" "cronprof: runs: --limit: missing its value, expected a whole number, 0 or more (see cronprof runs --help)" "${P[@]}" runs --limit
usage_error "global option without its value" "cronprof: --history: missing its value" "$CRONPROF" --history
usage_error "value outside the allowed set" "cronprof: export: --format: expected json, csv or prometheus, got 'xml' (see cronprof export --help)" \
  "${P[@]}" export --format xml
usage_error "value outside a range" "cronprof: suggest: --headroom: expected a number from 1 to 10, got '20'" \
  "${P[@]}" suggest --headroom 20
usage_error "value not above 0" "cronprof: plan: --host-cpus: expected a number above 0, got '-1'" \
  "${P[@]}" plan --host-cpus -1 --crontab /dev/null
usage_error "flag given a value" "cronprof: --json: expected no value (or true/false), got 'maybe'" "${P[@]}" --json=maybe runs
usage_error "positional outside its set" "cronprof: fleet: view: expected status, got 'bogus' (see cronprof fleet --help)" "${P[@]}" fleet bogus
usage_error "required option missing" "gc: --keep is required" "${P[@]}" gc
usage_error "required argument missing" "show: missing target" "${P[@]}" show

# The subcommands' own checks (after CLI11) say a bad value the same way: the
# subcommand, the option, what was expected, and the help to read.
usage_error "duration that does not parse" "cronprof: runs: --since: expected a duration like 90s, 15m, 2h or 7d, got 'bogus' (see cronprof runs --help)" "${P[@]}" runs --since bogus
usage_error "status outside the set" "cronprof: runs: --status: unknown run status 'weird'" "${P[@]}" runs --status weird
usage_error "options that go together" "cronprof: suggest: --config needs --write and --job (it names one job's file) (see cronprof suggest --help)" "${P[@]}" suggest --config x
usage_error "grace that does not parse" "cronprof: status: --grace: 'x'" "${P[@]}" status --grace x --crontab /dev/null
usage_error "a gc window that does not parse" "cronprof: gc: --keep: expected a duration like 90s, 15m, 2h or 7d, got '3q' (see cronprof gc --help)" "${P[@]}" gc --keep 3q

# What the user typed is quoted back escaped, never as raw control bytes.
usage_error "control bytes in an unknown option are escaped" "unknown option '--x" "${P[@]}" $'--x\e[31mred'
if grep -q $'\e' "$tmp/err"; then bad "raw ESC byte echoed to the terminal: $(cat -v "$tmp/err")"; fi

# A central history URI quoted back never shows its password (stderr goes to cron mail).
usage_error "URI given without --history: password hidden" "unexpected argument 'postgresql://cronrun:***@db1/cronrun'" \
  "${P[@]}" runs postgresql://cronrun:s3cret@db1/cronrun
if grep -q s3cret "$tmp/err"; then bad "the password reached stderr: $(cat "$tmp/err")"; fi
usage_error "URI as a number: password hidden" "got 'postgresql://cronrun:***@db1/cronrun'" \
  "${P[@]}" runs --limit=postgresql://cronrun:s3cret@db1/cronrun
if grep -q s3cret "$tmp/err"; then bad "the password reached stderr: $(cat "$tmp/err")"; fi

# Global options after the subcommand are still understood (not unknown options).
got=0
"$CRONPROF" runs --history "$H" --json >/dev/null 2>"$tmp/err" || got=$?
if [ "$got" -eq 3 ] && grep -q "^cronprof: .*$H" "$tmp/err"; then ok "--history after the subcommand is read (exit 3: no history)"
else bad "--history after the subcommand: exit $got, want 3; stderr: $(cat "$tmp/err")"; fi

# ---- --help ----
# help_ok DESCRIPTION ARGS...: exit 0, stdout has an exit-status section listing
# at least 0 and 2, stderr empty. Leaves the help in $tmp/out.
help_ok() {
  local what=$1; shift
  local got=0
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || got=$?
  if [ "$got" -ne 0 ]; then bad "$what: exit $got, want 0; stderr: $(head -c 300 "$tmp/err")"; return 1; fi
  if [ -s "$tmp/err" ]; then bad "$what: wrote to stderr: $(head -c 300 "$tmp/err")"; return 1; fi
  if ! grep -q '^Exit status:$' "$tmp/out" || ! grep -qE '^  0 +ok' "$tmp/out" || ! grep -qE '^  2 +bad usage' "$tmp/out"; then
    bad "$what: no exit-status section with 0 and 2: $(tail -n 12 "$tmp/out")"; return 1
  fi
  ok "$what"
}
# codes_listed CODE...: each code has its line in the help in $tmp/out.
codes_listed() {
  local c
  for c in "$@"; do grep -qE "^  $c +[a-z]" "$tmp/out" || return 1; done
}

if help_ok "cronprof --help" "$CRONPROF" --help; then
  if codes_listed 0 1 2 3 4 5 6 7 8; then ok "cronprof --help lists every exit code 0-8"
  else bad "cronprof --help does not list every exit code: $(sed -n '/^Exit status:/,$p' "$tmp/out")"; fi
fi
# Every subcommand cronprof --help lists, so a new one is checked too.
subs=$("$CRONPROF" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ "$(echo "$subs" | wc -w)" -ge 11 ] || bad "found only these subcommands in cronprof --help: $subs"
for s in $subs; do
  help_ok "cronprof $s --help" "$CRONPROF" "$s" --help || continue
  # The global options are named in every subcommand's help.
  grep -q -- '--history, --json and --wide' "$tmp/out" || bad "cronprof $s --help does not name the global options"
  case $s in
    show | suggest) codes_listed 7 || bad "cronprof $s --help does not list exit 7" ;;
    status | fleet) codes_listed 8 || bad "cronprof $s --help does not list exit 8" ;;
    *) if codes_listed 7 || codes_listed 8; then bad "cronprof $s --help lists 7 or 8, which it never gives"; fi ;;
  esac
done
help_ok "--help after a subcommand's options" "${P[@]}" runs --limit 5 --help

# ---- --version ----
got=0
"${P[@]}" --version >"$tmp/out" 2>"$tmp/err" </dev/null || got=$?
if [ "$got" -eq 0 ] && grep -qxE 'cronprof [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out" && [ ! -s "$tmp/err" ] && [ ! -e "$H" ]; then
  ok "--version: $(cat "$tmp/out")"
else
  bad "--version: exit $got, stdout '$(head -c 200 "$tmp/out")', stderr '$(head -c 200 "$tmp/err")'"
fi

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
