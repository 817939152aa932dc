#!/usr/bin/env zsh
# What zsh's completion system offers for a command line, one match per line:
#
#   zsh -f tests/package/zsh_complete.zsh FPATH_DIR WORD... WORD
#
# The words are typed into an interactive zsh on a pseudo-terminal (zsh/zpty),
# with FPATH_DIR first on $fpath and compinit loaded, and TAB is pressed at the
# end of the line: the last word is the one being completed ('' for a new word).
# Completion functions only run inside the line editor, so a pty is the way to
# drive the real _arguments. Every match reaches compadd; compadd is wrapped to
# write them to a file (prefix and suffix included), and the shell exits when
# completion is done. The matches go to stdout, one a line; the file system is
# read in the current directory (run it in an empty one). Exit status: 0 after
# a completion ran, 1 on a setup error, 2 when no completion ran.
emulate -L zsh
zmodload zsh/zpty || { print -u2 'zsh_complete: no zsh/zpty module'; exit 1 }
(( $# >= 2 )) || { print -u2 'usage: zsh_complete.zsh FPATH_DIR WORD... WORD'; exit 1 }
local fdir=${1:A}
shift
local line=${(j: :)${(q-)@[1,-2]}}
# The word being completed is typed as is (an empty one: the line ends in a space).
line+=" ${@[-1]}"
line=${line# }

local tmp
tmp=$(mktemp -d) || exit 1
local setup=$tmp/setup.zsh matches=$tmp/matches done=$tmp/done ready=$tmp/ready
# In the inner shell: no prompt, no rc files (-f), the completion under test
# first on fpath, and a compadd that appends what it is given to $matches.
# -O/-A/-D calls only fill arrays (matchers use them); they are passed through.
# When completion ends, $done is created and the shell exits, before zsh would
# list (or ask about listing) the matches.
cat >$setup <<SETUP
PROMPT='zc-prompt> ' RPROMPT= PS2=
unsetopt zle_bracketed_paste 2>/dev/null
fpath=(${(q)fdir} \$fpath)
autoload -U compinit && compinit -u -D
zmodload zsh/zutil
bindkey '^I' complete-word
bindkey '^M' undefined
bindkey '^J' undefined
zstyle ':completion:*' insert-tab false
_zc_done() { : >${(q)done}; exit }
comppostfuncs=(_zc_done)
compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then
    builtin compadd "\$@"
    return
  fi
  local -a _zc_hits _zc_p _zc_s _zc_pp _zc_ss _zc_ignored
  builtin compadd -A _zc_hits "\$@"
  zparseopts -E -a _zc_ignored P:=_zc_p S:=_zc_s p:=_zc_pp s:=_zc_ss 2>/dev/null
  local _zc_h
  for _zc_h in \$_zc_hits; do
    print -r -- "\${IPREFIX}\${_zc_p[2]}\${_zc_pp[2]}\${_zc_h}\${_zc_ss[2]}\${_zc_s[2]}" >>${(q)matches}
  done
  builtin compadd "\$@"
}
: >${(q)ready}
SETUP

: >$matches
# exec: zpty runs the command in a forked copy of this shell, which would run
# an EXIT trap of ours when the inner shell ends (removing $tmp under us).
zpty z exec zsh -f -i || { rm -rf $tmp; exit 1 }
trap 'rm -rf $tmp' EXIT
zpty -w z "source ${(q)setup}"
local junk seen=
integer waited=0
# Up to 20 s for the shell to start and show its prompt (the line editor may
# drop what is typed before it reads the line), and as long for the completion;
# the pty is drained meanwhile so the inner shell never blocks on its echo.
while [[ ! -e $ready || $seen != *'zc-prompt> '* ]] && (( waited++ < 400 )); do
  zpty -r -t z junk 2>/dev/null && seen+=$junk
  sleep 0.02
done
[[ $seen == *'zc-prompt> '* ]] || { print -u2 'zsh_complete: the inner zsh did not start'; zpty -d z; exit 2 }
seen=
zpty -w -n z "$line"$'\t'
waited=0
while [[ ! -e $done ]] && (( waited++ < 400 )); do
  zpty -r -t z junk 2>/dev/null && seen+=$junk
  sleep 0.05
done
zpty -d z 2>/dev/null
[[ -e $done ]] || { print -u2 "zsh_complete: no completion ran for: $line; the terminal showed:"; print -u2 -r -- ${seen//[^[:print:]]/.}; exit 2 }
local l
for l in "${(@f)$(<$matches)}"; do
  [[ -n $l ]] && print -r -- $l
done
exit 0
