#!/usr/bin/env python3
"""floor_args.py TRACE: the kernel work of one cronrun run, as bench/floor's options.

TRACE is `strace -f -y -s 256 -qq -e trace=...` (the set bench/lib.sh passes: openat,
mkdirat, write, writev, fdatasync, fsync, clone3, pwrite64, newfstatat, statfs,
faccessat2, getdents64, wait4) of one cronrun run whose <job> cgroup directories
exist (a run before it made them).
Prints one argument per line (bash: mapfile), without LOCKFILE and COMMAND:
  --cpu-online           cronrun read /sys/devices/system/cpu/online
  --config PATH          cronrun stat'ed the job's config file (absent or not)
  --drain PATH           cronrun stat'ed the drain flag
  --systemd-probe        cronrun stat'ed /run/systemd/system (DESIGN §9)
  --statfs PATH          cronrun statfs'ed the cgroup root
  --pwd-again            cronrun read /etc/passwd a second time
  --scan JOBDIR          cronrun listed a job directory (getdents64)
  --leaf JOBDIR          each cgroup leaf cronrun made (mkdirat under /sys/fs/cgroup succeeded)
  --hold FILE            a leaf file opened for reading before the start and held
  --access FILE          a leaf file checked with faccessat2 (succeeded)
  --set FILE=VALUE       what the runner wrote into the leaf before the start
  --join FILE            what the job's child wrote ("0") to join the leaf
  --open FILE            files opened for writing in the leaf and not written
  --check L:FILE         leaf files read between the reaping wait4s (the leaf empty?)
  --get L:FILE           leaf files read after (successful opens only, in order)
  --journal / --jpre N / --jpost N / --jsync-pre / --jsync-post
                         the run journal's appends (records before / after clone3)
  --history-sqlite       cronrun wrote an SQLite WAL (the history before the journal)
  --counters DIR         the per-run counters file's directory
Failed calls other than the probes above (a leaf's absent files, an O_EXCL create
of an existing lock file, ...) are left out: the floor does only the work that
succeeded and the probes a runner must make; they are listed on stderr.
A what-if: FLOOR_HIERARCHIES="unified memory" keeps only the leaves in those
hierarchies (e.g. the floor of a runner that makes only the leaves it needs).
"""
import os
import re
import sys

LINE = re.compile(r"^(\d+)\s+(.*)$")
CALL = re.compile(r"^(\w+)\((.*)$")
FDPATH = re.compile(r"^(-?\d+|AT_FDCWD)<([^>]*)>")
RET = re.compile(r"\)\s+=\s+(-?\d+)(?:<([^>]*)>)?")


def unquote(s):
    return bytes(s, "utf-8").decode("unicode_escape")


