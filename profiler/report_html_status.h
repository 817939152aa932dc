// The report's state against the schedule: with --crontab, each job's state,
// reason, schedule and missed/late counts come from profiler/status.h (the same
// computation as `cronprof status`), and missed ticks join the daily strip. Jobs
// the crontabs name but the history never saw get a row of their own (never run,
// or missed); jobs the history has but the crontabs do not keep their state from
// the history, marked as not in the crontabs.
#pragma once

#include "profiler/report_html.h"
#include "profiler/status.h"

namespace cronrun::report {

void apply_status(ReportInput& in, const status::Report& report);

}  // namespace cronrun::report
