/* db_bench: overhead of libcronrun-db.so, run with and without it preloaded
 * (bench/db_overhead.sh does both and prints the differences).
 *
 *   db_bench calls N   ns per call of: PQexec(NULL) (the full counting path:
 *                      query counted, two clock reads, busy-table lookup, real
 *                      call that returns at once), PQgetResult(NULL) (the settle
 *                      path), sqlite3_step on a reset "SELECT 1" (counted query
 *                      plus real SQLite work)
 *   loop N             N x PQexec("SELECT 1") over loopback (PG* environment);
 *                      prints wall seconds and the client's CPU seconds
 *   spawn N PROGRAM    posix_spawn + wait PROGRAM N times; prints us per start
 *                      (the library, when preloaded, attaches in each child)
 */
#include <libpq-fe.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: db_bench calls|loop N\n");
    return 2;
  }
  long n = atol(argv[2]);
  if (!strcmp(argv[1], "calls")) {
    volatile void *sink;
    double t0 = now_s();
    for (long i = 0; i < n; i++) sink = PQexec(NULL, "");
    double t1 = now_s();
    for (long i = 0; i < n; i++) sink = PQgetResult(NULL);
    double t2 = now_s();
    (void)sink;
    sqlite3 *db;
    sqlite3_stmt *st;
    sqlite3_open(":memory:", &db);
    sqlite3_prepare_v2(db, "SELECT 1", -1, &st, NULL);
    double t3 = now_s();
    for (long i = 0; i < n; i++) {
      sqlite3_step(st);
      sqlite3_reset(st);
    }
    double t4 = now_s();
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("pq_exec_null_ns %.1f\npq_getresult_null_ns %.1f\nsqlite_step_reset_ns %.1f\n", (t1 - t0) / n * 1e9,
           (t2 - t1) / n * 1e9, (t4 - t3) / n * 1e9);
    return 0;
  }
  if (!strcmp(argv[1], "loop")) {
    PGconn *c = PQconnectdb("");
    if (PQstatus(c) != CONNECTION_OK) {
      fprintf(stderr, "db_bench: %s", PQerrorMessage(c));
      return 2;
    }
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    for (long i = 0; i < n; i++) PQclear(PQexec(c, "SELECT 1"));
    double wall = now_s() - t0;
    getrusage(RUSAGE_SELF, &r1);
    /* The client's own CPU: what the counter adds to, without the server's and
     * the scheduler's noise that dominates wall time on a small machine. */
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
                 (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
    printf("loop_s %.4f\nloop_cpu_s %.4f\n", wall, cpu);
    PQfinish(c);
    return 0;
  }
  if (!strcmp(argv[1], "spawn") && argc >= 4) {
    extern char **environ;
    char *args[] = {argv[3], NULL};
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
      pid_t pid;
      int st;
      if (posix_spawn(&pid, argv[3], NULL, NULL, args, environ) != 0) return 2;
      waitpid(pid, &st, 0);
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    printf("spawn_us %.1f\nspawn_child_cpu_us %.1f\n", (now_s() - t0) / n * 1e6, cpu / n * 1e6);
    return 0;
  }
  return 2;
}
