// What holds one run's processes, behind one interface the run and the
// supervisor use without asking which it is:
//   CgroupContainment — the run's own cgroup (cgroup::JobCgroup): the job is
//     cloned or joined into it, killed as a whole, measured by the kernel;
//   NoCgroup — no usable cgroup (--cgroup off, or auto on a host without one):
//     rlimits for what they can enforce, rusage for the figures, and "the whole
//     job" is the job's process group plus every process re-parented to cronrun
//     as child subreaper (/proc/self/task/*/children lists them).
// Where job cgroups come from (discovery, leftover runs, creation) is the
// CgroupBackend seam, so that a run can be placed on a fake host in tests.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/run_record.h"
#include "runner/cgroup.h"

namespace cronrun {

class RunningJob;

// Signals and kills that failed for a reason other than "already gone": each
// distinct line is logged once (warning) and kept for the run record's note. A
// tree cronrun could not stop must not read as a clean run.
class FailureLog {
 public:
  void add(std::string what);
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

class Containment {
 public:
  virtual ~Containment() = default;

  // The record's isolation (cgroup layout, path, accounting); the note is the run's.
  virtual Isolation isolation() const = 0;
  // For the spawn's log line: " into /cronrun/job/run-id", " (no cgroup)".
  virtual std::string describe() const = 0;

  // ---- spawning (spawn.h) ----
  // The v2 directory fd to clone3 into, -1: none (fork).
  virtual int clone_into_fd() const = 0;
  // What the child must join itself (see cgroup::JobCgroup::join_files).
  virtual Result<std::vector<cgroup::JobCgroup::JoinFile>> join_files(bool cloned_into) = 0;
  // Limits the child sets on itself before exec (resource, soft = hard).
  virtual std::vector<std::pair<int, rlim_t>> rlimits() const = 0;

  // ---- supervising ----
  // `sig` to every process of the job but the main one (the caller signals that
  // through its pidfd).
  virtual void signal_all(RunningJob& job, int sig, FailureLog& failures) = 0;
  // SIGKILL to every process of the job, as above.
  virtual void kill_all(RunningJob& job, FailureLog& failures) = 0;
  // Whether nothing of the job is left (unreadable: not known to be empty).
  virtual bool tree_empty(RunningJob& job) = 0;
  // An fd whose POLLPRI says the tree changed (cgroup.events), -1: none.
  virtual int events_fd() const = 0;

  // After the main process exited: what it left behind is killed (or, with
  // `keep`, counted and left running).
  struct Leftovers {
    size_t killed = 0;     // found and killed
    size_t left = 0;       // found and kept (keep)
    bool kill_sent = false;  // a kill was sent (something was there, or could not be listed)
  };
  virtual Leftovers end_leftovers(RunningJob& job, bool keep, FailureLog& failures) = 0;

  // ---- collecting ----
  // The figures the containment measures; unmeasured ones stay null. A failure
  // to read is logged here (the figures are left null).
  virtual Usage read_usage() const = 0;
  // Removes what the run made, or (orphans kept) hands it over; failures are
  // logged here. Returns a note for the record, when there is one.
  virtual std::optional<std::string> close(size_t orphans_left) = 0;
};

// The run's cgroup. Owns it: the JobCgroup's destructor kills and removes what
// is left on an early return. `unit`: the systemd scope it lies in, for the
// record (systemd_scope.h); the scope itself goes when cronrun, its last
// process, exits.
class CgroupContainment final : public Containment {
 public:
  explicit CgroupContainment(std::unique_ptr<cgroup::JobCgroup> cg, std::optional<std::string> unit = std::nullopt)
      : cg_(std::move(cg)), unit_(std::move(unit)) {}

