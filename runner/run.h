// One run of one job, start to finish: DESIGN.md section 1 as code.
#pragma once

#include "runner/job_spec.h"

namespace cronrun {

// Runs the job described by `spec` and returns cronrun's exit status (DESIGN §3).
// Never throws; every failure is reported on stderr as one line and, once the run
// has a history row, recorded.
int run_job(const JobSpec& spec);

}  // namespace cronrun
