// See report_html_status.h.
#include "profiler/report_html_status.h"

#include <cmath>
#include <fmt/core.h>
#include <map>
#include <set>

#include "profiler/report_html_history.h"

namespace cronrun::report {

void apply_status(ReportInput& in, const status::Report& report) {
  in.schedule_known = true;
  // The strip's days as report_from_history laid them out (a report of a missing
  // history has none yet).
  size_t ndays = 0;
  for (const JobRow& j : in.jobs) ndays = std::max(ndays, j.days.size());
  if (ndays == 0) {
    const double window_days = std::max(0.1, (in.now_s - in.window_start_s) / 86400.0);
    ndays = std::clamp<size_t>(static_cast<size_t>(std::ceil(window_days)), 1, kMaxStripDays);
    in.days_start_s = (std::floor(in.now_s / 86400.0) - static_cast<double>(ndays - 1)) * 86400.0;
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < in.jobs.size(); ++i) index.emplace(in.jobs[i].job, i);
  std::set<std::string> scheduled;
  for (const status::JobStatus& s : report.jobs) {
    scheduled.insert(s.job);
    auto it = index.find(s.job);
    if (it == index.end()) {
      JobRow row;
      row.job = s.job;
      row.days.assign(ndays, DayCounts{});
      in.jobs.push_back(std::move(row));
      it = index.emplace(s.job, in.jobs.size() - 1).first;
    }
    JobRow& row = in.jobs[it->second];
    row.state = status::to_string(s.state);
    row.state_reason = s.reason;
    row.schedule = s.where.empty() ? s.schedule : fmt::format("{} ({})", s.schedule, s.where);
    row.missed_ticks = s.missed;
    row.late_ticks = s.late;
    for (double t : s.missed_ticks_s) {
      if (!(t >= in.days_start_s)) continue;
      auto d = static_cast<size_t>((t - in.days_start_s) / 86400.0);
      if (d < row.days.size()) ++row.days[d].missed;
    }
  }
  for (JobRow& row : in.jobs) {
    if (scheduled.count(row.job)) continue;
    row.state_reason = row.state_reason.empty() ? "not in the given crontabs"
                                                : row.state_reason + "; not in the given crontabs";
  }
  // Rejected crontab lines are noted once, by the plan over the same files.
  for (const std::string& n : report.notes) in.notes.push_back(n);
  sort_jobs(in.jobs);
}

}  // namespace cronrun::report
