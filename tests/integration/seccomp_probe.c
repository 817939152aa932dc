/* Makes the syscalls the seccomp tests and bench/seccomp.sh need, and prints what
 * the kernel answered:
 *   seccomp-probe keyctl | io_uring | ptrace PID | personality HEX | clone-newuser
 *                 | i386 | x32 | getppid-loop N | denied-loop N | write-loop N
 * One line "<pid> <what> <result>" per probe, result an errno name or "ok";
 * exit 0 when the probe ran (whatever the kernel said). Never sanitized: it runs
 * under the job's filter, where only its own syscalls should show. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char* errname(int e) {
  switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ESRCH: return "ESRCH";
    case EFAULT: return "EFAULT";
    default: return strerror(e);
  }
}

static void report(const char* what, long rc) {
  printf("%d %s %s\n", (int)getpid(), what, errname(rc < 0 ? errno : 0));
  fflush(stdout);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: seccomp-probe WHAT [ARG]\n");
    return 2;
  }
  const char* what = argv[1];
  if (strcmp(what, "keyctl") == 0) {
    report(what, syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  } else if (strcmp(what, "io_uring") == 0) {
    /* A null params pointer: EFAULT unfiltered, the filter answers first. */
    report(what, syscall(SYS_io_uring_setup, 1, NULL));
  } else if (strcmp(what, "ptrace") == 0 && argc > 2) {
    pid_t target = (pid_t)atoi(argv[2]);
    long rc = ptrace(PTRACE_ATTACH, target, NULL, NULL);
    int e = errno;
    if (rc == 0) {
      waitpid(target, NULL, __WALL);
      ptrace(PTRACE_DETACH, target, NULL, NULL);
    }
    errno = e;
    report(what, rc);
  } else if (strcmp(what, "personality") == 0 && argc > 2) {
    unsigned long v = strtoul(argv[2], NULL, 16);
    report(what, syscall(SYS_personality, v));
  } else if (strcmp(what, "clone-newuser") == 0) {
    long rc = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
    if (rc == 0) _exit(0);
    if (rc > 0) waitpid((pid_t)rc, NULL, 0);
    report(what, rc);
  } else if (strcmp(what, "i386") == 0) {
    /* getpid through the i386 entry point (int $0x80, eax = 20). */
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    printf("%d i386 returned %ld\n", (int)getpid(), ret);
  } else if (strcmp(what, "x32") == 0) {
    /* getpid with __X32_SYSCALL_BIT: ENOSYS when the kernel has no x32. */
    report(what, syscall(0x40000000L | SYS_getpid));
  } else if (strcmp(what, "getppid-loop") == 0 && argc > 2) {
    long n = atol(argv[2]);
    for (long i = 0; i < n; ++i) syscall(SYS_getppid);
  } else if (strcmp(what, "write-loop") == 0 && argc > 2) {
    long n = atol(argv[2]);
    char c = 0;
    int fd = 1;
    FILE* null = fopen("/dev/null", "w");
    if (null) fd = fileno(null);
    for (long i = 0; i < n; ++i)
      if (write(fd, &c, 1) != 1) return 1;
  } else if (strcmp(what, "denied-loop") == 0 && argc > 2) {
    long n = atol(argv[2]);
    long denied = 0;
    for (long i = 0; i < n; ++i)
      if (syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) < 0 && errno == EPERM) ++denied;
    printf("%ld denied\n", denied);
  } else {
    fprintf(stderr, "seccomp-probe: unknown probe %s\n", what);
    return 2;
  }
  return 0;
}
