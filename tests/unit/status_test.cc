// cronprof status: ticks as Debian's cron starts them (local time, its DST
// rules), runs matched with ticks (on time, late, skipped, missed), the per-job
// state and the exit code, over a real history file and a fake clock.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/history.h"
#include "profiler/exit_codes.h"
#include "profiler/status.h"

namespace cronrun::status {
namespace {

// Sets TZ for one test and puts the old one back.
class ZoneGuard {
 public:
  explicit ZoneGuard(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ZoneGuard() {
    if (old_) {
      ::setenv("TZ", old_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }

 private:
  std::optional<std::string> old_;
};

// Unix seconds of a UTC calendar time.
double utc(int y, int mon, int d, int h, int min, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = min;
  tm.tm_sec = s;
  return static_cast<double>(::timegm(&tm));
}

crontab::Entry entry(const std::string& line) {
  crontab::Crontab c = crontab::parse_crontab(line + "\n", "/etc/cron.d/t", crontab::Kind::user);
  EXPECT_EQ(c.entries.size(), 1u) << line;
  return c.entries.at(0);
}

std::vector<double> ticks(const std::string& line, double from, double to) {
  return ticks_between(entry(line), from, to);
}

bool zone_installed(const char* name) { return std::filesystem::exists(std::string("/usr/share/zoneinfo/") + name); }

TEST(StatusTicks, EveryFifteenMinutesInUtc) {
  ZoneGuard tz("UTC");
  double from = utc(2026, 12, 6, 9, 0);
  auto t = ticks("*/15 * * * * cronrun -n a -- x", from, from + 3600);
  ASSERT_EQ(t.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(t[i], from + 900.0 * i);
  EXPECT_EQ(next_tick(entry("*/15 * * * * x"), from, 86400), from + 900);
  // Day of month OR day of week when both are restricted: the 1st, and Mondays.
  auto d = ticks("0 0 1 * mon x", utc(2026, 12, 1, 0, 0), utc(2027, 1, 1, 0, 1));
  std::vector<double> want = {utc(2026, 12, 1, 0, 0), utc(2026, 12, 7, 0, 0), utc(2026, 12, 14, 0, 0),
                              utc(2026, 12, 21, 0, 0), utc(2026, 12, 28, 0, 0), utc(2027, 1, 1, 0, 0)};
  EXPECT_EQ(d, want);
}

TEST(StatusTicks, LocalTimeNotUtc) {
  if (!zone_installed("America/New_York")) GTEST_SKIP() << "tzdata not installed";
  ZoneGuard tz("America/New_York");
  // 03:00 local in December (EST, UTC-5) is 08:00 UTC.
  auto t = ticks("0 3 * * * x", utc(2026, 12, 6, 0, 0), utc(2026, 12, 7, 0, 0));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0], utc(2026, 12, 6, 8, 0));
}

// Europe/Berlin, Sunday 29 March 2026: at 01:00 UTC local time jumps from 02:00
// CET to 03:00 CEST. cron(8): fixed-time jobs of the skipped hour run right after
// the change; wildcard jobs follow the new time (no run for 02:xx).
TEST(StatusTicks, DstForwardRunsSkippedFixedJobsOnceAndWildcardsOnTheNewTime) {
  if (!zone_installed("Europe/Berlin")) GTEST_SKIP() << "tzdata not installed";
  ZoneGuard tz("Europe/Berlin");
  double from = utc(2026, 3, 28, 23, 0), to = utc(2026, 3, 29, 3, 0);
  // 02:30 local does not exist that night: cron runs it at 03:00 CEST = 01:00 UTC.
  EXPECT_EQ(ticks("30 2 * * * x", from, to), std::vector<double>{utc(2026, 3, 29, 1, 0)});
  // Two skipped fixed minutes still make one start at the change here (one tick).
  EXPECT_EQ(ticks("15,45 2 * * * x", from, to), std::vector<double>{utc(2026, 3, 29, 1, 0)});
  // Minute 15 of every hour ('*' hour: a wildcard job): 01:15 CET, then 03:15 CEST.
  EXPECT_EQ(ticks("15 * * * * x", utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0)),
            (std::vector<double>{utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 15)}));
  // 01:30 local is before the change and runs once as usual.
  EXPECT_EQ(ticks("30 1 * * * x", from, to), std::vector<double>{utc(2026, 3, 29, 0, 30)});
}

// Europe/Berlin, Sunday 25 October 2026: at 01:00 UTC local time goes back from
// 03:00 CEST to 02:00 CET, so 02:00-02:59 happens twice. Fixed-time jobs are not
// run again; wildcard jobs run in both.
TEST(StatusTicks, DstBackwardDoesNotRepeatFixedJobsButRepeatsWildcards) {
  if (!zone_installed("Europe/Berlin")) GTEST_SKIP() << "tzdata not installed";
  ZoneGuard tz("Europe/Berlin");
  double from = utc(2026, 10, 24, 22, 0), to = utc(2026, 10, 25, 4, 0);
  EXPECT_EQ(ticks("30 2 * * * x", from, to), std::vector<double>{utc(2026, 10, 25, 0, 30)});
  EXPECT_EQ(ticks("30 * * * * x", utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 2, 0)),
            (std::vector<double>{utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)}));
  // 03:30 CET comes once, an hour after the repeated 02:30.
  EXPECT_EQ(ticks("30 3 * * * x", from, to), std::vector<double>{utc(2026, 10, 25, 2, 30)});
}

