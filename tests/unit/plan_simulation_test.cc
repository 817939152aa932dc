// The week simulation on synthetic crontabs and profiles with answers worked out by
// hand: coinciding peaks and the stagger that removes them, lost runs under the
// lock, day-of-month OR day-of-week, runs wrapping from Sunday into Monday.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "profiler/plan.h"

namespace cronrun::plan {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr int kMon0200 = 2 * 60;

std::vector<PlannedEntry> entries_of(std::string_view crontab_text) {
  auto c = crontab::parse_crontab(crontab_text, "test.cron", crontab::Kind::user);
  EXPECT_TRUE(c.rejected.empty()) << (c.rejected.empty() ? "" : c.rejected.front().reason);
  return plan_entries(c.entries);
}

JobProfile profile(std::string job, uint64_t mem, double cpu, double p50, double p95) {
  JobProfile p;
  p.job = std::move(job);
  p.runs = 20;
  p.memory_peak_p95_bytes = mem;
  p.cpu_per_wall = cpu;
  p.wall_p50_s = p50;
  p.wall_p95_s = p95;
  return p;
}

Host host() { return {16 * kGiB, 4, "test"}; }

Options week_of(int y, unsigned m, unsigned d) {
  Options o;
  o.week = week_containing(y, m, d);
  return o;
}

TEST(PlanWeek, WeekStartsOnMonday) {
  WeekStart w = week_containing(2026, 11, 25);  // a Wednesday
  EXPECT_EQ(w.year, 2026);
  EXPECT_EQ(w.month, 11u);
  EXPECT_EQ(w.day, 23u);
  w = week_containing(2027, 1, 3);  // a Sunday: the week began in December
  EXPECT_EQ(w.year, 2026);
  EXPECT_EQ(w.month, 12u);
  EXPECT_EQ(w.day, 28u);
  EXPECT_EQ(weekday_hhmm(0), "Mon 00:00");
  EXPECT_EQ(weekday_hhmm(kMon0200), "Mon 02:00");
  EXPECT_EQ(weekday_hhmm(kMinutesPerWeek - 1), "Sun 23:59");
}

TEST(PlanPeak, TwoJobsCoincideAtTwoAndTheStaggerRemovesIt) {
  auto entries = entries_of(
      "0 2 * * * cronrun -n backup -- /usr/local/bin/backup\n"
      "0 2 * * * /usr/bin/cronrun --name report -- /usr/local/bin/report\n");
  std::vector<JobProfile> profiles = {profile("backup", kGiB, 1.0, 30 * 60, 40 * 60),
                                      profile("report", kGiB, 0.5, 30 * 60, 40 * 60)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));

  for (const Scenario* s : {&p.typical, &p.pessimistic}) {
    EXPECT_EQ(s->memory_peak.memory_bytes, 2 * kGiB) << s->name;
    EXPECT_EQ(s->memory_peak.minute, kMon0200) << s->name;
    ASSERT_EQ(s->memory_peak.jobs.size(), 2u);
    EXPECT_DOUBLE_EQ(s->cpu_peak.cpu_cores, 1.5);
    EXPECT_EQ(s->cpu_peak.minute, kMon0200);
    EXPECT_EQ(s->cpu_peak.jobs.front().job, "backup");  // largest CPU first
    EXPECT_EQ(s->lost_total, 0u);
  }
  // Each daily run of 30 (40) minutes fills minutes 02:00..02:29 (02:39), every day.
  EXPECT_EQ(p.typical.memory_bytes[kMon0200 + 29], 2 * kGiB);
  EXPECT_EQ(p.typical.memory_bytes[kMon0200 + 30], 0u);
  EXPECT_EQ(p.pessimistic.memory_bytes[kMon0200 + 39], 2 * kGiB);
  EXPECT_EQ(p.pessimistic.memory_bytes[kMon0200 + 40], 0u);
  EXPECT_EQ(p.pessimistic.memory_bytes[6 * 1440 + kMon0200], 2 * kGiB);  // Sunday too

  // The smallest move that separates them: one job 40 minutes later.
  const Stagger& st = p.stagger;
  ASSERT_EQ(st.moves.size(), 1u);
  EXPECT_EQ(st.moves[0].job, "backup");
  EXPECT_EQ(st.moves[0].before, "0 2 * * *");
  EXPECT_EQ(st.moves[0].after, "40 2 * * *");
  EXPECT_EQ(st.moves[0].shift_minutes, 40);
  EXPECT_EQ(st.memory_peak_before_bytes, 2 * kGiB);
  EXPECT_EQ(st.memory_peak_after_bytes, kGiB);
  EXPECT_EQ(st.typical_memory_peak_after_bytes, kGiB);
  EXPECT_DOUBLE_EQ(st.cpu_peak_before_cores, 1.5);
  EXPECT_DOUBLE_EQ(st.cpu_peak_after_cores, 1.0);
  EXPECT_TRUE(p.outlasting.empty());

