#!/usr/bin/env bash
# contrib/completions/_cronprof against the real cronprof, in zsh: every
# subcommand `cronprof --help` lists is offered, every option each subcommand's
# --help lists is offered after that subcommand, nothing offered there is an
# option cronprof refuses, and the values a --help names ({json,csv,prometheus},
# runs --status's list, fleet's view) are the ones offered. zsh loads the file
# with compinit and completes on a pty (tests/package/zsh_complete.zsh).
set -euo pipefail
: "${CRONPROF:?set CRONPROF to the cronprof binary}"
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v zsh >/dev/null || { echo "FAIL: zsh missing: install it (scripts/install-deps.sh)"; exit 1; }
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT

complete_words() {
  (cd "$empty" && zsh -f "$src/tests/package/zsh_complete.zsh" "$src/contrib/completions" "$@")
}
# The long options a CLI11 --help lists, one per line.
help_options() { "$CRONPROF" "$@" --help | grep -oE '^ +(-[a-zA-Z],)?--[a-z][a-z-]*' | sed 's/.*,//; s/^ *//' | sort -u; }

fail=0
no() { echo "FAIL: $*"; fail=1; }

subs=$("$CRONPROF" --help | sed -n '/^Subcommands:/,/^$/p' | grep -oE '^ +[a-z][a-z-]*' | tr -d ' ')
[ -n "$subs" ] || { echo "FAIL: no subcommands read from cronprof --help"; exit 1; }
offered_subs=$(complete_words cronprof '')
for s in $subs; do
  grep -qx "$s" <<<"$offered_subs" || no "subcommand $s is not offered"
done
for s in $offered_subs; do
  grep -qx "$s" <<<"$subs" || no "subcommand $s is offered but cronprof has none of that name"
done
grep -qx runs <<<"$(complete_words cronprof --history h.db ru)" || no "--history's value was taken for the subcommand"

global=$(help_options)
for o in $global; do
  grep -qx -- "$o" <<<"$(complete_words cronprof -)" || no "global option $o is not offered"
done
for s in $subs; do
  offered=$(complete_words cronprof "$s" --)
  help=$("$CRONPROF" "$s" --help)
  accepted=$(help_options "$s")
  for o in $accepted; do
    grep -qx -- "$o" <<<"$offered" || no "cronprof $s $o is not offered"
  done
  for o in $offered; do
    grep -qx -- "$o" <<<"$accepted"$'\n'"$global" || no "cronprof $s: $o is offered but cronprof $s does not accept it"
  done
  # The global options work after the subcommand too (CLI11 fallthrough).
  grep -qx -- --history <<<"$offered" || no "cronprof $s: --history is not offered after the subcommand"
  # An option whose --help names its values ("--format TEXT:{json,csv,prometheus}")
  # offers exactly those; so does a positional ("view TEXT:{status}").
  while read -r name values; do
    [ -n "$name" ] || continue
    want=$(tr ',' '\n' <<<"$values" | sort)
    if [[ $name == --* ]]; then
      got=$(complete_words cronprof "$s" "$name" '' | sort -u)
    else
      got=$(complete_words cronprof "$s" '' | grep -v '^-' | sort -u)
    fi
    [ "$got" = "$want" ] || no "cronprof $s $name: offered {$(paste -sd, <<<"$got")}, --help names {$values}"
  done < <(sed -nE 's/^ +(-[a-zA-Z],)?([a-z-][a-z-]*) [A-Z]+:\{([^}]*)\}.*/\2 \3/p' <<<"$help")
done

# runs --status: the statuses its --help lists, in parentheses.
want=$("$CRONPROF" runs --help | sed -nE 's/^ +--status .*\(([^)]*)\).*/\1/p' | tr -d ' ' | tr ',' '\n' | sort)
[ -n "$want" ] || no "runs --help lists no statuses for --status"
got=$(complete_words cronprof runs --status '' | sort -u)
[ "$got" = "$want" ] || no "runs --status: offered {$(paste -sd, <<<"$got")}, --help lists {$(paste -sd, <<<"$want")}"

# Values without a list: nothing for a duration, postgresql:// for --history,
# files after --crontab FILE until the next option.
[ -z "$(complete_words cronprof gc --keep '')" ] || no "gc --keep offered something for a duration"
grep -qx postgresql:// <<<"$(complete_words cronprof --history post)" || no "--history does not offer postgresql://"
touch "$empty/crontab2"
grep -qx crontab2 <<<"$(complete_words cronprof plan --crontab /etc/crontab cr)" || no "a second --crontab file is not completed"
grep -qx -- --week <<<"$(complete_words cronprof plan --crontab /etc/crontab --we)" || no "options after --crontab FILE are not offered"

[ $fail = 0 ] && echo "ok: cronprof's subcommands, options and values are all completed in zsh"
exit $fail
