#!/usr/bin/env python3
"""Acceptance (issue 17): the zero-downtime handover of DESIGN.md section 10.
Group `batch` is on hostA in `<prefix>/config`; three long jobs of the group run
on hostA (hostB, driven for the same ticks, skips: not in the group). Then the
group is moved to hostB. Both hosts keep being driven every 0.5 s for each job,
as cron would. Checks (the job's own log, the run records, etcd):
- hostA's running jobs finish (--on-revoke finish: ok, logged their natural end);
- hostA starts nothing new after the move (its later records: skipped, "not in
  group");
- hostB starts each job only after hostA's run of it ended, and runs each;
- 0 overlaps."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acceptance_lib as L  # noqa: E402

JOB_S = 5


def main():
    c = L.Checks("acceptance_handover")
    fleet = L.Fleet("handover", hosts=("hostA", "hostB"), lease_ttl="6s", kill_after="1s")
    cfg_key = f"{fleet.prefix}/config"
    jobs = ["ho-1", "ho-2", "ho-3"]
    recs = []
    try:
        fleet.etcd.put(cfg_key, json.dumps({"groups": {"batch": "hostA", "other": ["hostB"]}}))
        tick = L.tick_base(1000)
        grp = ("--group", "batch")
        first = [fleet.start(h, j, tick, fleet.long_cmd(JOB_S), grp) for j in jobs for h in fleet.hosts]
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and len(L.read_joblog(fleet.joblog)) < 3:
            time.sleep(0.05)
        started = L.read_joblog(fleet.joblog)
        c.check(sorted(r["job"] for r in started) == jobs and all(r["host"] == "hostA" for r in started),
                "the three jobs of group batch run on hostA", str(started))
        time.sleep(1)
        fleet.etcd.put(cfg_key, json.dumps({"groups": {"batch": "hostB", "other": ["hostA"]}}))
        t_move = time.time()
        c.info("group batch moved from hostA to hostB")
        # Cron keeps kicking both hosts, every 0.5 s, until hostB ran every job.
        later = []
        t_end = time.monotonic() + JOB_S + 25
        while time.monotonic() < t_end:
            tick += 1
            batch = [fleet.start(h, j, tick, fleet.short_cmd(), grp) for j in jobs for h in fleet.hosts]
            rs = [fleet.finish(p) for p in batch]
            for r in rs:
                r["_job"] = r.get("job")
            later += rs
            b_ran = {r.get("job") for r in later if r["_host"] == "hostB" and r.get("status") == "ok"}
            if b_ran == set(jobs):
                break
            time.sleep(0.5)
        recs = [fleet.finish(p, timeout=JOB_S + 30) for p in first]
        log = L.read_joblog(fleet.joblog)
        a_first = {r.get("job"): r for r in recs if r["_host"] == "hostA"}
        b_first = [r for r in recs if r["_host"] == "hostB"]
        c.check(all(r.get("status") == "skipped" and "not in group" in (r.get("skip_reason") or "") for r in b_first),
                "before the move, hostB skips: not in group", "; ".join(L.rec_brief(r) for r in b_first))
        c.check(all(r.get("status") == "ok" and r.get("_rc") == 0 for r in a_first.values()) and len(a_first) == 3,
                "hostA's three running jobs finished ok after the move (--on-revoke finish)",
                "; ".join(L.rec_brief(r) for r in a_first.values()))
        revoked = [r for r in a_first.values() if "revoke" in json.dumps(L.fleet_of(r))]
        c.info(f"hostA records noting the revoke: {len(revoked)} of 3")
        a_log = {r["job"]: r for r in log if r["host"] == "hostA"}
        natural = all(r["end"] is not None for r in a_log.values())
        with open(fleet.joblog) as f:
            termed = [ln for ln in f if ln.rstrip().endswith(" term")]
        c.check(natural and not termed and len(a_log) == 3, "hostA's jobs logged their natural end (not TERMed)")
        a_new = [r for r in later if r["_host"] == "hostA" and r.get("status") != "skipped"]
        a_new_log = [r for r in log if r["host"] == "hostA" and r["start"] > t_move]
        c.check(not a_new and not a_new_log, "hostA starts nothing new after the move",
                "; ".join(L.rec_brief(r) for r in a_new[:3]) + str(a_new_log[:3]))
        # While hostA's own run of a job lasts, its local pid-file lock (taken before
        # the fleet step) answers first; after that, the group.
        a_reasons = [r for r in later if r["_host"] == "hostA" and "not in group" not in (r.get("skip_reason") or "")
                     and "held by pid" not in (r.get("skip_reason") or "")]
        c.check(not a_reasons, "hostA's later runs are skipped: not in group (or its own run's local lock)",
                "; ".join(L.rec_brief(r) for r in a_reasons[:3]))
        c.check(any("not in group" in (r.get("skip_reason") or "") for r in later if r["_host"] == "hostA"),
                "hostA was refused by the group after the move")
        for j in jobs:
            b = sorted((r for r in log if r["host"] == "hostB" and r["job"] == j), key=lambda r: r["start"])
            a = a_log.get(j)
            c.check(bool(b) and a is not None and a["end"] is not None and b[0]["start"] > a["end"],
                    f"{j}: hostB's first run started after hostA's run ended "
                    f"(+{(b[0]['start'] - a['end']) if b and a and a['end'] else float('nan'):.2f}s)",
                    f"a={a} b={b[:1]}")
            waits = [r for r in later if r["_host"] == "hostB" and r.get("job") == j and r.get("status") == "skipped"]
            held = [r for r in waits if "held by host hostA" in (r.get("skip_reason") or "")]
            c.check(bool(held), f"{j}: hostB, now in the group, was refused while hostA's run held the lock "
                    f"({len(held)} of {len(waits)} skips)", "; ".join(L.rec_brief(r) for r in waits[:3]))
        ov = L.overlaps(log)
        c.check(not ov, "0 overlaps in the jobs' log", str(ov[:3]))
    finally:
        fleet.cleanup()
    c.finish()


main()
