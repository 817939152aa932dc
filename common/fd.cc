// Small-file I/O through owned fds. Kernel pseudo-files (cgroupfs, procfs) report
// size 0, so reads loop until EOF instead of trusting fstat.
#include "common/fd.h"

#include <fcntl.h>

#include <cerrno>

namespace cronrun {

Result<UniqueFd> open_fd(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return fail_sys("open", path);
  return UniqueFd(fd);
}

Result<UniqueFd> open_at(int dirfd, const std::string& name, int flags, mode_t mode) {
  int fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return fail_sys("openat", name);
  return UniqueFd(fd);
}

namespace {

Result<std::string> read_all(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_sys("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Result<std::string> read_file(const std::string& path) {
  auto fd = open_fd(path, O_RDONLY);
  if (!fd) return std::unexpected(fd.error());
  return read_all(fd->get(), path);
}

Result<std::string> read_file_at(int dirfd, const std::string& name, const std::string& path_for_errors) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", path_for_errors);
  UniqueFd owner(fd);
  return read_all(fd, path_for_errors);
}

Result<void> write_all(int fd, const std::string& data, const std::string& path_for_errors) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_sys("write", path_for_errors);
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

Result<void> write_file_at(int dirfd, const std::string& name, const std::string& value,
                           const std::string& path_for_errors) {
  int fd = ::openat(dirfd, name.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", path_for_errors);
  UniqueFd owner(fd);
  // cgroupfs takes one value per write(2); a short write is an error there.
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_sys("write", path_for_errors);
  if (static_cast<size_t>(n) != value.size()) return fail_sys("write", path_for_errors, EIO);
  return {};
}

bool open_standard_fds() {
  // open() takes the lowest free number, so filling them in order puts each on
  // its own number.
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int got = ::open("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY) | O_NOCTTY);
    if (got != fd) {
      if (got >= 0) ::close(got);
      return false;
    }
  }
  return true;
}

}  // namespace cronrun
