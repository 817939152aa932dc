// From the history to the report's inputs (report_html.h): the per-job table from
// the same aggregates as `cronprof summary`, limits as `cronprof suggest` computes
// them, each job's state from its runs, the series for the charts, the daily
// strip, and the profiles and log tails of the runs the page links to.
#pragma once

#include <string>

#include "common/error.h"
#include "common/history.h"
#include "profiler/report_html.h"

namespace cronrun::report {

inline constexpr size_t kMaxPointsPerJob = 500;  // newest runs drawn per job
inline constexpr size_t kMaxFailures = 25;        // newest failures listed
inline constexpr size_t kRecentRuns = 6;          // newest runs listed per job, any status
inline constexpr size_t kRecentBadRuns = 6;       // and the newest bad ones among the older runs
inline constexpr size_t kMaxStripDays = 31;       // days in the daily strip
inline constexpr size_t kLogTailBytes = 4096;     // read from the end of a kept log

// Jobs with runs at or after `since_unix_s`. `window` is the --since text as given
// ("30d"), shown in the report. Each job's state comes from its runs alone
// (failing, running, up); report_html_status.h refines it against the schedule.
// Logs are read relative to a checked directory fd, O_NOFOLLOW, regular files
// only, at most kLogTailBytes from the end; a log that cannot be read is a note
// in its run's section, not an error. Errors: a failed query.
Result<ReportInput> report_from_history(const HistoryStore& store, double since_unix_s, double now_unix_s,
                                        const std::string& window);

// The last `max_bytes` of the log at `path` (see above) and its size. Starts at a
// line when it had to cut.
struct LogTail {
  std::string text;
  uint64_t size_bytes = 0;
  bool cut = false;
};
Result<LogTail> read_log_tail(const std::string& path, size_t max_bytes);

}  // namespace cronrun::report
