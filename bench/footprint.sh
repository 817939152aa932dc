#!/usr/bin/env bash
# The supervisor's own memory while a job runs: cronrun (lock + cgroup + --memory
# 1G + history) supervising `sleep 2`, in the steady state of a cron job (its
# <job> cgroup exists from an earlier run). Read 1 s into the job from
# /proc/PID/status (RssAnon: private anonymous pages, heap and stacks; RssFile;
# VmRSS; VmHWM) and /proc/PID/smaps_rollup (Pss: its share of every page it maps,
# the binary's and libc's pages divided among the processes mapping them).
# RUNS samples (default 5), each a fresh run; the median is printed and each
# sample. Beside it, for scale, the same figures of `flock -n` holding its lock
# over the same job. Root, release build.
#
#   bench/footprint.sh [RUNS]
source "$(dirname "$0")/lib.sh"
samples=${1:-5}
bench_build
bench_header

cronrun_args=(-q --history "$work/h.db" --lock "$work/c.pid" --cgroup-parent "/$parent" --memory 1G)
"$cronrun" "${cronrun_args[@]}" -- /bin/sleep 0

# sample PID: "RssAnon RssFile VmRSS VmHWM Pss Pss_Anon" in KiB
sample() {
  local st
  st=$(cat "/proc/$1/status")
  printf "%s %s %s %s %s %s\n" \
    "$(awk '/^RssAnon:/ {print $2}' <<<"$st")" "$(awk '/^RssFile:/ {print $2}' <<<"$st")" \
    "$(awk '/^VmRSS:/ {print $2}' <<<"$st")" "$(awk '/^VmHWM:/ {print $2}' <<<"$st")" \
    "$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup")" "$(awk '/^Pss_Anon:/ {print $2}' "/proc/$1/smaps_rollup")"
}

measure() {  # measure NAME COMMAND...: one sample of COMMAND's own process, 1 s into `sleep 2`
  "$@" &
  local pid=$!
  sleep 1
  echo "$(sample "$pid")" >>"$work/fp.$name"
  wait "$pid"
}
for ((i = 0; i < samples; i++)); do
  name=cronrun measure "$cronrun" "${cronrun_args[@]}" -- /bin/sleep 2
  name=flock measure flock -n "$work/f.lock" /bin/sleep 2
done

med() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "# load average at the end: $(loadavg); KiB, median of $samples runs (each run's figures below)"
printf "%-8s %8s %8s %8s %8s %8s %9s\n" process RssAnon RssFile VmRSS VmHWM Pss Pss_Anon
for name in cronrun flock; do
  vals=()
  for col in 1 2 3 4 5 6; do vals+=("$(awk -v c=$col '{print $c}' "$work/fp.$name" | med)"); done
  printf "%-8s %8s %8s %8s %8s %8s %9s\n" "$name" "${vals[@]}"
  [ "$name" = cronrun ] && { anon=${vals[0]}; pss=${vals[4]}; }
done
echo "# cronrun: RssAnon $(bc -l <<<"$anon/1024" | xargs printf %.2f) MiB (target <= 0.5), Pss $(bc -l <<<"$pss/1024" | xargs printf %.2f) MiB (target <= 2)"
echo "# samples (cronrun): $(tr '\n' ';' <"$work/fp.cronrun")"
