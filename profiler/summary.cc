// `cronprof summary [--job J] [--since 30d]`: per job counts and spreads.
#include "profiler/summary.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "common/run_record.h"
#include "profiler/cli_support.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

bool is_failure(RunStatus s) {
  switch (s) {
    case RunStatus::failed:
    case RunStatus::killed:
    case RunStatus::timeout:
    case RunStatus::oom:
    case RunStatus::error:
    case RunStatus::lost: return true;
    default: return false;
  }
}

void JobSummaryAcc::add(const RunFigures& f) {
  JobSummary& s = s_;
  s.runs++;
  if (!s.last_run_s || f.started_at_s > *s.last_run_s) s.last_run_s = f.started_at_s;
  switch (f.status) {
    case RunStatus::ok: s.ok++; break;
    case RunStatus::skipped: s.skipped++; break;
    case RunStatus::running: s.running++; break;
    case RunStatus::timeout: s.timeouts++; break;
    case RunStatus::lost: s.lost++; break;
    default: break;
  }
  if (is_failure(f.status)) s.failures++;
  uint64_t kills = f.oom_kills.value_or(0);
  if (f.status == RunStatus::oom && kills == 0) kills = 1;
  s.oom_kills += kills;
  if (f.status == RunStatus::skipped || f.status == RunStatus::running || f.status == RunStatus::lost) return;
  if (f.wall_s) wall_.push_back(*f.wall_s);
  if (f.cpu_s) cpu_.push_back(*f.cpu_s);
  if (f.memory_peak_bytes)
    mem_.push_back(static_cast<double>(*f.memory_peak_bytes));
  else if (f.max_rss_bytes)
    rss_.push_back(static_cast<double>(*f.max_rss_bytes));
  if (f.db_queries) db_.push_back(*f.db_queries);
  if (f.cpu_throttled_s) {
    throttled_sum_ += *f.cpu_throttled_s;
    throttled_n_++;
  }
}

JobSummary JobSummaryAcc::finish(const std::string& job, const std::map<std::string, double>& last_success) {
  JobSummary out = std::move(s_);
  out.job = job;
  out.wall_s = spread_of(wall_);
  out.cpu_s = spread_of(cpu_);
  out.memory_peak_bytes = spread_of(mem_);
  out.max_rss_bytes = spread_of(rss_);
  out.db_queries = spread_of(db_);
  if (throttled_n_) out.cpu_throttled_mean_s = throttled_sum_ / static_cast<double>(throttled_n_);
  if (auto it = last_success.find(job); it != last_success.end()) out.last_success_s = it->second;
  *this = JobSummaryAcc();  // frees the figures
  return out;
}

void SummaryBuilder::add(const RunFigures& f) { jobs_[f.job].add(f); }

std::vector<JobSummary> SummaryBuilder::finish(const std::map<std::string, double>& last_success) {
  std::vector<JobSummary> out;
  out.reserve(jobs_.size());
  std::vector<std::pair<const std::string, JobSummaryAcc>*> sorted;
  for (auto& entry : jobs_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* x, auto* y) { return x->first < y->first; });
  for (auto* entry : sorted) out.push_back(entry->second.finish(entry->first, last_success));
  jobs_.clear();
  return out;
}

Result<std::vector<JobSummary>> summarize(const HistoryStore& store, const RunFilter& filter,
                                          const HistoryStore::CorruptRowFn& on_corrupt) {
  SummaryBuilder b;
  auto r = store.scan_summary(filter, [&](const RunFigures& f) { b.add(f); }, on_corrupt);
  if (!r) return std::unexpected(r.error());
  auto last = store.last_success_by_job();
  if (!last) return std::unexpected(last.error());
  return b.finish(*last);
}

nlohmann::json summary_json(const std::vector<JobSummary>& jobs, double since_unix_s) {
  using nlohmann::json;
  auto time_or_null = [](const std::optional<double>& t) { return t ? json_time(*t) : json(nullptr); };
  json arr = json::array();
  for (const JobSummary& s : jobs) {
    arr.push_back({{"job", s.job},
                   {"runs", s.runs},
                   {"ok", s.ok},
                   {"failures", s.failures},
                   {"skipped", s.skipped},
                   {"timeouts", s.timeouts},
                   {"oom_kills", s.oom_kills},
                   {"running", s.running},
                   {"lost", s.lost},
                   {"wall_s", spread_json(s.wall_s)},
                   {"cpu_s", spread_json(s.cpu_s)},
                   {"memory_peak_bytes", spread_json(s.memory_peak_bytes, true)},
                   {"max_rss_bytes", spread_json(s.max_rss_bytes, true)},
                   {"db_queries", spread_json(s.db_queries, true)},
                   {"cpu_throttled_s_mean", s.cpu_throttled_mean_s ? json(*s.cpu_throttled_mean_s) : json(nullptr)},
                   {"last_success", time_or_null(s.last_success_s)},
                   {"last_run", time_or_null(s.last_run_s)}});
  }
  return {{"schema", "cronrun.summary/1"},
          {"since", json_time(since_unix_s)},
          {"percentiles", "nearest-rank"},
          {"jobs", std::move(arr)}};
}

