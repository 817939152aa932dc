#!/usr/bin/env bash
# Runs the libFuzzer harnesses of a fuzz build (README.md here):
#   tests/fuzz/run.sh [--seconds N] [--build DIR] [--corpus DIR] [NAME...]
# For each fuzzer (default: all), it first replays the saved inputs under
# tests/fixtures/fuzz/NAME/ (regressions), then fuzzes for N seconds (default 30)
# starting from a corpus seeded from tests/fixtures. It prints one line per fuzzer
# with its execs, execs/s and coverage, and exits non-zero if any fuzzer crashed,
# leaked, timed out or broke a property; the input that did it is kept in
# <build>/fuzz-artifacts/NAME/ and the libFuzzer log is printed.
# --corpus DIR keeps the growing corpus in DIR/NAME (a long run resumes from it);
# without it the corpus lives in a temporary directory.
# In a smoke run (N <= 60, as CI's) the fleet harnesses fuzz at most 20 s each,
# to keep CI's total time in bounds; a longer run gives them the full N.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=30 build=$src/build-fuzz corpus_root=
names=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --corpus) corpus_root=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
all=(units job_config counters cgroup_host cgroup_files crontab cronrun_call run_record history_row journal seccomp_profile
     etcd_answer fleet_config central_row)
((${#names[@]})) || names=("${all[@]}")

fixtures=$src/tests/fixtures
work=$(mktemp -d "${TMPDIR:-/tmp}/cronrun-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work  # the harnesses' own temporary files
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
command -v llvm-symbolizer-16 >/dev/null && export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-16)

# seed NAME DIR: fills DIR with the starting corpus of fuzzer NAME.
seed() {
  local name=$1 dir=$2 f i=0
  if [ -d "$fixtures/fuzz/$name" ]; then cp "$fixtures/fuzz/$name"/* "$dir"/ 2>/dev/null || true; fi
  case $name in
    cgroup_host)
      for f in "$fixtures"/cgroup/*/self; do
        { cat "$f/cgroup"; printf '\0'; cat "$f/mountinfo"; } > "$dir/fixture-$(basename "$(dirname "$f")")"
      done ;;
    cgroup_files)
      cp "$fixtures"/cgroup/files/* "$dir"/
      for f in "$fixtures"/cgroup/*/self/cgroup; do cp "$f" "$dir/fixture-cgroup-$((i++))"; done ;;
    crontab)
      # First byte: '0' user crontab, '1' system crontab (the harness reads bit 0).
      while IFS= read -r -d '' f; do
        case $f in */cron.d/*|*/etc/crontab) k=1 ;; *) k=0 ;; esac
        { printf '%s' "$k"; cat "$f"; } > "$dir/fixture-$((i++))"
      done < <(find "$fixtures/crontab" -type f ! -name README -print0) ;;
    cronrun_call)
      # The command part of every entry line of the system crontab fixtures.
      while IFS= read -r line; do
        printf '%s' "$line" > "$dir/fixture-$((i++))"
      done < <(find "$fixtures/crontab" -path '*cron.d/*' -type f -exec grep -hv '^\s*#' {} + |
               awk 'NF > 6 && $1 !~ /=/ { $1=$2=$3=$4=$5=$6=""; sub(/^ +/, ""); print }') ;;
    run_record|history_row)
      # The records of the schema 1 history fixture (one per INSERT).
      while IFS= read -r rec; do
        if [ "$name" = history_row ]; then printf 'ok\n%s' "$rec"; else printf '%s' "$rec"; fi \
          > "$dir/fixture-$((i++))"
      done < <(grep -o "'{\"schema\".*}'" "$fixtures/history/v1.sql" | sed "s/^'//; s/'\$//") ;;
  esac
  # libFuzzer needs at least one input to start from.
  [ -n "$(ls -A "$dir")" ] || printf '' > "$dir/empty"
}

status=0
printf '%-14s %10s %10s %8s %8s  %s\n' fuzzer execs execs/s cov ft result
smoke_cap() {
  case $1 in etcd_answer|fleet_config|central_row) echo 20 ;; *) echo "$seconds" ;; esac
}

for name in "${names[@]}"; do
  bin=$build/tests/fuzz/fuzz_$name
  run_seconds=$seconds
  if ((seconds <= 60)); then cap=$(smoke_cap "$name"); ((cap < run_seconds)) && run_seconds=$cap; fi
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin not built (cmake --build $build --target fuzzers)" >&2
    status=1; continue
  fi
  artifacts=$build/fuzz-artifacts/$name
  mkdir -p "$artifacts"
  log=$work/$name.log
  result=ok
  # 1. Regressions: every saved input once.
  if [ -d "$fixtures/fuzz/$name" ] && [ -n "$(ls -A "$fixtures/fuzz/$name")" ]; then
    if ! "$bin" -runs=1 "$fixtures/fuzz/$name"/* > "$log" 2>&1; then
      result="FAILED replaying tests/fixtures/fuzz/$name"
    fi
  fi
  # 2. Fuzzing from the seeded corpus.
  if [ "$result" = ok ]; then
    if [ -n "$corpus_root" ]; then corpus=$corpus_root/$name; mkdir -p "$corpus"; else corpus=$work/corpus-$name; mkdir "$corpus"; fi
    seeds=$work/seeds-$name
    mkdir "$seeds"
    seed "$name" "$seeds"
    dict=()
    [ -f "$src/tests/fuzz/$name.dict" ] && dict=(-dict="$src/tests/fuzz/$name.dict")
    if ! "$bin" "${dict[@]}" -max_total_time="$run_seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds" > "$log" 2>&1; then
      result="FAILED: input kept in $artifacts/"
    fi
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  printf '%-14s %10s %10s %8s %8s  %s\n' "$name" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "$result"
  if [ "$result" != ok ]; then
    status=1
    echo "---- $name: libFuzzer log (tail) ----"
    tail -60 "$log"
    echo "----"
  fi
done
exit $status
