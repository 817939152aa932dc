// floor: the kernel work of one contained, locked run and nothing else — what any
// runner on this host pays for cronrun's lock + cgroup + limits path. It takes the
// pid-file lock, makes a run leaf under each job directory given, writes the limits
// the leaves have files for (1 GiB memory, 100% CPU, 100 pids), starts the command
// as cronrun does (clone3 into the cgroup2 leaf if there is one, then the child
// writes "0" to each v1 `tasks` file), waits, reads the files cronrun reads, and
// removes the leaves. No logging, no error reports beyond a line.
// With --history DB it also writes the run to DB, a history cronrun created (same
// schema and indexes), as cronrun does: the SQLite settings of common/history.cc,
// a `running` row before the start and the finished row after, each in its own
// BEGIN IMMEDIATE transaction, with a record of cronrun's size (~1 KB of JSON).
// bench/overhead.sh runs it beside cronrun on the job directories cronrun made.
//
//   floor [--history DB] LOCKFILE JOBDIR... -- COMMAND [ARGS]
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxDirs = 16 };

static void die(const char* what) {
  perror(what);
  exit(125);
}

// Writes `value` to `file` in `dir` if the file exists.
static void limit(int dir, const char* file, const char* value) {
  int fd = openat(dir, file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, value, strlen(value)) < 0) die(file);
  close(fd);
}

static void drain(int dir, const char* file) {
  char buf[4096];
  int fd = openat(dir, file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
}

static void die_sql(sqlite3* db, const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, sqlite3_errmsg(db));
  exit(125);
}

static void sql(sqlite3* db, const char* text) {
  if (sqlite3_exec(db, text, NULL, NULL, NULL) != SQLITE_OK) die_sql(db, text);
}