namespace {

// The cgroup peak's spread; for a job with no run that had one, the RSS's,
// marked as such (as `runs` marks a run's).
std::string memory_text(const JobSummary& s, bool p95_only) {
  const bool rss = s.memory_peak_bytes.n == 0 && s.max_rss_bytes.n > 0;
  const Spread& m = rss ? s.max_rss_bytes : s.memory_peak_bytes;
  if (m.n == 0) return "-";
  std::string text = rss ? "rss " : "";
  if (p95_only) return text + size_or_dash(m.p95);
  return text + size_or_dash(m.p50) + " / " + size_or_dash(m.p95) + " / " + size_or_dash(m.max);
}

}  // namespace

std::string summary_table(const std::vector<JobSummary>& jobs, size_t width) {
  // A narrow terminal first loses the DB, CPU and throttling columns, then shows
  // only the p95 of wall time and peak memory, then the last success, the skip,
  // timeout and OOM counts; job names are shortened.
  enum { kWall = 6, kMem = 9 };
  Table t({{.header = "JOB", .min_width = 12},
           {.header = "RUNS", .right = true},
           {.header = "FAIL", .right = true},
           {.header = "SKIP", .right = true, .drop = 8},
           {.header = "OOM", .right = true, .drop = 6},
           {.header = "T/O", .right = true, .drop = 7},
           {.header = "WALL p50/p95/max", .right = true, .drop = 10},
           {.header = "WALL p95", .right = true, .drop = 4, .stand_in_for = kWall},
           {.header = "CPU p50/p95/max", .right = true, .drop = 13},
           {.header = "PEAK MEM p50/p95/max", .right = true, .drop = 11},
           {.header = "MEM p95", .right = true, .drop = 5, .stand_in_for = kMem},
           {.header = "DB QUERIES p50/p95/max", .right = true, .drop = 14},
           {.header = "THROTTLED", .right = true, .drop = 12},
           {.header = "LAST SUCCESS", .drop = 9}});
  auto three = [](const Spread& s, auto fmt1) {
    if (s.n == 0) return std::string("-");
    return fmt1(s.p50) + " / " + fmt1(s.p95) + " / " + fmt1(s.max);
  };
  for (const JobSummary& s : jobs) {
    t.add({s.job, std::to_string(s.runs), std::to_string(s.failures), std::to_string(s.skipped),
           std::to_string(s.oom_kills), std::to_string(s.timeouts),
           three(s.wall_s, [](auto v) { return duration_or_dash(v); }),
           s.wall_s.n ? duration_or_dash(s.wall_s.p95) : "-",
           three(s.cpu_s, [](auto v) { return duration_or_dash(v); }),
           memory_text(s, false), memory_text(s, true),
           three(s.db_queries, [](auto v) { return number_or_dash(v); }),
           s.cpu_throttled_mean_s ? duration_or_dash(s.cpu_throttled_mean_s) : "-",
           s.last_success_s ? format_utc(*s.last_success_s) : "never"});
  }
  t.fit(width);
  return t.render();
}

Command add_summary(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string job;
    std::string since = "30d";
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand("summary", "Per job: runs, failures, skips, OOM kills, timeouts; wall, "
                                                   "CPU, peak memory, DB queries as p50/p95/max");
  app->add_option("--job", opts->job, "Only this job");
  app->add_option("--since", opts->since, "Window, e.g. 30d, 12h (default 30d)");
  return {app, [opts, &g]() -> int {
            double now = now_unix_s();
            auto since = window_option("--since", opts->since, now);
            if (!since) return since.error();
            auto store = open_history(g);
            if (!store) return store.error();
            RunFilter f;
            if (!opts->job.empty()) f.job = opts->job;
            f.since_unix_s = *since;
            SkippedRows skipped;
            auto jobs = summarize(*store, f, skipped.callback());
            if (!jobs) return query_failed(*store, jobs.error());
            if (g.json) {
              std::printf("%s\n", json_text(summary_json(*jobs, *since), 2).c_str());
            } else if (jobs->empty()) {
              std::printf("no runs since %s%s\n", format_utc(*since).c_str(),
                          opts->job.empty() ? "" : (" for job " + term_text(opts->job)).c_str());
            } else {
              std::fputs(summary_table(*jobs, output_width(g)).c_str(), stdout);
            }
            skipped.report(g.history_label);
            return kExitOk;
          },
          [opts]() {
            CentralScope s = window_scope(opts->since, opts->job);
            s.last_success_before = true;  // the table's LAST SUCCESS may be older than the window
            return s;
          }};
}

}  // namespace cronrun::prof
