/* has_preload: prints "loaded" if libcronrun-db.so is mapped into this process,
 * else "absent". Installed setuid (another user) by the DB tier to show that a
 * setuid program in a job does not load the counter. */
#include <stdio.h>
#include <string.h>

int main(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "libcronrun-db.so")) found = 1;
  if (f) fclose(f);
  puts(found ? "loaded" : "absent");
  return 0;
}
