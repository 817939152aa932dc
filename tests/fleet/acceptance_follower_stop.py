#!/usr/bin/env python3
"""Acceptance (issue 17): an etcd follower SIGSTOPped for twice the lease TTL while
three hosts each run a job: 0 jobs stopped. The stopped follower is the first
endpoint in every host's fleet.json, so the runners' requests (claims and
keepalives) go to it first and must fail over without the deadline firing: each
job logs its natural end, each record is `ok` with exit 0 and no lease note, and
the locks are released at the end."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acceptance_lib as L  # noqa: E402

TTL = 6


def main():
    c = L.Checks("acceptance_follower_stop")
    leader = L.wait_leader()
    follower = next(m for m in (1, 2, 3) if m != leader)
    pid = L.member_pid(follower)
    eps = [L.member_endpoint(follower)] + [L.member_endpoint(m) for m in (1, 2, 3) if m != follower]
    fleet = L.Fleet("followerstop", lease_ttl=f"{TTL}s", kill_after="1s", endpoints=eps)
    stopped = False
    try:
        if not c.check(pid is not None, f"etcd member {follower} (a follower; leader is {leader}) found by its port"):
            return
        tick = L.tick_base(10)
        dur = 2 * TTL + 4
        procs = [fleet.start(h, f"fs-{h}", tick, fleet.long_cmd(dur)) for h in fleet.hosts]
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and len(L.read_joblog(fleet.joblog)) < 3:
            time.sleep(0.05)
        c.check(len(L.read_joblog(fleet.joblog)) == 3, "the three jobs started")
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        c.info(f"SIGSTOP etcd member {follower} (pid {pid}) for {2 * TTL} s")
        time.sleep(2 * TTL)
        os.kill(pid, signal.SIGCONT)
        stopped = False
        recs = [fleet.finish(p, timeout=dur + 30) for p in procs]
        log = L.read_joblog(fleet.joblog)
        natural = [r for r in log if r["end"] is not None]
        termed = [r for r in log if r["end"] is None]
        with open(fleet.joblog) as f:
            termed += [ln for ln in f if ln.rstrip().endswith(" term")]
        c.check(len(natural) == 3 and not termed, "0 jobs stopped: each job logged its natural end", str(log))
        bad = [r for r in recs if r.get("status") != "ok" or r.get("_rc") != 0 or "lease" in str(L.fleet_of(r).get("note") or "")]
        c.check(not bad, "each run recorded ok, exit 0, no lease note", "; ".join(L.rec_brief(r) for r in bad))
        locks = fleet.etcd.get_prefix(f"{fleet.prefix}/locks/")
        c.check(not locks, "the locks are released", str(locks))
    finally:
        if stopped:
            L.sigcont_quiet(pid)
        fleet.cleanup()
    c.finish()


main()
