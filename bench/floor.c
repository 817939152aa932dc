// floor: the kernel work of one cronrun run and nothing else, i.e. what any runner
// doing that work on this host pays. bench/overhead.sh derives the work from an
// `strace -f -y` of a real cronrun run on the same command line (the leaves it
// makes, the files it writes, joins and reads in each, how it records the run) and
// passes it here, so the floor follows whatever the runner does when the script
// runs; it opens only files cronrun opened successfully (no probing).
//
// Per run, in cronrun's order: the record's facts (getpwuid, the
// runner's /proc/self/stat start time, boot_id), the pid-file lock (open, flock,
// pwrite, ftruncate), mountinfo and /proc/self/cgroup, a leaf under each --leaf
// directory with its --set writes, the per-run counters file (--counters DIR),
// the signalfd, the `started` history record, clone3 (into the cgroup2 leaf if
// there is one; the child writes "0" to each --join file, then setsid + exec),
// an exec-status pipe, poll on the pidfd, wait4 and getrusage, the --get reads,
// rmdir of the leaves, the counters file read + unlink, the `finished` record.
//
// History, one of:
//   --journal FILE  [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post]
//       open FILE O_WRONLY|O_APPEND|O_CREAT and append records of N bytes before
//       the start (--jpre) and after the end (--jpost), fdatasync where asked;
//   --history DB    the SQLite history cronrun wrote until the run journal (a
//       `running` row then the finished row, each in its own BEGIN IMMEDIATE,
//       with common/history.cc's settings, in a history cronrun created).
//
//   floor [HISTORY] [--counters DIR] LOCKFILE
//         (--leaf JOBDIR [--set FILE=VALUE]... [--join FILE]... [--open FILE]...
//          [--get FILE]...)... -- COMMAND [ARGS]
// (--open: a file cronrun opens for writing in the leaf but does not write.)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxLeaves = 8, kMaxFiles = 24, kMaxRecords = 8 };

struct leaf_spec {
  const char* dir;
  const char* set_name[kMaxFiles];
  const char* set_value[kMaxFiles];
  int nset;
  const char* join[kMaxFiles];
  int njoin;
  const char* open_only[kMaxFiles];
  int nopen;
  const char* get[kMaxFiles];
  int nget;
  // filled at run time
  int job_fd, fd, join_fd[kMaxFiles], open_fd[kMaxFiles];
  bool v2;
};

static void die(const char* what) {
  perror(what);
  exit(125);
}

static void drain_fd(int fd) {
  char buf[4096];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

static void read_file_at(int dir, const char* name) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(name);
  drain_fd(fd);
  close(fd);
}

static void die_sql(sqlite3* db, const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, sqlite3_errmsg(db));
  exit(125);
}

static void sql(sqlite3* db, const char* text) {
  if (sqlite3_exec(db, text, NULL, NULL, NULL) != SQLITE_OK) die_sql(db, text);
}

// Writes the run's row (the 22 columns cronrun's SQLite history has; unset figures NULL).
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

static size_t jpre[kMaxRecords], jpost[kMaxRecords];
static int njpre, njpost;
static bool jsync_pre, jsync_post;

static void journal_append(int fd, const size_t* sizes, int n, bool sync, const char* path) {
  static char rec[65536];
  for (int i = 0; i < n; ++i) {
    size_t len = sizes[i] < sizeof rec ? sizes[i] : sizeof rec;
    memset(rec, 'j', len);
    if (write(fd, rec, len) != (ssize_t)len) die(path);
  }
  if (sync && fdatasync(fd) != 0) die(path);
}

static int usage(void) {
  fprintf(stderr,
          "usage: floor [--journal FILE [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post] | --history DB]\n"
          "             [--counters DIR] LOCKFILE (--leaf JOBDIR [--set F=V]... [--join F]... [--open F]...\n"
          "             [--get F]...)... -- COMMAND [ARGS]\n");
  return 125;
}

