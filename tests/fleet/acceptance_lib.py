"""Shared parts of the fleet acceptance tests (issue 17, DESIGN.md section 10).

The tests run the real cronrun against the real 3-member etcd cluster and the
PostgreSQL cluster that tests/fleet/cluster.sh starts for the `fleet` label.
Hosts are simulated by distinct `--host` names, each with its own history
directory and lock directory. Every assertion reads real effects: the run records
(`--summary` files, the journal, PostgreSQL), etcd's keys, the job's own log of
its start and end (written with O_APPEND by the job itself), /proc.

Environment (set by the CTest fixture): CRONRUN_BIN, CRONRUN_FLEET_ETCD
(comma-separated endpoints), CRONRUN_FLEET_PG (postgresql:// URI),
CRONRUN_FLEET_STATE (the cluster's state dir, for cluster.sh). Knobs: see each test.
"""

import base64
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER_SH = os.environ.get("CRONRUN_FLEET_CLUSTER") or os.path.join(HERE, "cluster.sh")


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        sys.exit(f"FAIL - {name} is not set (run under the fleet CTest fixture)")
    return v


def knob(name, ci_default):
    """An integer knob: the env value, else the scaled-down CI default."""
    v = os.environ.get(name)
    return int(v) if v else ci_default


class Checks:
    """ok/bad lines as the shell tests print them; exit status at the end."""

    def __init__(self, name):
        self.name = name
        self.fails = 0
        self.t0 = time.monotonic()

    def ok(self, msg):
        print(f"ok   - {msg}", flush=True)

    def bad(self, msg):
        print(f"FAIL - {msg}", file=sys.stderr, flush=True)
        self.fails += 1

    def check(self, cond, msg, detail=""):
        if cond:
            self.ok(msg)
        else:
            self.bad(msg + (f": {detail}" if detail else ""))
        return cond

    def info(self, msg):
        print(f"#    {msg}", flush=True)

    def finish(self):
        self.info(f"{self.name}: {time.monotonic() - self.t0:.1f} s")
        if self.fails:
            print(f"{self.name}: {self.fails} check(s) failed", file=sys.stderr)
            sys.exit(1)
        print(f"{self.name}: all checks passed")


def rfc3339(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    """RFC 3339 UTC (with or without fraction) -> epoch seconds (float)."""
    if s is None:
        return None
    s = s.replace("Z", "+00:00")
    return datetime.fromisoformat(s).timestamp()


def tick_base(n):
    """Synthetic ticks one second apart, all in the recent past (a claim older than
    7 days may be pruned; a tick in the future may be refused)."""
    return int(time.time()) - n - 120


# ---------------------------------------------------------------- etcd (JSON gateway)

def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode(errors="replace") if s else ""


def prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b).decode()


