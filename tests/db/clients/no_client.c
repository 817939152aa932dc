/* no_client: finds PQexec and sqlite3_step with dlsym(RTLD_DEFAULT) although no
 * client library is loaded. Under the counter that finds our wrappers, which
 * must fail like the library would (NULL / SQLITE_ERROR), count a resolve
 * failure, and not crash. Prints what it found and got. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
  void *(*pq)(void *, const char *) = (void *(*)(void *, const char *))dlsym(RTLD_DEFAULT, "PQexec");
  int (*step)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "sqlite3_step");
  printf("PQexec %s", pq ? "found" : "absent");
  if (pq) printf(" -> %s", pq(NULL, "SELECT 1") ? "result" : "NULL");
  printf("; sqlite3_step %s", step ? "found" : "absent");
  if (step) printf(" -> %d", step(NULL));
  printf("\n");
  return 0;
}
