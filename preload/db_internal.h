/* Internals shared by the preload library's translation units: the symbol table,
 * the resolver, the inner-call test, the shared counters and the per-connection
 * busy table. Everything here is hidden; only the wrappers in db_pg.c, db_mysql.c,
 * db_sqlite.c and the dl trampolines in db_dl.c are exported.
 */
#ifndef CRONRUN_DB_INTERNAL_H
#define CRONRUN_DB_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "cronrun_db_shm.h"

#define CR_EXPORT __attribute__((visibility("default")))
#define CR_HIDDEN __attribute__((visibility("hidden")))
/* The caller's address: decides both where to resolve the real function (a
 * library loaded RTLD_LOCAL is only visible from its dependents) and whether the
 * call is an inner one (the client library calling its own exported functions
 * through the PLT, e.g. PQexec -> PQsendQuery). A thread-local depth would not do:
 * MariaDB's non-blocking API suspends a call on its own stack and returns. */
#define CR_RA() __builtin_return_address(0)

/* Wrapped symbols: X(name, backend). Helpers: resolved the same way, never wrapped. */
#define CR_WRAPPED(X)                                                                        \
  X(PQexec, CRONRUN_DB_PG)                                                                   \
  X(PQexecParams, CRONRUN_DB_PG)                                                             \
  X(PQexecPrepared, CRONRUN_DB_PG)                                                           \
  X(PQprepare, CRONRUN_DB_PG)                                                                \
  X(PQsendQuery, CRONRUN_DB_PG)                                                              \
  X(PQsendQueryParams, CRONRUN_DB_PG)                                                        \
  X(PQsendQueryPrepared, CRONRUN_DB_PG)                                                      \
  X(PQsendPrepare, CRONRUN_DB_PG)                                                            \
  X(PQgetResult, CRONRUN_DB_PG)                                                              \
  X(PQpipelineSync, CRONRUN_DB_PG)                                                           \
  X(PQfinish, CRONRUN_DB_PG)                                                                 \
  X(mysql_real_query, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_query, CRONRUN_DB_MYSQL)                                                           \
  X(mysql_send_query, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_read_query_result, CRONRUN_DB_MYSQL)                                               \
  X(mysql_store_result, CRONRUN_DB_MYSQL)                                                    \
  X(mysql_use_result, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_fetch_row, CRONRUN_DB_MYSQL)                                                       \
  X(mysql_free_result, CRONRUN_DB_MYSQL)                                                     \
  X(mysql_next_result, CRONRUN_DB_MYSQL)                                                     \
  X(mysql_commit, CRONRUN_DB_MYSQL)                                                          \
  X(mysql_rollback, CRONRUN_DB_MYSQL)                                                        \
  X(mysql_autocommit, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_close, CRONRUN_DB_MYSQL)                                                           \
  X(mysql_stmt_prepare, CRONRUN_DB_MYSQL)                                                    \
  X(mysql_stmt_execute, CRONRUN_DB_MYSQL)                                                    \
  X(mysql_stmt_fetch, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_stmt_store_result, CRONRUN_DB_MYSQL)                                               \
  X(mysql_stmt_free_result, CRONRUN_DB_MYSQL)                                                \
  X(mysql_stmt_reset, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_stmt_close, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_real_query_start, CRONRUN_DB_MYSQL)                                                \
  X(mysql_real_query_cont, CRONRUN_DB_MYSQL)                                                 \
  X(mysql_query_start, CRONRUN_DB_MYSQL)                                                     \
  X(mysql_query_cont, CRONRUN_DB_MYSQL)                                                      \
  X(mysql_send_query_start, CRONRUN_DB_MYSQL)                                                \
  X(mysql_send_query_cont, CRONRUN_DB_MYSQL)                                                 \
  X(mysql_read_query_result_start, CRONRUN_DB_MYSQL)                                         \
  X(mysql_read_query_result_cont, CRONRUN_DB_MYSQL)                                          \
  X(mysql_store_result_start, CRONRUN_DB_MYSQL)                                              \
  X(mysql_store_result_cont, CRONRUN_DB_MYSQL)                                               \
  X(mysql_next_result_start, CRONRUN_DB_MYSQL)                                               \
  X(mysql_next_result_cont, CRONRUN_DB_MYSQL)                                                \
  X(mysql_commit_start, CRONRUN_DB_MYSQL)                                                    \
  X(mysql_commit_cont, CRONRUN_DB_MYSQL)                                                     \
  X(mysql_rollback_start, CRONRUN_DB_MYSQL)                                                  \
  X(mysql_rollback_cont, CRONRUN_DB_MYSQL)                                                   \
  X(mysql_autocommit_start, CRONRUN_DB_MYSQL)                                                \
  X(mysql_autocommit_cont, CRONRUN_DB_MYSQL)                                                 \
  X(mysql_stmt_prepare_start, CRONRUN_DB_MYSQL)                                              \
  X(mysql_stmt_prepare_cont, CRONRUN_DB_MYSQL)                                               \
  X(mysql_stmt_execute_start, CRONRUN_DB_MYSQL)                                              \
  X(mysql_stmt_execute_cont, CRONRUN_DB_MYSQL)                                               \
  X(mysql_stmt_fetch_start, CRONRUN_DB_MYSQL)                                                \
  X(mysql_stmt_fetch_cont, CRONRUN_DB_MYSQL)                                                 \
  X(mysql_stmt_store_result_start, CRONRUN_DB_MYSQL)                                         \
  X(mysql_stmt_store_result_cont, CRONRUN_DB_MYSQL)                                          \
  X(mysql_fetch_row_start, CRONRUN_DB_MYSQL)                                                 \
  X(mysql_fetch_row_cont, CRONRUN_DB_MYSQL)                                                  \
  X(mysql_free_result_start, CRONRUN_DB_MYSQL)                                               \
  X(mysql_free_result_cont, CRONRUN_DB_MYSQL)                                                \
  X(sqlite3_step, CRONRUN_DB_SQLITE)                                                         \
  X(sqlite3_exec, CRONRUN_DB_SQLITE)                                                         \
  X(sqlite3_prepare, CRONRUN_DB_SQLITE)                                                      \
  X(sqlite3_prepare_v2, CRONRUN_DB_SQLITE)                                                   \
  X(sqlite3_prepare_v3, CRONRUN_DB_SQLITE)                                                   \
  X(sqlite3_prepare16, CRONRUN_DB_SQLITE)                                                    \
  X(sqlite3_prepare16_v2, CRONRUN_DB_SQLITE)                                                 \
  X(sqlite3_prepare16_v3, CRONRUN_DB_SQLITE)

