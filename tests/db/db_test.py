#!/usr/bin/python3
"""DB tier cases for the preload query counter (libcronrun-db.so).

Each case runs real client programs as a job -- through `dbcount-run` (the
runner's dbcount::Session without the rest of cronrun) or, for the e2e_* cases,
through `cronrun --count-db-queries` -- and asserts on the counters. Exact counts
are taken by difference: the same program with N=0 and N=100 must differ by
exactly 100, so connection setup and driver prologues cancel out.

Run by CTest with the servers of servers.sh up; `db_test.py --list` names the
cases, `db_test.py CASE` runs one (exit 0 pass, 1 fail, 77 skip). Uses Debian's
/usr/bin/python3 and stdlib only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

N = 100
STATE = os.environ.get("CRONRUN_DB_STATE", "")
RUN = os.environ.get("CRONRUN_DB_RUN", "")
BIN = os.environ.get("CRONRUN_DB_BIN", "")
CRONRUN = os.environ.get("CRONRUN_BIN", "")
PY = "/usr/bin/python3"  # Debian's, for Debian's python3-* modules

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Skip(Exception):
    pass


def server_env():
    env = dict(os.environ)
    path = os.path.join(STATE, "env")
    if not os.path.exists(path):
        raise Skip("servers not running (no %s)" % path)
    for line in open(path):
        k, _, v = line.strip().partition("=")
        if k:
            env[k] = v
    return env


def tool(name):
    return os.path.join(BIN, name)


def run_job(argv, via="dbcount", env=None, no_tsc=False):
    """Runs argv as one job; returns (counters, exit_code, stdout text)."""
    env = env or server_env()
    with tempfile.TemporaryDirectory(prefix="crdb-") as tmp:
        out = os.path.join(tmp, "out.json")
        if via == "cronrun":
            if not CRONRUN or not os.path.exists(CRONRUN):
                raise Skip("cronrun not built")
            cmd = [CRONRUN, "--count-db-queries", "--no-lock", "--cgroup", "off", "--no-history",
                   "--summary", out, "--"] + argv
        else:
            cmd = [RUN, "--out", out] + (["--no-tsc"] if no_tsc else []) + ["--"] + argv
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=90)
        if not os.path.exists(out):
            raise AssertionError("no result from %s (rc %d): %s" % (cmd, p.returncode, p.stderr))
        rec = json.load(open(out))
        code = rec.get("exit_code")
        if code != 0:
            raise AssertionError("job %s exited %r: %s" % (argv, code, p.stderr[-2000:]))
        return rec.get("counters", {}), code, p.stdout


def diff(argv_for, key, via="dbcount"):
    """Counters for N=0 and N=N; returns (c0, c1, delta of key)."""
    c0, _, _ = run_job(argv_for(0), via)
    c1, _, _ = run_job(argv_for(N), via)
    for c in (c0, c1):
        if key not in c:
            raise AssertionError("%s missing in %s" % (key, json.dumps(c, indent=1)))
    return c0, c1, c1[key] - c0[key]


def expect_exact(argv_for, backend, via="dbcount", program=None, expected=N):
    c0, c1, d = diff(argv_for, "db.%s.queries" % backend, via)
    check(d == expected, "db.%s.queries: N=0 -> %s, N=%d -> %s (want +%d)" %
          (backend, c0["db.%s.queries" % backend], N, c1["db.%s.queries" % backend], expected))
    check(c1["db.queries"] - c0["db.queries"] == expected, "db.queries delta %s" %
          (c1["db.queries"] - c0["db.queries"]))
    check(c1["db.resolve_failures"] == 0, "resolve failures: %s" % c1["db.resolve_failures"])
    check(c1["db.processes_with_client"] >= 1, "no process with a client library")
    if program:
        k = "db.proc.%s.queries" % program
        check(c1.get(k, 0) - c0.get(k, 0) == expected, "%s delta %s (counters %s)" %
              (k, c1.get(k, 0) - c0.get(k, 0), json.dumps(c1, indent=1)))
    return c0, c1


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def need(module):
    if subprocess.run([PY, "-c", "import " + module], capture_output=True).returncode != 0:
        raise Skip("%s not installed for %s" % (module, PY))


# ---- C programs against the client libraries ----

def pg(mode):
    return lambda n: [tool("db_pg_client"), mode, str(n)]


@case
def pg_exec():
    expect_exact(pg("exec"), "pg", program="db_pg_client")


@case
def pg_params():
    expect_exact(pg("params"), "pg")


@case
def pg_prepared():
    c0, c1 = expect_exact(pg("prepared"), "pg")
    check(c1["db.pg.prepares"] == c0["db.pg.prepares"] and c1["db.pg.prepares"] >= 1,
          "prepares %s / %s" % (c0["db.pg.prepares"], c1["db.pg.prepares"]))


@case
def pg_async():
    expect_exact(pg("async"), "pg")


@case
def pg_pipeline():
    expect_exact(pg("pipeline"), "pg")


@case
def pg_copy():
    expect_exact(pg("copy"), "pg")


def check_busy(argv_for, key, what, no_tsc=False):
    """10 x a 50 ms sleep: busy time 0.5 s +- 10%, and within 10% of the loop's own
    wall time (on a loaded machine the server answers late; that is real waiting)."""
    c, _, out = run_job(argv_for(10), no_tsc=no_tsc)
    c0, _, _ = run_job(argv_for(0), no_tsc=no_tsc)
    t = c[key] - c0[key]
    wall = float(out.split()[-1])
    check(0.45 <= t and abs(t - wall) <= 0.05, "%s: measured %.3f s, loop took %.3f s" % (what, t, wall))
    if wall <= 0.55:
        check(t <= 0.55, "%s: measured %.3f s" % (what, t))
    return c


@case
def pg_busy_time():
    c = check_busy(pg("sleep"), "db.pg.time_s", "10 x pg_sleep(0.05)")
    check(abs(c["db.time_s"] - c["db.pg.time_s"]) < 1e-9, "db.time_s != db.pg.time_s")


@case
def pg_busy_time_clock():
    # Where the TSC is not trusted, processes time with clock_gettime.
    check_busy(pg("sleep"), "db.pg.time_s", "10 x pg_sleep(0.05), clock", no_tsc=True)


@case
def pg_busy_time_async():
    # The wait happens in the program's own poll loop, outside libpq.
    check_busy(pg("asleep"), "db.pg.time_s", "10 x async pg_sleep(0.05)")


def my(mode):
    return lambda n: [tool("db_my_client"), mode, str(n)]


@case
def mysql_query():
    expect_exact(my("query"), "mysql", program="db_my_client")


@case
def mysql_real_query():
    expect_exact(my("real"), "mysql")


@case
def mysql_stmt():
    c0, c1 = expect_exact(my("stmt"), "mysql")
    check(c1["db.mysql.prepares"] >= 1, "no prepare counted")


@case
def mysql_nonblocking():
    expect_exact(my("nonblock"), "mysql")


@case
def mysql_busy_time():
    check_busy(my("sleep"), "db.mysql.time_s", "10 x SLEEP(0.05)")


# An unbuffered result keeps the connection busy until its last row is read: the
# program's 50 ms pause after each of 10 rows is connection-busy time.
@case
def mysql_busy_time_use_result():
    check_busy(my("use"), "db.mysql.time_s", "use_result, 10 rows x 50 ms")


@case
def mysql_busy_time_use_result_multi():
    check_busy(my("usemulti"), "db.mysql.time_s", "use_result, 5 + 5 rows x 50 ms in two result sets")


@case
def mysql_busy_time_use_result_nonblocking():
    check_busy(my("nbuse"), "db.mysql.time_s", "non-blocking fetch_row, 10 rows x 50 ms")


def sq(mode):
    return lambda n: [tool("db_sq_client"), mode, str(n)]


@case
def sqlite_step():
    expect_exact(sq("step"), "sqlite", program="db_sq_client")


@case
def sqlite_exec():
    expect_exact(sq("exec"), "sqlite")


@case
def sqlite_rows_count_once():
    expect_exact(sq("rows"), "sqlite", expected=0)


# ---- real tools and language drivers ----

@case
def psql_file():
    tmp = tempfile.mkdtemp(prefix="crdb-psql-")
    try:
        def argv(n):
            path = os.path.join(tmp, "q%d.sql" % n)
            with open(path, "w") as f:
                f.write("SELECT 1;\n" * n)
            os.chmod(tmp, 0o755)
            os.chmod(path, 0o644)
            return ["psql", "-X", "-q", "-o", "/dev/null", "-f", path]
        expect_exact(argv, "pg", program="psql")
    finally:
        shutil.rmtree(tmp)


def psql(env, sql, db="postgres"):
    return subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


@case
def pgbench_equals_pg_stat_statements():
    """What the server counted (pg_stat_statements, every call in the job's database)
    is what cronrun counted, for pgbench's init and its runs: the built-in TPC-B-like
    script on 4 clients and 2 threads, the extended protocol, a connection per
    transaction, and a pipeline. (-M prepared is left out: PostgreSQL 15's
    pg_stat_statements counts a prepared BEGIN or END once per connection.)"""
    env = server_env()
    if not shutil.which("pgbench", path=env.get("PATH")):
        raise Skip("pgbench not installed (Debian package postgresql-15)")
    try:
        psql(env, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        psql(env, "DROP DATABASE IF EXISTS cronrun_pgbench")
        psql(env, "CREATE DATABASE cronrun_pgbench")
    except subprocess.CalledProcessError as e:
        raise AssertionError("setting up pg_stat_statements: %s" % e.stderr)
    env["PGDATABASE"] = "cronrun_pgbench"
    tmp = tempfile.mkdtemp(prefix="crdb-pgbench-")
    try:
        script = os.path.join(tmp, "pipeline.sql")
        with open(script, "w") as f:
            f.write("\\set aid random(1, 100000)\n\\startpipeline\n"
                    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\nSELECT 1;\nSELECT 2;\n"
                    "\\endpipeline\n")
        runs = [["pgbench", "-i", "-s", "1", "-q"],
                ["pgbench", "-c", "4", "-j", "2", "-t", "50"],
                ["pgbench", "-M", "extended", "-c", "2", "-t", "50", "-n"],
                ["pgbench", "-C", "-S", "-c", "2", "-t", "20", "-n"],
                ["pgbench", "-M", "extended", "-f", script, "-c", "2", "-t", "30", "-n"]]
        calls_sql = ("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                     "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'cronrun_pgbench')")
        for argv in runs:
            psql(env, "SELECT pg_stat_statements_reset()", db="postgres")
            c, _, _ = run_job(argv, via="cronrun", env=env)
            server = int(psql(env, calls_sql, db="postgres"))
            check(server > 0, "%s: pg_stat_statements counted nothing" % " ".join(argv))
            check(c.get("db.queries") == server and c.get("db.pg.queries") == server,
                  "%s: cronrun counted %s (pg %s), the server %d" %
                  (" ".join(argv), c.get("db.queries"), c.get("db.pg.queries"), server))
            check(c.get("db.proc.pgbench.queries") == server, "per program: %s" % json.dumps(c, indent=1))
    finally:
        shutil.rmtree(tmp)
        subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS cronrun_pgbench"],
                       env=server_env(), capture_output=True)


@case
def perl_dbd_pg():
    if subprocess.run(["perl", "-MDBD::Pg", "-e", "1"], capture_output=True).returncode:
        raise Skip("DBD::Pg not installed")
    script = ("use DBI; my $d = DBI->connect('dbi:Pg:', undef, undef, {RaiseError=>1, AutoCommit=>1});"
              "for (1..$ARGV[0]) { $d->selectrow_array('SELECT 1') } $d->disconnect;")
    expect_exact(lambda n: ["perl", "-e", script, str(n)], "pg", program="perl")


@case
def perl_dbd_mysql():
    if subprocess.run(["perl", "-MDBD::mysql", "-e", "1"], capture_output=True).returncode:
        raise Skip("DBD::mysql not installed")
    script = ("use DBI; my $d = DBI->connect(\"dbi:mysql:database=cronrun_test;host=$ENV{MYSQL_HOST};"
              "port=$ENV{MYSQL_TCP_PORT}\", 'root', '', {RaiseError=>1, AutoCommit=>1});"
              "for (1..$ARGV[0]) { $d->selectrow_array('SELECT 1') } $d->disconnect;")
    expect_exact(lambda n: ["perl", "-e", script, str(n)], "mysql", program="perl")


@case
def sqlite3_cli():
    if not shutil.which("sqlite3"):
        raise Skip("sqlite3 CLI not installed")
    expect_exact(lambda n: ["sqlite3", ":memory:", "CREATE TABLE t(a);" + "INSERT INTO t VALUES (1);" * n],
                 "sqlite", program="sqlite3")


@case
def python_psycopg2():
    need("psycopg2")
    script = ("import sys, psycopg2\nc = psycopg2.connect('')\nc.autocommit = True\ncur = c.cursor()\n"
              "for i in range(int(sys.argv[1])):\n    cur.execute('SELECT %s', (i,)); cur.fetchall()\n")
    expect_exact(lambda n: [PY, "-c", script, str(n)], "pg")


@case
def python_psycopg3_dlsym():
    need("psycopg")
    script = ("import sys, psycopg\nc = psycopg.connect('', autocommit=True)\n"
              "for i in range(int(sys.argv[1])):\n    c.execute('SELECT 1').fetchall()\n")
    expect_exact(lambda n: [PY, "-c", script, str(n)], "pg")


@case
def ruby_pg():
    if subprocess.run(["ruby", "-rpg", "-e", "1"], capture_output=True).returncode:
        raise Skip("ruby-pg not installed")
    script = "c = PG.connect(host: ENV['PGHOST'], port: ENV['PGPORT'], user: ENV['PGUSER'], dbname: ENV['PGDATABASE']); ARGV[0].to_i.times { c.exec('SELECT 1') }; c.close"
    expect_exact(lambda n: ["ruby", "-rpg", "-e", script, str(n)], "pg", program="ruby")


@case
def ruby_pg_busy_time():
    if subprocess.run(["ruby", "-rpg", "-e", "1"], capture_output=True).returncode:
        raise Skip("ruby-pg not installed")
    script = ("c = PG.connect(host: ENV['PGHOST'], port: ENV['PGPORT'], user: ENV['PGUSER'], dbname: ENV['PGDATABASE']);"
              "t = Process.clock_gettime(Process::CLOCK_MONOTONIC);"
              "ARGV[0].to_i.times { c.exec('SELECT pg_sleep(0.05)') };"
              "puts Process.clock_gettime(Process::CLOCK_MONOTONIC) - t; c.close")
    check_busy(lambda n: ["ruby", "-rpg", "-e", script, str(n)], "db.pg.time_s", "Ruby pg: 10 x pg_sleep(0.05)")

@case
def python_sqlite3():
    script = ("import sys, sqlite3\nc = sqlite3.connect(':memory:', isolation_level=None)\n"
              "for i in range(int(sys.argv[1])):\n    c.execute('SELECT ?', (i,)).fetchall()\n")
    expect_exact(lambda n: [PY, "-c", script, str(n)], "sqlite")


@case
def php_pgsql_deepbind():
    # PHP <= 8.4 loads pgsql.so RTLD_DEEPBIND; the library clears that flag in PHP.
    if not shutil.which("php") or subprocess.run(["php", "-r", "exit(function_exists('pg_connect') ? 0 : 1);"],
                                                 capture_output=True).returncode:
        raise Skip("php-cli with pgsql not installed")
    script = ('$c = pg_connect("host=".getenv("PGHOST")." port=".getenv("PGPORT")." user=postgres dbname=postgres");'
              'for ($i = 0; $i < (int)$argv[1]; $i++) pg_free_result(pg_query($c, "SELECT 1"));')
    expect_exact(lambda n: ["php", "-r", script, str(n)], "pg", program="php")


@case
def dlsym_rtld_next_preserved():
    # Another preloaded library's dlsym(RTLD_NEXT) still starts after itself.
    lib = os.environ.get("CRONRUN_DB_LIBRARY", "")
    _, _, out = run_job(["/usr/bin/env", "LD_PRELOAD=%s:%s" % (lib, tool("db_dl_probe.so")), "/bin/true"])
    check("dl_probe: ok" in out, "probe said %r" % out)


@case
def resolve_failure_is_counted_not_fatal():
    # Our exported wrappers are visible to dlsym(RTLD_DEFAULT) even without a client
    # library; calling one must fail like the client would, and be counted.
    c, _, out = run_job([tool("db_no_client")])
    check(out.strip() == "PQexec found -> NULL; sqlite3_step found -> 1", "got %r" % out)
    check(c.get("db.resolve_failures") == 2, "resolve failures: %s" % c)
    check("db.queries" not in c, "not observed expected: %s" % c)


@case
def library_hygiene():
    # libc only; exports exactly the wrappers and the dl trampolines.
    lib = os.environ.get("CRONRUN_DB_LIBRARY", "")
    needed = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout
    libs = [l.split("[")[1].rstrip("]") for l in needed.splitlines() if "(NEEDED)" in l]
    check(libs == ["libc.so.6"], "NEEDED: %s" % libs)
    syms = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout.split()
    names = [syms[i + 2] for i in range(0, len(syms) - 2, 3)]
    stray = [n for n in names if not (n.startswith(("PQ", "mysql_", "sqlite3_")) or n in ("dlsym", "dlopen"))]
    check(not stray and len(names) > 50, "exports: %s" % (stray or names))


# ---- process trees ----

@case
def fork_tree():
    def argv(n):
        return [tool("db_fork_job"), str(n), tool("db_pg_client")]
    c0, c1 = expect_exact(argv, "pg", expected=5 * N)
    # parent + 4 forked children that ran queries + the exec'd grandchild; the
    # grandchild's fork before exec is not a process of its own (no queries)
    check(c1["db.processes"] == 6, "processes %s" % c1["db.processes"])
    check(c0["db.processes"] == 2, "processes at N=0: %s" % c0["db.processes"])
    check(c1.get("db.proc.db_fork_job.queries", 0) - c0.get("db.proc.db_fork_job.queries", 0) == 4 * N,
          "per-program split: %s" % json.dumps(c1, indent=1))
    check(c1.get("db.proc.db_pg_client.queries", 0) - c0.get("db.proc.db_pg_client.queries", 0) == N,
          "grandchild not attributed: %s" % json.dumps(c1, indent=1))


# ---- blind spots say "not observed", never 0 ----

def expect_not_observed(argv):
    c, _, _ = run_job(argv)
    check(c.get("db.processes", 0) >= 1, "library not attached: %s" % c)
    check(c.get("db.processes_with_client") == 0, "client seen: %s" % c)
    for k in ("db.queries", "db.time_s", "db.mysql.queries"):
        check(k not in c, "%s reported for a blind spot: %s" % (k, c))


@case
def blind_pymysql():
    need("pymysql")
    script = ("import os, pymysql\nc = pymysql.connect(host=os.environ['MYSQL_HOST'], "
              "port=int(os.environ['MYSQL_TCP_PORT']), user='root', password='', database='cronrun_test')\n"
              "cur = c.cursor()\nfor i in range(10):\n    cur.execute('SELECT 1')\n")
    expect_not_observed([PY, "-c", script])


@case
def blind_mariadb_cli():
    cli = shutil.which("mariadb")
    if not cli:
        raise Skip("mariadb CLI not installed")
    if "libmariadb" in subprocess.run(["ldd", cli], capture_output=True, text=True).stdout:
        raise Skip("this mariadb CLI links libmariadb dynamically")
    env = server_env()
    expect_not_observed([cli, "--no-defaults", "-h", env["MYSQL_HOST"], "-P", env["MYSQL_TCP_PORT"],
                         "-uroot", "-e", "SELECT 1; SELECT 2"])


@case
def setuid_not_loaded():
    if os.geteuid() != 0:
        raise Skip("needs root to install a setuid program owned by another user")
    tmp = tempfile.mkdtemp(prefix="crdb-suid-")
    try:
        plain = os.path.join(tmp, "plain")
        suid = os.path.join(tmp, "suid")
        shutil.copy(tool("db_has_preload"), plain)
        shutil.copy(tool("db_has_preload"), suid)
        os.chmod(tmp, 0o755)
        os.chown(suid, 65534, 65534)
        os.chmod(suid, 0o4755)
        _, _, out = run_job([plain])
        check(out.strip() == "loaded", "plain program: %r" % out)
        c, _, out = run_job([suid])
        check(out.strip() == "absent", "setuid program loaded the counter: %r" % out)
        check(c.get("db.processes", 0) == 0, "setuid process attached: %s" % c)
    finally:
        shutil.rmtree(tmp)


# ---- end to end through cronrun ----

@case
def e2e_pg_exec():
    expect_exact(pg("exec"), "pg", via="cronrun", program="db_pg_client")


@case
def e2e_sqlite_python():
    script = ("import sys, sqlite3\nc = sqlite3.connect(':memory:', isolation_level=None)\n"
              "for i in range(int(sys.argv[1])):\n    c.execute('SELECT 1').fetchall()\n")
    expect_exact(lambda n: [PY, "-c", script, str(n)], "sqlite", via="cronrun")


@case
def e2e_fork_tree():
    c0, c1 = expect_exact(lambda n: [tool("db_fork_job"), str(n), tool("db_pg_client")], "pg", via="cronrun",
                          expected=5 * N)
    check(c1["db.processes"] == 6, "processes %s" % c1["db.processes"])


@case
def e2e_not_observed():
    c, _, _ = run_job(["/bin/true"], via="cronrun")
    check("db.queries" not in c, "db.queries present without a client: %s" % c)
    check(c.get("db.processes_with_client") == 0, "coverage missing: %s" % c)


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    if len(argv) != 2 or argv[1] not in CASES:
        print("usage: db_test.py --list | CASE", file=sys.stderr)
        return 2
    try:
        CASES[argv[1]]()
    except Skip as e:
        print("SKIP: %s" % e)
        return 77
    except AssertionError as e:
        print("FAIL: %s" % e)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
