// The report's adapter. One scan of the indexed columns, grouped by job
// (RunFilter::by_job), feeds the table (via prof::JobSummaryAcc, so the report and
// `cronprof summary` never disagree), the suggestions (prof::SuggestAcc, headroom
// 1.3 as `suggest` defaults) and the charts, holding one job's figures at a time
// so a history of any size fits in bounded memory; only the listed failures read
// their full records, for the log path and signal that the columns do not carry.
#include "profiler/report_html_history.h"

#include <unistd.h>

#include <algorithm>
#include <fmt/core.h>
#include <map>
#include <optional>
#include <vector>

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

namespace {

// One job's row while its runs are read newest first (RunFilter::by_job): the
// table's figures, the suggestion, and the newest kMaxPointsPerJob executed runs
// for the charts. Older runs are counted, not kept.
struct JobRowAcc {
  prof::JobSummaryAcc summary;
  prof::SuggestAcc suggest;
  std::optional<RunFigures> newest, newest_executed;
  std::vector<RunPoint> series;  // newest first until finish()
  size_t n_executed = 0;

  void add(const RunFigures& f) {
    summary.add(f);
    suggest.add(f);
    if (!newest) newest = f;
    if (!executed(f.status)) return;
    ++n_executed;
    if (!newest_executed) newest_executed = f;
    // Runs without a cgroup have no cgroup peak; their largest process's RSS stands in.
    if (series.size() < kMaxPointsPerJob)
      series.push_back({prof::format_utc(f.started_at_s), to_string(f.status), f.wall_s,
                        f.memory_peak_bytes ? f.memory_peak_bytes : f.max_rss_bytes, f.db_queries});
  }
};

}  // namespace

Result<ReportInput> report_from_history(const HistoryStore& store, double since_unix_s, double now_unix_s,
                                        const std::string& window) {
  ReportInput in;
  in.host = hostname();
  in.generated_at = prof::format_utc(now_unix_s);
  in.window = window;
  in.history_path = store.path();

  auto last_success = store.last_success_by_job();
  if (!last_success) return std::unexpected(std::move(last_success.error()).context("reading runs for the report"));
  const double window_days = std::max(0.1, (now_unix_s - since_unix_s) / 86400.0);

  // The newest kMaxFailures failures over all jobs, newest first (ties: the larger
  // run id first, as the scan orders them).
  std::vector<RunFigures> failed;
  auto newer = [](const RunFigures& a, const RunFigures& b) {
    return a.started_at_s != b.started_at_s ? a.started_at_s > b.started_at_s : a.run_id > b.run_id;
  };
  auto note_failure = [&](const RunFigures& f) {
    if (failed.size() == kMaxFailures && !newer(f, failed.back())) return;
    failed.insert(std::upper_bound(failed.begin(), failed.end(), f, newer), f);
    if (failed.size() > kMaxFailures) failed.pop_back();
  };

  size_t jobs_cut = 0;
  auto finish_job = [&](const std::string& job, JobRowAcc& a) {
    prof::JobSummary s = a.summary.finish(job, *last_success);
    JobRow row;
    row.job = s.job;
    row.runs = s.runs;
    row.failures = s.failures;
    row.wall_p95_s = s.wall_s.p95;
    if (s.memory_peak_bytes.p95 && *s.memory_peak_bytes.p95 < 18446744073709551616.0)  // converts back
      row.memory_peak_p95_bytes = static_cast<uint64_t>(*s.memory_peak_bytes.p95);
    row.cpu_p95_s = s.cpu_s.p95;
    row.db_queries_p95 = s.db_queries.p95;
    if (a.newest) {
      row.last_started_at = prof::format_utc(a.newest->started_at_s);
      row.last_status = to_string(a.newest->status);
    }
    if (a.newest_executed) row.memory_limit_bytes = a.newest_executed->memory_max_bytes;
    if (a.n_executed > a.series.size()) ++jobs_cut;
    row.series.assign(a.series.rbegin(), a.series.rend());  // oldest first
    prof::Suggestion sg = a.suggest.finish(job, kHeadroom, window_days);
    if (sg.enough_data) {
      row.suggested_memory_bytes = sg.memory_bytes;
      row.suggested_cpu_pct = sg.cpu_pct;
      row.suggested_timeout_s = sg.timeout_s;
    }
    in.jobs.push_back(std::move(row));
    a = JobRowAcc();
  };

  RunFilter filter;
  filter.since_unix_s = since_unix_s;
  filter.by_job = true;  // one job's figures in memory at a time
  JobRowAcc acc;
  std::string job;
  prof::SkippedRows skipped;
  auto r = store.scan(filter, [&](const RunFigures& f) {
    if (f.job != job) {
      if (acc.newest) finish_job(job, acc);
      job = f.job;
    }
    acc.add(f);
    if (prof::is_failure(f.status)) note_failure(f);
  }, skipped.callback());
  if (!r) return std::unexpected(std::move(r.error()).context("reading runs for the report"));
  if (acc.newest) finish_job(job, acc);
  skipped.report(store.path());
  if (skipped.count())
    in.notes.push_back(fmt::format("{} damaged history row(s) skipped; cronprof names them on stderr.",
                                   skipped.count()));
  if (jobs_cut)
    in.notes.push_back(fmt::format("Charts show each job's newest {} finished runs ({} job(s) had more in the "
                                   "window); the table's figures cover every run.",
                                   kMaxPointsPerJob, jobs_cut));

  for (const RunFigures& f : failed) {
    Failure row{f.job, f.run_id, prof::format_utc(f.started_at_s), to_string(f.status), f.exit_code,
                std::nullopt, std::nullopt};
    auto rec = store.find_run(f.run_id);
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
