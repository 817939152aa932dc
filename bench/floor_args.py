#!/usr/bin/env python3
"""floor_args.py TRACE: the kernel work of one cronrun run, as bench/floor's options.

TRACE is `strace -f -y -s 256 -qq -e trace=openat,mkdirat,write,writev,fdatasync,fsync,clone3,pwrite64`
of one cronrun run whose <job> cgroup directories exist (a run before it made them).
Prints one argument per line (bash: mapfile), without LOCKFILE and COMMAND:
  --leaf JOBDIR          each cgroup leaf cronrun made (mkdirat under /sys/fs/cgroup succeeded)
  --set FILE=VALUE       what the runner wrote into the leaf before the start
  --join FILE            what the job's child wrote ("0") to join the leaf
  --open FILE            files opened for writing in the leaf and not written
  --get FILE             files read in the leaf (successful opens only, in order)
  --journal / --jpre N / --jpost N / --jsync-pre / --jsync-post
                         the run journal's appends (records before / after clone3)
  --history-sqlite       cronrun wrote an SQLite WAL (the history before the journal)
  --counters DIR         the per-run counters file's directory
Failed opens (probes of files a leaf does not have) are left out: the floor does
only the work that succeeded. A summary of what was found goes to stderr.
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
    for pid, name, args, ret, retpath in calls:
        fdm = FDPATH.match(args)
        dirpath = fdm.group(2) if fdm else ""
        if name == "mkdirat" and ret == 0 and dirpath.startswith("/sys/fs/cgroup/"):
            child = re.match(r'^[^,]*, "([^"]*)"', args).group(1)
            leaf = dirpath + "/" + child
            leaves[leaf] = {"job": dirpath, "set": [], "join": [], "open": [], "get": []}
            order.append(leaf)
        elif name == "openat" and ret is not None and ret >= 0:
            fname = re.match(r'^[^,]*, "([^"]*)"', args).group(1)
            if dirpath in leaves:
                mode = "r" if "O_RDONLY" in args else "w"
                if mode == "r":
                    leaves[dirpath]["get"].append(fname)
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
                    leaves[leaf]["set"].append(fname + "=" + unquote(value.group(1)) if value else fname)
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
    for target, (leaf, fname) in fds.items():
        if target not in written:
            leaves[leaf]["open"].append(fname)

    keep = os.environ.get("FLOOR_HIERARCHIES", "").split()
    if keep:
        order = [l for l in order if l.split("/")[4] in keep]
    out = []
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
        for v in s["set"]:
            out += ["--set", v]
        for f in s["join"]:
            out += ["--join", f]
        for f in s["open"]:
            out += ["--open", f]
        for f in s["get"]:
            out += ["--get", f]
    print("\n".join(out))
    hier = [l.split("/")[4] for l in order]
    sys.stderr.write(
        "# floor: %d leaves (%s), %d limit writes, %d joins, %d reads; history: %s%s; counters file: %s\n"
        % (len(order), " ".join(hier), sum(len(leaves[l]["set"]) for l in order),
           sum(len(leaves[l]["join"]) for l in order), sum(len(leaves[l]["get"]) for l in order),
           "journal (%s before, %s after the start%s)" % (jpre, jpost,
                                                         ", fdatasync" if any(jsync.values()) else "")
           if journal else "", " sqlite WAL" if sqlite else "", "yes" if counters else "no"))


if __name__ == "__main__":
    main()
