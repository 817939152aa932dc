// The plan from command-line inputs: crontab paths, host overrides, the week. Shared
// by `cronprof plan` and `cronprof report --crontab` (the report's heat-map).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "profiler/crontab.h"
#include "profiler/plan.h"

namespace cronrun::plan {

struct PlanArgs {
  std::vector<std::string> crontabs;  // files, or directories read as cron reads /etc/cron.d
  std::string host_memory;            // "" = MemTotal of this machine
  double host_cpus = 0;               // 0 = CPUs this process may use (nproc)
  std::string week;                   // "YYYY-MM-DD" (any day of it); "" = this week
  size_t max_moves = 10;
  // The history the profiles come from: an unprofiled entry whose runs cronrun
  // records elsewhere (its own --history, or another user's default history) is
  // told apart from one that never ran.
  std::string history_path;
};

struct PlanOutput {
  PlanResult plan;
  std::vector<crontab::Rejected> rejected;
};

// Errors name the flag or path: an unreadable crontab, a bad --host-memory, a
// malformed --week.
Result<PlanOutput> run_plan(const PlanArgs& args, const std::vector<JobProfile>& profiles);

}  // namespace cronrun::plan