TEST(StatusTicks, RebootHasNoTicks) {
  EXPECT_TRUE(ticks("@reboot x", 0, 1e9).empty());
  EXPECT_FALSE(next_tick(entry("@reboot x"), 0, 1e9));
}

TEST(StatusGrace, PercentOrDuration) {
  auto pct = parse_grace("25%");
  ASSERT_TRUE(pct);
  EXPECT_DOUBLE_EQ(pct->for_period(3600), 900);
  EXPECT_DOUBLE_EQ(pct->for_period(60), Grace::kMinGraceS);  // never below the floor
  auto fixed = parse_grace("5m");
  ASSERT_TRUE(fixed);
  EXPECT_DOUBLE_EQ(fixed->for_period(86400), 300);
  for (const char* bad : {"0%", "150%", "x%", "%", "soon", "0s", ""}) {
    auto g = parse_grace(bad);
    ASSERT_FALSE(g) << bad;
    EXPECT_NE(g.error().message().find("--grace"), std::string::npos);
  }
}

RunFigures fig(const std::string& job, double start, RunStatus s) {
  RunFigures f;
  f.run_id = job + "-" + std::to_string(static_cast<int64_t>(start));
  f.job = job;
  f.started_at_s = start;
  f.status = s;
  return f;
}

TEST(StatusMatcher, OnTimeLateSkippedMissedAndPending) {
  // Hourly ticks 00:00..04:00, next at 05:00; grace 10% of an hour = 360 s.
  std::vector<double> t = {0, 3600, 7200, 10800, 14400};
  TickMatcher m(t, 18000, /*now=*/14400 + 100, Grace{});
  // Newest first, as the history streams them.
  m.add_run(fig("j", 7200 + 1000, RunStatus::ok));     // 02:00: a second, manual run...
  m.add_run(fig("j", 7200 + 5, RunStatus::ok));        // ...the earliest decides: on time
  m.add_run(fig("j", 3600 + 2, RunStatus::skipped));   // 01:00 skipped (counts as ran)
  m.add_run(fig("j", 0 + 400, RunStatus::failed));     // 00:00 late
  m.finish();
  // 04:00: no run yet and inside its grace: pending, not counted. 03:00: missed.
  EXPECT_EQ(m.due(), 4u);
  EXPECT_EQ(m.missed(), 1u);
  EXPECT_EQ(m.missed_ticks(), std::vector<double>{10800});
  EXPECT_EQ(m.late(), 1u);
  EXPECT_EQ(m.skipped(), 1u);
  EXPECT_EQ(m.decisive(), TickMatcher::Outcome::missed);
  EXPECT_EQ(m.decisive_tick(), 10800);
  ASSERT_TRUE(m.last_run());
  EXPECT_EQ(m.last_run()->started_at_s, 8200);
}

TEST(StatusMatcher, RunBeforeTheFirstTickIsNotMatched) {
  TickMatcher m({3600}, 7200, 7000, Grace{});
  m.add_run(fig("j", 3500, RunStatus::ok));
  m.finish();
  EXPECT_EQ(m.missed(), 1u);  // the 01:00 tick's grace passed with no run in [01:00, 02:00)
}

