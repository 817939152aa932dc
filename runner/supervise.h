// Supervising a running job: one loop that does the I/O around the escalation
// state machine (escalation.h). The loop waits on the job (RunningJob::wait: the
// main process's pidfd, a signalfd for SIGTERM/SIGINT/SIGHUP/... to forward and
// SIGCHLD to reap, cgroup.events in the grace, and the output pipes), feeds what
// happened and the time to the machine, and carries out what it answers:
// forward a signal, SIGTERM or SIGKILL the whole job through its containment
// (containment.h), look at what is left. When the machine says collect, the
// leftovers are killed (or kept), the output is drained and the figures read.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/run_record.h"
#include "runner/clock.h"
#include "runner/containment.h"
#include "runner/escalation.h"
#include "runner/output.h"
#include "runner/spawn.h"
#include "runner/spawner.h"

namespace cronrun {

// Blocks the signals the supervisor takes through its signalfd and makes this
// process a child subreaper. Call before spawning (the child unblocks them).
Result<UniqueFd> prepare_supervisor_signals();

// The real RunningJob: `child` watched through its pidfd and `signal_fd` (from
// prepare_supervisor_signals()), reaping as cronrun is the subreaper.
// `listener`: the job's seccomp listener, answered from the same loop.
std::unique_ptr<RunningJob> watch_process(Child child, UniqueFd signal_fd,
                                          std::optional<seccomp::Listener> listener = std::nullopt);

// Fleet mode: the keepalive process's messages (fleet.h) and the lease they renew.
// The loop keeps the lease's deadline on a timerfd of its own.
struct LeaseWatch {
  int report_fd = -1;  // non-blocking; owned by the caller
  escalation::Lease lease;
};

struct SuperviseConfig {
  std::optional<std::chrono::milliseconds> timeout;  // from `start` of supervise()
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};
  bool keep_orphans = false;
  OutputCapture* output = nullptr;
  std::optional<LeaseWatch> lease = std::nullopt;
  // Done once when the job has run `after` (from supervise()'s `start`) and is
  // still running: the runner's own trimming for a long wait. A job that ends
  // sooner never pays for it (and the runner's exit frees everything anyway).
  struct Settle {
    std::chrono::milliseconds after;
    std::function<void()> act;
  };
  std::optional<Settle> settle = std::nullopt;
};

// What became of the lease while the job ran.
struct LeaseOutcome {
  bool stopped_by_deadline = false;  // TERM/KILL because no renewal came in time (or the lease was lost)
  bool lost = false;                 // the keepalive found the lease gone
  std::optional<std::string> revoked;  // the keepalive's reason: this host left the group
  bool stopped_by_revoke = false;    // --on-revoke term acted on it
  SteadyTime last_renewal{};         // send instant of the last renewal (or of the grant)
  uint64_t renewals = 0;
  uint64_t failures = 0;             // renewals or config reads that failed (retried)
  std::optional<std::string> first_failure;
  bool keepalive_gone = false;       // its pipe closed while the job ran
};

struct Outcome {
  int wait_status = 0;           // of the main process
  bool timed_out = false;
  bool escalated_to_kill = false;
  // The signals cronrun forwarded to the job (the last one, its sender, how many).
  std::optional<ForwardedSignal> forwarded;
  // rusage of all reaped descendants; nullopt when getrusage failed.
  std::optional<ChildUsage> children;
  size_t orphans_killed = 0;     // processes left behind when the main process exited
  size_t orphans_left = 0;       // still there (only with --keep-orphans)
  // Signals or kills that failed (other than "no such process"): one line each,
  // already logged; the caller records them in isolation.note.
  std::vector<std::string> failures;
  // The job's syscall filter, when it had one (RunningJob::seccomp()).
  std::optional<SeccompOutcome> seccomp;
  std::optional<LeaseOutcome> lease;  // fleet mode
};

// Supervises `job` inside `where` until it and what it left are gone. `start` is
// when the job was spawned: the timeout counts from there.
Result<Outcome> supervise(RunningJob& job, Containment& where, const SuperviseConfig& cfg, const Clock& clock,
                          SteadyTime start);

}  // namespace cronrun
