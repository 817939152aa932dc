// Errors are values. An Error is born where a syscall or parser fails, carrying
// errno, the operation and the path it touched, and gains context on the way up
// ("creating cgroup for job 'x'"). Only the top of a program logs it.
//
// An Error has a kind: what sort of failure it is, so that the top maps kinds to
// exit codes and records in one place instead of callers passing a second value
// (a fault code, a flag) beside the error.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>
#include <vector>

namespace cronrun {

// What went wrong, as far as the caller must tell cases apart.
enum class ErrorKind {
  other,      // nothing more specific is known
  usage,      // a flag or argument that does not parse (exit 125, nothing recorded)
  config,     // a job config file or a setting's value
  system,     // a syscall failed (errno says which way)
  history,    // the run's history / journal cannot be opened or written
  not_found,  // a file the caller expected is missing
  permission, // not allowed to read or write it
  busy,       // held by someone else (a lock, a database writer)
  corrupt,    // there, but not what it should be (damaged, not ours)
  newer,      // written by a newer version than this build understands
};
const char* to_string(ErrorKind k);

class Error {
 public:
  Error() = default;
  // A plain message (parsers, validation).
  explicit Error(std::string message, ErrorKind kind = ErrorKind::other)
      : kind_(kind), message_(std::move(message)) {}
  // A syscall failure: `op` is the call ("openat", "write"), `path` what it touched.
  // Its kind is `system`.
  static Error sys(std::string op, std::string path, int err = errno);

  ErrorKind kind() const { return kind_; }
  // Reclassifies the error (a failed open of the history is a `history` fault
  // whatever its errno); the message is unchanged.
  Error&& with_kind(ErrorKind kind) && {
    kind_ = kind;
    return std::move(*this);
  }
  Error& with_kind(ErrorKind kind) & {
    kind_ = kind;
    return *this;
  }

  int err() const { return errno_; }
  const std::string& op() const { return op_; }
  const std::string& path() const { return path_; }

  // Adds outer context; the final text reads outermost first:
  // "creating cgroup for job 'x': mkdir /sys/fs/cgroup/...: Permission denied".
  Error&& context(std::string what) &&;
  Error& context(std::string what) &;

  std::string message() const;

 private:
  ErrorKind kind_ = ErrorKind::other;
  int errno_ = 0;
  std::string op_;
  std::string path_;
  std::string message_;
  std::vector<std::string> context_;  // innermost first
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string message, ErrorKind kind = ErrorKind::other) {
  return std::unexpected(Error(std::move(message), kind));
}
inline std::unexpected<Error> fail_sys(std::string op, std::string path, int err = errno) {
  return std::unexpected(Error::sys(std::move(op), std::move(path), err));
}

}  // namespace cronrun
