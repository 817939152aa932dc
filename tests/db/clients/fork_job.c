/* fork_job N PG_CLIENT: the process-tree case. Forks four children that each
 * connect to PostgreSQL and run N queries, then leave in different ways: exit(),
 * _exit(), SIGKILL (no PQfinish, no atexit), and one that also spawns a
 * grandchild (`PG_CLIENT exec N`, a fresh exec). Every query must be counted:
 * 5 N by difference against N=0. */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void run(int n) {
  PGconn *c = PQconnectdb("");
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "fork_job: connect: %s", PQerrorMessage(c));
    _exit(2);
  }
  for (int i = 0; i < n; i++) PQclear(PQexec(c, "SELECT 1"));
  if (n >= 0) return;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fork_job N PG_CLIENT\n");
    return 2;
  }
  int n = atoi(argv[1]);
  for (int k = 0; k < 4; k++) {
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid > 0) continue;
    run(n);
    switch (k) {
      case 0:
        exit(0);
      case 1:
        _exit(0);
      case 2:
        kill(getpid(), SIGKILL);
        _exit(3);
      default: {
        pid_t g = fork();
        if (g == 0) {
          execl(argv[2], argv[2], "exec", argv[1], (char *)NULL);
          _exit(127);
        }
        int st;
        waitpid(g, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 4);
      }
    }
  }
  int bad = 0, st;
  pid_t w;
  while ((w = wait(&st)) > 0)
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) bad = 1;
  return bad;
}
