// --summary FILE: the run's summary JSON, for the admin's own tooling.
//
// The path may be in a shared directory (/tmp) or be a name another user planted
// something at. What is written where:
//   "-", /dev/stdout, /dev/fd/1, /proc/self/fd/1   → the runner's stdout (fd 1);
//   /dev/stderr, /dev/fd/2, /proc/self/fd/2         → its stderr (fd 2);
//   a path that does not exist yet                   → created (O_EXCL) in its checked
//                                                      directory and renamed into place;
//   an existing regular file                         → replaced atomically (temp file +
//                                                      rename), never written into; in a
//                                                      shared sticky directory only if ours;
//   /dev/null (the character device 1:3)             → nothing is written;
//   a character device that is the runner's own stdout or stderr → written there;
//   anything else (FIFO, socket, block device, another device, a symlink someone
//   else could have planted)                         → refused, with the path and why.
// The directory is opened by fd with common/safe_file.h's rules.
#pragma once

#include <string>

#include "common/error.h"
#include "common/run_record.h"

namespace cronrun {

// Checks that `path` could be written by write_summary() (before the job runs, so
// a bad target is refused with nothing started). Writes nothing.
Result<void> check_summary_target(const std::string& path);

// Writes the summary JSON of `r` to `path` (rules above).
Result<void> write_summary(const std::string& path, const RunRecord& r);

}  // namespace cronrun
