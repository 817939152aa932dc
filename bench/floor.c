// floor: the kernel work of one cronrun run and nothing else, i.e. what any runner
// doing that work on this host pays. bench/overhead.sh derives the work from an
// `strace -f -y` of a real cronrun run on the same command line (the leaves it
// makes, the files it checks, writes, joins and reads in each, how it records the
// run) and passes it here, so the floor follows whatever the runner does when the
// script runs. It makes the system calls cronrun makes, in cronrun's order, and
// of the calls cronrun makes that fail only the probes any runner of the contract
// must make (the job's config file, the drain flag, /run/systemd/system, the
// subreaper's last wait4); the rest are left out (bench/floor_args.py lists them).
//
// Per run, in cronrun's order:
//   the CPU count (--cpu-online: /sys/devices/system/cpu/online), the job's
//   config file (--config PATH, a stat), the record's facts (getrandom for the
//   run id, uname, getpwuid, the runner's /proc/PID/stat start time, boot_id),
//   the drain flag (--drain PATH);
//   the journal opened as the quality bar asks for files in a directory another
//   user may write: the directory walked one component at a time from / with
//   O_NOFOLLOW, fstat, the history beside it stat'ed, the file opened relative
//   to the directory fd (O_NOFOLLOW|O_NONBLOCK) and fstat'ed; the pid-file lock
//   opened the same way (fstatat, open, fstat, pread, flock, pwrite, ftruncate);
//   /run/systemd/system (--systemd-probe), statfs of the cgroup root (--statfs)
//   and geteuid, getpwuid again (--pwd-again), mountinfo and /proc/self/cgroup,
//   the job directory's listing (--scan JOBDIR: open, open, fstat, getdents64 to
//   the end); per --leaf: mkdir of the run's leaf, the files held open (--hold),
//   checked (--access: faccessat2) and written (--set) in cronrun's order; the
//   per-run counters file (--counters DIR, its directory walked safely); the
//   signalfd, subreaper, SIGPIPE ignored; the --join/--open files opened; the
//   `started` journal record (write + fstat); clone3 (into the cgroup2 leaf if
//   there is one; the child writes "0" to each --join file, then setsid + exec);
//   the exec-status pipe; poll on the signalfd and pidfd, the signalfd read until
//   empty; wait4, wait4 to ECHILD, the --check reads and wait4 again, getrusage;
//   the --get reads; rmdir of the leaves (last made, first removed); the counters
//   file read; the `finished` record; the counters file's unlink.
//
// History, one of:
//   --journal FILE  [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post]
//       FILE opened as above and records of N bytes appended before the start
//       (--jpre) and after the end (--jpost), fdatasync where asked; FILE's name
//       without ".journal" is the history stat'ed beside it;
//   --history DB    the SQLite history cronrun wrote until the run journal (a
//       `running` row then the finished row, each in its own BEGIN IMMEDIATE,
//       with common/history.cc's settings, in a history cronrun created).
//
//   floor [HISTORY] [--cpu-online] [--config PATH] [--drain PATH] [--systemd-probe]
//         [--statfs PATH] [--pwd-again] [--scan JOBDIR]... [--counters DIR] LOCKFILE
//         (--leaf JOBDIR [--hold F]... [--access F]... [--set FILE=VALUE]...
//          [--join FILE]... [--open FILE]...)... [--check L:FILE]... [--get L:FILE]...
//         -- COMMAND [ARGS]
// (--open: a file cronrun opens for writing in the leaf but does not write; L in
// --check/--get: the leaf's index, 0 first; --hold/--access/--set are done in the
// order given.)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/random.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxLeaves = 8, kMaxFiles = 24, kMaxRecords = 8, kMaxScans = 8 };

enum op_kind { kHold, kAccess, kSet };

