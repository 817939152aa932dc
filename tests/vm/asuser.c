/* cronrun-vm-asuser: run a command as an ordinary user, for the VM scenarios.
 *
 *   cronrun-vm-asuser UID GID COMMAND [ARG...]
 *
 * Drops supplementary groups, then the gid, then the uid (in that order: after
 * setuid the others are no longer permitted), and execs COMMAND with the
 * environment unchanged. No setuid bit is involved anywhere: the scenarios check
 * that cronrun works unprivileged in a delegated subtree, so the user's process
 * must carry no leftover privilege (no_new_privs makes that explicit).
 * busybox su needs a shadow file and a shell lookup; this needs nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: cronrun-vm-asuser UID GID COMMAND [ARG...]\n");
    return 125;
  }
  uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
  gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
  if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
    fprintf(stderr, "cronrun-vm-asuser: dropping to %u:%u: %s\n", uid, gid, strerror(errno));
    return 125;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fprintf(stderr, "cronrun-vm-asuser: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
    return 125;
  }
  execvp(argv[3], argv + 3);
  fprintf(stderr, "cronrun-vm-asuser: exec %s: %s\n", argv[3], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
