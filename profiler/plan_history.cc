// The adapter from HistoryStore's indexed columns to the plan's JobProfile. CPU
// demand is per run: CPU seconds over wall seconds, the job's average number of
// busy cores while it runs; its p95 is what the plan books for every minute.
#include "profiler/plan_history.h"

#include <algorithm>
#include <map>

#include "profiler/cli_support.h"
#include "profiler/stats.h"

namespace cronrun::plan {

namespace {

// One job's figures while its runs are read (three doubles per run at most).
struct ProfileAcc {
  JobProfile p;
  std::vector<double> mem, rate, wall;
  double newest_s = -1;

  void add(const RunFigures& f) {
    p.runs++;
    // Without a cgroup (rusage accounting) the largest process's RSS is the best
    // figure there is; the profile says so.
    if (f.memory_peak_bytes) {
      mem.push_back(static_cast<double>(*f.memory_peak_bytes));
    } else if (f.max_rss_bytes) {
      mem.push_back(static_cast<double>(*f.max_rss_bytes));
      p.memory_from_rss = true;
    }
    if (f.wall_s) wall.push_back(*f.wall_s);
    if (f.cpu_s && f.wall_s && *f.wall_s > 0) rate.push_back(*f.cpu_s / *f.wall_s);
    if (f.started_at_s > newest_s) {
      newest_s = f.started_at_s;
      p.memory_limit_bytes = f.memory_max_bytes;
    }
  }

  JobProfile finish(const std::string& job) {
    p.job = job;
    // The figures come from uint64_t columns, but their double can be 2^64, which
    // does not convert back.
    if (auto v = prof::percentile(std::move(mem), 95); v && *v < 18446744073709551616.0)
      p.memory_peak_p95_bytes = static_cast<uint64_t>(*v);
    p.cpu_per_wall = prof::percentile(std::move(rate), 95);
    std::sort(wall.begin(), wall.end());
    p.wall_p50_s = prof::percentile_sorted(wall, 50);
    p.wall_p95_s = prof::percentile_sorted(wall, 95);
    JobProfile out = std::move(p);
    *this = ProfileAcc();
    return out;
  }
};

// Skipped, running and lost rows say nothing about a run's size.
bool sized(RunStatus s) { return s != RunStatus::skipped && s != RunStatus::running && s != RunStatus::lost; }

}  // namespace

std::vector<JobProfile> profiles_from(const std::vector<RunFigures>& runs) {
  std::map<std::string, ProfileAcc> by_job;
  for (const RunFigures& f : runs)
    if (sized(f.status)) by_job[f.job].add(f);
  std::vector<JobProfile> out;
  for (auto& [job, a] : by_job) out.push_back(a.finish(job));
  return out;
}

Result<std::vector<JobProfile>> load_profiles(const HistoryStore& store, double since_unix_s) {
  RunFilter filter;
  filter.since_unix_s = since_unix_s;
  filter.finished_only = true;
  filter.by_job = true;  // one job's figures in memory at a time
  std::vector<JobProfile> out;
  ProfileAcc acc;
  std::string job;
  prof::SkippedRows skipped;
  auto r = store.scan(filter, [&](const RunFigures& f) {
    if (!sized(f.status)) return;
    if (f.job != job) {
      if (acc.p.runs) out.push_back(acc.finish(job));
      job = f.job;
    }
    acc.add(f);
  }, skipped.callback());
  if (!r) return std::unexpected(std::move(r.error()).context("reading job profiles from the history"));
  if (acc.p.runs) out.push_back(acc.finish(job));
  skipped.report(store.path());
  return out;
}

}  // namespace cronrun::plan
