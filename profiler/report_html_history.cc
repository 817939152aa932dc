// The report's adapter. One scan of the indexed columns, grouped by job
// (RunFilter::by_job), feeds the table (via prof::JobSummaryAcc, so the report and
// `cronprof summary` never disagree), the suggestions (prof::SuggestAcc, headroom
// 1.3 as `suggest` defaults), the job's state, the daily strip and the charts,
// holding one job's figures at a time so a history of any size fits in bounded
// memory. Only the runs the page links to (each job's newest and newest bad runs,
// the listed failures) read their full records, for the profile and the log.
//
// Logs sit in a directory the admin chose, written by jobs; the reader may be root.
// So a log is opened relative to a checked directory fd, O_NOFOLLOW|O_NONBLOCK,
// regular files only, and only its last bytes are read: a symlink, a FIFO or a
// huge file planted where a log was never costs more than one bounded read.
#include "profiler/report_html_history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fmt/core.h>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "common/safe_file.h"
#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/show.h"
#include "profiler/suggest.h"
#include "profiler/summary.h"

namespace cronrun::report {

namespace {

constexpr double kHeadroom = 1.3;
constexpr size_t kMaxDetails = 400;  // run sections in one page, at most

bool executed(RunStatus s) { return s != RunStatus::skipped && s != RunStatus::running && s != RunStatus::lost; }

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

RunPoint point(const RunFigures& f) {
  RunPoint p;
  p.run_id = f.run_id;
  p.started_at_s = f.started_at_s;
  p.status = to_string(f.status);
  p.wall_s = f.wall_s;
  // Runs without a cgroup have no cgroup peak; their largest process's RSS stands in.
  p.memory_peak_bytes = f.memory_peak_bytes ? f.memory_peak_bytes : f.max_rss_bytes;
  p.db_queries = f.db_queries;
  p.oom_kills = f.oom_kills;
  p.memory_limit_bytes = f.memory_max_bytes;
  p.timeout_s = f.timeout_s;
  p.exit_code = f.exit_code;
  return p;
}

// One job's row while its runs are read newest first (RunFilter::by_job): the
// table's figures, the suggestion, the newest kMaxPointsPerJob executed runs for
// the charts and the runs the page lists. Older runs are counted, not kept.
struct JobRowAcc {
  prof::JobSummaryAcc summary;
  prof::SuggestAcc suggest;
  std::optional<RunFigures> newest, newest_finished_executed, newest_running;
  std::vector<RunPoint> series;  // newest first until finish()
  std::vector<RunPoint> recent;  // newest first
  size_t recent_bad = 0;
  size_t n_executed = 0;
  uint64_t oom_kills = 0;
  size_t runs_with_oom_kills = 0;
  std::vector<DayCounts> days;

