/* libcronrun-db.so core: attaching to the run's counter file, finding the real
 * client functions, and the per-connection busy table.
 *
 * Attaching happens once per exec in the constructor: the path comes from
 * secure_getenv (so a setuid program that still loaded us stays inert), the file is
 * opened O_NOFOLLOW, must be a regular file owned by our euid, private (no group /
 * other bits), exactly the expected size, and carry the runner's magic and version.
 * Anything else leaves the library inert: wrappers then only pass calls through.
 * After that the hot path makes no syscalls: relaxed atomic adds on the MAP_SHARED
 * page and a time stamp (rdtsc, or clock_gettime through the vDSO). A fork()ed child
 * inherits the mapping; it counts as a process of its own once it runs a query.
 *
 * Resolving the real function: dlsym(RTLD_NEXT) finds it when the client library is
 * in the global scope (linked, or dlopen'ed RTLD_GLOBAL). Perl's DBD::Pg /
 * DBD::mysql and Python's psycopg2 dlopen their extension RTLD_LOCAL, so its libpq is
 * only in that extension's local scope: we then look the symbol up through the
 * caller's own object (dlopen(caller, RTLD_NOLOAD) + dlsym), which searches exactly
 * the dependencies the caller was linked against. psycopg 3 (ctypes) gets its
 * pointers from dlsym on a handle; db_dl.c hands it our wrapper and records the real
 * function here. A lookup that still fails is counted in resolve_failures and the
 * wrapper returns the library's own error value instead of crashing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_internal.h"

struct cronrun_db_shm *cr_shm;
int cr_use_tsc;
struct cronrun_db_proc_slot *cr_proc;
void *cr_fn[CR_NSYMS];
struct cr_range cr_ranges[CR_MAX_RANGES];
int cr_nranges;

/* Defined in db_dl.c: libc's own dlsym / dlopen (our exported ones are trampolines). */
CR_HIDDEN void *cr_libc_dlsym(void *handle, const char *name);
CR_HIDDEN void *cr_libc_dlopen(const char *file, int flags);
CR_HIDDEN void cr_dl_init(void);

static const char *const kNames[CR_NSYMS] = {
#define CR_NAME(name, backend) #name,
    CR_WRAPPED(CR_NAME) CR_HELPERS(CR_NAME)
#undef CR_NAME
};
static const unsigned char kBackend[CR_NSYMS] = {
#define CR_BACKEND(name, backend) backend,
    CR_WRAPPED(CR_BACKEND) CR_HELPERS(CR_BACKEND)
#undef CR_BACKEND
};

/* Our own wrappers' addresses (linked -Bsymbolic, so these are ours even when the
 * program defines the same name). The types do not matter for taking addresses. */
#define CR_DECL(name, backend) extern void name(void);
CR_WRAPPED(CR_DECL)
#undef CR_DECL
static void (*const kSelf[CR_N_WRAPPED])(void) = {
#define CR_SELF(name, backend) name,
    CR_WRAPPED(CR_SELF)
#undef CR_SELF
};

void *cr_wrapper_addr(int sym) { return sym >= 0 && sym < CR_N_WRAPPED ? (void *)kSelf[sym] : NULL; }

int cr_wrapped_sym(const char *name) {
  /* Cheap prefilter: dlsym is called a lot by some programs (loaders, plugins). */
  if (!name || !((name[0] == 'P' && name[1] == 'Q') || name[0] == 'm' || name[0] == 's')) return -1;
  for (int i = 0; i < CR_N_WRAPPED; i++)
    if (!strcmp(name, kNames[i])) return i;
  return -1;
}

/* ---- which client libraries this process has: per-process bitmask ---- */

static unsigned cr_seen_mask;          /* bit per backend */
static unsigned char cr_failed[CR_NSYMS]; /* resolve failure already counted */

static void cr_mark_backend(int backend) {
  unsigned bit = 1u << backend;
  unsigned old = __atomic_fetch_or(&cr_seen_mask, bit, __ATOMIC_RELAXED);
  if (!cr_shm || (old & bit)) return;
  cr_add(&cr_shm->backend[backend].processes, 1);
  if (!old) cr_add(&cr_shm->processes_with_client, 1);
}

static int cr_backend_of_soname(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!strncmp(base, "libpq.so", 8) || !strncmp(base, "libpq-", 6)) return CRONRUN_DB_PG;
  if (!strncmp(base, "libmariadb.so", 13) || !strncmp(base, "libmysqlclient.so", 17) ||
      !strncmp(base, "libmariadbclient.so", 19))
    return CRONRUN_DB_MYSQL;
  if (!strncmp(base, "libsqlite3.so", 13)) return CRONRUN_DB_SQLITE;
  return -1;
}

