/* cronrun-payload: the jobs tests run under cronrun. Each mode does one thing whose
 * kernel-visible effect a test asserts on (memory charged, CPU burnt, tasks forked,
 * a process escaping by daemonizing, SIGTERM ignored).
 *
 *   mem MIB [HOLD_MS]            allocate and touch MIB MiB, hold, exit 0
 *   multi N MIB [HOLD_MS]        N processes, each holding MIB MiB at the same time
 *   spin SECONDS [N]             N processes (default 1) busy-looping for SECONDS of wall time
 *   burn SECONDS                 busy-loop until it has had SECONDS of CPU (however busy the host)
 *   forkburst N [HOLD_MS]        try to fork N sleepers; prints "forked K", exit 0
 *   daemon SECONDS PIDFILE       double-fork + setsid a sleeper, write its pid, exit 0
 *   ignore-term SECONDS          ignore SIGTERM, sleep
 *   trap-term SECONDS FILE       on SIGTERM write "TERM" to FILE and exit 143
 *   term-linger SECONDS MS FILE  on SIGTERM keep working MS ms, then write "DONE" to FILE, exit 0
 *   sleep SECONDS                sleep
 *   exit CODE                    exit with CODE
 *   kill-self SIGNAL             raise SIGNAL
 *   write MIB FILE               write MIB MiB to FILE and fsync it
 *   counter NAME VALUE           append "NAME VALUE" to $CRONRUN_COUNTERS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "cronrun-payload: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static char *touch_mib(long mib) {
  size_t len = (size_t)mib << 20;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  for (size_t off = 0; off < len; off += 4096) p[off] = (char)(off >> 12);
  return p;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_term_write(int sig);
static const char *g_term_file;

static void on_term_write(int sig) {
  (void)sig;
  int fd = open(g_term_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)!write(fd, "TERM\n", 5);
    close(fd);
  }
  _exit(143);
}

static volatile sig_atomic_t g_got_term;
static void on_term_flag(int sig) {
  (void)sig;
  g_got_term = 1;
}

static int usage(void) {
  fprintf(stderr, "usage: cronrun-payload MODE ARGS (see source)\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *mode = argv[1];
  if (!strcmp(mode, "mem") && argc >= 3) {
    touch_mib(atol(argv[2]));
    sleep_ms(argc >= 4 ? atol(argv[3]) : 200);
    return 0;
  }
  if (!strcmp(mode, "multi") && argc >= 4) {
    int n = atoi(argv[2]);
    long mib = atol(argv[3]);
    long hold = argc >= 5 ? atol(argv[4]) : 1000;
    for (int i = 0; i < n; i++) {
      pid_t pid = fork();
      if (pid < 0) die("fork");
      if (pid == 0) {
        touch_mib(mib);
        sleep_ms(hold);
        _exit(0);
      }
    }
    int status, rc = 0;
    while (wait(&status) > 0)
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
    return rc;
  }
  if (!strcmp(mode, "burn") && argc >= 3) {
    /* spins until it has had SECONDS of CPU itself, however busy the host: a
     * known amount of CPU to count, where spin gives a known wall time */
    double want = atof(argv[2]);
    struct timespec ts;
    volatile unsigned long x = 0;
    do {
      for (int i = 0; i < 100000; i++) x += (unsigned long)i;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    } while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 < want);
    return 0;
  }
  if (!strcmp(mode, "spin") && argc >= 3) {
    double end = now_s() + atof(argv[2]);
    for (int i = 1; i < (argc >= 4 ? atoi(argv[3]) : 1); i++) {
      pid_t pid = fork();
      if (pid < 0) die("fork");
      if (pid == 0) break;
    }
    volatile unsigned long x = 0;
    while (now_s() < end)
      for (int i = 0; i < 100000; i++) x += (unsigned long)i;
    while (wait(NULL) > 0) {
    }
    return 0;
  }
  if (!strcmp(mode, "forkburst") && argc >= 3) {
    int n = atoi(argv[2]), forked = 0;
    long hold = argc >= 4 ? atol(argv[3]) : 500;
    for (int i = 0; i < n; i++) {
      pid_t pid = fork();
      if (pid < 0) break;
      if (pid == 0) {
        sleep_ms(hold);
        _exit(0);
      }
      forked++;
    }
    printf("forked %d\n", forked);
    fflush(stdout);
    while (wait(NULL) > 0) {
    }
    return 0;
  }
  if (!strcmp(mode, "daemon") && argc >= 4) {
    /* the pid file appears whole (written aside, renamed into place), and never
     * holds an earlier run's pid: a reader never sees it empty or stale */
    unlink(argv[3]);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      setsid();
      pid_t gc = fork();
      if (gc < 0) _exit(1);
      if (gc > 0) _exit(0);
      /* the grandchild: reparented away from the job's main process */
      char tmp[4096];
      snprintf(tmp, sizeof tmp, "%s.tmp", argv[3]);
      FILE *f = fopen(tmp, "w");
      if (f) {
        fprintf(f, "%d\n", (int)getpid());
        if (fclose(f) == 0) rename(tmp, argv[3]);
      }
      for (int i = 0; i < 3; i++) close(i);
      sleep_ms(atol(argv[2]) * 1000);
      _exit(0);
    }
    waitpid(pid, NULL, 0);
    /* give the grandchild a moment to write its pid file */
    for (int i = 0; i < 1000 && access(argv[3], F_OK) != 0; i++) sleep_ms(10);
    return 0;
  }
  if (!strcmp(mode, "ignore-term") && argc >= 3) {
    signal(SIGTERM, SIG_IGN);
    sleep_ms(atol(argv[2]) * 1000);
    return 0;
  }
  if (!strcmp(mode, "trap-term") && argc >= 4) {
    g_term_file = argv[3];
    signal(SIGTERM, on_term_write);
    sleep_ms(atol(argv[2]) * 1000);
    return 0;
  }
  if (!strcmp(mode, "term-linger") && argc >= 5) {
    /* a pipeline's last stage: SIGTERM means finish the work (flush the last
     * block), which takes a while, not die at once */
    signal(SIGTERM, on_term_flag);
    double end = now_s() + atof(argv[2]);
    while (!g_got_term && now_s() < end) sleep_ms(10);
    if (!g_got_term) return 0;
    sleep_ms(atol(argv[3]));
    int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open");
    if (write(fd, "DONE\n", 5) != 5) die("write");
    close(fd);
    return 0;
  }
  if (!strcmp(mode, "sleep") && argc >= 3) {
    sleep_ms((long)(atof(argv[2]) * 1000));
    return 0;
  }
  if (!strcmp(mode, "exit") && argc >= 3) return atoi(argv[2]);
  if (!strcmp(mode, "kill-self") && argc >= 3) {
    signal(atoi(argv[2]), SIG_DFL);
    raise(atoi(argv[2]));
    return 0;
  }
  if (!strcmp(mode, "write") && argc >= 4) {
    int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open");
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    for (long i = 0; i < atol(argv[2]); i++)
      if (write(fd, block, sizeof block) != (ssize_t)sizeof block) die("write");
    if (fsync(fd) != 0) die("fsync");
    close(fd);
    return 0;
  }
  if (!strcmp(mode, "counter") && argc >= 4) {
    const char *path = getenv("CRONRUN_COUNTERS");
    if (!path) {
      fprintf(stderr, "cronrun-payload: CRONRUN_COUNTERS not set\n");
      return 2;
    }
    FILE *f = fopen(path, "a");
    if (!f) die("fopen");
    fprintf(f, "%s %s\n", argv[2], argv[3]);
    fclose(f);
    return 0;
  }
  return usage();
}
