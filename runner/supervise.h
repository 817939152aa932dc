// Supervising a running job from one poll loop over the main process's pidfd, a
// signalfd (SIGTERM/SIGINT/SIGHUP to forward, SIGCHLD to reap), a timerfd for the
// timeout escalation and the output pipes.
//
// Escalation is a small state machine: running → (timeout) terminating: SIGTERM to
// every process of the job → (kill-after) killing: kill the whole cgroup (or, without
// one, the process group and every orphan reparented to us as subreaper). The
// grace is the whole tree's: when the main process dies of the SIGTERM before
// kill-after, the loop keeps waiting until the rest has exited too (a pipeline's
// last stage flushing) or kill-after expires, and only then kills what is left.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "runner/cgroup.h"
#include "runner/output.h"
#include "runner/spawn.h"

namespace cronrun {

// Blocks the signals the supervisor takes through its signalfd and makes this
// process a child subreaper. Call before spawning (the child unblocks them).
Result<UniqueFd> prepare_supervisor_signals();

struct SuperviseConfig {
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};
  bool keep_orphans = false;
  cgroup::JobCgroup* cgroup = nullptr;  // null: rusage-only fallback
  OutputCapture* output = nullptr;
};

struct Outcome {
  int wait_status = 0;           // of the main process
  bool timed_out = false;
  bool escalated_to_kill = false;
  std::optional<int> forwarded_signal;  // last signal forwarded from cronrun
  std::optional<uint64_t> max_rss_bytes;  // largest single process (RUSAGE_CHILDREN)
  double cpu_user_s = 0, cpu_system_s = 0;  // rusage of all reaped descendants
  // Block IO of all reaped descendants (ru_inblock/ru_oublock x 512), for hosts
  // whose cgroup cannot count IO; nullopt when getrusage failed.
  std::optional<uint64_t> io_read_bytes, io_write_bytes;
  size_t orphans_killed = 0;     // processes left behind when the main process exited
  size_t orphans_left = 0;       // still there (only with --keep-orphans)
  // Signals or kills that failed (other than "no such process"): one line each,
  // already logged; the caller records them in isolation.note.
  std::vector<std::string> failures;
};

Result<Outcome> supervise(Child& child, int signal_fd, const SuperviseConfig& cfg);

}  // namespace cronrun
