// From the history to the report's inputs (report_html.h): the per-job table from
// the same aggregates as `cronprof summary`, limits as `cronprof suggest` computes
// them, the series for the charts and the newest failures with their logs.
#pragma once

#include <string>

#include "common/error.h"
#include "common/history.h"
#include "profiler/report_html.h"

namespace cronrun::report {

inline constexpr size_t kMaxPointsPerJob = 500;  // newest runs drawn per job
inline constexpr size_t kMaxFailures = 25;        // newest failures listed

// Jobs with runs at or after `since_unix_s`. `window` is the --since text as given
// ("30d"), shown in the report. Errors: a failed query.
Result<ReportInput> report_from_history(const HistoryStore& store, double since_unix_s, double now_unix_s,
                                        const std::string& window);

}  // namespace cronrun::report
