/* MariaDB / MySQL client wrappers (libmariadb, libmysqlclient).
 *
 * Queries: mysql_real_query, mysql_query, mysql_send_query, mysql_stmt_execute,
 * mysql_commit / mysql_rollback / mysql_autocommit, and MariaDB's non-blocking
 * *_start variants of those. Prepares: mysql_stmt_prepare(_start).
 *
 * Busy time is per handle (MYSQL* or MYSQL_STMT*): mysql_real_query returns once
 * the result header is in, before mysql_store_result transfers the rows, so the
 * interval stays open until no result set is pending: after a query with no
 * columns and no further results, after store_result or next_result when no more
 * results exist, after the last row of a use_result result (mysql_fetch_row
 * returns NULL) or its free, after the last stmt_fetch (MYSQL_NO_DATA) or
 * stmt_store_result, or when the handle is reset, freed or closed.
 *
 * The non-blocking API runs the blocking function on a coroutine stack inside
 * libmariadb; those inner calls come from the library's own text and pass through,
 * and the interval is settled when a *_start / *_cont call reports completion (0).
 *
 * The caller's address is not enough on its own here: libmariadb's mysql_query
 * ends in a tail jump to mysql_real_query, so the inner call arrives with our
 * caller's return address. While an outer wrapper runs, the handle it works on is
 * kept in a thread-local; a nested wrapper call on the same handle is inner. Only
 * outer wrappers set and restore it (around the real call, which always returns to
 * them, also when a non-blocking call suspends), so it cannot be left stale the way
 * a depth counter bumped by inner calls is when a coroutine suspends mid-call.
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "db_internal.h"

typedef struct st_mysql MYSQL;
typedef struct st_mysql_stmt MYSQL_STMT;
typedef struct st_mysql_res MYSQL_RES;
typedef char my_bool;
typedef char **MYSQL_ROW;

enum { kMysqlNoData = 100 };
#define B CRONRUN_DB_MYSQL

static __thread const void *my_active __attribute__((tls_model("initial-exec")));

static inline int my_counting(void *ra, const void *h) { return cr_counting(ra) && my_active != h; }

/* Runs `call` (an expression) with `h` marked active; `out` receives its value. */
#define MY_CALL(out, h, call)             \
  do {                                    \
    const void *prev_ = my_active;        \
    my_active = (h);                      \
    out = call;                           \
    my_active = prev_;                    \
  } while (0)

static void my_end(const void *key) { cr_add_busy(B, cr_busy_end(key, cr_now_ns())); }

/* With the busy table full the interval is lost: time undercounts, counts stay exact. */
static void my_begin(const void *key, uint64_t t0) { (void)cr_busy_begin(key, t0); }

/* After a query (or next_result) completed: results pending unless no columns. */
static void my_after_query(MYSQL *m, void *ra, int failed) {
  if (!m) return;
  if (failed) {
    my_end(m);
    return;
  }
  unsigned (*fields)(MYSQL *) = cr_real(CR_S_mysql_field_count, ra);
  my_bool (*more)(MYSQL *) = cr_real(CR_S_mysql_more_results, ra);
  if (fields && more && fields(m) == 0 && !more(m)) my_end(m);
}

/* After a result set was taken (store/use_result): done unless more results. */
static void my_after_result(MYSQL *m, void *ra) {
  if (!m) return;
  my_bool (*more)(MYSQL *) = cr_real(CR_S_mysql_more_results, ra);
  if (!more || !more(m)) my_end(m);
}

/* Unbuffered results (use_result): the rows are still on the wire when
 * mysql_use_result returns, so the connection stays busy until the last row is
 * fetched or the result is freed (which reads the rest). The open interval moves
 * from the handle to the result; this thread remembers which handle it came from,
 * so that when more result sets follow it moves back and spans them too. */
enum { kUnbufferedSlots = 8 };
static __thread struct my_unbuffered {
  const MYSQL_RES *res;
  MYSQL *m;
} my_unbuf[kUnbufferedSlots] __attribute__((tls_model("initial-exec")));

static void my_after_use_result(MYSQL *m, MYSQL_RES *res, void *ra) {
  if (!m) return;
  if (!res) {
    my_after_result(m, ra);
    return;
  }
  struct my_unbuffered *slot = NULL;
  for (int i = 0; i < kUnbufferedSlots && !slot; i++)
    if (!my_unbuf[i].res) slot = &my_unbuf[i];
  uint64_t now = cr_now_ns();
  uint64_t busy = cr_busy_end(m, now);
  /* No slot (8 unbuffered results open in one thread) or a full busy table: the
   * interval ends here, as for a buffered result — time undercounts. */
  if (!slot || !busy || !cr_busy_begin(res, now - busy)) {
    cr_add_busy(B, busy);
    return;
  }
  slot->res = res;
  slot->m = m;
}

