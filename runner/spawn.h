// Starting the job inside its cgroup without a window in which it runs outside.
//
// v2: clone3(CLONE_INTO_CGROUP | CLONE_PIDFD) puts the child in the job cgroup
// atomically. v1 / hybrid (and the CRONRUN_FORCE_SPAWN=handshake test hook): fork,
// the child blocks on a pipe until the parent has attached it to every hierarchy,
// then execs. Between clone and exec the child only makes async-signal-safe calls
// on memory the parent prepared; exec failures come back as an errno over a
// CLOEXEC pipe (EOF there means the exec succeeded).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "runner/job_spec.h"

namespace cronrun {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] as given; resolved along PATH in the child
  std::vector<std::string> env;   // full environment, KEY=VALUE
  std::string path_env;           // PATH used to resolve argv[0] without '/'
  int cgroup_fd = -1;             // >= 0: clone3 into this v2 cgroup
  bool handshake = false;         // child waits until release()
  int stdout_fd = -1;             // -1: inherit
  int stderr_fd = -1;
  std::optional<int> nice;
  std::optional<IoNice> ionice;
  std::vector<std::pair<int, rlim_t>> rlimits;  // resource, soft=hard limit
};

class Child {
 public:
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  // "clone3" or "fork+handshake" or "fork".
  const char* method() const { return method_; }

  // Lets a handshake child go on to exec (after the parent attached it).
  Result<void> release();
  // Waits for the exec outcome: nullopt when exec succeeded, else the errno.
  Result<std::optional<int>> exec_result();

 private:
  friend Result<Child> spawn(const SpawnRequest& req);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd go_write_;
  UniqueFd status_read_;
  const char* method_ = "fork";
};

// Starts the child. The caller owns it from here: it must be waited for.
Result<Child> spawn(const SpawnRequest& req);

}  // namespace cronrun
