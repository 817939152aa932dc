/* SQLite wrappers.
 *
 * One query is one statement execution: the sqlite3_step that starts it, i.e. a
 * step on a statement that sqlite3_stmt_busy reports idle (fresh from prepare,
 * reset, or finished and about to auto-reset). Stepping through the rows of the
 * same execution does not count again. sqlite3_exec counts once however many
 * statements its SQL holds; its own prepare/step calls come from inside
 * libsqlite3 and pass through.
 *
 * SQLite runs in-process, so there is no waiting outside library calls: busy time
 * is the time spent inside step, exec and prepare.
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "db_internal.h"

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef int (*sqlite3_callback)(void *, int, char **, char **);

enum { kSqliteError = 1 };
#define B CRONRUN_DB_SQLITE

CR_EXPORT int sqlite3_step(sqlite3_stmt *s) {
  void *ra = CR_RA();
  int (*fn)(sqlite3_stmt *) = cr_real(CR_S_sqlite3_step, ra);
  if (!fn) return kSqliteError;
  if (!cr_counting(ra)) return fn(s);
  int (*busy)(sqlite3_stmt *) = cr_real(CR_S_sqlite3_stmt_busy, ra);
  int first = !busy || !busy(s);
  uint64_t t0 = cr_now_ns();
  if (first) cr_add_query(B);
  int r = fn(s);
  cr_add_busy(B, cr_now_ns() - t0);
  return r;
}

CR_EXPORT int sqlite3_exec(sqlite3 *db, const char *sql, sqlite3_callback cb, void *arg, char **errmsg) {
  void *ra = CR_RA();
  int (*fn)(sqlite3 *, const char *, sqlite3_callback, void *, char **) = cr_real(CR_S_sqlite3_exec, ra);
  if (!fn) return kSqliteError;
  if (!cr_counting(ra)) return fn(db, sql, cb, arg, errmsg);
  uint64_t t0 = cr_now_ns();
  cr_add_query(B);
  int r = fn(db, sql, cb, arg, errmsg);
  cr_add_busy(B, cr_now_ns() - t0);
  return r;
}

/* All prepare variants share one shape: (db, sql, nbytes, [flags,] stmt**, tail**). */
#define SQ_PREPARE(sym, text_t)                                                                      \
  CR_EXPORT int sym(sqlite3 *db, const text_t *sql, int n, sqlite3_stmt **st, const text_t **tail) { \
    void *ra = CR_RA();                                                                              \
    int (*fn)(sqlite3 *, const text_t *, int, sqlite3_stmt **, const text_t **) =                    \
        cr_real(CR_S_##sym, ra);                                                                     \
    if (!fn) return kSqliteError;                                                                    \
    if (!cr_counting(ra)) return fn(db, sql, n, st, tail);                                           \
    uint64_t t0 = cr_now_ns();                                                                       \
    cr_add_prepare(B);                                                                               \
    int r = fn(db, sql, n, st, tail);                                                                \
    cr_add_busy(B, cr_now_ns() - t0);                                                                \
    return r;                                                                                        \
  }
#define SQ_PREPARE_V3(sym, text_t)                                                                   \
  CR_EXPORT int sym(sqlite3 *db, const text_t *sql, int n, unsigned flags, sqlite3_stmt **st,        \
                    const text_t **tail) {                                                           \
    void *ra = CR_RA();                                                                              \
    int (*fn)(sqlite3 *, const text_t *, int, unsigned, sqlite3_stmt **, const text_t **) =          \
        cr_real(CR_S_##sym, ra);                                                                     \
    if (!fn) return kSqliteError;                                                                    \
    if (!cr_counting(ra)) return fn(db, sql, n, flags, st, tail);                                    \
    uint64_t t0 = cr_now_ns();                                                                       \
    cr_add_prepare(B);                                                                               \
    int r = fn(db, sql, n, flags, st, tail);                                                         \
    cr_add_busy(B, cr_now_ns() - t0);                                                                \
    return r;                                                                                        \
  }

SQ_PREPARE(sqlite3_prepare, char)
SQ_PREPARE(sqlite3_prepare_v2, char)
SQ_PREPARE_V3(sqlite3_prepare_v3, char)
SQ_PREPARE(sqlite3_prepare16, void)
SQ_PREPARE(sqlite3_prepare16_v2, void)
SQ_PREPARE_V3(sqlite3_prepare16_v3, void)