class Etcd:
    def __init__(self, endpoints):
        self.endpoints = list(endpoints)

    def call(self, method, body, timeout=1.0):
        last = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for ep in self.endpoints:
                try:
                    req = urllib.request.Request(ep + "/v3/" + method, data=json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=timeout) as r:
                        return json.loads(r.read())
                except (urllib.error.URLError, OSError, ValueError) as e:
                    last = e
            time.sleep(0.1)
        raise RuntimeError(f"etcd {method}: no endpoint answered: {last}")

    def get(self, key):
        r = self.call("kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        if not kvs:
            return None
        kv = kvs[0]
        return {"key": key, "value": unb64(kv.get("value")), "create_revision": int(kv.get("create_revision", 0)),
                "mod_revision": int(kv.get("mod_revision", 0)), "lease": int(kv.get("lease", 0))}

    def get_prefix(self, p):
        r = self.call("kv/range", {"key": b64(p), "range_end": b64(prefix_end(p))})
        out = []
        for kv in r.get("kvs", []):
            out.append({"key": unb64(kv["key"]), "value": unb64(kv.get("value")),
                        "create_revision": int(kv.get("create_revision", 0)),
                        "mod_revision": int(kv.get("mod_revision", 0)), "lease": int(kv.get("lease", 0))})
        return out

    def put(self, key, value):
        self.call("kv/put", {"key": b64(key), "value": b64(value)})

    def delete_prefix(self, p):
        self.call("kv/deleterange", {"key": b64(p), "range_end": b64(prefix_end(p))})

    def status(self, ep):
        req = urllib.request.Request(ep + "/v3/maintenance/status", data=b"{}",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=1.0) as r:
            return json.loads(r.read())


# ---------------------------------------------------------------- cluster control

def cluster(*args, check=True):
    r = subprocess.run(["bash", CLUSTER_SH, *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout.strip()


def member_endpoint(n):
    """Client URL of etcd member n (1-3): the fixture lists them in order."""
    return env("CRONRUN_FLEET_ETCD").split(",")[n - 1]


def leader_member():
    """The number (1-3) of the current etcd leader, from each member's status; None
    when no member answers with a leader."""
    e = Etcd([])
    ids = {}
    leader = None
    for n in (1, 2, 3):
        try:
            st = e.status(member_endpoint(n))
        except (urllib.error.URLError, OSError, ValueError):
            continue
        ids[int(st["header"]["member_id"])] = n
        leader = int(st.get("leader", 0)) or leader
    return ids.get(leader)


def wait_leader(timeout=30):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        n = leader_member()
        if n:
            return n
        time.sleep(0.1)
    raise RuntimeError("no etcd leader")


def member_pid(n):
    """The pid of etcd member n, from the pid file cluster.sh keeps in its state dir,
    checked against the process's command line."""
    state = os.path.realpath(env("CRONRUN_FLEET_STATE"))
    try:
        pid = int(open(os.path.join(state, f"etcd{n}.pid")).read().split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f"{state}/etcd{n}".encode() not in f.read():
                return None
        return pid
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """(comm, state, ppid) of pid, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[2] == pid:
                out.append((int(d), st[0]))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def find_keepalive(runner_pid, timeout=5):
    """The runner's keepalive process: comm `cronrun-keepalive`, forked from the
    runner without an exec (so the runner's command line, which holds this run's own
    --summary path), and double-forked (so not necessarily the runner's child)."""
    want = cmdline(runner_pid)
    t_end = time.monotonic() + timeout
    while want and time.monotonic() < t_end:
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != runner_pid:
                st = proc_stat(int(d))
                # The kernel keeps 15 characters of a name: "cronrun-keepali".
                if st and "cronrun-keepalive".startswith(st[0]) and len(st[0]) >= 15 and cmdline(int(d)) == want:
                    return int(d)
        time.sleep(0.02)
    return None


# ---------------------------------------------------------------- the simulated fleet

# The job: its own log of start and end, one O_APPEND write per line (bash's
# builtin echo writes a line at once), times from $EPOCHREALTIME (no fork).
SHORT_JOB = r'''echo "S $CRONRUN_TICK $CRONRUN_HOST $CRONRUN_FENCE $EPOCHREALTIME $$ $CRONRUN_JOB" >> "$1"
sleep "$2"
echo "E $CRONRUN_TICK $CRONRUN_HOST $CRONRUN_FENCE $EPOCHREALTIME $$ $CRONRUN_JOB" >> "$1"'''

# A long job with a child tree; logs its end when TERMed, lists its pids.
LONG_JOB = r'''trap 'echo "E $CRONRUN_TICK $CRONRUN_HOST $CRONRUN_FENCE $EPOCHREALTIME $$ $CRONRUN_JOB term" >> "$1"; kill $c1 $c2 2>/dev/null; exit 143' TERM
echo "S $CRONRUN_TICK $CRONRUN_HOST $CRONRUN_FENCE $EPOCHREALTIME $$ $CRONRUN_JOB" >> "$1"
sleep "$2" & c1=$!
(sleep "$2"; :) & c2=$!
[ -n "$3" ] && echo "$$ $c1 $c2" > "$3"
wait $c1
echo "E $CRONRUN_TICK $CRONRUN_HOST $CRONRUN_FENCE $EPOCHREALTIME $$ $CRONRUN_JOB" >> "$1"'''


class Fleet:
    def __init__(self, name, hosts=("hostA", "hostB", "hostC"), lease_ttl="6s", kill_after="1s",
                 history=False, unavailable=None, endpoints=None):
        self.name = name
        self.cronrun = env("CRONRUN_BIN")
        self.endpoints = endpoints or env("CRONRUN_FLEET_ETCD").split(",")
        self.pg = env("CRONRUN_FLEET_PG") if history else None
        self.prefix = f"/t/{name}-{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix=f"cronrun-{name}.")
        os.chmod(self.tmp, 0o755)
        self.etcd = Etcd(env("CRONRUN_FLEET_ETCD").split(","))
        self.hosts = list(hosts)
        self.lease_ttl = lease_ttl
        # The grace must fit the lease (kill_after + margin + ttl/3 < ttl), so it is
        # given with every run rather than the default.
        self.kill_after = kill_after
        self.joblog = os.path.join(self.tmp, "job.log")
        open(self.joblog, "w").close()
        self.seq = 0
        self.config = {}
        for h in self.hosts:
            os.makedirs(self.hostdir(h), mode=0o700)
            cfg = {"etcd": self.endpoints, "prefix": self.prefix, "lease_ttl": lease_ttl, "host": h}
            if self.pg:
                cfg["history"] = self.pg
            if unavailable:
                cfg["unavailable"] = unavailable
            self.config[h] = os.path.join(self.hostdir(h), "fleet.json")
            with open(self.config[h], "w") as f:
                json.dump(cfg, f, indent=2)
            os.chmod(self.config[h], 0o644)

    def hostdir(self, h):
        return os.path.join(self.tmp, h)

    def history(self, h):
        return os.path.join(self.hostdir(h), "history.db")

    def journal(self, h):
        return self.history(h) + ".journal"

    def argv(self, host, job, tick=None, cmd=None, summary=None, extra=()):
        a = [self.cronrun, "-n", job, "--host", host, "--fleet-config", self.config[host],
             "--cgroup", "off", "--history", self.history(host),
             "--lock", os.path.join(self.hostdir(host), job + ".pid"), "--kill-after", self.kill_after, "-q"]
        if tick is not None:
            a += ["--tick", rfc3339(tick) if isinstance(tick, (int, float)) else tick]
        if summary:
            a += ["--summary", summary]
        a += list(extra)
        a += ["--"] + list(cmd)
        return a

    def short_cmd(self, seconds=0.005):
        return ["bash", "-c", SHORT_JOB, "job", self.joblog, f"{seconds}"]

    def long_cmd(self, seconds, pidfile=""):
        return ["bash", "-c", LONG_JOB, "job", self.joblog, f"{seconds}", pidfile]

    def summary_path(self, host, job, label):
        self.seq += 1
        return os.path.join(self.hostdir(host), f"s-{job}-{label}-{self.seq}.json")

    def start(self, host, job, tick, cmd, extra=(), label="run"):
        """Starts one runner; returns (Popen, summary path)."""
        s = self.summary_path(host, job, label)
        p = subprocess.Popen(self.argv(host, job, tick, cmd, s, extra), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        p.summary = s
        p.host = host
        p.job = job
        p.tick = tick
        p.started = time.time()
        return p

    def finish(self, p, timeout=120):
        """Waits for a runner; returns its record (dict; {} when none was written)."""
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            err = (err or "") + " [killed by the test: did not exit]"
        rec = read_record(p.summary)
        rec["_rc"] = p.returncode
        rec["_stderr"] = (err or "").strip()
        rec["_host"] = p.host
        rec["_tick"] = p.tick
        return rec

    def cleanup(self):
        try:
            self.etcd.delete_prefix(self.prefix + "/")
        except RuntimeError as e:
            print(f"#    cleanup: {e}")
        if os.environ.get("CRONRUN_FLEET_KEEP"):
            print(f"#    kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def read_record(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def fleet_of(rec):
    return rec.get("fleet") or {}


def rec_brief(rec):
    f = fleet_of(rec)
    return (f"{rec.get('_host')} tick={f.get('tick')} status={rec.get('status')} rc={rec.get('_rc')} "
            f"fence={f.get('fence')} reason={rec.get('skip_reason')!r} note={f.get('note')!r} "
            f"stderr={rec.get('_stderr', '')[:300]!r}")


# ---------------------------------------------------------------- the job's own log

def read_joblog(path):
    """Runs as the job saw them: [{tick, host, fence, pid, job, start, end}]."""
    runs = {}
    order = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 7:
                continue
            kind, tick, host, fence, t, pid, job = p[:7]
            k = (job, pid, tick, host)
            if k not in runs:
                runs[k] = {"tick": tick, "host": host, "fence": fence, "pid": int(pid), "job": job,
                           "start": None, "end": None}
                order.append(k)
            runs[k]["start" if kind == "S" else "end"] = float(t)
    return [runs[k] for k in order]


def overlaps(runs, now=None):
    """Pairs of runs of the same job whose [start, end] intersect (an unfinished run
    lasts until `now`)."""
    now = now or time.time()
    out = []
    by_job = {}
    for r in runs:
        if r["start"] is not None:
            by_job.setdefault(r["job"], []).append(r)
    for rs in by_job.values():
        rs.sort(key=lambda r: r["start"])
        open_end = None
        prev = None
        for r in rs:
            if prev is not None and r["start"] < open_end:
                out.append((prev, r))
            end = r["end"] if r["end"] is not None else now
            if open_end is None or end > open_end:
                open_end = end
                prev = r
    return out


# ---------------------------------------------------------------- PostgreSQL

def psql(uri, sql, check=True):
    r = subprocess.run(["psql", uri, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return r.stdout.strip()


# ---------------------------------------------------------------- the run journal

def journal_frames(path):
    """[(type, payload dict)] of the journal's valid records."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    i = 32
    while i + 16 <= len(data):
        if data[i:i + 4] != b"\xffCRJ":
            j = data.find(b"\xffCRJ", i + 1)
            if j < 0:
                break
            i = j
            continue
        typ = chr(data[i + 4])
        (length,) = struct.unpack_from("<I", data, i + 8)
        (crc,) = struct.unpack_from("<I", data, i + 12)
        payload = data[i + 16:i + 16 + length]
        if zlib.crc32(payload, zlib.crc32(data[i + 4:i + 12])) == crc:
            out.append((typ, json.loads(payload)))
            i += 16 + length
        else:
            i += 1
    return out


def journal_append(path, typ, payload):
    """Appends one framed record with one write(2) on an O_APPEND fd, as a runner does."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    frame = bytearray(b"\xffCRJ" + typ.encode() + b"\0\0\0" + struct.pack("<I", len(body)))
    frame += struct.pack("<I", zlib.crc32(body, zlib.crc32(bytes(frame[4:12]))))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, bytes(frame) + body)
    finally:
        os.close(fd)


def skew_start(fleet, job, tick, cmd, hosts, max_skew=0.010, extra=()):
    """Starts one runner per host for `tick`, each after its own random 0..max_skew
    delay (the hosts' clock skew); returns the Popens."""
    delays = sorted((random.uniform(0, max_skew), h) for h in hosts)
    t0 = time.monotonic()
    procs = []
    for d, h in delays:
        wait = t0 + d - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        procs.append(fleet.start(h, job, tick, cmd, extra))
    return procs


class Poller(threading.Thread):
    """Polls a function every `period` seconds in the background; keeps (time, value)
    changes."""

    def __init__(self, fn, period=0.02):
        super().__init__(daemon=True)
        self.fn = fn
        self.period = period
        self.changes = []
        self.stop_ = threading.Event()

    def run(self):
        last = object()
        while not self.stop_.is_set():
            try:
                v = self.fn()
            except Exception as e:  # noqa: BLE001 - a poll failure is itself a value
                v = ("error", str(e))
            if v != last:
                self.changes.append((time.time(), v))
                last = v
            time.sleep(self.period)

    def stop(self):
        self.stop_.set()
        self.join()


def sigcont_quiet(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- N ticks on 3 hosts

def run_ticks(c, fleet, job, n, hooks=None, max_skew=0.010):
    """Tick after tick: the three hosts' runners of `job` for the same --tick, each
    started after its own 0..max_skew delay; the next tick once all three exited
    (a tick whose run still held the lock would make the next one a skip).
    hooks: {tick index: fn()} run before that tick. Returns (ticks, records by tick)."""
    base = tick_base(n)
    ticks = [base + i for i in range(n)]
    by_tick = {}
    for i, t in enumerate(ticks):
        if hooks and i in hooks:
            hooks[i]()
        procs = skew_start(fleet, job, t, fleet.short_cmd(), fleet.hosts, max_skew)
        by_tick[rfc3339(t)] = [fleet.finish(p) for p in procs]
        if (i + 1) % 100 == 0:
            c.info(f"{i + 1}/{n} ticks")
    return ticks, by_tick


def check_ticks(c, fleet, job, ticks, by_tick, allow_missed):
    """The once-per-tick checks on records, the job's log and etcd. Returns the missed
    ticks (no run) with their records."""
    n = len(ticks)
    ran, missed, doubles, bad_records = {}, {}, [], []
    for t in ticks:
        key = rfc3339(t)
        recs = by_tick[key]
        oks = [r for r in recs if r.get("status") not in ("skipped", None)]
        for r in recs:
            if not r.get("run_id") or not fleet_of(r):
                bad_records.append(r)
        if len(oks) > 1:
            doubles.append((key, oks))
        if oks:
            ran[key] = oks[0]
        else:
            missed[key] = recs
    c.check(not bad_records, f"every runner wrote a run record with a fleet field ({3 * n} records)",
            "; ".join(rec_brief(r) for r in bad_records[:5]))
    c.check(not doubles, f"0 doubles in the records ({len(doubles)} ticks ran more than once)",
            "; ".join(f"{k}: " + " | ".join(rec_brief(r) for r in v) for k, v in doubles[:5]))
    not_ok = [r for r in ran.values() if r.get("status") != "ok" or r.get("_rc") != 0]
    c.check(not not_ok, "every run that ran is ok, exit 0", "; ".join(rec_brief(r) for r in not_ok[:5]))
    if not allow_missed:
        c.check(len(ran) == n and not missed, f"exactly {n} runs, one per tick (ran {len(ran)})",
                "; ".join(f"{k}: " + " | ".join(rec_brief(r) for r in v) for k, v in list(missed.items())[:5]))
    # Skips name what they lost to.
    unexplained = []
    for key, recs in by_tick.items():
        for r in recs:
            if r.get("status") == "skipped":
                reason = r.get("skip_reason") or ""
                if not any(w in reason for w in ("already claimed", "held by host", "unavailable")):
                    unexplained.append(r)
                if r.get("_rc") not in (0, 75):
                    unexplained.append(r)
    c.check(not unexplained, "every skip names the holder or the claim (or etcd unavailable), exit 0 / 75",
            "; ".join(rec_brief(r) for r in unexplained[:5]))
    # How the losers lost: to the lock (the holder still ran) or to the tick claim
    # (the holder had already finished: a lock alone would have run the tick twice).
    kinds = {}
    for recs in by_tick.values():
        for r in recs:
            if r.get("status") == "skipped":
                reason = r.get("skip_reason") or ""
                k = next((w for w in ("already claimed", "held by host", "unavailable") if w in reason), "other")
                kinds[k] = kinds.get(k, 0) + 1
    c.info(f"skips by kind: {kinds}")

    # The job's own log: one start and one end per tick that ran, none at once.
    log = [r for r in read_joblog(fleet.joblog) if r["job"] == job]
    per_tick = {}
    for r in log:
        per_tick.setdefault(r["tick"], []).append(r)
    log_doubles = {k: v for k, v in per_tick.items() if len(v) > 1}
    c.check(not log_doubles, f"job log: no tick started twice ({len(log)} starts)",
            str(list(log_doubles.items())[:3]))
    c.check(set(per_tick) == set(ran), f"job log: the ticks that ran are the ticks the records say ran "
            f"({len(per_tick)} vs {len(ran)})", f"log only: {sorted(set(per_tick) - set(ran))[:5]}, "
            f"records only: {sorted(set(ran) - set(per_tick))[:5]}")
    unfinished = [r for r in log if r["end"] is None]
    c.check(not unfinished, "job log: every start has its end", str(unfinished[:3]))
    ov = overlaps(log)
    c.check(not ov, f"job log: 0 overlaps ({len(ov)})", str(ov[:3]))
    mism = [(k, r["host"], ran[k].get("_host")) for k, rs in per_tick.items() for r in rs
            if k in ran and (r["host"] != ran[k].get("_host") or r["fence"] != str(fleet_of(ran[k]).get("fence")))]
    c.check(not mism, "job log: CRONRUN_HOST and CRONRUN_FENCE are the record's host and fence", str(mism[:3]))

    # Fences strictly increasing with the tick.
    fences = [(k, fleet_of(ran[k]).get("fence")) for k in sorted(ran)]
    nonint = [f for f in fences if not isinstance(f[1], int)]
    dec = [(a, b) for a, b in zip(fences, fences[1:]) if isinstance(a[1], int) and isinstance(b[1], int)
           and not b[1] > a[1]]
    c.check(not nonint and not dec, f"fence tokens strictly increasing over {len(fences)} runs",
            f"not integers: {nonint[:3]} not increasing: {dec[:3]}")

    # etcd: one claim per tick that ran, naming the host that ran it; the lock released.
    claims = {kv["key"].rsplit("/", 1)[-1]: kv for kv in fleet.etcd.get_prefix(f"{fleet.prefix}/runs/{job}/")}
    wrong = []
    for k, r in ran.items():
        kv = claims.get(k)
        host = None
        if kv:
            try:
                host = json.loads(kv["value"]).get("host")
            except ValueError:
                host = kv["value"]
        if host != r.get("_host"):
            wrong.append((k, r.get("_host"), host))
    c.check(not wrong, f"etcd: each tick that ran has its claim naming the host that ran it ({len(claims)} claims)",
            str(wrong[:5]))
    extra = sorted(set(claims) - set(ran) - set(missed))
    c.check(not extra, "etcd: no claim for a tick that was not driven", str(extra[:5]))
    lock = fleet.etcd.get(f"{fleet.prefix}/locks/{job}")
    c.check(lock is None, "etcd: the lock is released after the last run", str(lock))
    return ran, missed