// compute_status over a real history file and a fake clock.
class StatusReport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-status-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    auto s = HistoryStore::open((dir_ / "history.db").string(), HistoryStore::Mode::read_write);
    ASSERT_TRUE(s) << s.error().message();
    store_.emplace(std::move(*s));
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void add(const std::string& job, double start, RunStatus s, std::optional<int> exit_code = 0) {
    RunRecord r;
    r.run_id = job + "-" + std::to_string(++n_);
    r.job = job;
    r.host = "h";
    r.user = "u";
    r.command = {"/bin/true"};
    r.started_at = format_rfc3339(std::chrono::system_clock::time_point(
        std::chrono::milliseconds(static_cast<int64_t>(start * 1000))));
    r.status = s;
    if (s != RunStatus::running) {
      r.finished_at = r.started_at;
      r.wall_s = 1;
      r.exit_code = exit_code;
    } else {
      r.runner_pid = ::getpid();  // alive: reads as running, not lost
      r.boot_id = "";
    }
    auto w = store_->record(r);
    ASSERT_TRUE(w) << w.error().message();
  }
  Report report(const std::string& crontab_text, double now, double window = 86400) {
    Crontabs c;
    c.crontab = crontab::parse_crontab(crontab_text, "/etc/cron.d/app", crontab::Kind::system);
    c.modified_at_s["/etc/cron.d/app"] = now - 40 * 86400.0;  // the file is 40 days old
    Options o;
    o.now_s = now;
    o.window_s = window;
    auto r = compute_status(&*store_, c, o);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : Report{};
  }
  static const JobStatus& job(const Report& r, const std::string& name) {
    for (const auto& j : r.jobs)
      if (j.job == name) return j;
    ADD_FAILURE() << "no job " << name;
    static JobStatus none;
    return none;
  }

  std::filesystem::path dir_;
  std::optional<HistoryStore> store_;
  int n_ = 0;
};

TEST_F(StatusReport, EachStateFromHistoryAndSchedule) {
  ZoneGuard tz("UTC");
  const double day = utc(2026, 12, 6, 0, 0);
  const double now = day + 10 * 3600 + 600;  // 10:10
  // Hourly jobs; the newest due tick is 10:00 (grace 360 s has passed at 10:10).
  for (int h = 0; h <= 10; ++h) {
    add("good", day + h * 3600 + 2, RunStatus::ok);
    if (h != 7) add("holes", day + h * 3600 + 2, RunStatus::ok);    // one missed tick, long ago
    if (h < 10) add("stopped", day + h * 3600 + 2, RunStatus::ok);  // the newest tick has no run
    add("broken", day + h * 3600 + 2, h == 10 ? RunStatus::failed : RunStatus::ok, h == 10 ? 1 : 0);
    add("slow", day + h * 3600 + (h == 10 ? 480 : 2), RunStatus::ok);
    add("locked", day + h * 3600 + 2, h >= 9 ? RunStatus::skipped : RunStatus::ok);
  }
  add("busy", day + 10 * 3600 + 1, RunStatus::running);
  std::string tab;
  for (const char* j : {"good", "holes", "stopped", "broken", "slow", "locked", "busy"})
    tab += std::string("0 * * * * root cronrun -n ") + j + " -- /bin/true\n";
  tab += "0 0 1 1 * root cronrun -n yearly -- /bin/true\n";    // never due since the file changed
  tab += "*/5 * * * * root /usr/bin/logger plain\n";          // not a cronrun job: not watched
  tab += "@reboot root cronrun -n boot -- /bin/true\n";
  Report r = report(tab, now, now - day);  // the window starts at 00:00

  EXPECT_EQ(job(r, "good").state, JobState::up);
  EXPECT_EQ(job(r, "good").missed, 0u);
  EXPECT_EQ(job(r, "good").ticks, 11u);
  EXPECT_EQ(job(r, "holes").state, JobState::up);
  EXPECT_EQ(job(r, "holes").missed, 1u);
  EXPECT_EQ(job(r, "holes").missed_ticks_s, std::vector<double>{day + 7 * 3600});
  EXPECT_EQ(job(r, "stopped").state, JobState::missed);
  EXPECT_EQ(job(r, "broken").state, JobState::failing);
  EXPECT_EQ(job(r, "broken").last_run->status, RunStatus::failed);
  EXPECT_EQ(job(r, "slow").state, JobState::late);
  EXPECT_EQ(job(r, "slow").late, 1u);
  EXPECT_EQ(job(r, "locked").state, JobState::up);  // skipped counts as ran
  EXPECT_EQ(job(r, "locked").skipped, 2u);
  EXPECT_EQ(job(r, "locked").last_run->status, RunStatus::skipped);
  EXPECT_EQ(job(r, "locked").last_executed->status, RunStatus::ok);
  EXPECT_EQ(job(r, "busy").state, JobState::running);
  EXPECT_EQ(job(r, "yearly").state, JobState::never_run);
  ASSERT_EQ(r.jobs.size(), 8u);
  // Most urgent first.
  EXPECT_EQ(r.jobs[0].state, JobState::failing);
  EXPECT_EQ(r.jobs[1].state, JobState::missed);
  ASSERT_EQ(r.unwatched.size(), 1u);
  EXPECT_EQ(r.unwatched[0].job, "boot");
  EXPECT_EQ(exit_code(r), prof::kExitStatusAlert);

  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["schema"], "cronrun.status/1");
  EXPECT_TRUE(j["jobs"][0]["missed"].is_number_integer());
  EXPECT_TRUE(j["jobs"][0]["grace_s"].is_number_integer());
  EXPECT_EQ(j["generated_at"], "2026-12-06T10:10:00.000Z");
  for (const auto& jj : j["jobs"])
    if (jj["job"] == "holes") {
      EXPECT_EQ(jj["missed_ticks"][0], "2026-12-06T07:00:00.000Z");
    }

  std::string text = format_text(r, 80);
  size_t pos = 0, widest = 0;
  for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) widest = std::max(widest, nl - pos);
  EXPECT_LE(widest, 80u) << text;
  EXPECT_NE(text.find("stopped"), std::string::npos);
}