  Isolation isolation() const override;
  std::string describe() const override;
  int clone_into_fd() const override { return cg_->clone_into_fd(); }
  Result<std::vector<cgroup::JobCgroup::JoinFile>> join_files(bool cloned_into) override {
    return cg_->join_files(cloned_into);
  }
  std::vector<std::pair<int, rlim_t>> rlimits() const override { return {}; }
  void signal_all(RunningJob& job, int sig, FailureLog& failures) override;
  void kill_all(RunningJob& job, FailureLog& failures) override;
  bool tree_empty(RunningJob& job) override;
  int events_fd() const override { return cg_->events_fd(); }
  Leftovers end_leftovers(RunningJob& job, bool keep, FailureLog& failures) override;
  Usage read_usage() const override;
  std::optional<std::string> close(size_t orphans_left) override;

 private:
  std::unique_ptr<cgroup::JobCgroup> cg_;
  std::optional<std::string> unit_;
};

// No cgroup: the run is degraded, and says so. Built from the limits asked for:
// --memory becomes RLIMIT_DATA per process, --timeout backs up as RLIMIT_CPU;
// the rest cannot be enforced and is named.
class NoCgroup final : public Containment {
 public:
  // `reason`: why there is no cgroup (the whole story, for the record).
  NoCgroup(const cgroup::Limits& limits, std::optional<std::chrono::milliseconds> timeout, const std::string& reason);

  // The record's note: the reason, the rlimits applied, the options not enforced.
  const std::string& note() const { return note_; }
  // The options that cannot be enforced without a cgroup ("--cpu", "--pids", ...).
  const std::vector<std::string>& not_enforced() const { return lost_; }

  Isolation isolation() const override { return Isolation{"none", std::nullopt, "rusage", note_, std::nullopt}; }
  std::string describe() const override { return " (no cgroup)"; }
  int clone_into_fd() const override { return -1; }
  Result<std::vector<cgroup::JobCgroup::JoinFile>> join_files(bool) override { return {}; }
  std::vector<std::pair<int, rlim_t>> rlimits() const override { return rlimits_; }
  void signal_all(RunningJob& job, int sig, FailureLog& failures) override;
  void kill_all(RunningJob& job, FailureLog& failures) override { signal_all(job, SIGKILL, failures); }
  bool tree_empty(RunningJob& job) override;
  int events_fd() const override { return -1; }
  Leftovers end_leftovers(RunningJob& job, bool keep, FailureLog& failures) override;
  Usage read_usage() const override { return {}; }
  std::optional<std::string> close(size_t) override { return std::nullopt; }

 private:
  std::vector<std::pair<int, rlim_t>> rlimits_;
  std::vector<std::string> lost_;
  std::string note_;
};

// Where job cgroups come from: cgroup.h's free functions on the real host
// (SystemCgroups), or a systemd scope first on a systemd host
// (systemd::SystemdCgroups, systemd_scope.h).
class CgroupBackend {
 public:
  virtual ~CgroupBackend() = default;
  virtual cgroup::Placement discover(const cgroup::DiscoverOptions& opts) = 0;
  virtual Result<std::vector<cgroup::LiveRun>> find_live_runs(const cgroup::Placement& placement,
                                                              const std::string& job) = 0;
  virtual Result<std::unique_ptr<cgroup::JobCgroup>> create(const cgroup::Placement& placement,
                                                            const std::string& job, const std::string& run_id) = 0;
  // The systemd unit a cgroup create() made lies in, if any.
  virtual std::optional<std::string> unit_of(const cgroup::JobCgroup&) const { return std::nullopt; }
  // When discover() found no cgroup for a reason with a known fix, the short
  // cause for the run's one warning line (e.g. naming `loginctl enable-linger`).
  virtual std::optional<std::string> fallback_cause() const { return std::nullopt; }
};

class SystemCgroups final : public CgroupBackend {
 public:
  cgroup::Placement discover(const cgroup::DiscoverOptions& opts) override { return cgroup::discover(opts); }
  Result<std::vector<cgroup::LiveRun>> find_live_runs(const cgroup::Placement& placement,
                                                      const std::string& job) override {
    return cgroup::find_live_runs(placement, job);
  }
  Result<std::unique_ptr<cgroup::JobCgroup>> create(const cgroup::Placement& placement, const std::string& job,
                                                    const std::string& run_id) override {
    return cgroup::create_job_cgroup(placement, job, run_id);
  }
};

}  // namespace cronrun