/* ---- client library address ranges ---- */

static int cr_range_lock;

static void cr_add_range(uintptr_t lo, uintptr_t hi) {
  while (__atomic_exchange_n(&cr_range_lock, 1, __ATOMIC_ACQUIRE)) {
  }
  int n = cr_nranges;
  int dup = 0;
  for (int i = 0; i < n; i++)
    if (cr_ranges[i].lo == lo) dup = 1;
  if (!dup && n < CR_MAX_RANGES) {
    cr_ranges[n].lo = lo;
    cr_ranges[n].hi = hi;
    __atomic_store_n(&cr_nranges, n + 1, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&cr_range_lock, 0, __ATOMIC_RELEASE);
}

struct cr_phdr_query {
  uintptr_t base; /* register the object loaded here; 0: every client library by soname */
};

static void cr_range_of(struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi) {
  *lo = UINTPTR_MAX;
  *hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
    if (s < *lo) *lo = s;
    if (e > *hi) *hi = e;
  }
}

static int cr_phdr_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct cr_phdr_query *q = data;
  uintptr_t lo, hi;
  if (q->base) {
    if (info->dlpi_addr != q->base) return 0;
    cr_range_of(info, &lo, &hi);
    if (lo < hi) cr_add_range(lo, hi);
    return 1;
  }
  if (!info->dlpi_name || !info->dlpi_name[0]) return 0;
  int backend = cr_backend_of_soname(info->dlpi_name);
  if (backend < 0) return 0;
  cr_range_of(info, &lo, &hi);
  if (lo < hi) cr_add_range(lo, hi);
  cr_mark_backend(backend);
  return 0;
}

