// From history rows to the plan's job profiles: which runs count, nearest-rank
// percentiles (stats.h), CPU as cores while running, the newest run's limit.
#include <gtest/gtest.h>

#include "profiler/plan_history.h"

namespace cronrun::plan {
namespace {

RunFigures run(std::string job, RunStatus s, double start, double wall, double cpu, uint64_t mem) {
  RunFigures f;
  f.run_id = job + std::to_string(start);
  f.job = std::move(job);
  f.status = s;
  f.started_at_s = start;
  f.wall_s = wall;
  f.cpu_s = cpu;
  f.memory_peak_bytes = mem;
  return f;
}

TEST(PlanHistory, ProfilesFromRuns) {
  std::vector<RunFigures> runs;
  for (int i = 1; i <= 20; ++i) runs.push_back(run("a", RunStatus::ok, 1000.0 + i, 10.0 * i, 5.0 * i, 100u * i));
  runs.push_back(run("a", RunStatus::failed, 2000, 1000, 1000, 5000));  // failed runs used resources too
  RunFigures skipped = run("a", RunStatus::skipped, 3000, 0.01, 0, 0);
  runs.push_back(skipped);
  RunFigures lost = run("a", RunStatus::lost, 3001, 99999, 0, 999999);
  runs.push_back(lost);
  runs.back().memory_max_bytes = 1;  // newest row, but not a finished run
  runs[20].memory_max_bytes = 4096;  // the newest finished run's limit
  RunFigures b;
  b.job = "b";
  b.status = RunStatus::ok;  // a run the host could not measure
  runs.push_back(b);

  auto profiles = profiles_from(runs);
  ASSERT_EQ(profiles.size(), 2u);
  const JobProfile& a = profiles[0];
  EXPECT_EQ(a.job, "a");
  EXPECT_EQ(a.runs, 21u);
  // 21 values 10..200 and 1000: nearest rank p50 = 11th = 110, p95 = 20th = 200.
  EXPECT_DOUBLE_EQ(*a.wall_p50_s, 110);
  EXPECT_DOUBLE_EQ(*a.wall_p95_s, 200);
  EXPECT_EQ(*a.memory_peak_p95_bytes, 2000u);
  EXPECT_DOUBLE_EQ(*a.cpu_per_wall, 0.5);  // 20 runs at 0.5 core, one at 1.0: p95 is the 20th
  EXPECT_EQ(a.memory_limit_bytes, 4096u);
  EXPECT_FALSE(a.memory_from_rss);
  const JobProfile& pb = profiles[1];
  EXPECT_EQ(pb.runs, 1u);
  EXPECT_FALSE(pb.memory_peak_p95_bytes);
  EXPECT_FALSE(pb.wall_p50_s);
  EXPECT_FALSE(pb.cpu_per_wall);
}

TEST(PlanHistory, MaxRssStandsInWithoutCgroup) {
  RunFigures f = run("c", RunStatus::ok, 1, 1, 1, 0);
  f.memory_peak_bytes.reset();
  f.max_rss_bytes = 777;
  auto profiles = profiles_from({f});
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles[0].memory_peak_p95_bytes, 777u);
  EXPECT_TRUE(profiles[0].memory_from_rss);
}

}  // namespace
}  // namespace cronrun::plan