  nlohmann::json j = to_json(p, {});
  EXPECT_EQ(j["pessimistic"]["memory_peak"]["at"], "Mon 02:00");
  EXPECT_EQ(j["pessimistic"]["memory_peak"]["memory_bytes"], 2 * kGiB);
  EXPECT_EQ(j["pessimistic"]["memory_headroom_bytes"], static_cast<int64_t>(14 * kGiB));
  EXPECT_EQ(j["stagger"]["moves"][0]["to"], "40 2 * * *");
  EXPECT_EQ(j["hourly_memory_max_bytes"][0][2], 2 * kGiB);
  std::string text = format_text(p, {});
  EXPECT_NE(text.find("Mon 02:00"), std::string::npos) << text;
  EXPECT_NE(text.find("0 2 * * *          -> 40 2 * * *"), std::string::npos) << text;
}

TEST(PlanPeak, HourShiftWhenRunsAreLong) {
  // 100-minute runs: no minute within the hour separates them; the hour moves too.
  auto entries = entries_of(
      "0 2 * * * cronrun -n a -- x\n"
      "0 2 * * * cronrun -n b -- y\n");
  std::vector<JobProfile> profiles = {profile("a", 2 * kGiB, 1, 90 * 60, 100 * 60),
                                      profile("b", kGiB, 1, 90 * 60, 100 * 60)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));
  ASSERT_EQ(p.stagger.moves.size(), 1u);
  EXPECT_EQ(p.stagger.moves[0].job, "a");  // the larger one is tried first
  EXPECT_EQ(p.stagger.moves[0].after, "40 3 * * *");
  EXPECT_EQ(p.stagger.memory_peak_after_bytes, 2 * kGiB);
}

TEST(PlanLock, StartsThatOverlapTheirOwnRunAreLost) {
  // Every 10 minutes; typically 5 minutes, but p95 25 minutes: of each hour's six
  // starts, :00 and :30 run, the other four find the lock held.
  auto entries = entries_of("*/10 * * * * cronrun -n poll -- /usr/local/bin/poll\n");
  std::vector<JobProfile> profiles = {profile("poll", 100 << 20, 0.2, 5 * 60, 25 * 60)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));
  EXPECT_EQ(p.typical.lost_total, 0u);
  EXPECT_EQ(p.pessimistic.lost_total, 4u * 24 * 7);
  EXPECT_EQ(p.pessimistic.runs.at("poll").starts, 6u * 24 * 7);
  EXPECT_EQ(p.pessimistic.memory_peak.memory_bytes, 100u << 20);  // never two at once
  ASSERT_EQ(p.outlasting.size(), 1u);
  EXPECT_EQ(p.outlasting[0].job, "poll");
  EXPECT_DOUBLE_EQ(p.outlasting[0].interval_s, 600);
  EXPECT_EQ(p.outlasting[0].lost_typical, 0u);
  EXPECT_EQ(p.outlasting[0].lost_pessimistic, 4u * 24 * 7);

  // --no-lock: nothing is lost, the runs pile up instead (three at once).
  entries = entries_of("*/10 * * * * cronrun --no-lock -n poll -- /usr/local/bin/poll\n");
  p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));
  EXPECT_EQ(p.pessimistic.lost_total, 0u);
  EXPECT_EQ(p.pessimistic.memory_peak.memory_bytes, 3u * (100u << 20));
  ASSERT_EQ(p.outlasting.size(), 1u);
  EXPECT_FALSE(p.outlasting[0].lock);
}

TEST(PlanLock, EntriesOfOneJobShareTheLock) {
  // Two lines, one job: the 02:30 start finds the 02:00 run (p95 45 min) still going.
  auto entries = entries_of(
      "0 2 * * * cronrun -n sync -- /bin/sync-a\n"
      "30 2 * * * cronrun -n sync -- /bin/sync-b\n");
  std::vector<JobProfile> profiles = {profile("sync", kGiB, 1, 20 * 60, 45 * 60)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));
  EXPECT_EQ(p.typical.lost_total, 0u);
  EXPECT_EQ(p.pessimistic.lost_total, 7u);
  EXPECT_EQ(p.pessimistic.memory_peak.memory_bytes, kGiB);
  ASSERT_EQ(p.outlasting.size(), 1u);
  EXPECT_EQ(p.outlasting[0].where.size(), 2u);
}

TEST(PlanWeek, RunsWrapFromSundayIntoMonday) {
  auto entries = entries_of("30 23 * * sun cronrun -n weekly -- x\n");
  std::vector<JobProfile> profiles = {profile("weekly", kGiB, 1, 60 * 60, 60 * 60)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));
  EXPECT_EQ(p.typical.memory_bytes[kMinutesPerWeek - 1], kGiB);
  EXPECT_EQ(p.typical.memory_bytes[0], kGiB);
  EXPECT_EQ(p.typical.memory_bytes[29], kGiB);
  EXPECT_EQ(p.typical.memory_bytes[30], 0u);
}

