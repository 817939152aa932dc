/* pg_client MODE N: a libpq program for the DB tier. Connects with the PG*
 * environment, runs one fixed prologue query, then N queries in MODE:
 *   exec | params | prepared | async | pipeline | copy | sleep | asleep | none
 * (asleep: pg_sleep(0.05) sent with PQsendQuery and waited for in our own poll
 * loop, the way async drivers do: the wait is outside any libpq call.)
 * and prints the wall time of the N queries ("loop_s S"). Counts are asserted by difference (N=0 vs N), so
 * the prologue and connection setup cancel out. */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(PGconn *c, const char *what) {
  fprintf(stderr, "pg_client: %s: %s\n", what, c ? PQerrorMessage(c) : "");
  exit(2);
}

static void check(PGconn *c, PGresult *r, const char *what) {
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN && st != PGRES_COPY_OUT &&
      st != PGRES_PIPELINE_SYNC)
    die(c, what);
}

static void drain(PGconn *c, const char *what) {
  PGresult *r;
  while ((r = PQgetResult(c)) != NULL) {
    check(c, r, what);
    PQclear(r);
  }
}

/* Waits on the socket like an async driver (Ruby pg, psycopg 3) would. */
static void wait_async(PGconn *c) {
  for (;;) {
    if (!PQconsumeInput(c)) die(c, "consume");
    if (!PQisBusy(c)) return;
    struct pollfd p = {PQsocket(c), POLLIN, 0};
    poll(&p, 1, -1);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: pg_client MODE N\n");
    return 2;
  }
  const char *mode = argv[1];
  int n = atoi(argv[2]);
  PGconn *c = PQconnectdb("");
  if (PQstatus(c) != CONNECTION_OK) die(c, "connect");
  PGresult *r = PQexec(c, "SELECT 1");
  check(c, r, "prologue");
  PQclear(r);

  double t0 = now_s();
  if (!strcmp(mode, "exec")) {
    for (int i = 0; i < n; i++) {
      r = PQexec(c, "SELECT 1");
      check(c, r, "exec");
      PQclear(r);
    }
  } else if (!strcmp(mode, "params")) {
    for (int i = 0; i < n; i++) {
      const char *v[1] = {"42"};
      r = PQexecParams(c, "SELECT $1::int", 1, NULL, v, NULL, NULL, 0);
      check(c, r, "params");
      PQclear(r);
    }
  } else if (!strcmp(mode, "prepared")) {
    r = PQprepare(c, "q", "SELECT $1::int + 1", 1, NULL);
    check(c, r, "prepare");
    PQclear(r);
    for (int i = 0; i < n; i++) {
      const char *v[1] = {"1"};
      r = PQexecPrepared(c, "q", 1, v, NULL, NULL, 0);
      check(c, r, "prepared");
      PQclear(r);
    }
  } else if (!strcmp(mode, "async")) {
    for (int i = 0; i < n; i++) {
      if (!PQsendQuery(c, "SELECT 1")) die(c, "send");
      wait_async(c);
      drain(c, "async");
    }
  } else if (!strcmp(mode, "pipeline")) {
    if (!PQenterPipelineMode(c)) die(c, "pipeline");
    for (int i = 0; i < n; i++) {
      const char *v[1] = {"7"};
      if (!PQsendQueryParams(c, "SELECT $1::int", 1, NULL, v, NULL, NULL, 0)) die(c, "pipeline send");
    }
    if (!PQpipelineSync(c)) die(c, "sync");
    /* Each query's results end with NULL; the sync with PGRES_PIPELINE_SYNC. */
    int syncs = 0;
    while (!syncs) {
      r = PQgetResult(c);
      if (!r) continue;
      check(c, r, "pipeline result");
      if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) syncs++;
      PQclear(r);
    }
    if (!PQexitPipelineMode(c)) die(c, "exit pipeline");
  } else if (!strcmp(mode, "copy")) {
    r = PQexec(c, "CREATE TEMP TABLE t (a int, b text)");
    check(c, r, "create");
    PQclear(r);
    for (int i = 0; i < n; i++) {
      r = PQexec(c, "COPY t FROM STDIN");
      if (PQresultStatus(r) != PGRES_COPY_IN) die(c, "copy in");
      PQclear(r);
      for (int row = 0; row < 10; row++) {
        char line[64];
        int len = snprintf(line, sizeof line, "%d\trow %d\n", row, row);
        if (PQputCopyData(c, line, len) != 1) die(c, "copy data");
      }
      if (PQputCopyEnd(c, NULL) != 1) die(c, "copy end");
      drain(c, "copy");
    }
  } else if (!strcmp(mode, "sleep")) {
    for (int i = 0; i < n; i++) {
      r = PQexec(c, "SELECT pg_sleep(0.05)");
      check(c, r, "sleep");
      PQclear(r);
    }
  } else if (!strcmp(mode, "asleep")) {
    for (int i = 0; i < n; i++) {
      if (!PQsendQuery(c, "SELECT pg_sleep(0.05)")) die(c, "send");
      wait_async(c);
      drain(c, "asleep");
    }
  } else if (strcmp(mode, "none") != 0) {
    fprintf(stderr, "pg_client: unknown mode %s\n", mode);
    return 2;
  }
  /* The loop's wall time: busy-time assertions compare against what really
   * elapsed, not against the server's punctuality on a loaded machine. */
  printf("loop_s %.6f\n", now_s() - t0);
  PQfinish(c);
  return 0;
}
