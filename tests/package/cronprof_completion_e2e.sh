#!/usr/bin/env bash
# contrib/completions/cronprof against the real cronprof: every subcommand
# `cronprof --help` lists is offered, every option each subcommand's --help lists
# is offered after that subcommand, and nothing offered after a subcommand is an
# option cronprof refuses there. bash sources bash-completion and the file, sets
# COMP_WORDS/COMP_CWORD as bash would, calls _cronprof and prints COMPREPLY.
set -euo pipefail
: "${CRONPROF:?set CRONPROF to the cronprof binary}"
src=$(cd "$(dirname "$0")/../.." && pwd)
bc=/usr/share/bash-completion/bash_completion
[ -f $bc ] || { echo "FAIL: $bc missing: install bash-completion (scripts/install-deps.sh)"; exit 1; }
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT

complete_words() {
  (cd "$empty" && bash --norc --noprofile -c '
    source '"$bc"'
    source "$0"
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _cronprof cronprof "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
    printf "%s\n" "${COMPREPLY[@]}"' "$src/contrib/completions/cronprof" "$@")
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
grep -qx runs <<<"$(complete_words cronprof --history h.db ru)" || no "--history's value was taken for the subcommand"

global=$(help_options)
for s in $subs; do
  offered=$(complete_words cronprof "$s" --)
  # Once per subcommand, not once per offered option: each call is a sanitized
  # cronprof, and on a loaded machine those calls alone outran the test's timeout.
  accepted=$(help_options "$s")
  for o in $accepted; do
    grep -qx -- "$o" <<<"$offered" || no "cronprof $s $o is not offered"
  done
  for o in $offered; do
    grep -qx -- "$o" <<<"$accepted"$'\n'"$global" || no "cronprof $s: $o is offered but cronprof $s does not accept it"
  done
done

# Values: the statuses runs --status accepts, export's formats, the job's words.
grep -qx oom <<<"$(complete_words cronprof runs --status '')" || no "runs --status values"
grep -qx prometheus <<<"$(complete_words cronprof export --format '')" || no "export --format values"
[ -z "$(complete_words cronprof gc --keep '')" ] || no "gc --keep offered something for a duration"
grep -qx postgresql:// <<<"$(complete_words cronprof --history post)" || no "--history does not offer postgresql://"
grep -qx status <<<"$(complete_words cronprof fleet '')" || no "fleet status is not offered"

[ $fail = 0 ] && echo "ok: cronprof's subcommands and options are all completed"
exit $fail
