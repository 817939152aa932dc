// The two containments (containment.h). The cgroup one forwards to the run's
// JobCgroup and words its failures for the record; the no-cgroup one does by
// hand what the cgroup does for free: it finds the job's processes through its
// process group and the subreaper's re-parented children, and kills them until
// none is left.
#include "runner/containment.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/run_record.h"
#include "common/units.h"
#include "runner/log.h"
#include "runner/spawner.h"

namespace cronrun {
namespace {

// Children re-parented to this process (and direct children not yet reaped).
std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  std::ifstream f("/proc/self/task/" + std::to_string(gettid()) + "/children");
  pid_t p;
  while (f >> p) out.push_back(p);
  return out;
}

void signal_pid(pid_t pid, int sig, FailureLog& failures) {
  if (::kill(pid, sig) != 0 && errno != ESRCH)
    failures.add(fmt::format("sending {} to pid {}: {}", signal_name(sig), pid, std::strerror(errno)));
}

void signal_group(RunningJob& job, int sig, FailureLog& failures) {
  if (auto r = job.signal_group(sig); !r)
    failures.add(fmt::format("sending {} to the job's process group {}: {}", signal_name(sig), job.pid(),
                             std::strerror(r.error().err())));
}

}  // namespace

void FailureLog::add(std::string what) {
  if (std::find(lines_.begin(), lines_.end(), what) != lines_.end()) return;
  log::warn(what);
  lines_.push_back(std::move(what));
}

// ---- the run's cgroup ----

Isolation CgroupContainment::isolation() const {
  return Isolation{cgroup::to_string(cg_->layout()), cg_->path(), "cgroup", std::nullopt, unit_};
}

std::string CgroupContainment::describe() const { return " into " + cg_->path(); }

void CgroupContainment::signal_all(RunningJob&, int sig, FailureLog& failures) {
  if (auto r = cg_->signal_all(sig); !r)
    failures.add(fmt::format("sending {} to cgroup {}: {}", signal_name(sig), cg_->path(), r.error().message()));
}

void CgroupContainment::kill_all(RunningJob&, FailureLog& failures) {
  if (auto r = cg_->kill_all(2000); !r)
    failures.add(fmt::format("killing cgroup {}: {}", cg_->path(), r.error().message()));
}

bool CgroupContainment::tree_empty(RunningJob& job) {
  job.reap();
  auto pids = cg_->pids();
  return pids && pids->empty();
}

Containment::Leftovers CgroupContainment::end_leftovers(RunningJob& job, bool keep, FailureLog& failures) {
  Leftovers out;
  auto pids = cg_->pids();
  if (!pids)
    failures.add(fmt::format("listing the processes of cgroup {}: {}", cg_->path(), pids.error().message()));
  size_t n = pids ? pids->size() : 0;
  if (keep) {
    out.left = n;
    return out;
  }
  if (n > 0 || !pids) {
    out.killed = n;
    out.kill_sent = true;
    if (auto r = cg_->kill_all(5000); !r)
      failures.add(fmt::format("killing what the job left in cgroup {}: {}", cg_->path(), r.error().message()));
  }
  job.reap();
  return out;
}

Usage CgroupContainment::read_usage() const {
  auto u = cg_->read_usage();
  if (u) return *u;
  log::warn(fmt::format("reading usage of cgroup {}: {} (figures left null)", cg_->path(), u.error().message()));
  return {};
}

std::optional<std::string> CgroupContainment::close(size_t orphans_left) {
  if (orphans_left > 0) {
    // The owner must neither kill them nor remove their cgroup; it is marked kept
    // so that the job's next runs do not take it for a run whose runner died.
    if (auto r = cg_->release(); !r)
      log::warn(fmt::format("--keep-orphans: marking cgroup {} kept: {}", cg_->path(), r.error().message()));
    return fmt::format("{} process(es) left running by --keep-orphans; cgroup {} kept", orphans_left, cg_->path());
  }
  if (auto r = cg_->remove(); !r) log::warn(fmt::format("removing cgroup {}: {}", cg_->path(), r.error().message()));
  return std::nullopt;
}

// ---- no cgroup ----

NoCgroup::NoCgroup(const cgroup::Limits& limits, std::optional<std::chrono::milliseconds> timeout,
                   const std::string& reason) {
  std::vector<std::string> applied;
  if (limits.memory_max_bytes) {
    rlimits_.emplace_back(RLIMIT_DATA, *limits.memory_max_bytes);
    applied.push_back(fmt::format("RLIMIT_DATA={} per process", units::format_size(*limits.memory_max_bytes)));
  }
  if (timeout) {
    // A job cannot legitimately use more CPU seconds than its wall limit allows at
    // its quota; this backs up the timer if the runner itself is stopped.
    double cores = limits.cpu_quota_pct.value_or(100.0) / 100.0;
    auto cpu_s =
        static_cast<rlim_t>(std::ceil(static_cast<double>(timeout->count()) / 1000.0 * std::max(cores, 1.0)));
    rlimits_.emplace_back(RLIMIT_CPU, cpu_s);
    applied.push_back(fmt::format("RLIMIT_CPU={}s", cpu_s));
  }
  if (limits.cpu_quota_pct) lost_.push_back("--cpu");
  if (limits.pids_max) lost_.push_back("--pids");
  if (limits.memory_high_bytes) lost_.push_back("--memory-high");
  if (limits.swap_max_bytes) lost_.push_back("--swap");
  if (limits.cpu_weight) lost_.push_back("--cpu-weight");
  if (limits.io_weight) lost_.push_back("--io-weight");
  note_ = reason + "; running without a cgroup (rusage accounting, process-group kill)";
  if (!applied.empty()) note_ += "; rlimits: " + fmt::format("{}", fmt::join(applied, ", "));
  if (!lost_.empty()) note_ += "; not enforceable without a cgroup: " + fmt::format("{}", fmt::join(lost_, " "));
}

void NoCgroup::signal_all(RunningJob& job, int sig, FailureLog& failures) {
  signal_group(job, sig, failures);
  for (pid_t p : own_children()) signal_pid(p, sig, failures);
}

bool NoCgroup::tree_empty(RunningJob& job) {
  job.reap();
  return own_children().empty() && !job.group_alive();
}

// The process group, then re-parented children, until none is left.
Containment::Leftovers NoCgroup::end_leftovers(RunningJob& job, bool keep, FailureLog& failures) {
  Leftovers out;
  std::set<pid_t> seen;
  bool gone = false;
  for (int pass = 0; pass < 200; ++pass) {
    job.reap();
    std::vector<pid_t> kids = own_children();
    if (kids.empty() && !job.group_alive()) {
      gone = true;
      break;
    }
    if (keep) {
      out.left = kids.size();
      return out;
    }
    seen.insert(kids.begin(), kids.end());
    out.kill_sent = true;
    signal_group(job, SIGKILL, failures);
    for (pid_t p : kids) signal_pid(p, SIGKILL, failures);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!gone) failures.add(fmt::format("processes of the job's process group {} survived SIGKILL", job.pid()));
  out.killed = seen.size();
  job.reap();
  return out;
}

}  // namespace cronrun
