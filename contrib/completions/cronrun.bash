# bash completion for cronrun and cronprof
_cronrun() {
  local cur prev
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ ${COMP_WORDS[i]} == -- ]]; then
      COMPREPLY=($(compgen -c -- "$cur"))
      return
    fi
  done
  case $prev in
    --output) COMPREPLY=($(compgen -W "passthrough on-failure discard" -- "$cur")); return ;;
    --on-locked) COMPREPLY=($(compgen -W "skip fail" -- "$cur")); return ;;
    --cgroup) COMPREPLY=($(compgen -W "required auto off" -- "$cur")); return ;;
    --seccomp) COMPREPLY=($(compgen -W "off" -- "$cur")); return ;;
    --ionice) COMPREPLY=($(compgen -W "realtime best-effort idle" -- "$cur")); return ;;
    -c|--config|--history|--summary|--lock) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --log-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
  esac
  COMPREPLY=($(compgen -W "--name --config --memory --memory-high --swap --cpu --cpu-weight --pids
    --io-weight --nice --ionice --timeout --kill-after --lock --no-lock --lock-wait --on-locked
    --cgroup-parent --cgroup --history --no-history --summary --output --log-dir --log-max --report
    --count-db-queries --ping --seccomp --env --dry-run --json --flush --keep-orphans --quiet --verbose --help --version --" -- "$cur"))
}
_cronprof() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if ((COMP_CWORD == 1)); then
    COMPREPLY=($(compgen -W "runs show summary suggest plan report export ps gc" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "--history --json --job --since --status --limit --headroom --write --crontab
      --host-memory --host-cpus --html --format --keep" -- "$cur"))
  fi
}
complete -F _cronrun cronrun
complete -F _cronprof cronprof