def main():
    lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
    pending = {}
    calls = []  # (pid, name, args_text, ret, retpath)
    for raw in lines:
        m = LINE.match(raw)
        if not m:
            continue
        pid, rest = int(m.group(1)), m.group(2)
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        r = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", rest)
        if r:
            rest = pending.pop(pid, r.group(1) + "(") + r.group(2)
        c = CALL.match(rest)
        if not c:
            continue
        name, args = c.group(1), c.group(2)
        rm = None
        for rm in RET.finditer(rest):
            pass
        ret = int(rm.group(1)) if rm else None
        retpath = rm.group(2) if rm else None
        calls.append((pid, name, args, ret, retpath))
    if not calls:
        sys.exit("floor_args: empty trace")
    runner = calls[0][0]

    leaves = {}  # leaf path -> dict
    order = []
    fds = {}  # (pid-agnostic) fd path -> (leaf, file, mode)
    written = set()
    journal = None
    jpre, jpost = [], []
    jsync = {"pre": False, "post": False}
    sqlite = False
    counters = None
    cloned = False
    flags = []  # (option, value or None), in the order found
    scans = []
    reads = []  # (leaf, file, wait4 calls before it)
    waits = 0
    passwd = 0
    failed = []
    for pid, name, args, ret, retpath in calls:
        if ret is not None and ret < 0 and name not in ("wait4",):
            failed.append("%s(%s" % (name, args[:90]))
        fdm = FDPATH.match(args)
        dirpath = fdm.group(2) if fdm else ""
        if name == "mkdirat" and ret == 0 and dirpath.startswith("/sys/fs/cgroup/"):
            child = re.match(r'^[^,]*, "([^"]*)"', args).group(1)
            leaf = dirpath + "/" + child
            leaves[leaf] = {"job": dirpath, "ops": [], "join": [], "open": []}
            order.append(leaf)
        elif name == "openat" and ret is not None and ret >= 0:
            fname = re.match(r'^[^,]*, "([^"]*)"', args).group(1)
            if fname == "/sys/devices/system/cpu/online":
                flags.append(("--cpu-online", None))
            elif fname == "/etc/passwd":
                passwd += 1
            if dirpath in leaves:
                mode = "r" if "O_RDONLY" in args else "w"
                if mode == "r" and not cloned:
                    leaves[dirpath]["ops"].append("--hold=" + fname)
                elif mode == "r":
                    reads.append((dirpath, fname, waits))
                else:
                    fds[retpath] = (dirpath, fname)
            elif fname.endswith(".counters") and "O_CREAT" in args:
                counters = dirpath
            elif (retpath or fname).endswith(".journal") and "O_APPEND" in args:
                journal = retpath or fname
        elif name in ("write", "writev") and fdm:
            target = fdm.group(2)
            if target in fds and target not in written:
                leaf, fname = fds[target]
                if pid == runner:
                    value = re.match(r'^[^,]*, "((?:[^"\\]|\\.)*)"', args)
                    leaves[leaf]["ops"].append("--set=" + (fname + "=" + unquote(value.group(1)) if value else fname))
                else:
                    leaves[leaf]["join"].append(fname)
                written.add(target)
            elif journal and target == journal and pid == runner and ret and ret > 0:
                (jpost if cloned else jpre).append(ret)
        elif name in ("fdatasync", "fsync") and fdm and journal and fdm.group(2) == journal:
            jsync["post" if cloned else "pre"] = True
        elif name == "pwrite64" and fdm and fdm.group(2).endswith("-wal"):
            sqlite = True
        elif name == "clone3" and pid == runner and ret and ret > 0:
            cloned = True
        elif name == "wait4" and pid == runner:
            waits += 1
        elif name == "faccessat2" and dirpath in leaves and ret == 0:
            leaves[dirpath]["ops"].append("--access=" + re.match(r'^[^,]*, "([^"]*)"', args).group(1))
        elif name == "newfstatat" and args.startswith("AT_FDCWD"):
            path = re.match(r'^[^,]*, "([^"]*)"', args).group(1)
            if "/jobs.d/" in path:
                flags.append(("--config", path))
            elif path.endswith("/drain"):
                flags.append(("--drain", path))
            elif path.rstrip("/") == "/run/systemd/system":
                flags.append(("--systemd-probe", None))
        elif name == "statfs" and ret == 0:
            flags.append(("--statfs", re.match(r'^"([^"]*)"', args).group(1)))
        elif name == "getdents64" and dirpath.startswith("/sys/fs/cgroup/") and dirpath not in scans:
            scans.append(dirpath)
    for target, (leaf, fname) in fds.items():
        if target not in written:
            leaves[leaf]["open"].append(fname)

    keep = os.environ.get("FLOOR_HIERARCHIES", "").split()
    if keep:
        order = [l for l in order if l.split("/")[4] in keep]
        scans = [d for d in scans if d.split("/")[4] in keep]
    out = []
    for opt, value in flags:
        out += [opt] + ([value] if value is not None else [])
    if passwd > 1:
        out.append("--pwd-again")
    for d in scans:
        out += ["--scan", d]
    if journal:
        out += ["--journal", "JOURNAL"]
        for n in jpre:
            out += ["--jpre", str(n)]
        for n in jpost:
            out += ["--jpost", str(n)]
        if jsync["pre"]:
            out.append("--jsync-pre")
        if jsync["post"]:
            out.append("--jsync-post")
    if sqlite:
        out.append("--history-sqlite")
    if counters:
        out += ["--counters", counters]
    for leaf in order:
        s = leaves[leaf]
        out += ["--leaf", s["job"]]
        for v in s["ops"]:
            out += v.split("=", 1)
        for f in s["join"]:
            out += ["--join", f]
        for f in s["open"]:
            out += ["--open", f]
    for leaf, fname, before in reads:  # a read with a wait4 after it: a check between reaps
        if leaf in order:
            out += ["--check" if before < waits else "--get", "%d:%s" % (order.index(leaf), fname)]
    print("\n".join(out))
    hier = [l.split("/")[4] for l in order]
    sys.stderr.write(
        "# floor: %d leaves (%s), %d limit writes, %d joins, %d reads; history: %s%s; counters file: %s\n"
        % (len(order), " ".join(hier), sum(sum(v.startswith("--set=") for v in leaves[l]["ops"]) for l in order),
           sum(len(leaves[l]["join"]) for l in order), len(reads),
           "journal (%s before, %s after the start%s)" % (jpre, jpost,
                                                         ", fdatasync" if any(jsync.values()) else "")
           if journal else "", " sqlite WAL" if sqlite else "", "yes" if counters else "no"))
    if failed:
        sys.stderr.write("# floor: cronrun's failed calls (the floor makes only the config, drain and "
                         "systemd probes): %s\n" % "; ".join(failed))


if __name__ == "__main__":
    main()
