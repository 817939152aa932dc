// The pid-file lock: one copy of a job at a time on this host.
//
// flock(2) on a pid file opened O_CLOEXEC, so no job process inherits the lock and
// a crashed runner releases it with its last fd. The file is never unlinked:
// unlinking a flock file lets a waiter lock an orphaned inode while a newcomer
// locks a fresh one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "common/error.h"
#include "common/fd.h"

namespace cronrun {

class PidFileLock {
 public:
  struct Busy {
    std::optional<pid_t> holder_pid;  // from the pid file, when readable
    double waited_s = 0;
  };

  // Takes the lock, waiting up to `wait`. Creates the directory of a default path
  // safely: `private_dir` means a per-user 0700 directory whose owner is checked and
  // which must not be a symlink. Returns Busy when another runner holds it.
  static Result<std::variant<PidFileLock, Busy>> acquire(const std::string& path, std::chrono::milliseconds wait,
                                                         bool private_dir);

  const std::string& path() const { return path_; }
  double waited_s() const { return waited_s_; }

 private:
  PidFileLock(UniqueFd fd, std::string path, double waited_s)
      : fd_(std::move(fd)), path_(std::move(path)), waited_s_(waited_s) {}
  UniqueFd fd_;
  std::string path_;
  double waited_s_ = 0;
};

// mkdir -p for the parent directories of a path; `mode` for the ones it creates.
Result<void> make_dirs(const std::string& dir, mode_t mode);
// Creates (if needed) a directory that only the caller may use: owned by euid,
// no group/other access, not a symlink. Refuses one that fails those checks.
Result<void> ensure_private_dir(const std::string& dir);

}  // namespace cronrun
