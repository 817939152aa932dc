// The spawner seam: how the run gets from a prepared request to a running job,
// and what the supervisor may do with that job. The real spawner (SystemSpawner)
// owns the whole start-up: the supervisor's signalfd, clone3(CLONE_INTO_CGROUP)
// with its fallback to fork and self-join (kernels before 5.7, or a cgroup fd
// clone3 refuses), and the child's report of its exec. Tests hand the run a fake
// spawner whose "job" is a script driven by a fake clock.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/error.h"
#include "runner/clock.h"
#include "runner/seccomp_listener.h"
#include "runner/spawn.h"

namespace cronrun {

class Containment;
class OutputCapture;

// What woke the supervisor up.
// A signal cronrun received, and who sent it (signalfd's siginfo).
struct ReceivedSignal {
  int signo = 0;
  std::optional<int64_t> sender_pid;  // null: sent by the kernel (SI_KERNEL), not a process
  std::optional<int64_t> sender_uid;
};

struct Wake {
  std::vector<ReceivedSignal> signals;  // received by cronrun, to forward (SIGCHLD is not one)
  bool main_exited = false;  // the main process has been reaped
};

// Resource use of every reaped descendant (getrusage(RUSAGE_CHILDREN)).
struct ChildUsage {
  std::optional<uint64_t> max_rss_bytes;  // largest single process
  double cpu_user_s = 0, cpu_system_s = 0;
  std::optional<uint64_t> io_read_bytes, io_write_bytes;  // block counts x 512
};

// What the job's syscall filter denied (or, in learn mode, let through), and
// what became of its listener when it broke (`note`; the filter then failed closed).
struct SeccompOutcome {
  seccomp::Summary summary;
  std::optional<std::string> note;
};

// The started job as the supervisor sees it: the main process (by pidfd), its
// process group, the subreaper's reaping, and what the loop waits on.
class RunningJob {
 public:
  virtual ~RunningJob() = default;
  virtual pid_t pid() const = 0;

  // Waits until cronrun receives a signal, the main process exits, `watch_fd`
  // (cgroup.events, -1: none) changes, `output` has work, one of `extra` (the
  // caller's own fds: fleet mode's keepalive pipe and lease timer) is ready, or
  // `timeout` passes (nullopt: no limit). Reaps whatever has exited before
  // returning; `extra`'s revents say what the caller's fds did.
  virtual Result<Wake> wait(std::optional<std::chrono::milliseconds> timeout, int watch_fd, OutputCapture* output,
                            std::span<pollfd> extra) = 0;
  // Reaps every exited descendant (the main process's status is kept).
  virtual void reap() = 0;
  virtual bool exited() const = 0;
  virtual int wait_status() const = 0;  // of the main process, once exited()

  // Sends `sig` to the main process (nothing once it is reaped: its pid may be
  // reused) / to the job's process group (the job leads its own, setsid).
  // "No such process" is success: the target is already gone.
  virtual Result<void> signal_main(int sig) = 0;
  virtual Result<void> signal_group(int sig) = 0;
  virtual bool group_alive() const = 0;

  // nullopt when the kernel would not say.
  virtual std::optional<ChildUsage> usage() const = 0;

  // With a seccomp filter (wait() also answers its notifications): answers every
  // notification still waiting, without blocking. Called once the main process
  // has exited, before the leftovers are killed, so their last calls are counted.
  virtual void drain_seccomp() {}
  // nullopt: the job runs without a filter.
  virtual std::optional<SeccompOutcome> seccomp() const { return std::nullopt; }
};

// A job that reached its exec (or failed exactly there: a missing or
// non-executable COMMAND is the job's failure, 126/127, not cronrun's).
struct Started {
  std::unique_ptr<RunningJob> job;
  std::optional<int> exec_errno;  // execve failed with this; the child exits 126/127
  SteadyTime spawned_at{};        // the timeout counts from here
  SteadyTime exec_at{};           // when the exec was confirmed (start_delay_s)
};

class Spawner {
 public:
  virtual ~Spawner() = default;
  // Starts `req` inside `where` (its clone3 fd, the files to join, its rlimits). `before_spawn` runs once everything that can fail
  // without a child has succeeded and nothing has been started; its error (the
  // history could not record the start, say) is returned as is and no job runs.
  // Errors: the child never reached its exec (it has been reaped), kind `system`.
  virtual Result<Started> start(SpawnRequest req, Containment& where,
                                const std::function<Result<void>()>& before_spawn) = 0;
};

// The host's spawner (spawner.cc). CRONRUN_FORCE_SPAWN=fork (test hook) skips
// clone3, as on kernels before 5.7.
class SystemSpawner final : public Spawner {
 public:
  explicit SystemSpawner(const Clock& clock) : clock_(clock) {}
  Result<Started> start(SpawnRequest req, Containment& where,
                        const std::function<Result<void>()>& before_spawn) override;

 private:
  const Clock& clock_;
};

}  // namespace cronrun
