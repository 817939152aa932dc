#!/usr/bin/env python3
"""Acceptance (issue 17): PostgreSQL stopped with `-m immediate` twice while three
hosts make N fleet runs each (their own job each; each run starts its detached
forwarder, and every 10 runs each host runs `cronrun --flush` as a crontab line
would, so records are forwarded while the database comes and goes); a poisoned
record (a NUL character, which jsonb refuses) is put in host A's journal half
way. After one last `cronrun --flush` per host:
- all 3N records are in `runs`, each once (by run id and by job + tick), none
  left `running`, each with its host and fence;
- the poisoned record is in dead_letters and not in runs, and the records after
  it went through (it did not block);
- each host's journal is drained: the forwarder's cursor is at the journal's end.
Knob: CRONRUN_FLEET_RUNS (runs per host; default 100 in CI, 1000 in the issue)."""
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acceptance_lib as L  # noqa: E402


def main():
    c = L.Checks("acceptance_pg_outage")
    n = L.knob("CRONRUN_FLEET_RUNS", 100)
    fleet = L.Fleet("pgoutage", history=True)
    jobs = {h: f"pgo-{h}-{os.getpid()}" for h in fleet.hosts}
    done = {h: 0 for h in fleet.hosts}
    failed = []
    poisoned = {}
    flushes = []
    base = L.tick_base(n)

    def host_loop(h):
        for i in range(n):
            if h == "hostA" and i == n // 2:
                poisoned["run_id"] = poison(fleet, h, jobs[h], base - 1)
            r = fleet.finish(fleet.start(h, jobs[h], base + i, ["true"]))
            if r.get("status") != "ok":
                failed.append(r)
            done[h] += 1
            if i % 10 == 9:
                # As a `cronrun --flush` crontab line would, besides each run's own
                # forwarder: forwarding while PostgreSQL comes and goes.
                f = subprocess.run(flush_argv(fleet, h), capture_output=True, text=True, timeout=300)
                flushes.append((h, f.returncode, f.stderr.strip()[:200]))

    try:
        c.info(f"3 hosts x {n} runs, prefix {fleet.prefix}")
        threads = [threading.Thread(target=host_loop, args=(h,)) for h in fleet.hosts]
        for t in threads:
            t.start()
        outages = 0
        for frac in (3, 3 * 2):
            target = 3 * n * (1 if frac == 3 else 2) // 3
            while sum(done.values()) < target and any(t.is_alive() for t in threads):
                time.sleep(0.05)
            L.cluster("pg-stop-immediate")
            at_stop = sum(done.values())
            c.info(f"PostgreSQL stopped -m immediate after {at_stop} runs")
            time.sleep(2)
            L.cluster("pg-start")
            at_start = sum(done.values())
            c.info(f"PostgreSQL started again after {at_start} runs")
            outages += 1
            # Stopped during the runs: runs were made while it was away, and more
            # remain to be made after it is back.
            c.check(at_stop < at_start < 3 * n, f"outage {outages}: runs went on while PostgreSQL was away "
                    f"({at_start - at_stop} runs) and remain after it is back ({3 * n - at_start})",
                    f"at stop {at_stop}, at start {at_start}, of {3 * n}")
        for t in threads:
            t.join()
        failed_flushes = [f for f in flushes if f[1] != 0]
        c.info(f"{len(flushes)} flushes during the runs, {len(failed_flushes)} failed (PostgreSQL away): "
               f"{failed_flushes[:2]}")
        c.check(outages == 2, "PostgreSQL was stopped twice")
        c.check(not failed, f"all {3 * n} runs ok", "; ".join(L.rec_brief(r) for r in failed[:5]))
        for h in fleet.hosts:
            r = subprocess.run(flush_argv(fleet, h), capture_output=True, text=True, timeout=300)
            c.check(r.returncode == 0, f"cronrun --flush on {h} exits 0", r.stderr.strip()[:400])
        names = ",".join(f"'{j}'" for j in jobs.values())
        q = lambda sql: L.psql(fleet.pg, sql)  # noqa: E731
        total = q(f"SELECT count(*) FROM cronrun.runs WHERE job IN ({names})")
        ids = q(f"SELECT count(DISTINCT run_id) FROM cronrun.runs WHERE job IN ({names})")
        jt = q(f"SELECT count(DISTINCT (job, tick)) FROM cronrun.runs WHERE job IN ({names})")
        c.check(total == ids == jt == str(3 * n), f"all {3 * n} records present, each once",
                f"rows {total}, run ids {ids}, (job, tick) {jt}")
        running = q(f"SELECT count(*) FROM cronrun.runs WHERE job IN ({names}) AND status = 'running'")
        c.check(running == "0", "none left running", f"{running} running")
        per_host = q(f"SELECT host, count(*) FROM cronrun.runs WHERE job IN ({names}) GROUP BY host ORDER BY host")
        c.check(per_host.split() == [f"{h}|{n}" for h in sorted(fleet.hosts)], "each host's runs carry its host",
                per_host)
        nofence = q(f"SELECT count(*) FROM cronrun.runs WHERE job IN ({names}) AND fence IS NULL")
        c.check(nofence == "0", "each row carries its fence", nofence)
        pid = poisoned.get("run_id")
        # Its JSON does not parse as jsonb, so the run id is only in the payload.
        dead = q(f"SELECT count(*) FROM cronrun.dead_letters WHERE strpos(payload, '{pid}') > 0") if pid else "?"
        inruns = q(f"SELECT count(*) FROM cronrun.runs WHERE run_id = '{pid}'") if pid else "?"
        c.check(dead != "0" and dead != "?" and inruns == "0",
                "the poisoned record is a dead letter, not a run (and the rest went through)",
                f"dead_letters {dead}, runs {inruns}")
        # Not blocked: hostA's runs after the poisoned record (made from run n/2 on)
        # are all there.
        after = q(f"SELECT count(*) FROM cronrun.runs WHERE job = '{jobs['hostA']}' "
                  f"AND tick >= '{L.rfc3339(base + n // 2)}'")
        c.check(after == str(n - n // 2), f"hostA's {n - n // 2} runs after the poisoned record are in runs",
                f"{after} rows")
        for h in fleet.hosts:
            c.check(*drained(fleet, h))
    finally:
        fleet.cleanup()
    c.finish()


def flush_argv(fleet, h):
    # --kill-after as the runs have it: --flush checks the grace against lease_ttl too.
    return [fleet.cronrun, "--flush", "--fleet-config", fleet.config[h], "--kill-after", fleet.kill_after,
            "--history", fleet.history(h)]


def poison(fleet, h, job, tick):
    """A record the database refuses for its content (a NUL, which jsonb cannot
    hold), framed like a runner's, appended to the host's journal."""
    run_id = str(uuid.uuid4())
    tmpl = [p for t, p in L.journal_frames(fleet.journal(h)) if t == "F"][-1]
    rec = dict(tmpl)
    rec["run_id"] = run_id
    rec["command"] = ["poison\u0000ed"]
    rec["fleet"] = dict(rec.get("fleet") or {})
    rec["fleet"]["tick"] = L.rfc3339(tick)
    L.journal_append(fleet.journal(h), "F", rec)
    return run_id


def drained(fleet, h):
    """The forwarder's cursor (consumer "fleet") is at the end of the journal: same
    generation as the journal's header, offset = its size. A journal rotated by a fold
    after everything was sent holds only its header and is drained too."""
    with open(fleet.journal(h), "rb") as f:
        data = f.read()
    gen = data[8:24].hex()
    db = sqlite3.connect(f"file:{fleet.history(h)}?mode=ro", uri=True)
    try:
        rows = {k: (g, o) for k, g, o in db.execute('SELECT consumer, generation, "offset" FROM journal_cursors')}
    finally:
        db.close()
    cur = rows.get("fleet")
    ok = len(data) == 32 or (cur is not None and cur[0] == gen and cur[1] == len(data))
    return ok, f"{h}: the journal is drained (forwarder cursor {cur}, journal generation {gen} size {len(data)})", \
        str(rows)


main()