  void add(const RunFigures& f, double days_start_s) {
    summary.add(f);
    suggest.add(f);
    if (!newest) newest = f;
    if (f.status == RunStatus::running && !newest_running) newest_running = f;
    if (f.oom_kills && *f.oom_kills) {
      oom_kills += *f.oom_kills;
      ++runs_with_oom_kills;
    }
    const std::string st = to_string(f.status);
    const bool bad = bad_run(st, f.oom_kills);
    if (recent.size() < kRecentRuns || (bad && recent_bad < kRecentBadRuns)) {
      recent.push_back(point(f));
      if (bad) ++recent_bad;
    }
    if (f.started_at_s >= days_start_s && std::isfinite(f.started_at_s)) {
      auto d = static_cast<size_t>((f.started_at_s - days_start_s) / 86400.0);
      if (d < days.size()) {
        if (f.status == RunStatus::skipped) ++days[d].skipped;
        else if (bad) ++days[d].bad;
        else if (f.status == RunStatus::ok) ++days[d].ok;
      }
    }
    if (!executed(f.status) && f.status != RunStatus::lost) return;
    if (!newest_finished_executed) newest_finished_executed = f;
    if (f.status == RunStatus::lost) return;
    ++n_executed;
    if (series.size() < kMaxPointsPerJob) series.push_back(point(f));
  }
};

// State from the runs alone, in status.h's order of urgency: failing (the newest
// run that executed and finished did not end ok), running, up.
void history_state(JobRow& row, const JobRowAcc& a) {
  if (a.newest_finished_executed && a.newest_finished_executed->status != RunStatus::ok) {
    const RunFigures& f = *a.newest_finished_executed;
    row.state = "failing";
    row.state_reason = fmt::format("last run {}", to_string(f.status));
  } else if (a.newest_running) {
    row.state = "running";
    row.state_reason = fmt::format("running since {}", prof::format_utc(a.newest_running->started_at_s));
  } else if (a.newest_finished_executed) {
    row.state = "up";
  } else {
    row.state = "up";
    row.state_reason = "only skipped runs in the window";
  }
}

std::string log_note(const RunRecord& r, const Result<LogTail>& tail) {
  if (!tail) return "log not read: " + tail.error().message();
  if (tail->cut)
    return fmt::format("{}: last {} of {}", *r.log.path, units::format_size(tail->text.size()),
                       units::format_size(tail->size_bytes));
  return fmt::format("{}: whole log, {}", *r.log.path, units::format_size(tail->size_bytes));
}

}  // namespace

Result<LogTail> read_log_tail(const std::string& path, size_t max_bytes) {
  auto [dir_path, name] = split_path(path);
  auto dir = CheckedDir::open(dir_path);
  if (!dir) return std::unexpected(std::move(dir.error()));
  auto fd = dir->open_regular(name, O_RDONLY | O_CLOEXEC);
  if (!fd) return std::unexpected(std::move(fd.error()));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  LogTail out;
  out.size_bytes = static_cast<uint64_t>(st.st_size);
  off_t from = st.st_size > static_cast<off_t>(max_bytes) ? st.st_size - static_cast<off_t>(max_bytes) : 0;
  if (from > 0 && ::lseek(fd->get(), from, SEEK_SET) < 0) return fail_sys("lseek", path);
  auto r = read_bounded(fd->get(), max_bytes, path);
  if (!r) return std::unexpected(std::move(r.error()));
  out.text = std::move(r->data);
  out.cut = from > 0;
  if (out.cut) {
    // Start at a whole line (when there is one to start at).
    size_t nl = out.text.find('\n');
    if (nl != std::string::npos && nl + 1 < out.text.size()) out.text.erase(0, nl + 1);
  }
  return out;
}

Result<ReportInput> report_from_history(const HistoryStore& store, double since_unix_s, double now_unix_s,
                                        const std::string& window) {
  ReportInput in;
  in.host = hostname();
  in.generated_at = prof::format_utc(now_unix_s);
  in.window = window;
  in.history_path = store.path();
  in.window_start_s = since_unix_s;
  in.now_s = now_unix_s;

  auto last_success = store.last_success_by_job();
  if (!last_success) return std::unexpected(std::move(last_success.error()).context("reading runs for the report"));
  const double window_days = std::max(0.1, (now_unix_s - since_unix_s) / 86400.0);
  const size_t ndays = std::clamp<size_t>(static_cast<size_t>(std::ceil(window_days)), 1, kMaxStripDays);
  in.days_start_s = (std::floor(now_unix_s / 86400.0) - static_cast<double>(ndays - 1)) * 86400.0;

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
  auto fresh = [&]() {
    JobRowAcc a;
    a.days.assign(ndays, DayCounts{});
    return a;
  };
  auto finish_job = [&](const std::string& job, JobRowAcc& a) {
    prof::JobSummary s = a.summary.finish(job, *last_success);
    JobRow row;
    row.job = s.job;
    row.runs = s.runs;
    row.ok = s.ok;
    row.failures = s.failures;
    row.skipped = s.skipped;
    row.oom_kills = a.oom_kills;
    row.runs_with_oom_kills = a.runs_with_oom_kills;
    row.wall_p95_s = s.wall_s.p95;
    if (s.memory_peak_bytes.p95 && *s.memory_peak_bytes.p95 < 18446744073709551616.0)  // converts back
      row.memory_peak_p95_bytes = static_cast<uint64_t>(*s.memory_peak_bytes.p95);
    else if (s.max_rss_bytes.p95 && *s.max_rss_bytes.p95 < 18446744073709551616.0)
      row.max_rss_p95_bytes = static_cast<uint64_t>(*s.max_rss_bytes.p95);
    row.cpu_p95_s = s.cpu_s.p95;
    row.db_queries_p95 = s.db_queries.p95;
    if (a.newest) {
      row.last_started_at = prof::format_utc(a.newest->started_at_s);
      row.last_status = to_string(a.newest->status);
      row.last_run_id = a.newest->run_id;
    }
    history_state(row, a);
    if (a.n_executed > a.series.size()) ++jobs_cut;
    row.series.assign(a.series.rbegin(), a.series.rend());  // oldest first
    row.recent = std::move(a.recent);
    row.days = std::move(a.days);
    prof::Suggestion sg = a.suggest.finish(job, kHeadroom, window_days);
    if (sg.enough_data) {
      row.suggested_memory_bytes = sg.memory_bytes;
      row.suggested_cpu_pct = sg.cpu_pct;
      row.suggested_timeout_s = sg.timeout_s;
      row.suggested_pids = sg.pids_max;
    }
    in.jobs.push_back(std::move(row));
    a = fresh();
  };

  RunFilter filter;
  filter.since_unix_s = since_unix_s;
  filter.by_job = true;  // one job's figures in memory at a time
  JobRowAcc acc = fresh();
  std::string job;
  prof::SkippedRows skipped;
  auto r = store.scan(filter, [&](const RunFigures& f) {
    if (f.job != job) {
      if (acc.newest) finish_job(job, acc);
      job = f.job;
    }
    acc.add(f, in.days_start_s);
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

  // The runs the page links to: each job's listed runs, then the failures.
  std::vector<std::string> wanted;
  std::set<std::string> seen;
  for (const JobRow& row : in.jobs)
    for (const RunPoint& p : row.recent)
      if (seen.insert(p.run_id).second) wanted.push_back(p.run_id);
  for (const RunFigures& f : failed)
    if (seen.insert(f.run_id).second) wanted.push_back(f.run_id);
  if (wanted.size() > kMaxDetails) {
    in.notes.push_back(fmt::format("Run sections for the first {} of {} listed runs only.", kMaxDetails,
                                   wanted.size()));
    wanted.resize(kMaxDetails);
  }
  std::map<std::string, RunRecord> records;
  for (const std::string& id : wanted) {
    auto rec = store.find_run(id);
    if (!rec || !*rec) continue;  // gone since the scan (gc), or damaged: the page lists it without a section
    RunDetail d;
    const RunRecord& rr = **rec;
    d.run_id = rr.run_id;
    d.job = rr.job;
    d.started_at = rr.started_at;
    d.status = to_string(rr.status);
    d.profile = prof::render_profile(rr);
    if (!rr.log.path) {
      d.log_note = "log not kept (cronrun keeps it with --log-dir or --log)";
    } else {
      auto tail = read_log_tail(*rr.log.path, kLogTailBytes);
      d.log_note = log_note(rr, tail);
      if (tail) d.log_tail = std::move(tail->text);
    }
    in.runs.push_back(std::move(d));
    records.emplace(id, rr);
  }

  for (const RunFigures& f : failed) {
    Failure row{f.job, f.run_id, prof::format_utc(f.started_at_s), to_string(f.status), f.exit_code,
                std::nullopt, std::nullopt};
    auto it = records.find(f.run_id);
    if (it == records.end()) {
      auto rec = store.find_run(f.run_id);
      if (rec && *rec) it = records.emplace(f.run_id, **rec).first;
    }
    if (it != records.end()) {
      row.signal = it->second.signal;
      row.log_path = it->second.log.path;
      if (it->second.exit_code) row.exit_code = it->second.exit_code;
    }
    in.failures.push_back(std::move(row));
  }
  sort_jobs(in.jobs);
  return in;
}

}  // namespace cronrun::report
