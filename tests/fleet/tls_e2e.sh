#!/usr/bin/env bash
# Fleet mode against an etcd that wants TLS and client certificates (etcd
# --client-cert-auth), as production clusters run: fleet.json's etcd_ca, etcd_cert
# and etcd_key. A throwaway single-member etcd of its own on loopback (port
# CRONRUN_TLS_ETCD_PORT, peer +10), certificates made here with openssl:
#   - with the CA and a client certificate the run claims its tick (exit 0, a fence
#     in the record, the tick key in etcd) and `cronprof fleet` reads the lock;
#   - without a client certificate, or trusting another CA, etcd is unavailable
#     to the run: skipped, exit 75, the TLS failure in the record's note;
#   - a bad TLS entry in fleet.json is exit 125 naming the key: a cert without
#     its key, TLS with an http:// endpoint, a key others can read, a symlink.
# Environment: CRONRUN_BIN, CRONPROF_BIN, CRONRUN_TLS_ETCD_PORT.
set -euo pipefail
: "${CRONRUN_BIN:?}" "${CRONPROF_BIN:?}" "${CRONRUN_TLS_ETCD_PORT:?}"
port=$CRONRUN_TLS_ETCD_PORT
peer=$((port + 10))
etcd_bin=$(command -v etcd || echo /usr/bin/etcd)
etcdctl_bin=$(command -v etcdctl || echo /usr/bin/etcdctl)
command -v openssl >/dev/null || { echo "FAIL - openssl is needed (scripts/install-deps.sh installs it)"; exit 1; }
tmp=$(mktemp -d /tmp/cronrun-tls.XXXXXX)
etcd_pid=
cleanup() {
  [ -n "$etcd_pid" ] && kill -9 "$etcd_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- certificates: a CA, the server (127.0.0.1), a client, and a stranger CA ----
cd "$tmp"
ca() {  # ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
signed() {  # signed NAME CA EXT
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 -extfile "$1.ext" \
    -out "$1.pem" 2>/dev/null
}
ca ca
ca stranger
# clientAuth too: etcd's JSON gateway dials its own gRPC server with this
# certificate, and under --client-cert-auth that dial is checked as a client's.
signed server ca "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
signed client ca "extendedKeyUsage=clientAuth"
chmod 600 ./*.key

# ---- etcd with TLS and client-certificate authentication ----
url=https://127.0.0.1:$port
setsid "$etcd_bin" --name t1 --data-dir "$tmp/etcd" \
  --listen-client-urls "$url" --advertise-client-urls "$url" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "t1=http://127.0.0.1:$peer" --initial-cluster-state new \
  --cert-file "$tmp/server.pem" --key-file "$tmp/server.key" \
  --client-cert-auth --trusted-ca-file "$tmp/ca.pem" \
  --logger zap --log-level warn --log-outputs "$tmp/etcd.log" </dev/null >>"$tmp/etcd.out" 2>&1 &
etcd_pid=$!
ctl() { ETCDCTL_API=3 "$etcdctl_bin" --endpoints="$url" --cacert "$tmp/ca.pem" --cert "$tmp/client.pem" \
  --key "$tmp/client.key" --dial-timeout=1s --command-timeout=2s "$@"; }
for _ in $(seq 300); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
ctl endpoint health >/dev/null 2>&1 || { echo "FAIL - the TLS etcd did not come up: $(tail -5 "$tmp/etcd.out" "$tmp/etcd.log")"; exit 1; }
# etcdctl speaks gRPC; cronrun speaks to the JSON gateway, whose first request
# dials etcd's gRPC server over TLS and took over cronrun's 2 s request timeout
# on a loaded CI machine (a skipped first run). Wait until the gateway answers.
python3 - "$url" "$tmp" <<'PY' || { echo "FAIL - the TLS etcd's JSON gateway did not answer in 30 s"; exit 1; }
import ssl, sys, time, urllib.request
url, d = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=d + "/ca.pem")
ctx.load_cert_chain(d + "/client.pem", d + "/client.key")
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
        urllib.request.urlopen(req, context=ctx, timeout=10).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
PY

# ---- fleet.json variants (root's runs want it root's and not group/other-writable) ----
fleet() {  # fleet FILE JSON-KEYS...: {"etcd": [url], "prefix": "/tls", KEYS}
  local file=$1; shift
  local extra=""
  [ $# -gt 0 ] && extra=", $*"
  printf '{"etcd": ["%s"], "prefix": "/tls", "lease_ttl": "6s"%s}\n' "$url" "$extra" >"$file"
  chmod 644 "$file"
}
fleet good.json "\"etcd_ca\": \"$tmp/ca.pem\", \"etcd_cert\": \"$tmp/client.pem\", \"etcd_key\": \"$tmp/client.key\""
fleet nocert.json "\"etcd_ca\": \"$tmp/ca.pem\""
fleet stranger.json "\"etcd_ca\": \"$tmp/stranger.pem\", \"etcd_cert\": \"$tmp/client.pem\", \"etcd_key\": \"$tmp/client.key\""

run() {  # run CONFIG JOB SUMMARY [COMMAND...]: prints the exit status
  local rc=0 config=$1 job=$2 summary=$3
  shift 3
  [ $# -gt 0 ] || set -- /bin/true
  "$CRONRUN_BIN" -n "$job" --fleet-config "$tmp/$config" --host tls-host --no-lock --cgroup off --kill-after 1s \
    --history "$tmp/history.db" --summary "$tmp/$summary" -q -- "$@" >/dev/null 2>"$tmp/$summary.err" || rc=$?
  echo "$rc"
}

rc=$(run good.json tlsjob good-run.json)
if [ "$rc" -eq 0 ] && [ "$(json 'd["status"]' <good-run.json)" = ok ]; then ok "a run over TLS with a client certificate: ok"; else bad "TLS run: exit $rc, $(cat good-run.json.err)"; fi
fence=$(json '(d.get("fleet") or {}).get("fence")' <good-run.json)
if [ -n "$fence" ] && [ "$fence" != None ] && [ "$fence" -gt 0 ]; then ok "the run holds a fence ($fence)"; else bad "no fence in the record: $(cat good-run.json)"; fi
ticks=$(ctl get --prefix --keys-only /tls/runs/tlsjob/ | grep -c . || true)
if [ "$ticks" -eq 1 ]; then ok "its tick is claimed in etcd"; else bad "ticks in etcd: $ticks"; fi
# A job longer than the 6 s lease: only renewals over TLS (every 2 s) keep it from
# being stopped at the deadline (5 s after the last renewal).
rc=$(run good.json tlslong long-run.json sleep 8)
if [ "$rc" -eq 0 ] && [ "$(json 'd["status"]' <long-run.json)" = ok ]; then ok "the keepalive renews the lease over TLS (an 8 s job under a 6 s lease ends ok)"; else bad "long TLS run: exit $rc, $(json 'd["status"], (d.get("fleet") or {}).get("note")' <long-run.json)"; fi

rc=$(run nocert.json tlsjob2 nocert-run.json)
note=$(json '(d.get("fleet") or {}).get("note") or d.get("skip_reason") or ""' <nocert-run.json 2>/dev/null || true)
if [ "$rc" -eq 75 ] && [ "$(json 'd["status"]' <nocert-run.json)" = skipped ]; then ok "no client certificate: skipped, exit 75"; else bad "no client certificate: exit $rc"; fi
case "$note" in *127.0.0.1:$port*"no client certificate was offered"*) ok "the record says why ($note)" ;; *) bad "no TLS failure (and the missing certificate) in the record: '$note'" ;; esac

rc=$(run stranger.json tlsjob3 stranger-run.json)
note=$(json '(d.get("fleet") or {}).get("note") or d.get("skip_reason") or ""' <stranger-run.json 2>/dev/null || true)
if [ "$rc" -eq 75 ]; then ok "a server the configured CA did not sign: skipped, exit 75"; else bad "stranger CA: exit $rc"; fi
case "$note" in *certificate*) ok "the record names the certificate problem" ;; *) bad "stranger CA note: '$note'" ;; esac

# --dry-run names the files (and contacts nothing).
"$CRONRUN_BIN" -n tlsdry --fleet-config "$tmp/good.json" --host tls-host --no-lock --cgroup off --kill-after 1s --dry-run -- /bin/true >dry.txt 2>&1 || true
if grep -q "etcd tls: *CA $tmp/ca.pem; client certificate $tmp/client.pem (key $tmp/client.key)" dry.txt; then ok "--dry-run shows the TLS files"; else bad "--dry-run: $(grep -i etcd dry.txt)"; fi

# cronprof fleet reads the same etcd with the same files.
if "$CRONPROF_BIN" --json fleet --fleet-config "$tmp/good.json" >fleet.json 2>fleet.err; then
  if [ "$(json 'str(d.get("etcd_error"))' <fleet.json)" = None ]; then ok "cronprof fleet reads etcd over TLS"; else bad "cronprof fleet: $(json 'd["etcd_error"]' <fleet.json)"; fi
else
  rc=$?
  # 8 = alerts (a lost run or a quiet host): etcd was still read.
  if [ "$rc" -eq 8 ] && [ "$(json 'str(d.get("etcd_error"))' <fleet.json)" = None ]; then ok "cronprof fleet reads etcd over TLS"; else bad "cronprof fleet: exit $rc, $(cat fleet.err)"; fi
fi

# ---- a bad TLS entry is a usage error naming the key ----
usage() {  # usage DESCRIPTION CONFIG EXPECTED-TEXT
  local rc=0
  "$CRONRUN_BIN" -n tlsbad --fleet-config "$tmp/$2" --host tls-host --no-lock --cgroup off \
    --history "$tmp/history.db" -q -- /bin/true >/dev/null 2>err || rc=$?
  if [ "$rc" -eq 125 ] && grep -q -- "$3" err && [ "$(wc -l <err)" -eq 1 ]; then ok "$1 (exit 125)"; else bad "$1: exit $rc, $(cat err)"; fi
}
fleet halfcert.json "\"etcd_cert\": \"$tmp/client.pem\""
usage "a certificate without its key" halfcert.json "key 'etcd_cert': etcd_cert and etcd_key go together"
printf '{"etcd": ["http://127.0.0.1:%s"], "etcd_ca": "%s"}\n' "$port" "$tmp/ca.pem" >plain.json
usage "TLS files with an http:// endpoint" plain.json "key 'etcd_ca': TLS files are for https:// endpoints"
cp client.key open.key
chmod 644 open.key
fleet openkey.json "\"etcd_ca\": \"$tmp/ca.pem\", \"etcd_cert\": \"$tmp/client.pem\", \"etcd_key\": \"$tmp/open.key\""
usage "a private key others can read" openkey.json "is a private key readable by others"
ln -s ca.pem link.pem
fleet link.json "\"etcd_ca\": \"$tmp/link.pem\""
usage "a symlink as etcd_ca" link.json "key 'etcd_ca'"
echo "not a certificate" >junk.pem
fleet junk.json "\"etcd_ca\": \"$tmp/junk.pem\""
usage "a file without PEM" junk.json "holds no PEM block"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all TLS checks passed"
