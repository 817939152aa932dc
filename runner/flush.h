// `cronrun --flush`: fold the run journal into the history now and exit
// (DESIGN.md section 5). Waits for a fold in progress instead of skipping.
#pragma once

#include "runner/job_spec.h"

namespace cronrun {

// 0 when the journal is folded (notes about damaged records on stderr), 125 when
// it could not be (the message names the file).
int run_flush(const JobSpec& spec);

}  // namespace cronrun
