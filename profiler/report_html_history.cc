// The report's adapter. One scan of the indexed columns feeds the table (via
// prof::SummaryBuilder, so the report and `cronprof summary` never disagree), the
// suggestions (prof::suggest_limits, headroom 1.3 as `suggest` defaults) and the
// charts; only the listed failures read their full records, for the log path and
// signal that the columns do not carry.
#include "profiler/report_html_history.h"

#include <unistd.h>

#include <algorithm>
#include <fmt/core.h>
#include <map>

#include "profiler/cli_support.h"
#include "profiler/suggest.h"
#include "profiler/summary.h"

namespace cronrun::report {

namespace {

constexpr double kHeadroom = 1.3;

bool executed(RunStatus s) { return s != RunStatus::skipped && s != RunStatus::running && s != RunStatus::lost; }

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

Result<ReportInput> report_from_history(const HistoryStore& store, double since_unix_s, double now_unix_s,
                                        const std::string& window) {
  ReportInput in;
  in.host = hostname();
  in.generated_at = prof::format_utc(now_unix_s);
  in.window = window;
  in.history_path = store.path();

  RunFilter filter;
  filter.since_unix_s = since_unix_s;
  std::map<std::string, std::vector<RunFigures>> by_job;
  prof::SummaryBuilder summary;
  prof::SkippedRows skipped;
  auto r = store.scan(filter, [&](const RunFigures& f) {
    summary.add(f);
    by_job[f.job].push_back(f);
  }, skipped.callback());
  if (!r) return std::unexpected(std::move(r.error()).context("reading runs for the report"));
  skipped.report(store.path());
  if (skipped.count())
    in.notes.push_back(fmt::format("{} damaged history row(s) skipped; cronprof names them on stderr.",
                                   skipped.count()));
  auto last_success = store.last_success_by_job();
  if (!last_success) return std::unexpected(std::move(last_success.error()).context("reading runs for the report"));

  std::vector<const RunFigures*> failed;
  const double window_days = std::max(0.1, (now_unix_s - since_unix_s) / 86400.0);
  for (const prof::JobSummary& s : summary.finish(*last_success)) {
    auto& runs = by_job[s.job];
    std::sort(runs.begin(), runs.end(),
              [](const RunFigures& a, const RunFigures& b) { return a.started_at_s < b.started_at_s; });
    JobRow row;
    row.job = s.job;
    row.runs = s.runs;
    row.failures = s.failures;
    row.wall_p95_s = s.wall_s.p95;
    if (s.memory_peak_bytes.p95 && *s.memory_peak_bytes.p95 < 18446744073709551616.0)  // converts back
      row.memory_peak_p95_bytes = static_cast<uint64_t>(*s.memory_peak_bytes.p95);
    row.cpu_p95_s = s.cpu_s.p95;
    row.db_queries_p95 = s.db_queries.p95;
    if (!runs.empty()) {
      row.last_started_at = prof::format_utc(runs.back().started_at_s);
      row.last_status = to_string(runs.back().status);
    }
    for (const RunFigures& f : runs) {
      if (prof::is_failure(f.status)) failed.push_back(&f);
      if (!executed(f.status)) continue;
      row.memory_limit_bytes = f.memory_max_bytes;  // ends as the newest run's
      // Runs without a cgroup have no cgroup peak; their largest process's RSS stands in.
      row.series.push_back({prof::format_utc(f.started_at_s), to_string(f.status), f.wall_s,
                            f.memory_peak_bytes ? f.memory_peak_bytes : f.max_rss_bytes, f.db_queries});
    }
    if (row.series.size() > kMaxPointsPerJob)
      row.series.erase(row.series.begin(), row.series.end() - static_cast<std::ptrdiff_t>(kMaxPointsPerJob));
    prof::Suggestion sg = prof::suggest_limits(s.job, runs, kHeadroom, window_days);
    if (sg.enough_data) {
      row.suggested_memory_bytes = sg.memory_bytes;
      row.suggested_cpu_pct = sg.cpu_pct;
      row.suggested_timeout_s = sg.timeout_s;
    }
    in.jobs.push_back(std::move(row));
  }

  std::sort(failed.begin(), failed.end(),
            [](const RunFigures* a, const RunFigures* b) { return a->started_at_s > b->started_at_s; });
  if (failed.size() > kMaxFailures) failed.resize(kMaxFailures);
  for (const RunFigures* f : failed) {
    Failure row{f->job, f->run_id, prof::format_utc(f->started_at_s), to_string(f->status), f->exit_code,
                std::nullopt, std::nullopt};
    auto rec = store.find_run(f->run_id);
    if (rec && *rec) {
      row.signal = (*rec)->signal;
      row.log_path = (*rec)->log.path;
      if ((*rec)->exit_code) row.exit_code = (*rec)->exit_code;
    }
    in.failures.push_back(std::move(row));
  }
  return in;
}

}  // namespace cronrun::report