struct leaf_spec {
  const char* dir;
  // setup, in order: --hold (open O_RDONLY, kept), --access (faccessat2), --set (write)
  enum op_kind op[kMaxFiles];
  const char* op_name[kMaxFiles];
  const char* op_value[kMaxFiles];
  int nop;
  const char* join[kMaxFiles];
  int njoin;
  const char* open_only[kMaxFiles];
  int nopen;
  // filled at run time
  int job_fd, fd, join_fd[kMaxFiles], open_fd[kMaxFiles], hold_fd[kMaxFiles];
  int nhold;
};

struct leaf_read {
  int leaf;
  const char* name;
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
    struct stat st;  // cronrun checks the journal's size after each append
    if (fstat(fd, &st) != 0) die(path);
  }
  if (sync && fdatasync(fd) != 0) die(path);
}

// Opens directory PATH (absolute) one component at a time from /, each relative to
// the last with O_NOFOLLOW, as cronrun opens a directory another user may write;
// fstat of each component when STAT_EACH, else of the last only.
static int open_dir_safely(const char* path, bool stat_each) {
  struct stat st;
  int dir = open("/", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (dir < 0) die("/");
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  char* save = NULL;
  for (char* part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
    int next = openat(dir, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY);
    if (next < 0) die(path);
    if (stat_each && fstat(next, &st) != 0) die(path);
    close(dir);
    dir = next;
  }
  if (!stat_each && fstat(dir, &st) != 0) die(path);
  return dir;
}

// Splits PATH into its directory (into DIR, of SIZE) and returns its last name.
static const char* split_path(const char* path, char* dir, size_t size) {
  const char* slash = strrchr(path, '/');
  if (!slash || slash == path) {
    snprintf(dir, size, "/");
    return slash ? slash + 1 : path;
  }
  snprintf(dir, size, "%.*s", (int)(slash - path), path);
  return slash + 1;
}

static void read_leaf_file(struct leaf_spec* leaves, int nleaves, const struct leaf_read* r) {
  if (r->leaf < 0 || r->leaf >= nleaves) {
    fprintf(stderr, "floor: no leaf %d\n", r->leaf);
    exit(125);
  }
  read_file_at(leaves[r->leaf].fd, r->name);
}

static int usage(void) {
  fprintf(stderr,
          "usage: floor [--journal FILE [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post] | --history DB]\n"
          "             [--cpu-online] [--config PATH] [--drain PATH] [--systemd-probe] [--statfs PATH]\n"
          "             [--pwd-again] [--scan JOBDIR]... [--counters DIR] LOCKFILE\n"
          "             (--leaf JOBDIR [--hold F]... [--access F]... [--set F=V]... [--join F]... [--open F]...)...\n"
          "             [--check L:F]... [--get L:F]... -- COMMAND [ARGS]\n");
  return 125;
}

static bool parse_read(const char* v, struct leaf_read* r) {
  char* end;
  long l = strtol(v, &end, 10);
  if (end == v || *end != ':') return false;
  r->leaf = (int)l;
  r->name = end + 1;
  return true;
}

int main(int argc, char** argv) {
  const char* history = NULL;
  const char* journal = NULL;
  const char* counters_dir = NULL;
  const char* lock_path = NULL;
  const char* config_path = NULL;
  const char* drain_path = NULL;
  const char* statfs_path = NULL;
  const char* scans[kMaxScans];
  int nscans = 0;
  bool cpu_online = false, systemd_probe = false, pwd_again = false;
  struct leaf_spec leaves[kMaxLeaves];
  int nleaves = 0;
  struct leaf_read checks[kMaxFiles], gets[kMaxFiles * 2];
  int nchecks = 0, ngets = 0;
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
    else if (strcmp(a, "--cpu-online") == 0) cpu_online = true;
    else if (strcmp(a, "--systemd-probe") == 0) systemd_probe = true;
    else if (strcmp(a, "--pwd-again") == 0) pwd_again = true;
    else if (strcmp(a, "--config") == 0) { NEED_VALUE; config_path = v; }
    else if (strcmp(a, "--drain") == 0) { NEED_VALUE; drain_path = v; }
    else if (strcmp(a, "--statfs") == 0) { NEED_VALUE; statfs_path = v; }
    else if (strcmp(a, "--scan") == 0) { NEED_VALUE; if (nscans == kMaxScans) return usage(); scans[nscans++] = v; }
    else if (strcmp(a, "--counters") == 0) { NEED_VALUE; counters_dir = v; }
    else if (strcmp(a, "--check") == 0) {
      NEED_VALUE;
      if (nchecks == kMaxFiles || !parse_read(v, &checks[nchecks++])) return usage();
    } else if (strcmp(a, "--get") == 0) {
      NEED_VALUE;
      if (ngets == kMaxFiles * 2 || !parse_read(v, &gets[ngets++])) return usage();
    } else if (strcmp(a, "--leaf") == 0) {
      NEED_VALUE;
      if (nleaves == kMaxLeaves) return usage();
      memset(&leaves[nleaves], 0, sizeof leaves[nleaves]);
      leaves[nleaves++].dir = v;
    } else if (cur && (strcmp(a, "--set") == 0 || strcmp(a, "--hold") == 0 || strcmp(a, "--access") == 0) &&
               cur->nop < kMaxFiles) {
      NEED_VALUE;
      enum op_kind k = a[2] == 's' ? kSet : a[2] == 'h' ? kHold : kAccess;
      cur->op[cur->nop] = k;
      cur->op_name[cur->nop] = v;
      if (k == kSet) {
        char* eq = strchr(v, '=');
        if (!eq) return usage();
        *eq = '\0';
        cur->op_value[cur->nop] = eq + 1;
      }
      ++cur->nop;
    } else if (cur && strcmp(a, "--join") == 0 && cur->njoin < kMaxFiles) { NEED_VALUE; cur->join[cur->njoin++] = v; }
    else if (cur && strcmp(a, "--open") == 0 && cur->nopen < kMaxFiles) { NEED_VALUE; cur->open_only[cur->nopen++] = v; }
    else if (!lock_path && a[0] != '-') lock_path = a;
    else return usage();
#undef NEED_VALUE
  }
  if (i >= argc - 1 || !lock_path) return usage();
  char** command = argv + i + 1;
  struct stat st;

  uid_t euid = geteuid();  // root or not: which defaults apply
  if (cpu_online) {  // one read, as glibc's get_nprocs makes it
    int c = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
    char buf[1024];
    if (c < 0 || read(c, buf, sizeof buf) < 0) die("/sys/devices/system/cpu/online");
    close(c);
  }
  // The job's config file: absent is the usual answer, a probe any runner makes.
  if (config_path) (void)stat(config_path, &st);

  // The record's facts: its random run id, the host, the user, the runner's start
  // time, the boot.
  unsigned char run_id[16];
  if (getrandom(run_id, sizeof run_id, 0) != (ssize_t)sizeof run_id) die("getrandom");
  struct utsname host;
  if (uname(&host) != 0) die("uname");
  struct passwd* pw = getpwuid(euid);
  if (!pw) die("getpwuid");
  pid_t self = getpid();
  char proc_stat[64];
  snprintf(proc_stat, sizeof proc_stat, "/proc/%d/stat", (int)self);
  read_file_at(AT_FDCWD, proc_stat);
  read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id");
  if (drain_path) (void)stat(drain_path, &st);  // the drain flag: absent unless draining

  sqlite3* db = NULL;
  double started = now_s();
  char id[48];
  snprintf(id, sizeof id, "floor-%d-%.0f", (int)self, started * 1000);
  int jfd = -1, jdir = -1;
  char dir_path[4096];
  if (journal) {
    const char* name = split_path(journal, dir_path, sizeof dir_path);
    if (stat(dir_path, &st) != 0) die(dir_path);
    int dir = open_dir_safely(dir_path, false);
    // The history beside the journal (FILE without ".journal"): stat'ed, as cronrun
    // checks whether an SQLite history is there; absent is fine.
    char db_name[256];
    size_t n = strlen(name);
    snprintf(db_name, sizeof db_name, "%.*s", (int)(n > 8 && strcmp(name + n - 8, ".journal") == 0 ? n - 8 : n),
             name);
    (void)fstatat(dir, db_name, &st, AT_SYMLINK_NOFOLLOW);
    jdir = fcntl(dir, F_DUPFD_CLOEXEC, 0);  // kept for the run, as cronrun keeps it
    if (jdir < 0) die("fcntl");
    jfd = openat(jdir, name, O_WRONLY | O_NOCTTY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (jfd < 0) die(journal);
    if (fstat(jfd, &st) != 0) die(journal);
    (void)geteuid();
    close(dir);
  }
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

  // The pid-file lock, opened relative to its checked directory.
  const char* lock_name = split_path(lock_path, dir_path, sizeof dir_path);
  int lock_dir = open_dir_safely(dir_path, false);
  (void)fstatat(lock_dir, lock_name, &st, AT_SYMLINK_NOFOLLOW);  // regular file? (absent on the first run)
  int lock = openat(lock_dir, lock_name, O_RDWR | O_CREAT | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (lock < 0) die(lock_path);
  if (fstat(lock, &st) != 0) die(lock_path);
  char text[33];
  if (pread(lock, text, sizeof text, 0) < 0) die(lock_path);
  if (flock(lock, LOCK_EX | LOCK_NB) != 0) return 75;
  int len = snprintf(text, sizeof text, "%d\n", getpid());
  if (pwrite(lock, text, (size_t)len, 0) != len || ftruncate(lock, len) != 0) die(lock_path);
  close(lock_dir);

  // Where the leaves go: systemd (DESIGN §9) or cgroupfs, v1, v2 or hybrid.
  if (systemd_probe) (void)fstatat(AT_FDCWD, "/run/systemd/system/", &st, AT_SYMLINK_NOFOLLOW);
  if (statfs_path) {
    struct statfs fs;
    if (statfs(statfs_path, &fs) != 0) die(statfs_path);
    (void)geteuid();  // may this user write cgroups at all?
  }
  if (pwd_again && !getpwuid(geteuid())) die("getpwuid");
  read_file_at(AT_FDCWD, "/proc/self/mountinfo");
  read_file_at(AT_FDCWD, "/proc/self/cgroup");

  // The job directory's listing (leaves of earlier runs), after the access check.
  if (nscans) {
    (void)geteuid();
    (void)getegid();
    (void)getgroups(0, NULL);
  }
  for (int s = 0; s < nscans; ++s) {
    int a = open(scans[s], O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    int d = open(scans[s], O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_DIRECTORY);
    if (a < 0 || d < 0 || fstat(d, &st) != 0) die(scans[s]);
    char dents[32768];
    long got;
    while ((got = syscall(SYS_getdents64, d, dents, sizeof dents)) > 0) {
    }
    if (got < 0) die(scans[s]);
    close(d);
    close(a);
  }

  char run[32];
  snprintf(run, sizeof run, "floor-%d", (int)self);
  int unified = -1;
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    s->job_fd = open(s->dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (s->job_fd < 0) die(s->dir);
    if (mkdirat(s->job_fd, run, 0755) != 0) die("mkdir");
    s->fd = openat(s->job_fd, run, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (s->fd < 0) die("open leaf");
    if (unified < 0 && strstr(s->dir, "/unified/")) unified = l;
    for (int f = 0; f < s->nop; ++f) {
      const char* name = s->op_name[f];
      if (s->op[f] == kHold) {
        if ((s->hold_fd[s->nhold++] = openat(s->fd, name, O_RDONLY | O_CLOEXEC)) < 0) die(name);
      } else if (s->op[f] == kAccess) {
        if (faccessat(s->fd, name, F_OK, 0) != 0) die(name);
      } else {
        int w = openat(s->fd, name, O_WRONLY | O_CLOEXEC);
        size_t n = strlen(s->op_value[f]);
        if (w < 0 || write(w, s->op_value[f], n) != (ssize_t)n) die(name);
        close(w);
      }
    }
  }
  int counters = -1;
  char counters_name[48];
  if (counters_dir) {
    counters = open_dir_safely(counters_dir, true);
    if (fstat(counters, &st) != 0) die(counters_dir);
    (void)geteuid();
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
  signal(SIGPIPE, SIG_IGN);
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f)
      if ((s->open_fd[f] = openat(s->fd, s->open_only[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->open_only[f]);
    for (int f = 0; f < s->njoin; ++f)
      if ((s->join_fd[f] = openat(s->fd, s->join[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->join[f]);
  }

  if (jfd >= 0) journal_append(jfd, jpre, njpre, jsync_pre, journal);
  if (db) write_run(db, id, false, started, started);

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) die("pipe2");
  pid_t parent = getpid();
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
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the runner died before the prctl
    for (int l = 0; l < nleaves; ++l)
      for (int f = 0; f < leaves[l].njoin; ++f)
        if (write(leaves[l].join_fd[f], "0", 1) != 1) _exit(125);
    sigprocmask(SIG_SETMASK, &(sigset_t){0}, NULL);
    signal(SIGPIPE, SIG_DFL);
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
  struct pollfd p[2] = {{sfd, POLLIN, 0}, {pidfd, POLLIN, 0}};
  while (poll(p, 2, -1) < 0) {
  }
  struct signalfd_siginfo si;  // SIGCHLD, read until the signalfd is empty
  while (read(sfd, &si, sizeof si) > 0) {
  }
  int status = 0;
  struct rusage ru;
  if (wait4((pid_t)pid, &status, __WALL, &ru) < 0) die("wait4");
  // A subreaper reaps until no child is left, checks the leaf is empty, and reaps
  // once more (what the check may have raced with).
  while (wait4(-1, NULL, __WALL | WNOHANG, NULL) > 0) {
  }
  for (int c = 0; c < nchecks; ++c) read_leaf_file(leaves, nleaves, &checks[c]);
  if (nchecks)
    while (wait4(-1, NULL, __WALL | WNOHANG, NULL) > 0) {
    }
  getrusage(RUSAGE_CHILDREN, &ru);
  for (int g = 0; g < ngets; ++g) read_leaf_file(leaves, nleaves, &gets[g]);

  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nhold; ++f) close(s->hold_fd[f]);
  }
  for (int l = 0; l < nleaves; ++l) {
    struct leaf_spec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f) close(s->open_fd[f]);
    for (int f = 0; f < s->njoin; ++f) close(s->join_fd[f]);
  }
  for (int l = nleaves - 1; l >= 0; --l)
    if (unlinkat(leaves[l].job_fd, run, AT_REMOVEDIR) != 0) die("rmdir");
  if (counters >= 0) {
    if (fstatat(counters, counters_name, &st, AT_SYMLINK_NOFOLLOW) != 0) die(counters_name);
    int c = openat(counters, counters_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (c < 0 || fstat(c, &st) != 0) die(counters_name);
    drain_fd(c);
    close(c);
  }
  if (jfd >= 0) journal_append(jfd, jpost, njpost, jsync_post, journal);
  if (db) {
    write_run(db, id, true, started, now_s());
    sqlite3_close(db);
  }
  close(sfd);
  close(pidfd);
  if (counters >= 0) {
    if (unlinkat(counters, counters_name, 0) != 0) die("unlink counters");
    close(counters);
  }
  for (int l = 0; l < nleaves; ++l) {
    close(leaves[l].fd);
    close(leaves[l].job_fd);
  }
  close(lock);
  if (jfd >= 0) close(jfd);
  if (jdir >= 0) close(jdir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
