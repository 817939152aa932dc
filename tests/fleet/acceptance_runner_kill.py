#!/usr/bin/env python3
"""Acceptance (issue 17): the runner kill -9'ed while its job (a shell with two
children) runs. Its whole job tree is gone soon after (the keepalive process kills
it), the lease is NOT revoked (the lock key stays, so host B, trying every 100 ms
with a fresh tick, is refused with "held by host hostA" after the tree is gone),
and B's first run starts only after the lease expired: no earlier than the last
possible renewal before the kill plus the TTL. 0 overlaps.
Knob: CRONRUN_FLEET_TRIALS (trials; default 2 in CI)."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acceptance_lib as L  # noqa: E402

TTL = 4


def trial(c, fleet, i, tick):
    job = f"rk-{i}"
    lock_key = f"{fleet.prefix}/locks/{job}"
    pidfile = os.path.join(fleet.tmp, f"{job}.pids")
    a = fleet.start("hostA", job, tick, fleet.long_cmd(120, pidfile))
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end and not (os.path.exists(pidfile) and os.path.getsize(pidfile) > 0):
        time.sleep(0.02)
    pids = [int(x) for x in open(pidfile).read().split()] if os.path.exists(pidfile) else []
    lock = fleet.etcd.get(lock_key)
    if not c.check(len(pids) == 3 and lock is not None, f"trial {i}: A's job tree (3 pids) runs, A holds the lock"):
        a.kill()
        fleet.finish(a)
        return tick + 1
    ka = L.find_keepalive(a.pid)
    # The last time A's lock was seen in etcd (the time the read was sent: the key
    # existed at some instant after it).
    seen = {"held": None}

    def lock_rev():
        t = time.time()
        rev = (fleet.etcd.get(lock_key) or {}).get("create_revision")
        if rev == lock["create_revision"]:
            seen["held"] = t
        return rev
    poll = L.Poller(lock_rev)
    poll.start()
    # Let at least one renewal happen, then kill the runner outright.
    time.sleep(TTL / 3 + 0.2)
    os.kill(a.pid, signal.SIGKILL)
    t_kill = time.time()
    a.wait()
    t_end = time.monotonic() + TTL
    while time.monotonic() < t_end and any(L.alive(p) for p in pids):
        time.sleep(0.01)
    t_tree = time.time()
    left = [p for p in pids if L.alive(p)]
    c.check(not left, f"trial {i}: the job tree is gone {t_tree - t_kill:.2f}s after the kill -9", f"alive: {left}")
    lock_now = fleet.etcd.get(lock_key)
    c.check(lock_now is not None and lock_now["create_revision"] == lock["create_revision"],
            f"trial {i}: the lease was not revoked: A's lock is still there once the tree is gone")
    b_recs, b_ran = [], None
    t_end = time.monotonic() + 3 * TTL + 5
    while time.monotonic() < t_end and b_ran is None:
        tick += 1
        r = fleet.finish(fleet.start("hostB", job, tick, fleet.short_cmd()))
        r["_done"] = time.time()
        b_recs.append(r)
        if r.get("status") == "ok":
            b_ran = r
        else:
            time.sleep(0.1)
    poll.stop()
    t_held = seen["held"]
    log = [r for r in L.read_joblog(fleet.joblog) if r["job"] == job]
    for r in log:  # A's job was KILLed: it logged no end; it ended when its tree was gone
        if r["host"] == "hostA" and r["end"] is None:
            r["end"] = t_tree
    b_log = next((r for r in log if r["host"] == "hostB"), None)
    held = [r for r in b_recs if r.get("status") == "skipped" and "hostA" in (r.get("skip_reason") or "")]
    c.check(bool(held), f"trial {i}: B was refused while A's lease lived ({len(held)} skips naming hostA)")
    # A renewal is at most TTL/3 old at the kill, so the lease lives until at least
    # t_kill + TTL - TTL/3.
    earliest = t_kill + TTL - TTL / 3
    c.check(b_log is not None and b_log["start"] >= earliest,
            f"trial {i}: B's first run started only after A's lease expired "
            f"(+{((b_log or {}).get('start') or 0) - t_kill:.2f}s after the kill, TTL {TTL}s)",
            "; ".join(L.rec_brief(r) for r in b_recs[-2:]))
    c.check(b_log is not None and t_held is not None and b_log["start"] > t_held,
            f"trial {i}: B's first run started after A's lock was last seen in etcd "
            f"(+{(t_held or 0) - t_kill:.2f}s after the kill)",
            f"last seen held {t_held}, B started {(b_log or {}).get('start')}")
    c.check(not L.overlaps(log), f"trial {i}: 0 overlaps in the job's log")
    if ka:
        c.check(not L.alive(ka), f"trial {i}: the keepalive process is gone too")
    return tick + 1


def main():
    c = L.Checks("acceptance_runner_kill")
    n = L.knob("CRONRUN_FLEET_TRIALS", 2)
    fleet = L.Fleet("runnerkill", hosts=("hostA", "hostB"), lease_ttl=f"{TTL}s", kill_after="1s")
    try:
        tick = L.tick_base(10000)
        for i in range(n):
            tick = trial(c, fleet, i, tick)
    finally:
        fleet.cleanup()
    c.finish()


main()
