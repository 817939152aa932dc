/* libpq wrappers.
 *
 * Queries: PQexec, PQexecParams, PQexecPrepared and the PQsendQuery* family (the
 * latter only when libpq accepted them). Prepares: PQprepare, PQsendPrepare.
 *
 * Busy time is per connection: an interval opens when a command is sent and closes
 * when libpq reports the connection no longer active (PQtransactionStatus !=
 * PQTRANS_ACTIVE, i.e. every result, pipeline sync and COPY has been read). That
 * covers drivers that wait in their own poll loop between PQsendQuery and
 * PQgetResult (Ruby pg, psycopg 3), pipeline mode (one interval for the whole
 * pipeline), and COPY (from the PQexec that starts it to the final PQgetResult).
 *
 * PQexec itself calls PQsendQuery and PQgetResult through the PLT; those inner
 * calls come from inside libpq and pass through uncounted (cr_counting).
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "db_internal.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
typedef unsigned int Oid;

enum { kPqTransActive = 1 };

/* Called after an outer call returns: closes the interval when libpq is done. */
static void pg_settle(PGconn *c, void *ra, int tracked, uint64_t t0) {
  uint64_t now = cr_now_ns();
  if (!tracked) { /* busy table full: time the call only */
    cr_add_busy(CRONRUN_DB_PG, now - t0);
    return;
  }
  int (*status)(const PGconn *) = cr_real(CR_S_PQtransactionStatus, ra);
  if (status && status(c) == kPqTransActive) return;
  cr_add_busy(CRONRUN_DB_PG, cr_busy_end(c, now));
}

#define PG_SYNC(kind, call)                               \
  do {                                                    \
    if (!cr_counting(ra)) return call;                    \
    uint64_t t0 = cr_now_ns();                            \
    int tracked = cr_busy_begin(c, t0);                   \
    kind(CRONRUN_DB_PG);                                  \
    PGresult *r = call;                                   \
    pg_settle(c, ra, tracked, t0);                        \
    return r;                                             \
  } while (0)

#define PG_SEND(kind, call)                               \
  do {                                                    \
    if (!cr_counting(ra)) return call;                    \
    uint64_t t0 = cr_now_ns();                            \
    int ok = call;                                        \
    if (ok == 1) {                                        \
      kind(CRONRUN_DB_PG);                                \
      if (!cr_busy_begin(c, t0)) cr_add_busy(CRONRUN_DB_PG, cr_now_ns() - t0); \
    }                                                     \
    return ok;                                            \
  } while (0)

CR_EXPORT PGresult *PQexec(PGconn *c, const char *query) {
  void *ra = CR_RA();
  PGresult *(*fn)(PGconn *, const char *) = cr_real(CR_S_PQexec, ra);
  if (!fn) return NULL;
  PG_SYNC(cr_add_query, fn(c, query));
}

CR_EXPORT PGresult *PQexecParams(PGconn *c, const char *command, int n, const Oid *types,
                                 const char *const *values, const int *lengths, const int *formats,
                                 int result_format) {
  void *ra = CR_RA();
  PGresult *(*fn)(PGconn *, const char *, int, const Oid *, const char *const *, const int *,
                  const int *, int) = cr_real(CR_S_PQexecParams, ra);
  if (!fn) return NULL;
  PG_SYNC(cr_add_query, fn(c, command, n, types, values, lengths, formats, result_format));
}

CR_EXPORT PGresult *PQexecPrepared(PGconn *c, const char *name, int n, const char *const *values,
                                   const int *lengths, const int *formats, int result_format) {
  void *ra = CR_RA();
  PGresult *(*fn)(PGconn *, const char *, int, const char *const *, const int *, const int *, int) =
      cr_real(CR_S_PQexecPrepared, ra);
  if (!fn) return NULL;
  PG_SYNC(cr_add_query, fn(c, name, n, values, lengths, formats, result_format));
}

CR_EXPORT PGresult *PQprepare(PGconn *c, const char *name, const char *query, int n, const Oid *types) {
  void *ra = CR_RA();
  PGresult *(*fn)(PGconn *, const char *, const char *, int, const Oid *) = cr_real(CR_S_PQprepare, ra);
  if (!fn) return NULL;
  PG_SYNC(cr_add_prepare, fn(c, name, query, n, types));
}

CR_EXPORT int PQsendQuery(PGconn *c, const char *query) {
  void *ra = CR_RA();
  int (*fn)(PGconn *, const char *) = cr_real(CR_S_PQsendQuery, ra);
  if (!fn) return 0;
  PG_SEND(cr_add_query, fn(c, query));
}

CR_EXPORT int PQsendQueryParams(PGconn *c, const char *command, int n, const Oid *types,
                                const char *const *values, const int *lengths, const int *formats,
                                int result_format) {
  void *ra = CR_RA();
  int (*fn)(PGconn *, const char *, int, const Oid *, const char *const *, const int *, const int *,
            int) = cr_real(CR_S_PQsendQueryParams, ra);
  if (!fn) return 0;
  PG_SEND(cr_add_query, fn(c, command, n, types, values, lengths, formats, result_format));
}

CR_EXPORT int PQsendQueryPrepared(PGconn *c, const char *name, int n, const char *const *values,
                                  const int *lengths, const int *formats, int result_format) {
  void *ra = CR_RA();
  int (*fn)(PGconn *, const char *, int, const char *const *, const int *, const int *, int) =
      cr_real(CR_S_PQsendQueryPrepared, ra);
  if (!fn) return 0;
  PG_SEND(cr_add_query, fn(c, name, n, values, lengths, formats, result_format));
}

CR_EXPORT int PQsendPrepare(PGconn *c, const char *name, const char *query, int n, const Oid *types) {
  void *ra = CR_RA();
  int (*fn)(PGconn *, const char *, const char *, int, const Oid *) = cr_real(CR_S_PQsendPrepare, ra);
  if (!fn) return 0;
  PG_SEND(cr_add_prepare, fn(c, name, query, n, types));
}

static void pg_no_count(int backend) { (void)backend; }

CR_EXPORT int PQpipelineSync(PGconn *c) {
  void *ra = CR_RA();
  int (*fn)(PGconn *) = cr_real(CR_S_PQpipelineSync, ra);
  if (!fn) return 0;
  PG_SEND(pg_no_count, fn(c));
}

CR_EXPORT PGresult *PQgetResult(PGconn *c) {
  void *ra = CR_RA();
  PGresult *(*fn)(PGconn *) = cr_real(CR_S_PQgetResult, ra);
  if (!fn) return NULL;
  if (!cr_counting(ra)) return fn(c);
  PGresult *r = fn(c);
  pg_settle(c, ra, 1, 0);
  return r;
}

CR_EXPORT void PQfinish(PGconn *c) {
  void *ra = CR_RA();
  void (*fn)(PGconn *) = cr_real(CR_S_PQfinish, ra);
  if (!fn) return;
  /* A result never read is still time the connection was busy. */
  if (cr_shm) cr_add_busy(CRONRUN_DB_PG, cr_busy_forget(c, cr_now_ns()));
  fn(c);
}
