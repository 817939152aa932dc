// Writing to cronrun's own stdout/stderr without ever waiting for their reader
// (see the file-top comment of output.cc for why each way is chosen). Shared by
// the job's output copy (output.cc) and cronrun's own messages (log.cc).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "common/fd.h"

namespace cronrun {

// How bytes reach the target: written directly (regular file, block device),
// through a private O_NONBLOCK reopen (pipe, FIFO, tty), send(MSG_DONTWAIT)
// (socket), one PIPE_BUF write after poll says POLLOUT (reopen refused), or not
// at all (fd not open).
enum class WriteHow { direct, nonblocking, send, gated, dead };

struct NonblockingTarget {
  WriteHow how = WriteHow::dead;
  int write_fd = -1;   // the fd itself, or `own` when reopened
  UniqueFd own;        // the private non-blocking description
  int open_errno = 0;  // dead: fstat's errno; gated: why the reopen was refused
  std::string proc;    // /proc/self/fd/N (for messages)
};

// Classifies `fd` and, for pipes and terminals, reopens it non-blocking.
NonblockingTarget open_nonblocking(int fd);

// One write that never waits: bytes taken, 0 when the target would block (or is
// dead), -1 with errno on a real failure.
ssize_t write_nonblocking(WriteHow how, int fd, const char* data, size_t len);

}  // namespace cronrun
