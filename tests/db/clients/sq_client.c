/* sq_client MODE N: a libsqlite3 program for the DB tier, on an in-memory db.
 *   step N   one prepared statement executed N times (reset + step to DONE)
 *   exec N   N sqlite3_exec calls, each with two statements (counts once each)
 *   rows N   one SELECT returning N rows (one query whatever N)
 *   none
 * After a fixed prologue (create table). Counts are asserted by difference. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(sqlite3 *db, const char *what) {
  fprintf(stderr, "sq_client: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: sq_client MODE N\n");
    return 2;
  }
  const char *mode = argv[1];
  int n = atoi(argv[2]);
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) die(db, "open");
  if (sqlite3_exec(db, "CREATE TABLE t (a INTEGER)", NULL, NULL, NULL) != SQLITE_OK) die(db, "create");
  sqlite3_stmt *s;
  if (!strcmp(mode, "step")) {
    if (sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?)", -1, &s, NULL) != SQLITE_OK) die(db, "prepare");
    for (int i = 0; i < n; i++) {
      sqlite3_reset(s);
      sqlite3_bind_int(s, 1, i);
      if (sqlite3_step(s) != SQLITE_DONE) die(db, "step");
    }
    sqlite3_finalize(s);
  } else if (!strcmp(mode, "exec")) {
    for (int i = 0; i < n; i++)
      if (sqlite3_exec(db, "INSERT INTO t VALUES (1); SELECT count(*) FROM t", NULL, NULL, NULL) != SQLITE_OK)
        die(db, "exec");
  } else if (!strcmp(mode, "rows")) {
    if (sqlite3_prepare_v2(db,
                           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                           "SELECT x FROM c WHERE ? > 0",
                           -1, &s, NULL) != SQLITE_OK)
      die(db, "prepare");
    sqlite3_bind_int(s, 1, n);
    sqlite3_bind_int(s, 2, n);
    int rows = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) rows++;
    if (rc != SQLITE_DONE || rows != n) die(db, "rows");
    sqlite3_finalize(s);
  } else if (strcmp(mode, "none") != 0) {
    fprintf(stderr, "sq_client: unknown mode %s\n", mode);
    return 2;
  }
  sqlite3_close(db);
  return 0;
}
