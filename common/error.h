// Errors are values. An Error is born where a syscall or parser fails, carrying
// errno, the operation and the path it touched, and gains context on the way up
// ("creating cgroup for job 'x'"). Only the top of a program logs it.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>
#include <vector>

namespace cronrun {

class Error {
 public:
  Error() = default;
  // A plain message (parsers, validation).
  explicit Error(std::string message) : message_(std::move(message)) {}
  // A syscall failure: `op` is the call ("openat", "write"), `path` what it touched.
  static Error sys(std::string op, std::string path, int err = errno);

  int err() const { return errno_; }
  const std::string& op() const { return op_; }
  const std::string& path() const { return path_; }

  // Adds outer context; the final text reads outermost first:
  // "creating cgroup for job 'x': mkdir /sys/fs/cgroup/...: Permission denied".
  Error&& context(std::string what) &&;
  Error& context(std::string what) &;

  std::string message() const;

 private:
  int errno_ = 0;
  std::string op_;
  std::string path_;
  std::string message_;
  std::vector<std::string> context_;  // innermost first
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string message) {
  return std::unexpected(Error(std::move(message)));
}
inline std::unexpected<Error> fail_sys(std::string op, std::string path, int err = errno) {
  return std::unexpected(Error::sys(std::move(op), std::move(path), err));
}

}  // namespace cronrun