// Writes the run's row (the 22 columns cronrun writes; unset figures NULL).
static void write_run(sqlite3* db, const char* run_id, bool finished, double started, double now) {
  static char record[1024];
  if (!record[0]) memset(record, 'x', sizeof record - 1);  // stands in for the JSON
  sqlite3_stmt* st;
  const char* text =
      "INSERT INTO runs (run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, "
      "memory_peak_bytes, max_rss_bytes, oom_kills, host, runner_pid, boot_id, record, cpu_throttled_s, "
      "db_queries, db_time_s, memory_max_bytes, cpu_quota_pct, timeout_s, runner_start) VALUES (?1, 'floor', ?2, ?3, "
      "?4, ?5, ?6, ?7, ?8, ?9, ?10, 'host', ?11, 'boot', ?12, ?13, NULL, NULL, 1073741824, 100, NULL, 1) "
      "ON CONFLICT(run_id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, "
      "wall_s = excluded.wall_s, exit_code = excluded.exit_code, cpu_s = excluded.cpu_s, "
      "memory_peak_bytes = excluded.memory_peak_bytes, max_rss_bytes = excluded.max_rss_bytes, "
      "oom_kills = excluded.oom_kills, record = excluded.record, cpu_throttled_s = excluded.cpu_throttled_s";
  sql(db, "BEGIN IMMEDIATE");
  if (sqlite3_prepare_v2(db, text, -1, &st, NULL) != SQLITE_OK) die_sql(db, "preparing the run's row");
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, finished ? "ok" : "running", -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, started);
  if (finished) {
    sqlite3_bind_double(st, 4, now);
    sqlite3_bind_double(st, 5, now - started);
    sqlite3_bind_int(st, 6, 0);
    sqlite3_bind_double(st, 7, 0.001);
    sqlite3_bind_int64(st, 8, 262144);
    sqlite3_bind_int64(st, 9, 1048576);
    sqlite3_bind_int(st, 10, 0);
    sqlite3_bind_double(st, 13, 0);
  }
  sqlite3_bind_int(st, 11, getpid());
  sqlite3_bind_text(st, 12, record, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) die_sql(db, "writing the run's row");
  sqlite3_finalize(st);
  sql(db, "COMMIT");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  const char* history = NULL;
  if (argc > 2 && strcmp(argv[1], "--history") == 0) {
    history = argv[2];
    argc -= 2;
    argv += 2;
  }
  int sep = 2;
  while (sep < argc && strcmp(argv[sep], "--") != 0) ++sep;
  if (argc < 5 || sep == 2 || sep >= argc - 1 || sep - 2 > kMaxDirs) {
    fprintf(stderr, "usage: floor [--history DB] LOCKFILE JOBDIR... -- COMMAND [ARGS]\n");
    return 125;
  }
  int lock = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (lock < 0) die(argv[1]);
  if (flock(lock, LOCK_EX | LOCK_NB) != 0) return 75;
  char text[32];
  int len = snprintf(text, sizeof text, "%d\n", getpid());
  if (pwrite(lock, text, (size_t)len, 0) != len || ftruncate(lock, len) != 0) die(argv[1]);

  char run[32];
  snprintf(run, sizeof run, "floor-%d", getpid());
  sqlite3* db = NULL;
  double started = now_s();
  char id[48];  // the history's run id
  snprintf(id, sizeof id, "floor-%d-%.0f", getpid(), started * 1000);
  if (history) {
    if (sqlite3_open_v2(history, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) die(history);
    sqlite3_busy_timeout(db, 10000);
    sql(db, "PRAGMA user_version");
    sql(db, "PRAGMA journal_mode = WAL");
    int persist = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sql(db, "PRAGMA synchronous = NORMAL");
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_wal_autocheckpoint(db, 64);
    write_run(db, id, false, started, started);
  }
  int ndirs = sep - 2, job[kMaxDirs], leaf[kMaxDirs], tasks[kMaxDirs], unified = -1;
  for (int i = 0; i < ndirs; ++i) {
    job[i] = open(argv[2 + i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (job[i] < 0) die(argv[2 + i]);
    if (mkdirat(job[i], run, 0755) != 0) die("mkdir");
    leaf[i] = openat(job[i], run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (leaf[i] < 0) die("open leaf");
    struct statfs fs;
    if (fstatfs(leaf[i], &fs) != 0) die("statfs");
    bool v2 = fs.f_type == CGROUP2_SUPER_MAGIC;
    if (v2 && unified < 0) unified = i;
    limit(leaf[i], "memory.limit_in_bytes", "1073741824");
    limit(leaf[i], "memory.max", "1073741824");
    limit(leaf[i], "cpu.cfs_quota_us", "100000");
    limit(leaf[i], "cpu.max", "100000 100000");
    limit(leaf[i], "pids.max", "100");
    tasks[i] = v2 ? -1 : openat(leaf[i], "tasks", O_WRONLY | O_CLOEXEC);
  }

  int pidfd = -1;
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_PIDFD | (unified >= 0 ? CLONE_INTO_CGROUP : 0);
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  ca.cgroup = unified >= 0 ? (uint64_t)leaf[unified] : 0;
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0) die("clone3");
  if (pid == 0) {
    for (int i = 0; i < ndirs; ++i)
      if (tasks[i] >= 0 && write(tasks[i], "0", 1) != 1) _exit(125);
    setsid();
    execv(argv[sep + 1], argv + sep + 1);
    _exit(127);
  }
  struct pollfd p = {pidfd, POLLIN, 0};
  while (poll(&p, 1, -1) < 0) {
  }
  int status = 0;
  if (waitpid((pid_t)pid, &status, 0) < 0) die("waitpid");

  static const char* const usage_files[] = {
      "memory.max_usage_in_bytes", "memory.peak", "memory.oom_control", "memory.events", "memory.failcnt",
      "cpu.stat", "blkio.throttle.io_service_bytes_recursive", "io.stat", "pids.peak",
      "cpu.pressure", "memory.pressure", "io.pressure"};
  for (int i = 0; i < ndirs; ++i) {
    for (size_t f = 0; f < sizeof usage_files / sizeof *usage_files; ++f) drain(leaf[i], usage_files[f]);
    close(leaf[i]);
    if (tasks[i] >= 0) close(tasks[i]);
    if (unlinkat(job[i], run, AT_REMOVEDIR) != 0) die("rmdir");
  }
  if (db) {
    write_run(db, id, true, started, now_s());
    sqlite3_close(db);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
