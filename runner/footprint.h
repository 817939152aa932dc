// The supervisor's own memory while its job runs (issue 15: PSS and private
// memory per waiting runner, many of which may wait at once).
#pragma once

#include "common/error.h"

namespace cronrun {

// Unmaps from this process the resident pages of cronrun's own read-only
// segments (code and constants) that start-up, the journal and the cgroup set-up
// touched. Called once a job has kept the supervisor waiting a while (run.cc's
// settle), not for jobs that end at once. They stay in the page cache; what the poll loop needs faults back in
// from there, and the rest stops counting in the supervisor's RSS and PSS while
// the job runs. Writable segments (data, relocated RELRO) are never touched, so
// nothing is lost. Only the main program: shared libraries' pages are shared with
// every other process anyway.
Result<void> drop_own_read_only_pages();

}  // namespace cronrun
