// Starting the job inside its cgroup without a window in which it runs outside.
//
// v2: clone3(CLONE_INTO_CGROUP | CLONE_PIDFD) puts the child in the job cgroup
// atomically. v1 hierarchies (and v2 when clone3 cannot be used): the child joins
// the cgroup itself, before exec, by writing "0" to files the parent opened for it
// (v1 `tasks`, v2 `cgroup.procs`). A task moving only itself through a v1 `tasks`
// file spares the kernel the global threadgroup lock, which otherwise costs every
// run an RCU grace period (6-25 ms measured here); see bench/overhead.sh. On
// hybrid hosts both happen: clone3 into the unified half, self-join for v1.
// Between clone and exec the child only makes async-signal-safe calls on memory
// the parent prepared; a failure there comes back over a CLOEXEC pipe, saying
// which step failed and the errno (EOF there means the exec succeeded).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "runner/job_spec.h"
#include "runner/seccomp_filter.h"

namespace cronrun {

struct SpawnRequest {
  std::string job_name;           // for messages
  std::vector<std::string> argv;  // argv[0] as given; resolved along PATH in the child
  std::vector<std::string> env;   // full environment, KEY=VALUE
  std::string path_env;           // PATH used to resolve argv[0] without '/'
  int cgroup_fd = -1;             // >= 0: clone3 into this v2 cgroup
  // Files the child writes "0" to, in order, before anything else: it joins
  // those cgroups, or exits 125 without running the job if one write fails.
  std::vector<int> join_fds;
  int stdout_fd = -1;             // -1: inherit
  int stderr_fd = -1;
  std::optional<int> nice;
  std::optional<IoNice> ionice;
  std::vector<std::pair<int, rlim_t>> rlimits;  // resource, soft=hard limit
  // The job's syscall filter (nullptr: none), compiled before the fork and
  // installed by the child as its last step before execve (seccomp_filter.h).
  const seccomp::Profile* seccomp = nullptr;
  // Where compiled filters are kept between runs (seccomp_cache.h); "": compile every time.
  std::string seccomp_cache_dir;
};

// Why the child did not get to run the job (see Child::exec_result()).
struct ChildFailure {
  enum class Stage : int32_t { join, setup, exec };
  Stage stage = Stage::exec;
  int32_t index = 0;  // join: which of SpawnRequest::join_fds; setup: see step()
  int32_t err = 0;    // errno
  // The setup step that failed: "dup2 stdout", "setpriority", ...
  const char* step() const;
};

class Child {
 public:
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  // "clone3(CLONE_INTO_CGROUP)" or "fork", with "+join" when the child joined
  // cgroups itself.
  const char* method() const { return method_; }

  // Waits for the exec outcome: nullopt when exec succeeded, else what failed.
  // After a failure the child has exited (or is exiting): the caller reaps it.
  Result<std::optional<ChildFailure>> exec_result();
  // With a filter, once exec_result() said the exec succeeded: the listener the
  // child sent (seccomp_filter.h). An error means the job runs with every notified
  // syscall answered ENOSYS; the caller kills it.
  Result<UniqueFd> take_seccomp_listener();
  bool has_seccomp() const { return static_cast<bool>(seccomp_channel_); }

 private:
  friend Result<Child> spawn(const SpawnRequest& req);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd status_read_;
  UniqueFd seccomp_channel_;  // the parent's end of the listener channel
  const char* method_ = "fork";
};

// Starts the child. The caller owns it from here: it must be waited for.
Result<Child> spawn(const SpawnRequest& req);

}  // namespace cronrun
