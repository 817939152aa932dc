/* dlsym / dlopen interposition.
 *
 * psycopg 3 (Debian's ctypes build) gets libpq's functions with dlsym(handle,
 * "PQexec") and so never goes through the PLT: for a wrapped name looked up on a
 * specific handle we return our wrapper and remember the real function.
 *
 * PHP up to 8.4 loads extensions with RTLD_DEEPBIND, which makes pgsql.so bind to
 * its own libpq ahead of the global scope and so past us. In a PHP process (comm
 * starts with "php") we clear RTLD_DEEPBIND, which is what PHP 8.5 does itself.
 *
 * Both dlsym and dlopen look at their caller's address (RTLD_NEXT is relative to
 * the caller; dlopen searches the caller's DT_RUNPATH), so a C wrapper calling the
 * real function would change their meaning for every program in the job. The
 * exported entry points are therefore x86-64 trampolines that end in a tail jump,
 * leaving the caller's return address in place. On other architectures we do not
 * interpose them (psycopg 3 and PHP stay blind spots there).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/prctl.h>

#include "db_internal.h"

typedef void *(*cr_dlsym_fn)(void *, const char *);
typedef void *(*cr_dlopen_fn)(const char *, int);

/* Read by the trampolines; set by cr_dl_load (at the latest on first use). */
CR_HIDDEN cr_dlsym_fn cr_real_dlsym;
CR_HIDDEN cr_dlopen_fn cr_real_dlopen;
CR_HIDDEN unsigned char cr_strip_deepbind;

/* dlvsym(RTLD_NEXT) from here finds libc's versions after us. Called from the
 * constructor and, if a program's dlsym/dlopen runs before it, from the trampoline. */
CR_HIDDEN void cr_dl_load(void) {
  if (!__atomic_load_n(&cr_real_dlsym, __ATOMIC_ACQUIRE)) {
    void *f = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!f) f = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    __atomic_store_n(&cr_real_dlsym, (cr_dlsym_fn)f, __ATOMIC_RELEASE);
  }
  if (!__atomic_load_n(&cr_real_dlopen, __ATOMIC_ACQUIRE)) {
    void *f = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34");
    if (!f) f = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.2.5");
    __atomic_store_n(&cr_real_dlopen, (cr_dlopen_fn)f, __ATOMIC_RELEASE);
  }
}

void cr_dl_init(void) {
  cr_dl_load();
  char comm[17] = {0};
  if (prctl(PR_GET_NAME, comm, 0, 0, 0) == 0 && !strncmp(comm, "php", 3)) cr_strip_deepbind = 1;
}

#if defined(__x86_64__)

CR_HIDDEN void *cr_libc_dlsym(void *handle, const char *name) {
  if (!__atomic_load_n(&cr_real_dlsym, __ATOMIC_ACQUIRE)) cr_dl_load();
  return cr_real_dlsym(handle, name);
}
CR_HIDDEN void *cr_libc_dlopen(const char *file, int flags) {
  if (!__atomic_load_n(&cr_real_dlopen, __ATOMIC_ACQUIRE)) cr_dl_load();
  return cr_real_dlopen(file, flags);
}

/* dlsym on a specific handle (not RTLD_DEFAULT/RTLD_NEXT): the trampoline jumps
 * here. Which object calls does not matter for a handle lookup. */
CR_HIDDEN void *cr_dlsym_handle(void *handle, const char *name) {
  void *real = cr_libc_dlsym(handle, name);
  int sym = real ? cr_wrapped_sym(name) : -1;
  if (sym < 0) return real;
  void *self = cr_wrapper_addr(sym);
  if (real == self) return real;
  cr_note_real(sym, real);
  /* Hand out the wrapper only if it forwards to this very function; a second
   * copy of the library (bundled wheel next to the system one) stays unwrapped. */
  return __atomic_load_n(&cr_fn[sym], __ATOMIC_ACQUIRE) == real ? self : real;
}

/* RTLD_DEFAULT is 0 and RTLD_NEXT is -1 on glibc; RTLD_DEEPBIND is 8. */
__asm__(
    ".text\n"
    ".globl dlsym\n"
    ".type dlsym, @function\n"
    "dlsym:\n"
    "  testq %rdi, %rdi\n"
    "  je 1f\n"
    "  cmpq $-1, %rdi\n"
    "  je 1f\n"
    "  jmp cr_dlsym_handle\n"
    "1:\n"
    "  movq cr_real_dlsym(%rip), %rax\n"
    "  testq %rax, %rax\n"
    "  je 2f\n"
    "  jmp *%rax\n"
    "2:\n"
    "  pushq %rdi\n"
    "  pushq %rsi\n"
    "  subq $8, %rsp\n"
    "  call cr_dl_load\n"
    "  addq $8, %rsp\n"
    "  popq %rsi\n"
    "  popq %rdi\n"
    "  jmp *cr_real_dlsym(%rip)\n"
    ".size dlsym, .-dlsym\n"
    "\n"
    ".globl dlopen\n"
    ".type dlopen, @function\n"
    "dlopen:\n"
    "  cmpb $0, cr_strip_deepbind(%rip)\n"
    "  je 1f\n"
    "  andl $-9, %esi\n"
    "1:\n"
    "  movq cr_real_dlopen(%rip), %rax\n"
    "  testq %rax, %rax\n"
    "  je 2f\n"
    "  jmp *%rax\n"
    "2:\n"
    "  pushq %rdi\n"
    "  pushq %rsi\n"
    "  subq $8, %rsp\n"
    "  call cr_dl_load\n"
    "  addq $8, %rsp\n"
    "  popq %rsi\n"
    "  popq %rdi\n"
    "  jmp *cr_real_dlopen(%rip)\n"
    ".size dlopen, .-dlopen\n");

#else /* no trampolines: call libc directly */

CR_HIDDEN void *cr_libc_dlsym(void *handle, const char *name) { return dlsym(handle, name); }
CR_HIDDEN void *cr_libc_dlopen(const char *file, int flags) { return dlopen(file, flags); }

#endif
