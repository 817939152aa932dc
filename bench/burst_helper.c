// burst_helper: the two ends of bench/burst.sh's start-latency measurement.
//
//   burst_helper wait READY FIFO -- COMMAND [ARGS]
//       Appends one byte to READY (so the script can count the waiters), then
//       opens FIFO for reading, which blocks until the script opens it for
//       writing: that open is the barrier every waiter of a burst is released
//       from at once. Then execs COMMAND (cronrun, flock -n, ...).
//   burst_helper stamp FILE
//       The job: appends "<CLOCK_REALTIME at exec>\n" to FILE in one O_APPEND
//       write (atomic for a line this short) and exits 0.
//   burst_helper release FIFO
//       Prints CLOCK_REALTIME, then opens FIFO for writing (releasing every
//       waiter), holds it for a second so late openers pass too, and exits.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int usage(void) {
  fprintf(stderr,
          "usage: burst_helper wait READY FIFO -- COMMAND [ARGS] | stamp FILE | release FIFO\n");
  return 2;
}

static int line_now(char* buf, size_t size) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return snprintf(buf, size, "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
}

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  if (strcmp(argv[1], "stamp") == 0) {
    char line[64];
    int n = line_now(line, sizeof line);
    int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
      perror(argv[2]);
      return 1;
    }
    return 0;
  }
  if (strcmp(argv[1], "release") == 0) {
    char line[64];
    line_now(line, sizeof line);
    int fd = open(argv[2], O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      perror(argv[2]);
      return 1;
    }
    fputs(line, stdout);
    fflush(stdout);
    sleep(1);
    return 0;
  }
  if (strcmp(argv[1], "wait") == 0) {
    if (argc < 6 || strcmp(argv[4], "--") != 0) return usage();
    int ready = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (ready < 0 || write(ready, ".", 1) != 1) {
      perror(argv[2]);
      return 1;
    }
    close(ready);
    int fifo = open(argv[3], O_RDONLY | O_CLOEXEC);
    if (fifo < 0) {
      perror(argv[3]);
      return 1;
    }
    close(fifo);
    execvp(argv[5], argv + 5);
    perror(argv[5]);
    return 127;
  }
  return usage();
}
