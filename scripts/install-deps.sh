#!/usr/bin/env bash
# Installs every Debian 12 package the build, the demo and the tests need.
# Idempotent; runs apt-get only for what is missing. Needs root.
set -euo pipefail

build=(cmake g++ gcc make pkg-config libcgroup-dev cgroup-tools libseccomp-dev libspdlog-dev
       libfmt-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libsqlite3-dev sqlite3
       libsystemd-dev libcurl4-openssl-dev libpq-dev)
runtime=(time util-linux procps)
# cgroup v2 test tier: a throwaway VM under TCG with Debian's own kernel.
vm=(qemu-system-x86 busybox-static cpio binutils)
# The Debian package (debian/) and the `host` tier: a Debian 12 image with systemd and cron,
# built from this machine's own apt sources. bash-completion and zsh load the
# completions in tests/package/.
pkg=(debhelper dpkg-dev lintian fakeroot mmdebstrap logrotate bash-completion zsh)
# Real database servers and client libraries for the DB-query counter tier, and etcd
# for the fleet tier (openssl makes the TLS tier's certificates).
db=(postgresql etcd-server etcd-client openssl mariadb-server mariadb-client libpq-dev libmariadb-dev libdbd-pg-perl libdbd-mysql-perl python3-psycopg2 python3-psycopg python3-pymysql ruby-pg php-cli php-pgsql)
# promtool (prometheus) checks `cronprof export --format prometheus`.
tools=(prometheus)
# Headless browser for the HTML report tier.
browser=(chromium libjs-chart.js)
# The fuzz smoke run (tests/fuzz/README.md): clang 16, its libFuzzer and sanitizer
# runtimes (libclang-rt-16-dev is only a recommendation of clang-16, which
# --no-install-recommends skips), and llvm-symbolizer-16 for readable stacks.
fuzz=(clang-16 libclang-rt-16-dev llvm-16)

want=("${build[@]}" "${runtime[@]}")
case "${1:-all}" in
  build) ;;
  all) want+=("${pkg[@]}" "${vm[@]}" "${db[@]}" "${tools[@]}" "${browser[@]}" "${fuzz[@]}") ;;
  *) echo "usage: $0 [build|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages ${missing[*]}; run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