#define CR_HELPERS(X)                                                                        \
  X(PQtransactionStatus, CRONRUN_DB_PG)                                                      \
  X(mysql_field_count, CRONRUN_DB_MYSQL)                                                     \
  X(mysql_more_results, CRONRUN_DB_MYSQL)                                                    \
  X(mysql_stmt_field_count, CRONRUN_DB_MYSQL)                                                \
  X(sqlite3_stmt_busy, CRONRUN_DB_SQLITE)

enum cr_sym {
#define CR_ENUM(name, backend) CR_S_##name,
  CR_WRAPPED(CR_ENUM) CR_HELPERS(CR_ENUM) CR_NSYMS
#undef CR_ENUM
};
/* Symbols below this index are wrapped (and intercepted in dlsym). */
enum { CR_N_WRAPPED = CR_S_PQtransactionStatus };

/* Attached counter file, or NULL: wrappers then only pass calls through. */
CR_HIDDEN extern struct cronrun_db_shm *cr_shm;
/* This process's per-program slot, or NULL (no free slot: counted as overflow). */
CR_HIDDEN extern struct cronrun_db_proc_slot *cr_proc;

/* Resolved real functions, filled once per process (never with NULL). */
CR_HIDDEN extern void *cr_fn[CR_NSYMS];
CR_HIDDEN void *cr_resolve_slow(int sym, void *caller);
CR_HIDDEN void cr_note_real(int sym, void *fn);
CR_HIDDEN int cr_wrapped_sym(const char *name);
CR_HIDDEN void *cr_wrapper_addr(int sym);

static inline void *cr_real(int sym, void *caller) {
  void *fn = __atomic_load_n(&cr_fn[sym], __ATOMIC_ACQUIRE);
  return fn ? fn : cr_resolve_slow(sym, caller);
}

/* Address ranges of loaded client libraries: a call from inside one is inner. */
struct cr_range {
  uintptr_t lo, hi;
};
#define CR_MAX_RANGES 16
CR_HIDDEN extern struct cr_range cr_ranges[CR_MAX_RANGES];
CR_HIDDEN extern int cr_nranges;

static inline int cr_inner(void *caller) {
  uintptr_t a = (uintptr_t)caller;
  int n = __atomic_load_n(&cr_nranges, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++)
    if (a >= cr_ranges[i].lo && a < cr_ranges[i].hi) return 1;
  return 0;
}

/* Whether this call is one to count: attached and not from inside a client library. */
static inline int cr_counting(void *caller) { return cr_shm != 0 && !cr_inner(caller); }

/* Time stamps for busy intervals, in this process's unit: TSC ticks when the
 * runner allowed it (CRONRUN_DB_FLAG_TSC) and rdtsc is not trapped, else ns of
 * CLOCK_MONOTONIC (vDSO, no syscall). Never 0 (0 marks an idle connection). */
CR_HIDDEN extern int cr_use_tsc;

static inline uint64_t cr_now_ns(void) {
#if defined(__x86_64__)
  if (cr_use_tsc) return __builtin_ia32_rdtsc() | 1;
#endif
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) | 1;
}

static inline void cr_add(uint64_t *field, uint64_t n) { __atomic_fetch_add(field, n, __ATOMIC_RELAXED); }

/* Set in a fork()ed child until its first query: see cr_count_forked. */
CR_HIDDEN extern int cr_fork_pending;
CR_HIDDEN void cr_count_forked(void);

static inline void cr_add_query(int backend) {
  if (__builtin_expect(cr_fork_pending, 0)) cr_count_forked();
  cr_add(&cr_shm->backend[backend].queries, 1);
  if (cr_proc)
    cr_add(&cr_proc->queries, 1);
  else
    cr_add(&cr_shm->proc_overflow, 1);
}
static inline void cr_add_prepare(int backend) { cr_add(&cr_shm->backend[backend].prepares, 1); }
/* `elapsed` is a difference of cr_now_ns() values, so in this process's unit. */
static inline void cr_add_busy(int backend, uint64_t elapsed) {
  if (elapsed) cr_add(cr_use_tsc ? &cr_shm->backend[backend].busy_ticks : &cr_shm->backend[backend].busy_ns, elapsed);
}

/* Per-connection busy intervals, keyed by the client's handle (PGconn*, MYSQL*,
 * MYSQL_STMT*). begin returns 0 when the table is full: the caller then times
 * only the call itself. end/forget return the elapsed ns of an open interval. */
CR_HIDDEN int cr_busy_begin(const void *key, uint64_t now_ns);
CR_HIDDEN uint64_t cr_busy_end(const void *key, uint64_t now_ns);
CR_HIDDEN uint64_t cr_busy_forget(const void *key, uint64_t now_ns);

#endif /* CRONRUN_DB_INTERNAL_H */
