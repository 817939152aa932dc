#!/usr/bin/env python3
"""Acceptance (issue 17): a holder cut off from etcd. Host A runs a long job; its
keepalive process (comm `cronrun-keepalive`) is SIGSTOPped, so its lease is no
longer renewed. Host B tries the job every 100 ms with a fresh tick. Per trial:
- A's job is stopped (TERM, then KILL) before A's lease expires: A's job logged its
  end, and A's run record finished, before the lock key left etcd, and B still
  saw the lock held by A after A's job had ended;
- B takes over only after: B's first run starts after A's job ended and carries a
  larger fence; 0 overlaps in the job's own log;
- A's record is `killed` with the lease note;
- a write with A's (now stale) fence is refused by PostgreSQL: a record for a new
  tick carrying A's fence, appended to A's journal and forwarded by
  `cronrun --flush`, lands in dead_letters ("stale fence"), not in runs.
Knob: CRONRUN_FLEET_TRIALS (default 3 in CI; 20 in the issue)."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acceptance_lib as L  # noqa: E402

TTL = 4


def trial(c, fleet, i, tick):
    job = f"part-{i}"
    lock_key = f"{fleet.prefix}/locks/{job}"
    a = fleet.start("hostA", job, tick, fleet.long_cmd(60))
    # Wait for the job to be running and the lock to be A's.
    t_end = time.monotonic() + 20
    lock = None
    while time.monotonic() < t_end:
        lock = fleet.etcd.get(lock_key)
        if lock and any(r["job"] == job for r in L.read_joblog(fleet.joblog)):
            break
        time.sleep(0.02)
    if not c.check(lock is not None, f"trial {i}: A holds the lock and its job runs"):
        a.kill()
        fleet.finish(a)
        return tick + 1
    ka = L.find_keepalive(a.pid)
    if not c.check(ka is not None, f"trial {i}: A's keepalive process (comm cronrun-keepalive) found",
                   f"children of the runner: {L.children(a.pid)}"):
        a.kill()
        fleet.finish(a)
        return tick + 1
    # The last time A's lock was seen in etcd (the time the read was sent: the key
    # existed at some instant after it), a bound below the lease's real expiry.
    seen = {"held": None}

    def lock_rev():
        t = time.time()
        rev = (fleet.etcd.get(lock_key) or {}).get("create_revision")
        if rev == lock["create_revision"]:
            seen["held"] = t
        return rev
    poll = L.Poller(lock_rev)
    poll.start()
    os.kill(ka, signal.SIGSTOP)
    t_stop = time.time()
    # Host B, every 100 ms, a fresh tick, until it runs (or far past the TTL).
    b_recs = []
    b_ran = None
    t_end = time.monotonic() + 3 * TTL + 5
    while time.monotonic() < t_end and b_ran is None:
        tick += 1
        p = fleet.start("hostB", job, tick, fleet.short_cmd())
        r = fleet.finish(p)
        r["_done"] = time.time()
        b_recs.append(r)
        if r.get("status") == "ok":
            b_ran = r
        else:
            time.sleep(0.1)
    a_rec = fleet.finish(a, timeout=3 * TTL)
    poll.stop()
    L.sigcont_quiet(ka)
    fence_a = lock["create_revision"]
    # When the lock stopped being A's, as polled (>= the real expiry).
    t_gone = next((t for t, v in poll.changes if v != fence_a), None)
    log = [r for r in L.read_joblog(fleet.joblog) if r["job"] == job]
    a_log = next((r for r in log if r["host"] == "hostA"), None)
    b_log = next((r for r in log if r["host"] == "hostB"), None)
    a_end = a_log and a_log["end"]
    a_fin = L.parse_time(a_rec.get("finished_at"))
    c.info(f"trial {i}: stop at +0, A's job ended +{(a_end or 0) - t_stop:.2f}s, A's record finished "
           f"+{(a_fin or 0) - t_stop:.2f}s, lock last seen +{(seen['held'] or 0) - t_stop:.2f}s, "
           f"lock gone +{(t_gone or 0) - t_stop:.2f}s, "
           f"B started +{((b_log or {}).get('start') or 0) - t_stop:.2f}s after {len(b_recs) - 1} skips")
    c.check(a_rec.get("status") == "killed" and "lease" in json.dumps(L.fleet_of(a_rec).get("note")),
            f"trial {i}: A's run is recorded killed, with the lease note", L.rec_brief(a_rec))
    t_held = seen["held"]
    c.check(a_end is not None and t_held is not None and a_end < t_held and a_fin is not None and t_gone is not None
            and a_fin < t_gone,
            f"trial {i}: A's job stopped while its lock was still in etcd (and its run finished before the "
            f"lease expired)", f"a_end={a_end} lock last seen={t_held} a_fin={a_fin} t_gone={t_gone}")
    held_after = [r for r in b_recs if r.get("status") == "skipped" and a_end and r["_done"] > a_end
                  and "hostA" in (r.get("skip_reason") or "")]
    c.check(bool(held_after), f"trial {i}: B still saw the lock held by hostA after A's job had ended "
            f"({len(held_after)} skips)", "; ".join(L.rec_brief(r) for r in b_recs[-3:]))
    c.check(b_ran is not None and b_log is not None and a_end is not None and b_log["start"] > a_end,
            f"trial {i}: B took over, only after A's job ended", "; ".join(L.rec_brief(r) for r in b_recs[-2:]))
    fence_b = L.fleet_of(b_ran or {}).get("fence")
    c.check(isinstance(fence_b, int) and fence_b > fence_a, f"trial {i}: B's fence {fence_b} > A's {fence_a}")
    ov = L.overlaps(log)
    c.check(not ov, f"trial {i}: 0 overlaps in the job's log", str(ov))
    if fleet.pg and b_ran:
        stale_write(c, fleet, i, job, fence_a, b_ran)
    return tick + 1


def stale_write(c, fleet, i, job, fence_a, b_ran):
    """A's fence used for the tick B now holds: a record of A's, appended to A's
    journal as a run of A would be and forwarded by cronrun --flush, must be
    refused by the database (and B's row stay)."""
    # B's record is in PostgreSQL (its forwarder, or a flush).
    subprocess.run([fleet.cronrun, "--flush", "--fleet-config", fleet.config["hostB"], "--kill-after", fleet.kill_after, "--history",
                    fleet.history("hostB")], capture_output=True, timeout=60)
    frames = [p for t, p in L.journal_frames(fleet.journal("hostA")) if t == "F" and p.get("job") == job]
    if not c.check(bool(frames), f"trial {i}: A's finish record is in A's journal"):
        return
    stale = dict(frames[-1])
    stale["run_id"] = str(uuid.uuid4())
    stale["status"] = "ok"
    stale["fleet"] = dict(stale.get("fleet") or {})
    # Fences are compared per tick (pg_history.h): the stale write is for the tick
    # B holds with its newer fence.
    stale["fleet"]["tick"] = L.fleet_of(b_ran).get("tick")
    stale["fleet"]["fence"] = fence_a
    L.journal_append(fleet.journal("hostA"), "S", stale)
    L.journal_append(fleet.journal("hostA"), "F", stale)
    r = subprocess.run([fleet.cronrun, "--flush", "--fleet-config", fleet.config["hostA"], "--kill-after", fleet.kill_after,
                        "--history", fleet.history("hostA")], capture_output=True, text=True, timeout=60)
    rows = L.psql(fleet.pg, f"SELECT count(*) FROM cronrun.runs WHERE run_id = '{stale['run_id']}'", check=False)
    b_row = L.psql(fleet.pg, f"SELECT fence FROM cronrun.runs WHERE run_id = '{b_ran.get('run_id')}'", check=False)
    c.check(b_row == str(L.fleet_of(b_ran).get("fence")), f"trial {i}: B's run is in PostgreSQL with its fence",
            f"fence column {b_row!r}")
    dead = L.psql(fleet.pg, f"SELECT reason FROM cronrun.dead_letters WHERE run_id = '{stale['run_id']}'", check=False)
    c.check(rows == "0" and "stale" in dead,
            f"trial {i}: a write with A's stale fence {fence_a} (B has {L.fleet_of(b_ran).get('fence')}) is "
            f"refused by PostgreSQL, set aside as a dead letter",
            f"runs rows={rows!r} dead_letters={dead!r} flush rc={r.returncode} {r.stderr.strip()[:300]}")


def main():
    c = L.Checks("acceptance_partition")
    n = L.knob("CRONRUN_FLEET_TRIALS", 3)
    fleet = L.Fleet("partition", hosts=("hostA", "hostB"), lease_ttl=f"{TTL}s", kill_after="1s", history=True)
    try:
        tick = L.tick_base(10000)
        for i in range(n):
            tick = trial(c, fleet, i, tick)
    finally:
        fleet.cleanup()
    c.finish()


main()