TEST_F(StatusReport, AllWellExitsZeroAndTicksBeforeTheFileChangedAreNotExpected) {
  ZoneGuard tz("UTC");
  const double day = utc(2026, 12, 6, 0, 0);
  add("new", day + 9 * 3600 + 1, RunStatus::ok);
  add("new", day + 10 * 3600 + 1, RunStatus::ok);
  Crontabs c;
  c.crontab = crontab::parse_crontab("0 * * * * root cronrun -n new -- /bin/true\n", "/etc/cron.d/app",
                                     crontab::Kind::system);
  c.modified_at_s["/etc/cron.d/app"] = day + 8 * 3600 + 30;  // installed at 08:00:30
  Options o;
  o.now_s = day + 10 * 3600 + 600;
  auto r = compute_status(&*store_, c, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->jobs.at(0).state, JobState::up);
  EXPECT_EQ(r->jobs.at(0).ticks, 2u);   // 09:00 and 10:00 only
  EXPECT_EQ(r->jobs.at(0).missed, 0u);  // nothing before 08:00:30 expected
  EXPECT_EQ(exit_code(*r), prof::kExitOk);
}

// A user's crontab read with `crontab -l` has no mtime: a job's ticks count from
// its first recorded run (or from the window's start when it ran before it), and a
// job with no run is not missed (the line may be a minute old).
TEST_F(StatusReport, CrontabWithoutAgeExpectsTicksFromTheFirstRun) {
  ZoneGuard tz("UTC");
  const double day = utc(2026, 12, 6, 0, 0);
  add("fresh", day + 9 * 3600 + 1, RunStatus::ok);  // first run ever at 09:00
  add("fresh", day + 10 * 3600 + 1, RunStatus::ok);
  add("old", day - 3 * 86400, RunStatus::ok);  // ran days ago, nothing since
  Crontabs c;
  const std::string src = "crontab -l (alice)";
  c.crontab = crontab::parse_crontab(
      "0 * * * * cronrun -n fresh -- /bin/true\n0 * * * * cronrun -n old -- /bin/true\n"
      "0 * * * * cronrun -n ghost -- /bin/true\n",
      src, crontab::Kind::user);
  c.age_unknown.insert(src);
  Options o;
  o.now_s = day + 10 * 3600 + 600;
  auto r = compute_status(&*store_, c, o);
  ASSERT_TRUE(r) << r.error().message();
  const JobStatus& fresh = job(*r, "fresh");
  EXPECT_EQ(fresh.state, JobState::up);
  EXPECT_EQ(fresh.ticks, 2u);  // 09:00 and 10:00: nothing before its first run
  EXPECT_EQ(fresh.missed, 0u);
  const JobStatus& old = job(*r, "old");
  EXPECT_EQ(old.state, JobState::missed);  // it existed before the window: every tick counts
  EXPECT_EQ(old.ticks, 24u);  // the whole day's window
  EXPECT_EQ(old.missed, 24u);
  const JobStatus& ghost = job(*r, "ghost");
  EXPECT_EQ(ghost.state, JobState::never_run);
  EXPECT_EQ(ghost.missed, 0u);
  EXPECT_NE(ghost.reason.find("age is unknown"), std::string::npos) << ghost.reason;
}

