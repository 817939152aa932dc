// The pid-file lock: one copy of a job at a time on this host.
//
// flock(2) on a pid file opened O_CLOEXEC, so no job process inherits the lock and
// a crashed runner releases it with its last fd. The file is never unlinked:
// unlinking a flock file lets a waiter lock an orphaned inode while a newcomer
// locks a fresh one.
//
// The lock path may sit where other users write, or be a mistake (`--lock` taking
// the command as its path when `--` is forgotten). So the file is opened relative
// to a checked directory fd (common/safe_file.h), never through a symlink a
// neighbour planted, and an existing file is used only if it is a regular file
// holding nothing or a pid: anything else is refused, never overwritten.
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

  // Where the lock's directory comes from.
  enum class Dir {
    must_exist,      // an explicit --lock PATH: its directory must exist and pass the check
    create,          // root's default /run/cronrun/locks: made 0755 if missing, ours
    create_private,  // a user's default: made 0700 if missing, ours, nobody else's access
  };

  // Takes the lock, waiting up to `wait`. Returns Busy when another runner holds it.
  static Result<std::variant<PidFileLock, Busy>> acquire(const std::string& path, std::chrono::milliseconds wait,
                                                         Dir dir);

  const std::string& path() const { return path_; }
  double waited_s() const { return waited_s_; }

 private:
  PidFileLock(UniqueFd fd, std::string path, double waited_s)
      : fd_(std::move(fd)), path_(std::move(path)), waited_s_(waited_s) {}
  UniqueFd fd_;
  std::string path_;
  double waited_s_ = 0;
};

// Whether `content` is what a cronrun lock file holds: nothing, or a pid line
// (digits and newlines only; a runner mid-rewrite may leave a shorter pid line
// over a longer one for a moment).
bool looks_like_pid_file(std::string_view content);

}  // namespace cronrun