TEST(PlanWeek, CpuIsProRataWithinAMinute) {
  // 30 s at 2 cores is one core over that minute; memory holds the whole minute.
  auto entries = entries_of("15 4 * * * cronrun -n quick -- x\n");
  std::vector<JobProfile> profiles = {profile("quick", 50 << 20, 2.0, 30, 30)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 30));
  EXPECT_DOUBLE_EQ(p.typical.cpu_cores[4 * 60 + 15], 1.0);
  EXPECT_EQ(p.typical.memory_bytes[4 * 60 + 15], 50u << 20);
  EXPECT_EQ(p.typical.memory_bytes[4 * 60 + 16], 0u);
  EXPECT_DOUBLE_EQ(p.typical.cpu_peak.jobs.at(0).cpu_cores, 1.0);
}

TEST(PlanWeek, DayOfMonthOrDayOfWeekInAConcreteWeek) {
  // Week of Mon 2026-11-09: Friday is the 13th, Sunday the 15th -> two starts.
  auto entries = entries_of("0 3 1,15 * 5 cronrun -n odd -- x\n");
  std::vector<JobProfile> profiles = {profile("odd", kGiB, 1, 60, 60)};
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 9));
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].starts_per_week, 2u);
  EXPECT_EQ(p.typical.memory_bytes[4 * 1440 + 180], kGiB);  // Fri 03:00
  EXPECT_EQ(p.typical.memory_bytes[6 * 1440 + 180], kGiB);  // Sun 03:00
  EXPECT_EQ(p.typical.memory_bytes[0 * 1440 + 180], 0u);
}

TEST(PlanEntries, StatusOfWhatIsNotSimulated) {
  auto entries = entries_of(
      "0 1 * * * /usr/local/bin/plain\n"
      "0 1 * * * cronrun -n new-job -- x\n"
      "@reboot cronrun -n at-boot -- x\n"
      "0 1 1 * * cronrun -n monthly -- x\n"
      "0 1 * * * cronrun --name 'bad name' -- x\n"
      "0 1 * * * cronrun -n known -- x\n");
  std::vector<JobProfile> profiles = {profile("monthly", kGiB, 1, 60, 60), profile("known", kGiB, 1, 60, 60),
                                      profile("at-boot", kGiB, 1, 60, 60)};
  // Week of Mon 2026-11-16: no 1st of the month.
  PlanResult p = make_plan(entries, profiles, host(), week_of(2026, 11, 16));
  ASSERT_EQ(p.entries.size(), 6u);
  EXPECT_EQ(p.entries[0].status, EntryStatus::not_cronrun);
  EXPECT_EQ(p.entries[1].status, EntryStatus::no_history);
  EXPECT_EQ(p.entries[1].job, "new-job");
  EXPECT_EQ(p.entries[2].status, EntryStatus::reboot);
  EXPECT_EQ(p.entries[3].status, EntryStatus::not_this_week);
  EXPECT_EQ(p.entries[4].status, EntryStatus::bad_call);
  EXPECT_NE(p.entries[4].note.find("--name: expected a job name"), std::string::npos);
  EXPECT_EQ(p.entries[5].status, EntryStatus::profiled);
  EXPECT_EQ(p.typical.memory_peak.memory_bytes, kGiB);
  EXPECT_EQ(p.entries[0].where, "test.cron:1");
  std::string text = format_text(p, {{"test.cron", 9, "61 * * * * x", "minute: 61 is out of range 0-59"}});
  EXPECT_NE(text.find("test.cron:9: minute: 61 is out of range 0-59"), std::string::npos) << text;
  EXPECT_NE(text.find("not run through cronrun"), std::string::npos);
}

TEST(PlanEntries, MissingFiguresAreFlaggedNotInvented) {
  auto entries = entries_of("0 1 * * * cronrun -n partial -- x\n");
  JobProfile pr;
  pr.job = "partial";
  pr.runs = 3;
  PlanResult p = make_plan(entries, {pr}, host(), week_of(2026, 11, 30));
  ASSERT_EQ(p.entries[0].status, EntryStatus::profiled);
  EXPECT_NE(p.entries[0].note.find("memory"), std::string::npos);
  EXPECT_EQ(p.typical.memory_peak.memory_bytes, 0u);
  EXPECT_TRUE(p.stagger.moves.empty());
}

TEST(PlanHost, ReadsThisMachine) {
  auto h = read_host();
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_GT(h->memory_bytes, 0u);
  EXPECT_GE(h->cpus, 1);
}

TEST(PlanHeatmap, HourlyMaxima) {
  Scenario s;
  s.memory_bytes.assign(kMinutesPerWeek, 0);
  s.memory_bytes[3 * 1440 + 14 * 60 + 59] = 7;
  auto h = hourly_memory_max(s);
  EXPECT_EQ(h[3][14], 7u);
  EXPECT_EQ(h[3][15], 0u);
}

}  // namespace
}  // namespace cronrun::plan