/* The last row of `res` was fetched, or `res` is being freed. */
static void my_unbuffered_done(const MYSQL_RES *res, void *ra) {
  uint64_t now = cr_now_ns();
  uint64_t busy = cr_busy_forget(res, now);
  MYSQL *m = NULL;
  for (int i = 0; i < kUnbufferedSlots; i++) {
    if (my_unbuf[i].res == res) {
      m = my_unbuf[i].m;
      my_unbuf[i].res = NULL;
      break;
    }
  }
  if (!busy) return;  /* a buffered result, or already settled */
  my_bool (*more)(MYSQL *) = cr_real(CR_S_mysql_more_results, ra);
  if (m && more && more(m) && cr_busy_begin(m, now - busy)) return;
  cr_add_busy(B, busy);
}

static void my_after_execute(MYSQL_STMT *s, void *ra, int failed) {
  if (!s) return;
  unsigned (*fields)(MYSQL_STMT *) = cr_real(CR_S_mysql_stmt_field_count, ra);
  if (failed || !fields || fields(s) == 0) my_end(s);
}

/* ---- blocking API ---- */

#define MY_RESOLVE(type, sym, fail)                   \
  void *ra = CR_RA();                                 \
  __typeof__(type) fn = cr_real(CR_S_##sym, ra);      \
  if (!fn) return fail;

CR_EXPORT int mysql_real_query(MYSQL *m, const char *q, unsigned long len) {
  MY_RESOLVE(int (*)(MYSQL *, const char *, unsigned long), mysql_real_query, 1)
  if (!my_counting(ra, m)) return fn(m, q, len);
  my_begin(m, cr_now_ns());
  cr_add_query(B);
  int r;
  MY_CALL(r, m, fn(m, q, len));
  my_after_query(m, ra, r != 0);
  return r;
}

CR_EXPORT int mysql_query(MYSQL *m, const char *q) {
  MY_RESOLVE(int (*)(MYSQL *, const char *), mysql_query, 1)
  if (!my_counting(ra, m)) return fn(m, q);
  my_begin(m, cr_now_ns());
  cr_add_query(B);
  int r;
  MY_CALL(r, m, fn(m, q));
  my_after_query(m, ra, r != 0);
  return r;
}

CR_EXPORT int mysql_send_query(MYSQL *m, const char *q, unsigned long len) {
  MY_RESOLVE(int (*)(MYSQL *, const char *, unsigned long), mysql_send_query, 1)
  if (!my_counting(ra, m)) return fn(m, q, len);
  my_begin(m, cr_now_ns());
  cr_add_query(B);
  int r;
  MY_CALL(r, m, fn(m, q, len));
  if (r != 0) my_end(m);
  return r;
}

CR_EXPORT my_bool mysql_read_query_result(MYSQL *m) {
  MY_RESOLVE(my_bool (*)(MYSQL *), mysql_read_query_result, 1)
  if (!my_counting(ra, m)) return fn(m);
  my_bool r;
  MY_CALL(r, m, fn(m));
  my_after_query(m, ra, r != 0);
  return r;
}

CR_EXPORT MYSQL_RES *mysql_store_result(MYSQL *m) {
  MY_RESOLVE(MYSQL_RES * (*)(MYSQL *), mysql_store_result, NULL)
  if (!my_counting(ra, m)) return fn(m);
  MYSQL_RES *r;
  MY_CALL(r, m, fn(m));
  my_after_result(m, ra);
  return r;
}

CR_EXPORT MYSQL_RES *mysql_use_result(MYSQL *m) {
  MY_RESOLVE(MYSQL_RES * (*)(MYSQL *), mysql_use_result, NULL)
  if (!my_counting(ra, m)) return fn(m);
  MYSQL_RES *r;
  MY_CALL(r, m, fn(m));
  my_after_use_result(m, r, ra);
  return r;
}

/* Called once per row: the common path is the real call and one compare. */
CR_EXPORT MYSQL_ROW mysql_fetch_row(MYSQL_RES *res) {
  MY_RESOLVE(MYSQL_ROW(*)(MYSQL_RES *), mysql_fetch_row, NULL)
  MYSQL_ROW row = fn(res);
  if (!row && res && cr_counting(ra)) my_unbuffered_done(res, ra);
  return row;
}

CR_EXPORT void mysql_free_result(MYSQL_RES *res) {
  MY_RESOLVE(void (*)(MYSQL_RES *), mysql_free_result, )
  fn(res);
  if (res && cr_counting(ra)) my_unbuffered_done(res, ra);
}

CR_EXPORT int mysql_next_result(MYSQL *m) {
  MY_RESOLVE(int (*)(MYSQL *), mysql_next_result, 1)
  if (!my_counting(ra, m)) return fn(m);
  int r;
  MY_CALL(r, m, fn(m));
  my_after_query(m, ra, r != 0);
  return r;
}

#define MY_TXN(sym, arg_decl, args)                                  \
  CR_EXPORT my_bool sym arg_decl {                                   \
    MY_RESOLVE(my_bool(*) arg_decl, sym, 1)                          \
    if (!my_counting(ra, m)) return fn args;                         \
    uint64_t t0 = cr_now_ns();                                       \
    cr_add_query(B);                                                 \
    my_bool r;                                                       \
    MY_CALL(r, m, fn args);                                          \
    cr_add_busy(B, cr_now_ns() - t0);                                \
    return r;                                                        \
  }
MY_TXN(mysql_commit, (MYSQL * m), (m))
MY_TXN(mysql_rollback, (MYSQL * m), (m))
MY_TXN(mysql_autocommit, (MYSQL * m, my_bool on), (m, on))

CR_EXPORT void mysql_close(MYSQL *m) {
  MY_RESOLVE(void (*)(MYSQL *), mysql_close, )
  if (cr_shm && m) cr_add_busy(B, cr_busy_forget(m, cr_now_ns()));
  fn(m);
}

CR_EXPORT int mysql_stmt_prepare(MYSQL_STMT *s, const char *q, unsigned long len) {
  MY_RESOLVE(int (*)(MYSQL_STMT *, const char *, unsigned long), mysql_stmt_prepare, 1)
  if (!my_counting(ra, s)) return fn(s, q, len);
  uint64_t t0 = cr_now_ns();
  cr_add_prepare(B);
  int r;
  MY_CALL(r, s, fn(s, q, len));
  cr_add_busy(B, cr_now_ns() - t0);
  return r;
}

CR_EXPORT int mysql_stmt_execute(MYSQL_STMT *s) {
  MY_RESOLVE(int (*)(MYSQL_STMT *), mysql_stmt_execute, 1)
  if (!my_counting(ra, s)) return fn(s);
  my_begin(s, cr_now_ns());
  cr_add_query(B);
  int r;
  MY_CALL(r, s, fn(s));
  my_after_execute(s, ra, r != 0);
  return r;
}

CR_EXPORT int mysql_stmt_fetch(MYSQL_STMT *s) {
  MY_RESOLVE(int (*)(MYSQL_STMT *), mysql_stmt_fetch, 1)
  if (!my_counting(ra, s)) return fn(s);
  int r;
  MY_CALL(r, s, fn(s));
  if (r == 1 || r == kMysqlNoData) my_end(s);
  return r;
}

CR_EXPORT int mysql_stmt_store_result(MYSQL_STMT *s) {
  MY_RESOLVE(int (*)(MYSQL_STMT *), mysql_stmt_store_result, 1)
  if (!my_counting(ra, s)) return fn(s);
  int r;
  MY_CALL(r, s, fn(s));
  my_end(s);
  return r;
}

CR_EXPORT my_bool mysql_stmt_free_result(MYSQL_STMT *s) {
  MY_RESOLVE(my_bool (*)(MYSQL_STMT *), mysql_stmt_free_result, 1)
  if (!my_counting(ra, s)) return fn(s);
  my_end(s);
  my_bool r;
  MY_CALL(r, s, fn(s));
  return r;
}

CR_EXPORT my_bool mysql_stmt_reset(MYSQL_STMT *s) {
  MY_RESOLVE(my_bool (*)(MYSQL_STMT *), mysql_stmt_reset, 1)
  if (!my_counting(ra, s)) return fn(s);
  my_end(s);
  my_bool r;
  MY_CALL(r, s, fn(s));
  return r;
}

CR_EXPORT my_bool mysql_stmt_close(MYSQL_STMT *s) {
  MY_RESOLVE(my_bool (*)(MYSQL_STMT *), mysql_stmt_close, 1)
  if (cr_shm && s) cr_add_busy(B, cr_busy_forget(s, cr_now_ns()));
  return fn(s);
}

/* ---- MariaDB non-blocking API: *_start(ret, ...) / *_cont(ret, handle, status);
 * a return of 0 means the operation completed and *ret holds its result. ---- */

#define MY_NB(sym, ret_t, fail_val, handle_t, start_decl, start_args, on_start, on_done)                 \
  CR_EXPORT int sym##_start start_decl {                                                     \
    MY_RESOLVE(int(*) start_decl, sym##_start, (*ret = fail_val, 0))                         \
    if (!my_counting(ra, h)) return fn start_args;                                           \
    on_start;                                                                                \
    int st;                                                                                  \
    MY_CALL(st, h, fn start_args);                                                           \
    if (st == 0) on_done;                                                                    \
    return st;                                                                               \
  }                                                                                          \
  CR_EXPORT int sym##_cont(ret_t *ret, handle_t *h, int status) {                            \
    MY_RESOLVE(int (*)(ret_t *, handle_t *, int), sym##_cont, (*ret = fail_val, 0))          \
    if (!my_counting(ra, h)) return fn(ret, h, status);                                      \
    int st;                                                                                  \
    MY_CALL(st, h, fn(ret, h, status));                                                      \
    if (st == 0) on_done;                                                                    \
    return st;                                                                               \
  }

#define BEGIN_QUERY (my_begin(h, cr_now_ns()), cr_add_query(B))
#define BEGIN_ONLY my_begin(h, cr_now_ns())
#define BEGIN_PREPARE (my_begin(h, cr_now_ns()), cr_add_prepare(B))

MY_NB(mysql_real_query, int, 1, MYSQL, (int *ret, MYSQL *h, const char *q, unsigned long len), (ret, h, q, len),
      BEGIN_QUERY, my_after_query(h, ra, *ret != 0))
MY_NB(mysql_query, int, 1, MYSQL, (int *ret, MYSQL *h, const char *q), (ret, h, q), BEGIN_QUERY,
      my_after_query(h, ra, *ret != 0))
MY_NB(mysql_send_query, int, 1, MYSQL, (int *ret, MYSQL *h, const char *q, unsigned long len), (ret, h, q, len),
      BEGIN_QUERY, (*ret != 0 ? my_end(h) : (void)0))
MY_NB(mysql_read_query_result, my_bool, 1, MYSQL, (my_bool * ret, MYSQL * h), (ret, h), (void)0,
      my_after_query(h, ra, *ret != 0))
MY_NB(mysql_store_result, MYSQL_RES *, NULL, MYSQL, (MYSQL_RES * *ret, MYSQL * h), (ret, h), (void)0,
      my_after_result(h, ra))
MY_NB(mysql_next_result, int, 1, MYSQL, (int *ret, MYSQL *h), (ret, h), (void)0, my_after_query(h, ra, *ret != 0))
MY_NB(mysql_commit, my_bool, 1, MYSQL, (my_bool * ret, MYSQL * h), (ret, h), BEGIN_QUERY, my_end(h))
MY_NB(mysql_rollback, my_bool, 1, MYSQL, (my_bool * ret, MYSQL * h), (ret, h), BEGIN_QUERY, my_end(h))
MY_NB(mysql_autocommit, my_bool, 1, MYSQL, (my_bool * ret, MYSQL * h, my_bool on), (ret, h, on), BEGIN_QUERY,
      my_end(h))
MY_NB(mysql_stmt_prepare, int, 1, MYSQL_STMT, (int *ret, MYSQL_STMT *h, const char *q, unsigned long len),
      (ret, h, q, len), BEGIN_PREPARE, my_end(h))
MY_NB(mysql_stmt_execute, int, 1, MYSQL_STMT, (int *ret, MYSQL_STMT *h), (ret, h), BEGIN_QUERY,
      my_after_execute(h, ra, *ret != 0))
MY_NB(mysql_stmt_fetch, int, 1, MYSQL_STMT, (int *ret, MYSQL_STMT *h), (ret, h), (void)0,
      ((*ret == 1 || *ret == kMysqlNoData) ? my_end(h) : (void)0))
MY_NB(mysql_stmt_store_result, int, 1, MYSQL_STMT, (int *ret, MYSQL_STMT *h), (ret, h), (void)0, my_end(h))
MY_NB(mysql_fetch_row, MYSQL_ROW, NULL, MYSQL_RES, (MYSQL_ROW * ret, MYSQL_RES * h), (ret, h), (void)0,
      (*ret == NULL ? my_unbuffered_done(h, ra) : (void)0))

/* mysql_free_result_start(res) / _cont(res, status): no result value. */
CR_EXPORT int mysql_free_result_start(MYSQL_RES *h) {
  MY_RESOLVE(int (*)(MYSQL_RES *), mysql_free_result_start, 0)
  int st = fn(h);
  if (st == 0 && h && cr_counting(ra)) my_unbuffered_done(h, ra);
  return st;
}

CR_EXPORT int mysql_free_result_cont(MYSQL_RES *h, int status) {
  MY_RESOLVE(int (*)(MYSQL_RES *, int), mysql_free_result_cont, 0)
  int st = fn(h, status);
  if (st == 0 && h && cr_counting(ra)) my_unbuffered_done(h, ra);
  return st;
}
