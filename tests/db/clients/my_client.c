/* my_client MODE N: a libmariadb program for the DB tier. Connects with
 * MYSQL_HOST / MYSQL_TCP_PORT / MYSQL_USER / MYSQL_DATABASE, runs one prologue
 * query, then N queries in MODE:
 *   query | real | stmt | nonblock | sleep | none
 *   use | nbuse: one unbuffered (use_result) query of N rows, blocking or
 *     non-blocking, pausing 50 ms after each row: the connection is busy until
 *     the last row is read
 *   usemulti: N/2 + N/2 rows the same way, as two result sets of one call
 * Counts are asserted by difference (N=0 vs N); prints the N queries' wall time. */
#include <mysql.h>
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

static void die(MYSQL *m, const char *what) {
  fprintf(stderr, "my_client: %s: %s\n", what, m ? mysql_error(m) : "");
  exit(2);
}

static const char *env_or(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v && *v ? v : dflt;
}

static void query_store(MYSQL *m, const char *q) {
  if (mysql_real_query(m, q, strlen(q))) die(m, q);
  MYSQL_RES *res = mysql_store_result(m);
  if (!res && mysql_field_count(m)) die(m, "store");
  mysql_free_result(res);
}

/* Drives a non-blocking call to completion, polling the socket like an event loop. */
static int nb_wait(MYSQL *m, int status) {
  struct pollfd p = {mysql_get_socket(m), 0, 0};
  if (status & MYSQL_WAIT_READ) p.events |= POLLIN;
  if (status & MYSQL_WAIT_WRITE) p.events |= POLLOUT;
  poll(&p, 1, -1);
  int s = 0;
  if (p.revents & POLLIN) s |= MYSQL_WAIT_READ;
  if (p.revents & POLLOUT) s |= MYSQL_WAIT_WRITE;
  return s;
}

static const struct timespec kRowPause = {0, 50 * 1000 * 1000};

/* "SELECT 1 UNION ALL SELECT 2 ..." with n rows ("SELECT 1 FROM DUAL WHERE 0" for 0). */
static void rows_query(char *q, size_t cap, int n) {
  snprintf(q, cap, n ? "SELECT 1" : "SELECT 1 FROM DUAL WHERE 0");
  for (int i = 2; i <= n; i++) snprintf(q + strlen(q), cap - strlen(q), " UNION ALL SELECT %d", i);
}

/* Reads every row of the current result unbuffered, pausing after each. */
static void use_rows(MYSQL *m) {
  MYSQL_RES *res = mysql_use_result(m);
  if (!res) die(m, "use_result");
  while (mysql_fetch_row(res)) nanosleep(&kRowPause, NULL);
  if (mysql_errno(m)) die(m, "fetch_row");
  mysql_free_result(res);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: my_client MODE N\n");
    return 2;
  }
  const char *mode = argv[1];
  int n = atoi(argv[2]);
  MYSQL *m = mysql_init(NULL);
  if (!strcmp(mode, "nonblock") || !strcmp(mode, "nbuse")) mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
  if (!mysql_real_connect(m, env_or("MYSQL_HOST", "127.0.0.1"), env_or("MYSQL_USER", "root"), "",
                          env_or("MYSQL_DATABASE", "cronrun_test"), (unsigned)atoi(env_or("MYSQL_TCP_PORT", "3306")),
                          NULL, CLIENT_MULTI_STATEMENTS))
    die(m, "connect");
  query_store(m, "SELECT 1");

  double t0 = now_s();
  if (!strcmp(mode, "query")) {
    for (int i = 0; i < n; i++) {
      if (mysql_query(m, "SELECT 1")) die(m, "query");
      mysql_free_result(mysql_store_result(m));
    }
  } else if (!strcmp(mode, "real")) {
    for (int i = 0; i < n; i++) query_store(m, "SELECT 1, 'x'");
  } else if (!strcmp(mode, "stmt")) {
    MYSQL_STMT *s = mysql_stmt_init(m);
    const char *q = "SELECT 1";
    if (mysql_stmt_prepare(s, q, strlen(q))) die(m, "prepare");
    for (int i = 0; i < n; i++) {
      if (mysql_stmt_execute(s)) die(m, "execute");
      int rc;
      while ((rc = mysql_stmt_fetch(s)) == 0) {
      }
      if (rc != MYSQL_NO_DATA) die(m, "fetch");
    }
    mysql_stmt_close(s);
  } else if (!strcmp(mode, "nonblock")) {
    for (int i = 0; i < n; i++) {
      int err;
      const char *q = "SELECT 1";
      int st = mysql_real_query_start(&err, m, q, strlen(q));
      while (st) st = mysql_real_query_cont(&err, m, nb_wait(m, st));
      if (err) die(m, "nb query");
      MYSQL_RES *res;
      st = mysql_store_result_start(&res, m);
      while (st) st = mysql_store_result_cont(&res, m, nb_wait(m, st));
      mysql_free_result(res);
    }
  } else if (!strcmp(mode, "use")) {
    char q[4096];
    rows_query(q, sizeof q, n);
    if (mysql_real_query(m, q, strlen(q))) die(m, q);
    use_rows(m);
  } else if (!strcmp(mode, "usemulti")) {
    char q[4096];
    rows_query(q, sizeof q, n / 2);
    size_t len = strlen(q);
    snprintf(q + len, sizeof q - len, "; ");
    rows_query(q + len + 2, sizeof q - len - 2, n - n / 2);
    if (mysql_real_query(m, q, strlen(q))) die(m, q);
    use_rows(m);
    int more = mysql_next_result(m);
    if (more > 0) die(m, "next_result");
    if (more == 0) use_rows(m);
  } else if (!strcmp(mode, "nbuse")) {
    char q[4096];
    rows_query(q, sizeof q, n);
    int err;
    int st = mysql_real_query_start(&err, m, q, strlen(q));
    while (st) st = mysql_real_query_cont(&err, m, nb_wait(m, st));
    if (err) die(m, "nb query");
    MYSQL_RES *res = mysql_use_result(m);
    if (!res) die(m, "use_result");
    for (;;) {
      MYSQL_ROW row;
      st = mysql_fetch_row_start(&row, res);
      while (st) st = mysql_fetch_row_cont(&row, res, nb_wait(m, st));
      if (!row) break;
      nanosleep(&kRowPause, NULL);
    }
    if (mysql_errno(m)) die(m, "nb fetch_row");
    st = mysql_free_result_start(res);
    while (st) st = mysql_free_result_cont(res, nb_wait(m, st));
  } else if (!strcmp(mode, "sleep")) {
    for (int i = 0; i < n; i++) query_store(m, "SELECT SLEEP(0.05)");
  } else if (strcmp(mode, "none") != 0) {
    fprintf(stderr, "my_client: unknown mode %s\n", mode);
    return 2;
  }
  printf("loop_s %.6f\n", now_s() - t0); /* see pg_client.c */
  mysql_close(m);
  return 0;
}
