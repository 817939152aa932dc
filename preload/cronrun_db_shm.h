/* The counter file shared by cronrun and libcronrun-db.so.
 *
 * The runner creates one file per run (0600, in a fresh 0700 directory), sizes it
 * to sizeof(struct cronrun_db_shm) and writes the header; every job process that
 * loads the preload library maps it MAP_SHARED and adds to it with relaxed atomic
 * adds. Nothing is ever written through write(2) by a job, so counts survive
 * fork, _exit and SIGKILL of any job process: they are in the page cache the
 * moment the add retires.
 *
 * Both sides are C-compatible; all fields are fixed-width and naturally aligned so
 * the layout is identical for the C library and the C++ runner. The runner treats
 * everything it reads back as untrusted (a job can write to the file): it checks
 * magic, version and every size, and sanitizes program names again.
 *
 * Bump CRONRUN_DB_VERSION on any layout change; a library of another version
 * refuses to attach (and counts nothing) rather than corrupting the file.
 */
#ifndef CRONRUN_DB_SHM_H
#define CRONRUN_DB_SHM_H

#include <stdint.h>

#define CRONRUN_DB_MAGIC 0x42445243u /* "CRDB" little-endian */
#define CRONRUN_DB_VERSION 1u
/* The variable naming the counter file in the job's environment. */
#define CRONRUN_DB_ENV "CRONRUN_DB_COUNTERS"

enum cronrun_db_backend { CRONRUN_DB_PG = 0, CRONRUN_DB_MYSQL = 1, CRONRUN_DB_SQLITE = 2, CRONRUN_DB_NBACKENDS = 3 };

#define CRONRUN_DB_PROC_SLOTS 64
#define CRONRUN_DB_PROC_NAME 32 /* bytes incl. NUL; names are [A-Za-z0-9_.-] */

/* Slot states: claimed with a compare-and-swap FREE -> CLAIMING, name written,
 * then published as READY. A reader ignores anything but READY. */
enum { CRONRUN_DB_SLOT_FREE = 0, CRONRUN_DB_SLOT_CLAIMING = 1, CRONRUN_DB_SLOT_READY = 2 };

/* Header flags, set by the runner. */
/* The TSC is invariant and the kernel's clocksource: processes may time with
 * rdtsc (~18 ns here) instead of clock_gettime (~80 ns in a VM) and add raw ticks
 * to busy_ticks; the runner converts them with a frequency it measures itself
 * between creating and reading the file. */
#define CRONRUN_DB_FLAG_TSC 1u

struct cronrun_db_backend_counters {
  uint64_t queries;    /* statements executed */
  uint64_t prepares;   /* explicit prepares */
  uint64_t busy_ns;    /* per-connection busy time (send until results read), ns */
  uint64_t busy_ticks; /* the same, from processes timing with the TSC */
  uint64_t processes;  /* processes in which this client library was seen */
};

struct cronrun_db_proc_slot {
  uint32_t state;
  uint32_t reserved;
  char name[CRONRUN_DB_PROC_NAME];
  uint64_t queries;
};

struct cronrun_db_shm {
  /* Written by the runner only. */
  uint32_t magic;
  uint32_t version;
  uint32_t total_size;    /* sizeof(struct cronrun_db_shm) */
  uint32_t backend_count; /* CRONRUN_DB_NBACKENDS */
  uint32_t proc_slot_count;
  uint32_t flags; /* CRONRUN_DB_FLAG_* */
  /* Added to by the library. */
  uint64_t processes;             /* processes the library attached to (exec'd or forked) */
  uint64_t processes_with_client; /* of those, processes that loaded a DB client library */
  uint64_t resolve_failures;      /* a wrapper could not find the real function */
  uint64_t proc_overflow;         /* queries whose program found no free slot */
  struct cronrun_db_backend_counters backend[CRONRUN_DB_NBACKENDS];
  struct cronrun_db_proc_slot proc[CRONRUN_DB_PROC_SLOTS];
};

#endif /* CRONRUN_DB_SHM_H */