TEST_F(StatusReport, NoHistoryAtAll) {
  ZoneGuard tz("UTC");
  Crontabs c;
  c.crontab = crontab::parse_crontab("*/5 * * * * root cronrun -n a -- /bin/true\n", "/etc/cron.d/app",
                                     crontab::Kind::system);
  Options o;
  o.now_s = utc(2026, 12, 6, 10, 0);
  auto r = compute_status(nullptr, c, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->jobs.at(0).state, JobState::missed);
  EXPECT_FALSE(r->jobs.at(0).last_run);
}

TEST_F(StatusReport, WholeFileIgnoredByCronIsNotWatched) {
  ZoneGuard tz("UTC");
  Report r = report("0 * * * * root cronrun -n a -- /bin/true\n0 * * * * cronrun -n b -- /bin/true\n",
                    utc(2026, 12, 6, 10, 0));
  EXPECT_TRUE(r.jobs.empty());
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[1].line, 0);
  EXPECT_NE(format_text(r, 200).find("rejected: /etc/cron.d/app: cron ignores the whole file"), std::string::npos);
  EXPECT_EQ(exit_code(r), prof::kExitOk);
}

// The last run and last success come from the whole history even when the window
// holds no run of the job.
TEST_F(StatusReport, LastRunOlderThanTheWindow) {
  ZoneGuard tz("UTC");
  const double day = utc(2026, 12, 6, 0, 0);
  add("weekly", day - 6 * 86400, RunStatus::ok);
  add("weekly", day - 5 * 86400, RunStatus::skipped);
  Report r = report("0 0 * * 1 root cronrun -n weekly -- /bin/true\n", day + 3600);  // Sunday: no tick in the day
  const JobStatus& w = job(r, "weekly");
  EXPECT_EQ(w.state, JobState::up);
  ASSERT_TRUE(w.last_run);
  EXPECT_EQ(w.last_run->status, RunStatus::skipped);
  ASSERT_TRUE(w.last_executed);
  EXPECT_EQ(w.last_executed->started_at_s, day - 6 * 86400);
  EXPECT_EQ(w.last_success_s, day - 6 * 86400);
  EXPECT_EQ(w.next_tick_s, utc(2026, 12, 7, 0, 0));
}

// The state is the newest due tick's even when the window holds none: a weekly
// or monthly job that missed its tick is missed all week, and a daily one stays
// missed while today's tick is still in its grace. The window bounds the counts.
TEST_F(StatusReport, TheNewestDueTickDecidesHoweverLongBeforeTheWindow) {
  ZoneGuard tz("UTC");
  const double now = utc(2026, 12, 7, 12, 18);  // a Monday
  add("weekly-ok", utc(2026, 12, 5, 3, 0, 2), RunStatus::ok);
  add("weekly-missed", utc(2026, 11, 28, 3, 0, 2), RunStatus::ok);
  add("monthly-missed", utc(2026, 11, 1, 3, 0, 2), RunStatus::ok);
  add("daily-missed", utc(2026, 12, 5, 11, 30, 2), RunStatus::ok);
  add("daily-ok", utc(2026, 12, 6, 11, 30, 2), RunStatus::ok);
  Report r = report(
      "0 3 * * 6 root cronrun -n weekly-ok -- /bin/true\n"
      "0 3 * * 6 root cronrun -n weekly-missed -- /bin/true\n"
      "0 3 1 * * root cronrun -n monthly-missed -- /bin/true\n"
      "30 11 * * * root cronrun -n daily-missed -- /bin/true\n"
      "30 11 * * * root cronrun -n daily-ok -- /bin/true\n",
      now);
  EXPECT_EQ(job(r, "weekly-ok").state, JobState::up);
  EXPECT_EQ(job(r, "weekly-ok").last_tick_s, utc(2026, 12, 5, 3, 0));
  const JobStatus& w = job(r, "weekly-missed");
  EXPECT_EQ(w.state, JobState::missed) << w.reason;
  EXPECT_EQ(w.missed, 0u) << "Saturday's tick is before the one-day window: not counted";
  EXPECT_NE(w.reason.find("Sat 03:00"), std::string::npos) << w.reason;
  const JobStatus& m = job(r, "monthly-missed");
  EXPECT_EQ(m.state, JobState::missed) << m.reason;
  EXPECT_NE(m.reason.find("2026-12-01 03:00"), std::string::npos) << m.reason;
  EXPECT_EQ(job(r, "daily-missed").state, JobState::missed) << job(r, "daily-missed").reason;
  EXPECT_EQ(job(r, "daily-ok").state, JobState::up) << "today's 11:30 is still in its grace";
  EXPECT_EQ(exit_code(r), prof::kExitStatusAlert);
}

