#include "runner/nonblocking_fd.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

namespace cronrun {

NonblockingTarget open_nonblocking(int fd) {
  NonblockingTarget t;
  t.write_fd = fd;
  t.proc = fmt::format("/proc/self/fd/{}", fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    t.open_errno = errno;
    t.how = WriteHow::dead;
    return t;
  }
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    t.how = WriteHow::direct;
    return t;
  }
  if (S_ISSOCK(st.st_mode)) {
    t.how = WriteHow::send;
    return t;
  }
  int own = ::open(t.proc.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat own_st {};
  if (own >= 0 && ::fstat(own, &own_st) == 0 && own_st.st_dev == st.st_dev && own_st.st_ino == st.st_ino) {
    t.own.reset(own);
    t.write_fd = own;
    t.how = WriteHow::nonblocking;
    return t;
  }
  t.open_errno = own >= 0 ? ESTALE : errno;
  if (own >= 0) ::close(own);
  t.how = WriteHow::gated;
  return t;
}

ssize_t write_nonblocking(WriteHow how, int fd, const char* data, size_t len) {
  if (len == 0) return 0;
  ssize_t n = -1;
  switch (how) {
    case WriteHow::dead:
      return 0;
    case WriteHow::direct:
    case WriteHow::nonblocking:
      n = ::write(fd, data, len);
      break;
    case WriteHow::send:
      n = ::send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
      break;
    case WriteHow::gated: {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 0) <= 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP))) return 0;
      n = ::write(fd, data, std::min<size_t>(len, PIPE_BUF));
      break;
    }
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  return n;
}

}  // namespace cronrun
