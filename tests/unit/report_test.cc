// The --report profile: a figure the run did not measure reads "n/a", never 0
// or a percentage computed from a missing half.
#include <gtest/gtest.h>

#include "common/run_record.h"
#include "runner/report.h"

namespace cronrun {
namespace {

RunRecord finished() {
  RunRecord r;
  r.run_id = "0193f1c2-0000-7000-8000-000000000001";
  r.job = "backup";
  r.status = RunStatus::ok;
  r.exit_code = 0;
  r.wall_s = 2.0;
  return r;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Report, UnmeasuredUsageIsNotApplicableNotZero) {
  RunRecord r = finished();  // no usage figure measured at all
  std::string out = format_report(r);
  EXPECT_TRUE(has(out, "cpu n/a user + n/a system\n")) << out;
  EXPECT_FALSE(has(out, "% of one CPU")) << out;
  EXPECT_TRUE(has(out, "memory peak n/a, largest process n/a")) << out;
  EXPECT_TRUE(has(out, "oom kills n/a, memory.max events n/a, pids peak n/a")) << out;
  EXPECT_TRUE(has(out, "io read n/a, write n/a")) << out;
  EXPECT_TRUE(has(out, "cpu throttled n/a (n/a periods)")) << out;
  EXPECT_FALSE(has(out, " 0 ")) << out;
}

TEST(Report, OneHalfOfTheCpuTimeGivesNoShareOfACpu) {
  RunRecord r = finished();
  r.usage.cpu_user_s = 1.0;  // system time not measured
  std::string out = format_report(r);
  EXPECT_TRUE(has(out, "user + n/a system\n")) << out;
  EXPECT_FALSE(has(out, "% of one CPU")) << out;
  r.usage.cpu_system_s = 0.0;
  out = format_report(r);
  EXPECT_TRUE(has(out, "(50% of one CPU)")) << out;
}

TEST(Report, DatabaseWaitNotTimedIsNotApplicable) {
  RunRecord r = finished();
  r.counters["db.queries"] = 12;  // counted, but no db.time_s
  std::string out = format_report(r);
  EXPECT_TRUE(has(out, "db 12 queries, n/a waiting\n")) << out;
  EXPECT_FALSE(has(out, "% of wall")) << out;
  r.counters["db.time_s"] = 0.5;
  out = format_report(r);
  EXPECT_TRUE(has(out, "(25% of wall)")) << out;
}

TEST(Report, ForksThePidsLimitRefusedAreSaidWhenCounted) {
  RunRecord r = finished();
  r.usage.pids_peak = 10;
  EXPECT_TRUE(has(format_report(r), "pids peak 10\n")) << format_report(r);
  r.usage.pids_max_events = 3;
  EXPECT_TRUE(has(format_report(r), "pids peak 10, forks refused by pids.max 3\n")) << format_report(r);
}

TEST(Report, NamesTheFiguresNoCgroupWasMadeFor) {
  RunRecord r = finished();
  r.usage.not_measured = {"pids_peak", "cpu_throttled_s"};
  std::string out = format_report(r);
  EXPECT_TRUE(has(out, "not measured (no cgroup of that controller was made for this run): pids_peak, cpu_throttled_s\n"))
      << out;
  r.usage.not_measured.clear();
  EXPECT_FALSE(has(format_report(r), "not measured")) << format_report(r);
}

}  // namespace
}  // namespace cronrun
