/* dl_probe.so: preloaded after libcronrun-db.so to check that our dlsym
 * trampoline keeps RTLD_NEXT relative to the real caller. This library defines
 * getuid and asks for the next one: correct is libc's; a wrapper that called
 * dlsym itself would make the lookup start after libcronrun-db.so and return
 * this library's own getuid. Prints "dl_probe: ok" or "dl_probe: BROKEN". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <unistd.h>

__attribute__((visibility("default"))) uid_t getuid(void) {
  uid_t (*next)(void) = (uid_t(*)(void))dlsym(RTLD_NEXT, "getuid");
  return next && next != getuid ? next() : (uid_t)-1;
}

__attribute__((constructor)) static void probe(void) {
  void *next = dlsym(RTLD_NEXT, "getuid");
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *want = libc ? dlsym(libc, "getuid") : NULL;
  const char *msg = next && next == want && next != (void *)getuid ? "dl_probe: ok\n" : "dl_probe: BROKEN\n";
  if (write(1, msg, strlen(msg)) < 0) _exit(3);
}