/* Registers the object that defines `fn` as a client library of `backend`. */
static void cr_register_object_of(void *fn, int backend) {
  Dl_info info;
  struct link_map *lm = NULL;
  if (dladdr1(fn, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm) {
    struct cr_phdr_query q = {.base = lm->l_addr};
    if (lm->l_addr) dl_iterate_phdr(cr_phdr_cb, &q); /* 0: a non-PIE executable; no range */
  }
  cr_mark_backend(backend);
}

void cr_note_real(int sym, void *fn) {
  if (!fn || sym < 0 || sym >= CR_NSYMS) return;
  void *expected = NULL;
  if (__atomic_compare_exchange_n(&cr_fn[sym], &expected, fn, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
    cr_register_object_of(fn, kBackend[sym]);
}

/* Looks `name` up in the local scope of the object containing `addr`: that object
 * and its DT_NEEDED libraries, wherever they sit (global or RTLD_LOCAL). */
static void *cr_lookup_via(const void *addr, const char *name, void *self) {
  Dl_info info;
  struct link_map *lm = NULL;
  if (!addr || !dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm || !lm->l_name || !lm->l_name[0])
    return NULL;
  void *h = cr_libc_dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD);
  if (!h) return NULL;
  void *fn = cr_libc_dlsym(h, name);
  dlclose(h);
  return fn == self ? NULL : fn;
}

void *cr_resolve_slow(int sym, void *caller) {
  const char *name = kNames[sym];
  void *self = cr_wrapper_addr(sym);
  void *fn = cr_libc_dlsym(RTLD_NEXT, name);
  if (fn == self) fn = NULL;
  /* The caller's own dependencies (DBD::Pg, psycopg2: client loaded RTLD_LOCAL). */
  if (!fn) fn = cr_lookup_via(caller, name, self);
  /* The client library already found for this backend: a helper such as
   * PQtransactionStatus called from a wrapper whose caller is libffi (psycopg 3). */
  for (int j = 0; !fn && j < CR_NSYMS; j++) {
    void *known = j == sym || kBackend[j] != kBackend[sym] ? NULL : __atomic_load_n(&cr_fn[j], __ATOMIC_ACQUIRE);
    if (known) fn = cr_lookup_via(known, name, self);
  }
  if (!fn) {
    /* Maybe another thread or the dlsym interception found it meanwhile. */
    fn = __atomic_load_n(&cr_fn[sym], __ATOMIC_ACQUIRE);
    if (fn) return fn;
    if (cr_shm && !__atomic_exchange_n(&cr_failed[sym], 1, __ATOMIC_RELAXED))
      cr_add(&cr_shm->resolve_failures, 1);
    errno = ENOSYS;
    return NULL;
  }
  cr_note_real(sym, fn);
  return __atomic_load_n(&cr_fn[sym], __ATOMIC_ACQUIRE);
}

/* ---- per-program slots ---- */

static void cr_program_name(char out[CRONRUN_DB_PROC_NAME]) {
  /* comm: the executable's (or, for a #! script, the script's) basename. */
  char comm[17] = {0};
  if (prctl(PR_GET_NAME, comm, 0, 0, 0) != 0 || !comm[0]) strcpy(comm, "unknown");
  size_t i = 0;
  for (; comm[i] && i < CRONRUN_DB_PROC_NAME - 1; i++) {
    char c = comm[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
             c == '.' || c == '-';
    out[i] = ok ? c : '_';
  }
  out[i] = 0;
}

static struct cronrun_db_proc_slot *cr_claim_slot(const char *name) {
  for (int i = 0; i < CRONRUN_DB_PROC_SLOTS; i++) {
    struct cronrun_db_proc_slot *s = &cr_shm->proc[i];
    uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (st == CRONRUN_DB_SLOT_FREE) {
      uint32_t expected = CRONRUN_DB_SLOT_FREE;
      if (__atomic_compare_exchange_n(&s->state, &expected, CRONRUN_DB_SLOT_CLAIMING, 0, __ATOMIC_ACQUIRE,
                                      __ATOMIC_ACQUIRE)) {
        memcpy(s->name, name, CRONRUN_DB_PROC_NAME);
        __atomic_store_n(&s->state, CRONRUN_DB_SLOT_READY, __ATOMIC_RELEASE);
        return s;
      }
      st = expected;
    }
    /* Another process is writing its name: it takes a few ns; a killed claimer
     * leaves the slot CLAIMING forever, so wait only briefly and then skip it. */
    for (int spin = 0; st == CRONRUN_DB_SLOT_CLAIMING && spin < 100000; spin++)
      st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (st == CRONRUN_DB_SLOT_READY && !strncmp(s->name, name, CRONRUN_DB_PROC_NAME)) return s;
  }
  return NULL;
}

/* ---- attach ---- */

static struct cronrun_db_shm *cr_map_counter_file(const char *path) {
  int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return NULL;
  struct stat st;
  void *p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077) == 0 &&
      st.st_size == (off_t)sizeof(struct cronrun_db_shm))
    p = mmap(NULL, sizeof(struct cronrun_db_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return NULL;
  struct cronrun_db_shm *shm = p;
  if (shm->magic != CRONRUN_DB_MAGIC || shm->version != CRONRUN_DB_VERSION ||
      shm->total_size != sizeof(struct cronrun_db_shm) || shm->backend_count != CRONRUN_DB_NBACKENDS ||
      shm->proc_slot_count != CRONRUN_DB_PROC_SLOTS) {
    munmap(p, sizeof(struct cronrun_db_shm));
    return NULL;
  }
  return shm;
}

/* A fork()ed child shares the mapping and the program slot. It becomes a process
 * of its own in the figures when it runs its first query: most children exec at
 * once and are then counted by the new image's constructor, and counting them at
 * fork too would count every exec'd child twice. */
int cr_fork_pending;

void cr_count_forked(void) {
  cr_fork_pending = 0;
  cr_add(&cr_shm->processes, 1);
  unsigned mask = __atomic_load_n(&cr_seen_mask, __ATOMIC_RELAXED);
  if (mask) cr_add(&cr_shm->processes_with_client, 1);
  for (int b = 0; b < CRONRUN_DB_NBACKENDS; b++)
    if (mask & (1u << b)) cr_add(&cr_shm->backend[b].processes, 1);
}

static void cr_after_fork_child(void) {
  cr_fork_pending = 1;
  /* Only this thread survives the fork; a range lock another thread held is free. */
  __atomic_store_n(&cr_range_lock, 0, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void cr_init(void) {
  cr_dl_init();
  const char *path = secure_getenv(CRONRUN_DB_ENV);
  if (!path || path[0] != '/') return;
  int saved_errno = errno;
  struct cronrun_db_shm *shm = cr_map_counter_file(path);
  errno = saved_errno;
  if (!shm) return;
  char name[CRONRUN_DB_PROC_NAME];
  cr_program_name(name);
#if defined(__x86_64__)
  /* rdtsc can be made to fault (PR_SET_TSC, e.g. under rr): then use the clock. */
  int tsc_mode = 0;
  if ((shm->flags & CRONRUN_DB_FLAG_TSC) && prctl(PR_GET_TSC, &tsc_mode, 0, 0, 0) == 0 && tsc_mode == PR_TSC_ENABLE)
    cr_use_tsc = 1;
#endif
  cr_shm = shm;
  cr_add(&cr_shm->processes, 1);
  cr_proc = cr_claim_slot(name);
  /* Client libraries linked at startup; later dlopen()s register on first call. */
  unsigned mask_before = __atomic_load_n(&cr_seen_mask, __ATOMIC_RELAXED);
  if (mask_before) {
    /* A wrapper ran before this constructor (another library's constructor):
     * count what it saw now that the file is attached. */
    __atomic_store_n(&cr_seen_mask, 0, __ATOMIC_RELAXED);
    for (int b = 0; b < CRONRUN_DB_NBACKENDS; b++)
      if (mask_before & (1u << b)) cr_mark_backend(b);
  }
  struct cr_phdr_query q = {.base = 0};
  dl_iterate_phdr(cr_phdr_cb, &q);
  pthread_atfork(NULL, NULL, cr_after_fork_child);
}

/* A client library dlopen()ed later (Python's _sqlite3, DBD::Pg) registers on its
 * first wrapped call; one that was loaded but never called is found here, on a
 * normal exit. (dlopen itself cannot be post-processed: see db_dl.c.) */
__attribute__((destructor)) static void cr_fini(void) {
  if (!cr_shm) return;
  struct cr_phdr_query q = {.base = 0};
  dl_iterate_phdr(cr_phdr_cb, &q);
}

/* ---- per-connection busy table ---- */

#define CR_CONN_SLOTS 4096 /* power of two */
#define CR_CONN_PROBE 64
#define CR_TOMBSTONE ((uintptr_t)1)

struct cr_conn {
  uintptr_t key;
  uint64_t start_ns; /* 0: idle */
};
static struct cr_conn cr_conns[CR_CONN_SLOTS];

static inline size_t cr_hash(uintptr_t k) {
  k ^= k >> 17;
  k *= 0x9E3779B97F4A7C15ull;
  return (size_t)(k >> 40) & (CR_CONN_SLOTS - 1);
}

static struct cr_conn *cr_conn_find(const void *key, int create) {
  uintptr_t k = (uintptr_t)key;
  if (k <= CR_TOMBSTONE) return NULL;
  size_t h = cr_hash(k);
  struct cr_conn *tomb = NULL;
  for (size_t i = 0; i < CR_CONN_PROBE; i++) {
    struct cr_conn *e = &cr_conns[(h + i) & (CR_CONN_SLOTS - 1)];
    uintptr_t cur = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);
    if (cur == k) return e;
    if (cur == CR_TOMBSTONE) {
      if (!tomb) tomb = e;
      continue;
    }
    if (cur != 0) continue;
    if (!create) return NULL;
    if (tomb) e = tomb;
    uintptr_t expected = tomb ? CR_TOMBSTONE : 0;
    if (__atomic_compare_exchange_n(&e->key, &expected, k, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&e->start_ns, 0, __ATOMIC_RELAXED);
      return e;
    }
    if (expected == k) return e;
    return NULL; /* lost a race for this slot; time the call only */
  }
  if (create && tomb) {
    uintptr_t expected = CR_TOMBSTONE;
    if (__atomic_compare_exchange_n(&tomb->key, &expected, k, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&tomb->start_ns, 0, __ATOMIC_RELAXED);
      return tomb;
    }
  }
  return NULL;
}

int cr_busy_begin(const void *key, uint64_t now_ns) {
  struct cr_conn *e = cr_conn_find(key, 1);
  if (!e) return 0;
  uint64_t expected = 0;
  __atomic_compare_exchange_n(&e->start_ns, &expected, now_ns, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return 1;
}

uint64_t cr_busy_end(const void *key, uint64_t now_ns) {
  struct cr_conn *e = cr_conn_find(key, 0);
  if (!e) return 0;
  uint64_t start = __atomic_exchange_n(&e->start_ns, 0, __ATOMIC_RELAXED);
  return start && now_ns > start ? now_ns - start : 0;
}

uint64_t cr_busy_forget(const void *key, uint64_t now_ns) {
  struct cr_conn *e = cr_conn_find(key, 0);
  if (!e) return 0;
  uint64_t start = __atomic_exchange_n(&e->start_ns, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&e->key, CR_TOMBSTONE, __ATOMIC_RELEASE);
  return start && now_ns > start ? now_ns - start : 0;
}
