#!/usr/bin/env python3
"""Page faults of a runner's own processes by phase and by mapping, from
`perf script -F comm,pid,event,addr --show-mmap-events` of a recording made with
-e page-faults -c 1 -d -e syscalls:sys_enter_clone3 -e syscalls:sys_enter_clone
(bench/stack_floor.sh FAULTS=1 records it). Phases: "before fork" and "after" in
the runner (the process that makes the clone), "child" = the forked child until it
execs the job (the job itself, and anything else with another name, is left out).
Mappings: the program's text; its read-only data (.rodata, unwind tables, and the
RELRO part, which the loader relocates, so copies, before making it read-only);
its writable data (.data, .got.plt); heap, .bss and other anonymous memory; the
stack; the shared libraries' text and data; the rest. Per run (the recording
holds RUNS runs).

  faults_by_phase.py PROGRAM RUNS < script.txt
"""
import collections
import re
import sys

prog, runs = sys.argv[1][:15], int(sys.argv[2])
mmap_re = re.compile(r"\[0x([0-9a-f]+)\(0x([0-9a-f]+)\) @ \S+ .*\]: (\S+) (.*)$")
maps = collections.defaultdict(list)  # pid -> [(start, size, perms, path)]
events = []
runners = set()
for line in sys.stdin:
    f = line.split()
    if len(f) < 3 or f[0] != prog:
        continue
    pid = int(f[1].split("/")[0])
    if "PERF_RECORD_MMAP" in line:
        m = mmap_re.search(line)
        if m:
            maps[pid].append((int(m[1], 16), int(m[2], 16), m[3], m[4].strip()))
        continue
    if "sys_enter_clone" in line:
        runners.add(pid)
        events.append((pid, "clone", 0))
    elif "page-faults" in line:
        events.append((pid, "fault", int(f[-1], 16) if re.fullmatch(r"[0-9a-f]+", f[-1]) else 0))


def classify(addr, regions):
    for start, size, perms, path in reversed(regions):
        if start <= addr < start + size:
            name = path.rsplit("/", 1)[-1]
            if path.startswith("[stack"):
                return "stack"
            if path.startswith("//anon") or not path:
                return "heap/bss/anon"
            if name.startswith(prog) or path.endswith("/" + sys.argv[1]):
                return "program " + ("text" if "x" in perms else "rodata" if "w" not in perms else "data")
            if ".so" in name:
                return "libs " + ("text" if "x" in perms else "data")
            return "other"
    return "other"


forked = set()
counts = collections.Counter()
last_runner = None
for pid, kind, addr in events:
    if kind == "clone":
        forked.add(pid)
        last_runner = pid
        continue
    if pid in runners:
        phase = "after fork" if pid in forked else "before fork"
        regions = maps[pid]
    else:
        phase = "child"
        regions = maps.get(pid) or maps.get(last_runner, [])
    counts[(phase, classify(addr, regions))] += 1

classes = ["program text", "program rodata", "program data", "heap/bss/anon", "stack", "libs text", "libs data",
           "other"]
print(f"  {'phase':<12}" + "".join(f"{c:>15}" for c in classes) + f"{'total':>8}")
for phase in ("before fork", "after fork", "child"):
    row = [counts[(phase, c)] / runs for c in classes]
    print(f"  {phase:<12}" + "".join(f"{v:>15.1f}" for v in row) + f"{sum(row):>8.1f}")
