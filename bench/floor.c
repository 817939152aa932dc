// floor: the kernel work of one contained, locked run and nothing else — what any
// runner on this host pays for cronrun's lock + cgroup + limits path. It takes the
// pid-file lock, makes a run leaf under each job directory given, writes the limits
// the leaves have files for (1 GiB memory, 100% CPU, 100 pids), starts the command
// as cronrun does (clone3 into the cgroup2 leaf if there is one, then the child
// writes "0" to each v1 `tasks` file), waits, reads the files cronrun reads, and
// removes the leaves. No history, no logging, no error reports beyond a line.
// bench/overhead.sh runs it beside cronrun on the job directories cronrun made.
//
//   floor LOCKFILE JOBDIR... -- COMMAND [ARGS]
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
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

int main(int argc, char** argv) {
  int sep = 2;
  while (sep < argc && strcmp(argv[sep], "--") != 0) ++sep;
  if (argc < 5 || sep == 2 || sep >= argc - 1 || sep - 2 > kMaxDirs) {
    fprintf(stderr, "usage: floor LOCKFILE JOBDIR... -- COMMAND [ARGS]\n");
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
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
