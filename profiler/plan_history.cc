// The adapter from HistoryStore's indexed columns to the plan's JobProfile. CPU
// demand is per run: CPU seconds over wall seconds, the job's average number of
// busy cores while it runs; its p95 is what the plan books for every minute.
#include "profiler/plan_history.h"

#include <map>

#include "profiler/cli_support.h"
#include "profiler/stats.h"

namespace cronrun::plan {

std::vector<JobProfile> profiles_from(const std::vector<RunFigures>& runs) {
  struct Acc {
    JobProfile p;
    std::vector<double> mem, rate, wall;
    double newest_s = -1;
  };
  std::map<std::string, Acc> by_job;
  for (const RunFigures& f : runs) {
    if (f.status == RunStatus::skipped || f.status == RunStatus::running || f.status == RunStatus::lost) continue;
    Acc& a = by_job[f.job];
    a.p.runs++;
    // Without a cgroup (rusage accounting) the largest process's RSS is the best
    // figure there is; the profile says so.
    if (f.memory_peak_bytes) {
      a.mem.push_back(static_cast<double>(*f.memory_peak_bytes));
    } else if (f.max_rss_bytes) {
      a.mem.push_back(static_cast<double>(*f.max_rss_bytes));
      a.p.memory_from_rss = true;
    }
    if (f.wall_s) a.wall.push_back(*f.wall_s);
    if (f.cpu_s && f.wall_s && *f.wall_s > 0) a.rate.push_back(*f.cpu_s / *f.wall_s);
    if (f.started_at_s > a.newest_s) {
      a.newest_s = f.started_at_s;
      a.p.memory_limit_bytes = f.memory_max_bytes;
    }
  }
  std::vector<JobProfile> out;
  for (auto& [job, a] : by_job) {
    a.p.job = job;
    // The figures come from uint64_t columns, but their double can be 2^64, which
    // does not convert back.
    if (auto v = prof::percentile(a.mem, 95); v && *v < 18446744073709551616.0)
      a.p.memory_peak_p95_bytes = static_cast<uint64_t>(*v);
    a.p.cpu_per_wall = prof::percentile(a.rate, 95);
    a.p.wall_p50_s = prof::percentile(a.wall, 50);
    a.p.wall_p95_s = prof::percentile(a.wall, 95);
    out.push_back(std::move(a.p));
  }
  return out;
}

Result<std::vector<JobProfile>> load_profiles(const HistoryStore& store, double since_unix_s) {
  RunFilter filter;
  filter.since_unix_s = since_unix_s;
  filter.finished_only = true;
  std::vector<RunFigures> runs;
  prof::SkippedRows skipped;
  auto r = store.scan(filter, [&](const RunFigures& f) { runs.push_back(f); }, skipped.callback());
  if (!r) return std::unexpected(std::move(r.error()).context("reading job profiles from the history"));
  skipped.report(store.path());
  return profiles_from(runs);
}

}  // namespace cronrun::plan
