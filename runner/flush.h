// `cronrun --flush`: fold the run journal into the history now and exit
// (DESIGN.md section 5). Waits for a fold in progress instead of skipping. On a
// fleet host (a fleet config with `history`: --fleet-config, or the default file
// when it exists) it then forwards the journal's fleet runs to the central history
// (runner/forward.h), waiting for a forwarder in progress.
#pragma once

#include "runner/job_spec.h"

namespace cronrun {

// 0 when the journal is folded (and forwarded, on a fleet host; notes about
// damaged records on stderr), 125 when it could not be (the message names the
// file, or the database).
int run_flush(const JobSpec& spec);

}  // namespace cronrun
