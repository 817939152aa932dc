// Owner types for file descriptors. Every fd the project opens is O_CLOEXEC from
// birth so the lock, the history database and cgroup dirs never leak into a job.
#pragma once

#include <unistd.h>

#include <string>
#include <utility>

#include "common/error.h"

namespace cronrun {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// open(2)/openat(2) with O_CLOEXEC added; errors carry errno and the path.
Result<UniqueFd> open_fd(const std::string& path, int flags, mode_t mode = 0);
Result<UniqueFd> open_at(int dirfd, const std::string& name, int flags, mode_t mode = 0);

// Whole-file helpers for small kernel files (cgroup, /proc). `path_for_errors`
// names the file in messages when reading through a dir fd.
Result<std::string> read_file(const std::string& path);
Result<std::string> read_file_at(int dirfd, const std::string& name, const std::string& path_for_errors);
Result<void> write_file_at(int dirfd, const std::string& name, const std::string& value,
                           const std::string& path_for_errors);
// For main(), before anything is opened: each of 0, 1 and 2 that is closed
// (`cronrun ... >&-`, a daemon's child) is put on /dev/null, or the first file
// opened would take its number (a lock file or history becoming stdout). False
// when /dev/null cannot be opened in its place; write a message to fd 2 then.
bool open_standard_fds();
// Writes all of `data`, retrying on EINTR and short writes.
Result<void> write_all(int fd, const std::string& data, const std::string& path_for_errors);

}  // namespace cronrun
