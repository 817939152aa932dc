// From the history to the plan's inputs: one JobProfile per job, with the
// percentiles computed the way every cronprof figure is (nearest rank, stats.h).
#pragma once

#include <vector>

#include "common/error.h"
#include "common/history.h"
#include "profiler/plan.h"

namespace cronrun::plan {

// Profiles of the jobs in `runs` (any order). Only runs that executed and finished
// count (skipped, running and lost rows say nothing about a run's size); failed
// runs do count, since they used the memory and CPU too.
std::vector<JobProfile> profiles_from(const std::vector<RunFigures>& runs);

// The same for every run that started at or after `since_unix_s`. Errors: the
// query failed (the store's last_fault() says why).
Result<std::vector<JobProfile>> load_profiles(const HistoryStore& store, double since_unix_s);

}  // namespace cronrun::plan