// A grace longer than the window, on a job every minute: the look-back is bounded
// (it walked back tick by tick to the file's mtime, for ever on an old file).
TEST_F(StatusReport, AHugeGraceDoesNotWalkBackForEver) {
  ZoneGuard tz("UTC");
  const double now = utc(2026, 12, 7, 12, 0);
  add("often", now - 2 * 86400, RunStatus::ok);
  Crontabs c;
  c.crontab = crontab::parse_crontab("* * * * * root cronrun -n often -- /bin/true\n", "/etc/cron.d/app",
                                     crontab::Kind::system);
  c.modified_at_s["/etc/cron.d/app"] = now - 300 * 86400.0;
  Options o;
  o.now_s = now;
  o.grace = *parse_grace("1000d");
  auto r = compute_status(&*store_, c, o);  // unbounded, this walked back ~430,000 ticks
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_NE(r->jobs.at(0).state, JobState::missed) << "no tick's grace has passed";
}

// A tick before the crontab file changed was not expected, inside or before the window.
TEST_F(StatusReport, TicksBeforeTheFileChangedAreNotExpectedBeforeTheWindowEither) {
  ZoneGuard tz("UTC");
  Crontabs c;
  c.crontab = crontab::parse_crontab("0 3 * * 6 root cronrun -n weekly -- /bin/true\n", "/etc/cron.d/app",
                                     crontab::Kind::system);
  c.modified_at_s["/etc/cron.d/app"] = utc(2026, 12, 5, 9, 0);  // after Saturday's tick
  Options o;
  o.now_s = utc(2026, 12, 7, 12, 18);
  auto r = compute_status(&*store_, c, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->jobs.at(0).state, JobState::never_run) << r->jobs.at(0).reason;
  EXPECT_EQ(exit_code(*r), prof::kExitOk);
}

// The skips a running run's own lock causes do not hide it.
TEST_F(StatusReport, ARunInProgressIsRunningThoughNewerTicksWereSkipped) {
  ZoneGuard tz("UTC");
  const double day = utc(2026, 12, 6, 0, 0);
  add("long", day + 8 * 3600 + 2, RunStatus::ok);
  add("long", day + 9 * 3600 + 2, RunStatus::running);
  add("long", day + 10 * 3600 + 1, RunStatus::skipped);
  Report r = report("0 * * * * root cronrun -n long -- /bin/true\n", day + 10 * 3600 + 600);
  EXPECT_EQ(job(r, "long").state, JobState::running) << job(r, "long").reason;
}

// A line's --history is the history read whatever its spelling; only another
// file leaves the line out, with or without a history to read yet.
TEST_F(StatusReport, ALineIsWatchedWhenItsHistoryIsTheSameFileSpelledOtherwise) {
  ZoneGuard tz("UTC");
  const std::string h = (dir_ / "history.db").string();
  std::filesystem::create_directories(dir_ / "sub");
  std::filesystem::create_symlink(h, dir_ / "link.db");
  const std::string tab = "0 * * * * root cronrun --history " + (dir_ / "sub" / ".." / "history.db").string() +
                          " -n dotted -- /bin/true\n0 * * * * root cronrun --history " + (dir_ / "link.db").string() +
                          " -n linked -- /bin/true\n0 * * * * root cronrun --history " + (dir_ / "other.db").string() +
                          " -n other -- /bin/true\n";
  Crontabs c;
  c.crontab = crontab::parse_crontab(tab, "/etc/cron.d/app", crontab::Kind::system);
  Options o;
  o.now_s = utc(2026, 12, 6, 10, 10);
  o.history_path = h;
  for (const HistoryStore* store : std::initializer_list<const HistoryStore*>{&*store_, nullptr}) {
    auto r = compute_status(store, c, o);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->jobs.size(), 2u);
    EXPECT_EQ(r->jobs[0].job, "dotted");
    EXPECT_EQ(r->jobs[1].job, "linked");
    ASSERT_EQ(r->unwatched.size(), 1u);
    EXPECT_EQ(r->unwatched[0].job, "other");
  }
}

}  // namespace
}  // namespace cronrun::status
