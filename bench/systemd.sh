#!/bin/sh
# bench/systemd.sh [RUNS] [ROUNDS]: the per-run cost of cronrun's placement in a
# systemd scope (DESIGN §9) beside direct cgroupfs placement and beside
# `systemd-run --scope true`, side by side on one systemd host. Run it as root
# on a Debian 12 (or later) systemd host with cronrun installed, e.g. in the
# host tier's guest:
#
#   tests/host/run-host.sh --script bench/systemd.sh --deb cronrun_*.deb --out /tmp/bench
#
# Each variant runs `true` RUNS times in a row (default 40); that is repeated
# ROUNDS times (default 3), variants interleaved, and the median round is
# reported in milliseconds per run. Every cronrun variant runs with
# --no-history --no-lock, so the difference between them is the placement:
#   true                  fork+exec of /bin/true from this shell (the floor)
#   systemd-run --scope   systemd's own transient scope (system bus, waits for the job)
#   cronrun --cgroup off  cronrun without any cgroup
#   cronrun direct        cronrun --cgroup-parent /bench-direct: mkdir, clone3, rmdir in cgroupfs
#   cronrun scope         cronrun's default on systemd: scope over sd-bus, then its leaves
# and, when the lingering user `linger` (uid 1001, as in tests/host) exists, the
# same as that user (runuser's own cost is the `user: true` line).
set -u
RUNS=${1:-40}
ROUNDS=${2:-3}
[ "$(id -u)" = 0 ] || { echo "bench/systemd.sh: run as root" >&2; exit 2; }
[ -d /run/systemd/system ] || { echo "bench/systemd.sh: PID 1 is not systemd" >&2; exit 2; }
command -v cronrun >/dev/null || { echo "bench/systemd.sh: no cronrun in PATH" >&2; exit 2; }
CR="cronrun --no-history --no-lock -q"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rmdir /sys/fs/cgroup/bench-direct/true 2>/dev/null; rmdir /sys/fs/cgroup/bench-direct 2>/dev/null' EXIT

variants="true|true
systemd-run --scope|systemd-run --scope -q true
cronrun --cgroup off|$CR --cgroup off -- true
cronrun direct|$CR --cgroup-parent /bench-direct -- true
cronrun scope|$CR -- true"
if id linger >/dev/null 2>&1 && [ -S /run/user/1001/bus ]; then
  U="runuser -u linger -- env XDG_RUNTIME_DIR=/run/user/1001"
  variants="$variants
user: true|$U true
user: systemd-run --user --scope|$U systemd-run --user --scope -q true
user: cronrun scope|$U $CR -- true"
fi

now_ns() { date +%s%N; }
round=1
while [ "$round" -le "$ROUNDS" ]; do
  printf '%s\n' "$variants" | while IFS='|' read -r label cmd; do
    i=0
    t0=$(now_ns)
    while [ "$i" -lt "$RUNS" ]; do
      # shellcheck disable=SC2086
      $cmd >/dev/null 2>"$tmp/err" || { echo "bench/systemd.sh: '$label' failed: $(head -n 3 "$tmp/err")" >&2; exit 1; }
      i=$((i + 1))
    done
    t1=$(now_ns)
    echo "$label|$(((t1 - t0) / RUNS / 1000))" >> "$tmp/round$round"
  done || exit 1
  round=$((round + 1))
done

echo "per-run wall time, median of $ROUNDS rounds of $RUNS runs ($(nproc) CPU, $(uname -r), systemd $(systemctl --version | head -n 1 | cut -d' ' -f2))"
printf '%-34s %10s\n' variant "ms/run"
printf '%s\n' "$variants" | while IFS='|' read -r label cmd; do
  med=$(cat "$tmp"/round* | awk -F'|' -v l="$label" '$1 == l { print $2 }' | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
  printf '%-34s %10s\n' "$label" "$(awk "BEGIN { printf \"%.2f\", $med / 1000 }")"
done
# Nothing of ours may be left behind by the scope runs.
left=$(systemctl list-units --all --plain --no-legend 'cronrun-*' | wc -l)
echo "cronrun scopes still loaded after the runs: $left"