int main(int argc, char** argv) {
  const char* history = NULL;
  const char* journal = NULL;
  const char* counters_dir = NULL;
  const char* lock_path = NULL;
  struct leaf_spec leaves[kMaxLeaves];
  int nleaves = 0;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    struct leaf_spec* cur = nleaves ? &leaves[nleaves - 1] : NULL;
#define NEED_VALUE  \
  if (!v) return usage(); \
  ++i
    if (strcmp(a, "--history") == 0) { NEED_VALUE; history = v; }
    else if (strcmp(a, "--journal") == 0) { NEED_VALUE; journal = v; }
    else if (strcmp(a, "--jpre") == 0) { NEED_VALUE; if (njpre < kMaxRecords) jpre[njpre++] = strtoul(v, NULL, 10); }
    else if (strcmp(a, "--jpost") == 0) { NEED_VALUE; if (njpost < kMaxRecords) jpost[njpost++] = strtoul(v, NULL, 10); }
    else if (strcmp(a, "--jsync-pre") == 0) jsync_pre = true;
    else if (strcmp(a, "--jsync-post") == 0) jsync_post = true;
    else if (strcmp(a, "--counters") == 0) { NEED_VALUE; counters_dir = v; }
    else if (strcmp(a, "--leaf") == 0) {
      NEED_VALUE;
      if (nleaves == kMaxLeaves) return usage();
      memset(&leaves[nleaves], 0, sizeof leaves[nleaves]);
      leaves[nleaves++].dir = v;
    } else if (cur && strcmp(a, "--set") == 0 && cur->nset < kMaxFiles) {
      NEED_VALUE;
      char* eq = strchr(v, '=');
      if (!eq) return usage();
      *eq = '\0';
      cur->set_name[cur->nset] = v;
      cur->set_value[cur->nset++] = eq + 1;
    } else if (cur && strcmp(a, "--join") == 0 && cur->njoin < kMaxFiles) { NEED_VALUE; cur->join[cur->njoin++] = v; }
    else if (cur && strcmp(a, "--open") == 0 && cur->nopen < kMaxFiles) { NEED_VALUE; cur->open_only[cur->nopen++] = v; }
    else if (cur && strcmp(a, "--get") == 0 && cur->nget < kMaxFiles) { NEED_VALUE; cur->get[cur->nget++] = v; }
    else if (!lock_path && a[0] != '-') lock_path = a;
    else return usage();
#undef NEED_VALUE
  }
  if (i >= argc - 1 || !lock_path) return usage();
  char** command = argv + i + 1;

  // The record's facts.
  struct passwd* pw = getpwuid(geteuid());
  if (!pw) die("getpwuid");
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("/proc/self/stat");
  drain_fd(fd);
  close(fd);
  fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("boot_id");
  drain_fd(fd);
  close(fd);

  sqlite3* db = NULL;
  double started = now_s();
  char id[48];
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
  }

  int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (lock < 0) die(lock_path);
  char text[32];
  if (pread(lock, text, sizeof text, 0) < 0) die(lock_path);
  if (flock(lock, LOCK_EX | LOCK_NB) != 0) return 75;
  int len = snprintf(text, sizeof text, "%d\n", getpid());
  if (pwrite(lock, text, (size_t)len, 0) != len || ftruncate(lock, len) != 0) die(lock_path);

  fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("mountinfo");
  drain_fd(fd);
  close(fd);
  fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("/proc/self/cgroup");
  drain_fd(fd);
  close(fd);

  char run[32];
  snprintf(run, sizeof run, "floor-%d", getpid());
  int unified = -1;
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    s->job_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->job_fd < 0) die(s->dir);
    if (mkdirat(s->job_fd, run, 0755) != 0) die("mkdir");
    s->fd = openat(s->job_fd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->fd < 0) die("open leaf");
    struct statfs fs;
    if (fstatfs(s->fd, &fs) != 0) die("statfs");
    s->v2 = fs.f_type == CGROUP2_SUPER_MAGIC;
    if (s->v2 && unified < 0) unified = l;
  }
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nset; ++f) {
      int w = openat(s->fd, s->set_name[f], O_WRONLY | O_CLOEXEC);
      size_t n = strlen(s->set_value[f]);
      if (w < 0 || write(w, s->set_value[f], n) != (ssize_t)n) die(s->set_name[f]);
      close(w);
    }
  }
  int counters = -1;
  char counters_name[48];
  if (counters_dir) {
    counters = open(counters_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (counters < 0) die(counters_dir);
    snprintf(counters_name, sizeof counters_name, "%s.counters", run);
    int c = openat(counters, counters_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (c < 0) die(counters_name);
    close(c);
  }
  sigset_t mask;
  sigemptyset(&mask);
  int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD};
  for (size_t s = 0; s < sizeof sigs / sizeof *sigs; ++s) sigaddset(&mask, sigs[s]);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f)
      if ((s->open_fd[f] = openat(s->fd, s->open_only[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->open_only[f]);
    for (int f = 0; f < s->njoin; ++f)
      if ((s->join_fd[f] = openat(s->fd, s->join[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->join[f]);
  }

  int jfd = -1;
  if (journal) {
    jfd = open(journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (jfd < 0) die(journal);
    journal_append(jfd, jpre, njpre, jsync_pre, journal);
  }
  if (db) write_run(db, id, false, started, started);

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) die("pipe2");
  int pidfd = -1;
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_PIDFD | (unified >= 0 ? CLONE_INTO_CGROUP : 0);
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  ca.cgroup = unified >= 0 ? (uint64_t)leaves[unified].fd : 0;
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0) die("clone3");
  if (pid == 0) {
    close(status_pipe[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int l = 0; l < nleaves; ++l)
      for (int f = 0; f < leaves[l].njoin; ++f)
        if (write(leaves[l].join_fd[f], "0", 1) != 1) _exit(125);
    sigprocmask(SIG_SETMASK, &(sigset_t){0}, NULL);
    setsid();
    execv(command[0], command);
    int err = errno;
    if (write(status_pipe[1], &err, sizeof err) < 0) _exit(127);
    _exit(127);
  }
  close(status_pipe[1]);
  int err;
  if (read(status_pipe[0], &err, sizeof err) != 0) {
    fprintf(stderr, "floor: exec %s failed\n", command[0]);
    return 127;
  }
  close(status_pipe[0]);
  int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  struct pollfd p[3] = {{sfd, POLLIN, 0}, {timer, POLLIN, 0}, {pidfd, POLLIN, 0}};
  while (poll(p, 3, -1) < 0) {
  }
  int status = 0;
  struct rusage ru;
  if (wait4((pid_t)pid, &status, __WALL, &ru) < 0) die("wait4");
  getrusage(RUSAGE_CHILDREN, &ru);
  close(timer);

  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nget; ++f) read_file_at(s->fd, s->get[f]);
  }
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f) close(s->open_fd[f]);
    for (int f = 0; f < s->njoin; ++f) close(s->join_fd[f]);
    close(s->fd);
    if (unlinkat(s->job_fd, run, AT_REMOVEDIR) != 0) die("rmdir");
    close(s->job_fd);
  }
  if (counters >= 0) {
    read_file_at(counters, counters_name);
    if (unlinkat(counters, counters_name, 0) != 0) die("unlink counters");
    close(counters);
  }
  if (jfd >= 0) {
    journal_append(jfd, jpost, njpost, jsync_post, journal);
    close(jfd);
  }
  if (db) {
    write_run(db, id, true, started, now_s());
    sqlite3_close(db);
  }
  close(sfd);
  close(pidfd);
  close(lock);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
