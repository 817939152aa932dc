// One run of one job, start to finish: DESIGN.md section 1 as code.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "runner/clock.h"
#include "runner/containment.h"
#include "runner/job_spec.h"
#include "runner/record_sink.h"
#include "runner/run_paths.h"
#include "runner/spawner.h"

namespace cronrun {

// Runs the job described by `spec` and returns cronrun's exit status (DESIGN §3).
// Never throws; every failure is reported on stderr as one line and, once the run
// has a history row, recorded.
int run_job(const JobSpec& spec);

// The seams of a run: what run_job() takes from the host, and what tests fake.
struct RunSeams {
  const Clock& clock;
  Spawner& spawner;
  CgroupBackend& cgroups;
  // Opens where the run's records go (the history at `path`; `default_location`:
  // cronrun's own, whose directories may be created). Errors are kind `history`.
  std::function<Result<std::unique_ptr<RecordSink>>(const std::string& path, bool default_location)> open_sink;
};

// run_job() with its paths and seams given.
int run_job(const JobSpec& spec, const RunPaths& paths, RunSeams& seams);

}  // namespace cronrun
