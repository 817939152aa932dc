// Per-job aggregates over a window of runs: counts by outcome and the spread
// (nearest-rank p50/p95/max, see stats.h) of wall time, CPU time, peak memory and
// DB queries. Built from the history's indexed columns in one pass, so a million
// runs need no JSON parsing.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/history.h"
#include "profiler/stats.h"

namespace cronrun::prof {

struct JobSummary {
  std::string job;
  uint64_t runs = 0;       // every row in the window, whatever its status
  uint64_t ok = 0;
  uint64_t failures = 0;   // failed, killed, timeout, oom, error, lost
  uint64_t skipped = 0;
  uint64_t timeouts = 0;
  uint64_t oom_kills = 0;  // OOM kills counted by the kernel (at least 1 per `oom` run)
  uint64_t running = 0;
  uint64_t lost = 0;
  // Over runs that executed and finished (not skipped, running or lost).
  Spread wall_s, cpu_s, memory_peak_bytes, db_queries;
  // The largest process's RSS (getrusage) of the runs that had no cgroup peak
  // (an ordinary user without delegation): a lower bound, never mixed into the
  // peak's spread.
  Spread max_rss_bytes;
  std::optional<double> cpu_throttled_mean_s;  // mean over runs that measured it
  std::optional<double> last_success_s;        // newest `ok` start, whole history
  std::optional<double> last_run_s;            // newest start in the window
};

// One job's counts and figures while its runs are read, in any order. Holds the
// job's figures (four doubles per run at most) until finish(): streaming callers
// (the report: HistoryStore::scan with RunFilter::by_job) keep one at a time.
class JobSummaryAcc {
 public:
  void add(const RunFigures& f);
  // The job's summary; `last_success` as for SummaryBuilder::finish. Leaves the
  // accumulator empty, ready for the next job.
  JobSummary finish(const std::string& job, const std::map<std::string, double>& last_success);
  bool empty() const { return s_.runs == 0; }

 private:
  JobSummary s_;
  std::vector<double> wall_, cpu_, mem_, rss_, db_;
  double throttled_sum_ = 0;
  uint64_t throttled_n_ = 0;
};

// Every job at once, for rows in any order (small histories, tests).
class SummaryBuilder {
 public:
  void add(const RunFigures& f);
  // One entry per job, sorted by name. `last_success` comes from the whole
  // history (HistoryStore::last_success_by_job), not just the window.
  std::vector<JobSummary> finish(const std::map<std::string, double>& last_success);

 private:
  std::unordered_map<std::string, JobSummaryAcc> jobs_;  // hashed: one lookup per run
};

// Summaries of the jobs with runs matching `filter`, sorted by name, in one pass
// over the columns summaries read (HistoryStore::scan_summary) in storage order:
// no sort, the fastest way through a large window. Memory: one double per figure
// of each executed run of the window (JobSummaryAcc). Damaged rows go to
// `on_corrupt`.
Result<std::vector<JobSummary>> summarize(const HistoryStore& store, const RunFilter& filter,
                                          const HistoryStore::CorruptRowFn& on_corrupt);

bool is_failure(RunStatus s);

nlohmann::json summary_json(const std::vector<JobSummary>& jobs, double since_unix_s);
// The table for people, fitted to `width` columns (0: no limit; cli_support.h).
std::string summary_table(const std::vector<JobSummary>& jobs, size_t width = 0);

}  // namespace cronrun::prof
