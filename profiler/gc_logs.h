// The kept logs of the runs `cronprof gc` deletes. A run started with --log-dir
// left its output in DIR/NAME/RUN-ID.log and the path in its record (log.path);
// once the row is gone nothing points at the file any more, so gc removes it too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/history.h"

namespace cronrun::prof {

struct RunLog {
  std::string run_id;
  std::string path;
};

// The logs of the runs HistoryStore::delete_before(cutoff_unix_s) deletes:
// finished and lost runs started before the cutoff whose record names a log.
Result<std::vector<RunLog>> logs_of_runs_before(const HistoryStore& store, double cutoff_unix_s);

struct LogRemoval {
  uint64_t removed = 0;
  uint64_t already_gone = 0;          // removed by someone else (logrotate)
  std::vector<std::string> failures;  // one line each: path and why
};

// Removes each log whose run is no longer in `store` (a run still there, e.g. one
// whose runner turned out to be alive after all, keeps its log). Only a file
// named RUN-ID.log for its own run is removed, through its checked directory
// (common/safe_file.h), never through a symlink, and only if it is a regular file.
LogRemoval remove_run_logs(const HistoryStore& store, const std::vector<RunLog>& logs);

}  // namespace cronrun::prof
