#!/usr/bin/env bash
# learn -> suggest -> FILE, with the real programs: a python3 job (threads,
# multiprocessing, sqlite3, a socket, a subprocess, and one syscall strict lacks:
# chroot to "/", which changes nothing) runs under --seccomp learn; `cronprof
# suggest --seccomp` proposes a profile from the history; under that profile the
# same job passes with no violation, and `unshare -U` is still refused and counted.
# Needs root for chroot; skips (77) without python3 or unshare.
set -euo pipefail
: "${CRONRUN:?}" "${CRONPROF:?}"
[ -x /usr/bin/python3 ] && [ -x /usr/bin/unshare ] || { echo "SKIP: python3 or unshare missing"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: chroot needs root"; exit 77; }
tmp=$(mktemp -d /tmp/cronrun-seccomp-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
H=$tmp/history.db
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
cat >"$tmp/job.py" <<'PY'
import multiprocessing, os, socket, sqlite3, subprocess, threading
def square(x): return x * x
if __name__ == "__main__":
    t = threading.Thread(target=lambda: None); t.start(); t.join()
    with multiprocessing.Pool(2) as p: assert p.map(square, [1, 2, 3]) == [1, 4, 9]
    db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.execute("insert into t values (1)")
    a, b = socket.socketpair(); a.send(b"x"); assert b.recv(1) == b"x"
    assert subprocess.run(["true"]).returncode == 0
    os.chroot("/")
    print("done")
PY
job=(/usr/bin/python3 -I "$tmp/job.py")
run() {  # run [cronrun options] -- ARGS: prints the exit status
  local rc=0
  "$CRONRUN" -n pyjob --no-lock --cgroup off --history "$H" -q --summary "$tmp/s.json" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  echo "$rc"
}

rc=$(run --seccomp strict -- "${job[@]}")
[ "$rc" -ne 0 ] && ok "strict alone refuses the job (exit $rc)" || bad "the job must need a syscall strict lacks"

rc=$(run --seccomp learn -- "${job[@]}")
[ "$rc" -eq 0 ] && ok "learn lets the job run" || bad "learn run exit $rc: $(cat "$tmp/err")"
rc=$(run --seccomp learn -- "${job[@]}")
grep -q chroot <(json 'd["seccomp"]["seen"]' <"$tmp/s.json") && ok "learn recorded chroot" || bad "chroot not in seen: $(cat "$tmp/s.json")"

rc=0
"$CRONPROF" --history "$H" suggest --seccomp pyjob >"$tmp/profile.json" 2>"$tmp/evidence" || rc=$?
[ "$rc" -eq 0 ] && ok "suggest --seccomp proposes a profile" || bad "suggest --seccomp exit $rc: $(cat "$tmp/evidence")"
[ "$(json 'd["learned"]["runs"]' <"$tmp/profile.json")" = 2 ] && ok "the proposal counts both learned runs" ||
  bad "learned.runs: $(json 'd.get("learned")' <"$tmp/profile.json")"
[ "$(json 'd["learned"]["counts"]["chroot"]' <"$tmp/profile.json")" = 2 ] && ok "chroot seen in 2 of 2 runs" ||
  bad "counts: $(json 'd["learned"]["counts"]' <"$tmp/profile.json")"
grep -q 'chroot (2/2)' "$tmp/evidence" && ok "the evidence names what was added" || bad "evidence: $(cat "$tmp/evidence")"

rc=$(run --seccomp "$tmp/profile.json" -- "${job[@]}")
[ "$rc" -eq 0 ] && ok "the job passes under the proposed profile" || bad "job under the proposal: exit $rc: $(cat "$tmp/err")"
[ "$(json 'd["seccomp"]["violations_total"]' <"$tmp/s.json")" = 0 ] && ok "no violation under the proposal" ||
  bad "violations: $(json 'd["seccomp"]' <"$tmp/s.json")"

rc=$(run --seccomp "$tmp/profile.json" -- /usr/bin/unshare -U true)
[ "$rc" -ne 0 ] && ok "unshare -U still refused (exit $rc)" || bad "unshare -U passed the proposed profile"
json '[v["syscall"] for v in d["seccomp"]["violations"]]' <"$tmp/s.json" | grep -q unshare && ok "the refusal is counted" ||
  bad "unshare not counted: $(json 'd["seccomp"]' <"$tmp/s.json")"

# No learned run: a clear one-line error, exit 7.
rc=0
"$CRONPROF" --history "$H" suggest --seccomp nosuchjob >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 7 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && ok "unknown job: exit 7, one line" || bad "unknown job: exit $rc: $(cat "$tmp/err")"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed" >&2; exit 1; }
