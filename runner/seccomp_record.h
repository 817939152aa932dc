// The run record's `seccomp` object (DESIGN §4, §11) from what the supervisor's
// listener saw, and the verdict on a failed run: was it the filter's doing?
#pragma once

#include <optional>
#include <string>

#include "common/run_record.h"
#include "runner/seccomp_listener.h"

namespace cronrun::seccomp {

// Summary::to_json()'s object as a record field, key for key; `note` says what
// broke the listener, if anything.
SeccompRecord to_record(const Summary& summary, const std::optional<std::string>& note);

// Once the run's status is settled: when the run failed because of its filter,
// sets rec.seccomp->failed_by and returns the phrase the FINISH line, the log and
// isolation.note use. A job killed by SIGSYS was killed by the filter (an i386 or
// x32 syscall: the filter kills those, never notifies them); a job that failed or
// was killed after the filter denied syscalls is said to have failed after them.
// Nothing in learn mode (nothing is denied) or without a filter.
std::optional<std::string> blame(RunRecord& rec);

}  // namespace cronrun::seccomp
