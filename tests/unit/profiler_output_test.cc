// What cronprof prints for people and machines: tables that fit the terminal
// (DESIGN section 6: columns left out by priority, long cells shortened with an
// ellipsis, never a line wider than the terminal), JSON with a `schema`, one
// timestamp form and integers as integers, and the Prometheus export read from a
// real history: the `cronjob` label, skipped runs that are not "the last run",
// and a runs counter that `cronprof gc` does not lower.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/history.h"
#include "profiler/cli_support.h"
#include "profiler/export.h"
#include "profiler/stats.h"
#include "profiler/summary.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// A `runs`-shaped table with one long job name, the columns as runs.cc has them.
Table runs_like() {
  Table t({{.header = "STARTED"},
           {.header = "JOB", .min_width = 12},
           {.header = "STATUS"},
           {.header = "EXIT", .right = true, .drop = 2},
           {.header = "WALL", .right = true, .drop = 1},
           {.header = "CPU", .right = true, .drop = 4},
           {.header = "PEAK MEM", .right = true, .drop = 3},
           {.header = "RUN ID", .min_width = 14}});
  t.add({"2026-11-23T02:10:00Z", "nightly-report-for-the-finance-department", "ok", "0", "13m 32s", "9m 5s",
         "1.5 GiB", "0193f1c2-7d3a-7c1e-9f00-123456789abc"});
  t.add({"2026-11-23T02:15:00Z", "steady", "timeout", "-", "1.0s", "0.1s", "16.0 MiB",
         "0193f1c2-8000-7c1e-9f00-123456789abc"});
  return t;
}

TEST(TableFit, AWideEnoughTerminalChangesNothing) {
  Table t = runs_like();
  std::string natural = t.render();
  t.fit(300);
  EXPECT_EQ(t.render(), natural);
  t.fit(0);
  EXPECT_EQ(t.render(), natural);
  EXPECT_THAT(natural, HasSubstr("nightly-report-for-the-finance-department"));
}

TEST(TableFit, EightyColumnsLeaveOutCpuFirstAndShortenNamesWithAnEllipsis) {
  Table t = runs_like();
  ASSERT_GT(display_width(lines_of(t.render())[1]), 80u);
  t.fit(80);
  std::string text = t.render();
  auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) EXPECT_LE(display_width(l), 80u) << l;
  // Every line is one row: nothing wrapped.
  EXPECT_THAT(lines[0], HasSubstr("STARTED"));
  EXPECT_THAT(lines[0], HasSubstr("RUN ID"));
  EXPECT_THAT(lines[0], Not(HasSubstr("CPU")));  // the first to go
  EXPECT_THAT(lines[1], HasSubstr("nightly-repo"));
  EXPECT_THAT(lines[1], HasSubstr("\u2026"));
  EXPECT_THAT(lines[1], Not(HasSubstr("finance-department")));
  // The run id keeps a prefix long enough for `show` (its millisecond part).
  EXPECT_THAT(lines[1], HasSubstr("0193f1c2-7d3a"));
  EXPECT_THAT(lines[2], HasSubstr("steady"));
  EXPECT_THAT(lines[2], HasSubstr("timeout"));
}

TEST(TableFit, AStandInShowsOnlyWhenItsColumnIsLeftOut) {
  Table t({{.header = "JOB"},
           {.header = "WALL p50/p95/max", .right = true, .drop = 2},
           {.header = "WALL p95", .right = true, .drop = 1, .stand_in_for = 1}});
  t.add({"a", "1.0s / 2.0s / 30.0s", "2.0s"});
  EXPECT_THAT(t.render(), HasSubstr("p50/p95/max"));
  EXPECT_THAT(t.render(), Not(HasSubstr("WALL p95\n")));
  t.fit(20);
  EXPECT_EQ(t.render(), "JOB  WALL p95\na        2.0s\n");
  t.fit(4);
  EXPECT_EQ(t.render(), "JOB\na\n");
}

TEST(TableFit, ATerminalTooNarrowForAnyLayoutCutsEachLine) {
  Table t = runs_like();
  t.fit(20);
  for (const auto& l : lines_of(t.render())) {
    EXPECT_EQ(display_width(l), 20u) << l;
    EXPECT_EQ(l.substr(l.size() - 3), "\u2026") << l;
  }
}

TEST(TableFit, TwoPassesFitLikeRender) {
  Table whole = runs_like();
  Table streamed({{.header = "STARTED"},
                  {.header = "JOB", .min_width = 12},
                  {.header = "STATUS"},
                  {.header = "EXIT", .right = true, .drop = 2},
                  {.header = "WALL", .right = true, .drop = 1},
                  {.header = "CPU", .right = true, .drop = 4},
                  {.header = "PEAK MEM", .right = true, .drop = 3},
                  {.header = "RUN ID", .min_width = 14}});
  std::vector<std::vector<std::string>> rows = {
      {"2026-11-23T02:10:00Z", "nightly-report-for-the-finance-department", "ok", "0", "13m 32s", "9m 5s", "1.5 GiB",
       "0193f1c2-7d3a-7c1e-9f00-123456789abc"},
      {"2026-11-23T02:15:00Z", "steady", "timeout", "-", "1.0s", "0.1s", "16.0 MiB",
       "0193f1c2-8000-7c1e-9f00-123456789abc"}};
  for (const auto& r : rows) streamed.measure(r);
  whole.fit(72);
  streamed.fit(72);
  std::string text = streamed.header_line();
  for (const auto& r : rows) text += streamed.line(r);
  EXPECT_EQ(text, whole.render());
}

TEST(TableFit, WidthsCountCodePointsAndEscapes) {
  EXPECT_EQ(display_width("caf\xc3\xa9"), 4u);
  EXPECT_EQ(shorten("caf\xc3\xa9-latte", 5), "caf\xc3\xa9\u2026");
  EXPECT_EQ(shorten("short", 5), "short");
  // A hostile name is escaped before it is measured and cut: no raw ESC survives.
  Table t({{.header = "JOB", .min_width = 6}, {.header = "N", .right = true}});
  t.add({"x\x1b[2Jyyyyyyyyyyyyyy", "1"});
  t.fit(10);
  std::string text = t.render();
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  for (const auto& l : lines_of(text)) EXPECT_LE(display_width(l), 10u) << l;
}

TEST(TerminalWidth, ColumnsThenTheTerminalThen80) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(terminal_width("132", p[1]), 132u);
  EXPECT_EQ(terminal_width(nullptr, p[1]), 80u);  // a pipe is not a terminal
  for (const char* bad : {"", "0", "-5", "abc", "80x"}) EXPECT_EQ(terminal_width(bad, p[1]), 80u) << bad;
  ::close(p[0]);
  ::close(p[1]);
  Global g;
  g.wide = true;
  EXPECT_EQ(output_width(g), 0u);
}

TEST(SummaryTable, FitsEightyColumnsWithTheP95StandIns) {
  SummaryBuilder b;
  for (int i = 1; i <= 20; ++i) {
    RunFigures f;
    f.run_id = fmt::format("r{}", i);
    f.job = i % 2 ? "nightly-report-for-the-finance-department" : "steady";
    f.status = i == 3 ? RunStatus::failed : RunStatus::ok;
    f.started_at_s = 1795399800 + i;
    f.wall_s = i;
    f.cpu_s = i / 2.0;
    f.memory_peak_bytes = static_cast<uint64_t>(i) << 20;
    f.db_queries = i * 100;
    b.add(f);
  }
  auto jobs = b.finish({{"steady", 1795399820.0}});
  std::string wide = summary_table(jobs);
  ASSERT_GT(display_width(lines_of(wide)[0]), 150u);
  std::string text = summary_table(jobs, 80);
  for (const auto& l : lines_of(text)) EXPECT_LE(display_width(l), 80u) << l;
  EXPECT_EQ(lines_of(text).size(), 3u);
  EXPECT_THAT(text, HasSubstr("WALL p95"));
  EXPECT_THAT(text, Not(HasSubstr("DB QUERIES")));
  EXPECT_THAT(text, HasSubstr("FAIL"));
}

TEST(SummaryTable, RunsWithoutACgroupPeakShowTheirRssMarkedAndNeverMixed) {
  // An ordinary user without delegation: getrusage's RSS only. A job with cgroup
  // peaks keeps them alone in PEAK MEM, its RSS-only runs apart.
  SummaryBuilder b;
  for (int i = 1; i <= 4; ++i) {
    RunFigures f;
    f.run_id = fmt::format("r{}", i);
    f.job = "user-job";
    f.status = RunStatus::ok;
    f.started_at_s = 1795399800 + i;
    f.wall_s = 1;
    f.max_rss_bytes = static_cast<uint64_t>(i) << 20;
    b.add(f);
    f.run_id = fmt::format("m{}", i);
    f.job = "root-job";
    f.memory_peak_bytes = (i == 4) ? std::nullopt : std::optional<uint64_t>(uint64_t{100} << 20);
    f.max_rss_bytes = uint64_t{900} << 20;
    b.add(f);
  }
  auto jobs = b.finish({});
  std::string text = summary_table(jobs);
  EXPECT_THAT(text, HasSubstr("rss 2.00 MiB / 4.00 MiB / 4.00 MiB")) << text;
  EXPECT_THAT(text, HasSubstr("  100 MiB / 100 MiB / 100 MiB")) << text;
  EXPECT_THAT(text, Not(HasSubstr("900"))) << text;
  EXPECT_THAT(summary_table(jobs, 80), HasSubstr("rss 4.00 MiB")) << summary_table(jobs, 80);
  nlohmann::json j = summary_json(jobs, 1795399800);
  EXPECT_TRUE(j["jobs"][1]["memory_peak_bytes"]["max"].is_null()) << j.dump();
  EXPECT_EQ(j["jobs"][1]["max_rss_bytes"]["max"], 4 << 20) << j.dump();
  EXPECT_EQ(j["jobs"][0]["memory_peak_bytes"]["max"], 100 << 20) << j.dump();
  EXPECT_EQ(j["jobs"][0]["max_rss_bytes"]["max"], 900 << 20) << j.dump();
}

// ---------- JSON ----------

TEST(Json, OneTimestampFormAndWholeNumbersAsIntegers) {
  EXPECT_EQ(json_time(1795399800.123), "2026-11-23T02:10:00.123Z");
  EXPECT_EQ(json_time(1795399800), "2026-11-23T02:10:00.000Z");
  EXPECT_TRUE(json_time(std::nan("")).is_null());
  EXPECT_TRUE(json_number(1200.0).is_number_integer());
  EXPECT_EQ(json_number(1200.0).dump(), "1200");
  EXPECT_TRUE(json_number(1.5).is_number_float());
  EXPECT_TRUE(json_number(1e300).is_number_float());
}

TEST(Json, SummaryHasASchemaAndIntegerCountsAndBytes) {
  SummaryBuilder b;
  for (int i = 1; i <= 3; ++i) {
    RunFigures f;
    f.run_id = fmt::format("r{}", i);
    f.job = std::string(1, 'j');  // not = "j": g++ 12 -O2 warns falsely (-Wrestrict) on the inlined assign
    f.status = RunStatus::ok;
    f.started_at_s = 1795399800 + i;
    f.wall_s = 3.0;
    f.memory_peak_bytes = 16u << 20;
    f.db_queries = 1200;
    b.add(f);
  }
  nlohmann::json j = nlohmann::json::parse(json_text(summary_json(b.finish({}), 1795399800.5), 2));
  EXPECT_EQ(j["schema"], "cronrun.summary/1");
  EXPECT_EQ(j["since"], "2026-11-23T02:10:00.500Z");
  const auto& job = j["jobs"][0];
  EXPECT_TRUE(job["runs"].is_number_integer());
  EXPECT_TRUE(job["memory_peak_bytes"]["p95"].is_number_integer()) << job.dump();
  EXPECT_TRUE(job["db_queries"]["max"].is_number_integer()) << job.dump();
  EXPECT_EQ(job["last_run"], "2026-11-23T02:10:03.000Z");
}

TEST(Json, ListPrinterWithASchemaPrintsWhatTheWholeDocumentDumps) {
  for (size_t n : {0u, 2u}) {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* out = ::open_memstream(&buf, &len);
    nlohmann::json others = {{"schema", "cronrun.runs/1"}, {"since", "2026-11-23T02:10:00.000Z"}};
    std::vector<nlohmann::json> elements(n, nlohmann::json{{"run_id", "r"}, {"wall_s", 1.5}});
    {
      JsonListPrinter list(out, "runs", others);
      for (const auto& e : elements) list.add(e);
      list.finish();
    }
    std::fclose(out);
    std::string text(buf, len);
    std::free(buf);
    nlohmann::json whole = others;
    whole["runs"] = elements;
    EXPECT_EQ(text, json_text(whole, 2) + "\n") << n;
  }
}

// ---------- Prometheus from a real history ----------

RunFigures figure(const std::string& job, RunStatus st, double t, const std::string& id) {
  RunFigures f;
  f.run_id = id;
  f.job = job;
  f.status = st;
  f.started_at_s = t;
  if (st != RunStatus::skipped) f.wall_s = 1;
  return f;
}

TEST(Prometheus, ALockSkipIsNotTheLastRun) {
  // A healthy job whose newest row is a lock skip: its last run is still the
  // success before it, so "last run failed" does not fire for it.
  JobMetrics m;
  add_run(m, figure("backup", RunStatus::ok, 100, "a"));
  add_run(m, figure("backup", RunStatus::skipped, 160, "b"));
  m.job = "backup";
  m.last_success_s = 100;
  std::string text = prometheus_text({m}, 200);
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_success{cronjob=\"backup\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_start_timestamp_seconds{cronjob=\"backup\"} 100\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_status{cronjob=\"backup\",status=\"ok\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("cronrun_last_run_status{cronjob=\"backup\",status=\"skipped\"}")));
  // The skip is counted, as a skip.
  EXPECT_THAT(text, HasSubstr("cronrun_runs_total{cronjob=\"backup\",status=\"skipped\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE cronrun_runs_total counter\n"));
  EXPECT_THAT(text, Not(HasSubstr("{job=")));
}

TEST(Prometheus, MissedTicksOnlyForScheduledJobsAndAJobThatNeverRanHasNoLastSuccess) {
  JobMetrics ran;
  add_run(ran, figure("backup", RunStatus::ok, 100, "a"));
  ran.job = "backup";
  ran.last_success_s = 100;
  JobMetrics ghost;  // in the crontab, never ran: known only from the schedule
  ghost.job = "ghost";
  ghost.schedule = JobMetrics::Schedule{.missed = 5, .late = 0, .state = "missed"};
  std::string text = prometheus_text({ran, ghost}, 200);
  EXPECT_THAT(text, HasSubstr("# TYPE cronrun_missed_ticks gauge\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_missed_ticks{cronjob=\"ghost\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_job_state{cronjob=\"ghost\",state=\"missed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_job_state{cronjob=\"ghost\",state=\"up\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("cronrun_missed_ticks{cronjob=\"backup\"}")));
  EXPECT_THAT(text, Not(HasSubstr("cronrun_last_success_timestamp_seconds{cronjob=\"ghost\"}")));
  EXPECT_THAT(text, HasSubstr("cronrun_last_success_timestamp_seconds{cronjob=\"backup\"} 100\n"));
  // Without --crontab there are no schedule families at all.
  EXPECT_THAT(prometheus_text({ran}, 200), Not(HasSubstr("cronrun_missed_ticks")));
}

class PrometheusHistory : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronprof-output-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/history.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void record(const std::string& job, RunStatus st, int minute, bool finished = true, const std::string& host = "") {
    auto store = HistoryStore::open(path_, HistoryStore::Mode::read_write);
    ASSERT_TRUE(store) << store.error().message();
    RunRecord r;
    r.run_id = fmt::format("0193f1c2-0000-7000-8000-{:012}", ++n_);
    r.job = job;
    r.host = host;
    r.status = st;
    r.started_at = fmt::format("2026-11-23T02:{:02}:00.000Z", minute);
    if (finished) {
      r.finished_at = r.started_at;
      r.wall_s = 1;
      ASSERT_TRUE(store->record(r));
    } else {
      r.status = RunStatus::running;
      r.runner_pid = 999999999;  // no such process: the row reads as lost
      ASSERT_TRUE(store->begin_run(r));
    }
  }

  std::map<std::string, std::map<RunStatus, uint64_t>> totals() {
    auto store = HistoryStore::open(path_, HistoryStore::Mode::read_only);
    EXPECT_TRUE(store);
    store->set_runner_probe(dead_runners());
    auto jobs = prometheus_metrics(*store, std::nullopt, {});
    EXPECT_TRUE(jobs) << jobs.error().message();
    std::map<std::string, std::map<RunStatus, uint64_t>> out;
    for (const auto& j : *jobs) out[j.job] = j.counts;
    return out;
  }

  static RunnerProbe dead_runners() {
    RunnerProbe p;
    p.runner_alive = [](int64_t, uint64_t) { return false; };
    return p;
  }

  std::string dir_, path_;
  int n_ = 0;
};

TEST_F(PrometheusHistory, RunsTotalDoesNotGoDownWhenGcRemovesRuns) {
  for (int i = 0; i < 3; ++i) record("a", RunStatus::ok, 10 + i);
  record("a", RunStatus::failed, 13);
  record("a", RunStatus::running, 30, false);  // lost, old
  record("b", RunStatus::skipped, 14);
  record("a", RunStatus::ok, 50);  // newer than the cutoff below
  auto before = totals();
  EXPECT_EQ(before["a"][RunStatus::ok], 4u);
  EXPECT_EQ(before["a"][RunStatus::failed], 1u);
  EXPECT_EQ(before["a"][RunStatus::lost], 1u);
  EXPECT_EQ(before["b"][RunStatus::skipped], 1u);
  {
    auto store = HistoryStore::open(path_, HistoryStore::Mode::read_write);
    ASSERT_TRUE(store);
    store->set_runner_probe(dead_runners());
    auto cutoff = parse_rfc3339("2026-11-23T02:40:00Z");
    ASSERT_TRUE(cutoff);
    auto n = store->delete_before(*cutoff);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 6u);  // really removed: the counts below are not just the rows
    auto left = store->runs({});
    ASSERT_TRUE(left);
    EXPECT_EQ(left->size(), 1u);
  }
  EXPECT_EQ(totals(), before);
  // A second gc of nothing and a new run: the counter only goes up.
  record("a", RunStatus::failed, 55);
  auto after = totals();
  EXPECT_EQ(after["a"][RunStatus::failed], 2u);
  EXPECT_EQ(after["a"][RunStatus::ok], 4u);
}


TEST_F(PrometheusHistory, ACentralHistoryHasAHostLabelAndTheHostsRunsDoNotCollapse) {
  // The copy of a central history: one job on two hosts. box1's newest run
  // failed, box2's (newer) succeeded: per job alone, box1's failure would be
  // hidden and the counts of both hosts added up.
  record("backup", RunStatus::ok, 10, true, "box1.example");
  record("backup", RunStatus::failed, 20, true, "box1.example");
  record("backup", RunStatus::ok, 30, true, "box2.example");
  record("backup", RunStatus::running, 40, false, "box2.example");
  auto store = HistoryStore::open(path_, HistoryStore::Mode::read_only);
  ASSERT_TRUE(store) << store.error().message();
  RunnerProbe alive;
  alive.runner_alive = [](int64_t, uint64_t) { return true; };
  store->set_runner_probe(alive);
  auto jobs = prometheus_metrics(*store, std::nullopt, {}, /*by_host=*/true);
  ASSERT_TRUE(jobs) << jobs.error().message();
  ASSERT_EQ(jobs->size(), 2u);
  std::string text = prometheus_text(*jobs, 1795400000);
  const double t10 = *parse_rfc3339("2026-11-23T02:10:00Z");
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_success{cronjob=\"backup\",host=\"box1.example\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_success{cronjob=\"backup\",host=\"box2.example\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(fmt::format("cronrun_last_success_timestamp_seconds{{cronjob=\"backup\",host=\"box1.example\"}} {}\n", t10)));
  EXPECT_THAT(text, HasSubstr("cronrun_runs_total{cronjob=\"backup\",host=\"box1.example\",status=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_runs_total{cronjob=\"backup\",host=\"box1.example\",status=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_runs_total{cronjob=\"backup\",host=\"box2.example\",status=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_runs_in_progress{cronjob=\"backup\",host=\"box2.example\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_runs_in_progress{cronjob=\"backup\",host=\"box1.example\"} 0\n"));
  // Every sample of the runs carries both labels.
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#' || line.rfind("cronrun_export_timestamp_seconds", 0) == 0) continue;
    EXPECT_THAT(line, HasSubstr(",host=\"box")) << line;
  }
  // A local history (no host label) is unchanged: one series per job.
  auto local = prometheus_metrics(*store, std::nullopt, {});
  ASSERT_TRUE(local);
  ASSERT_EQ(local->size(), 1u);
  EXPECT_THAT(prometheus_text(*local, 1795400000), Not(HasSubstr("host=")));

  const char* promtool = "/usr/bin/promtool";
  if (::access(promtool, X_OK) != 0) {
    if (std::getenv("CI")) FAIL() << "promtool missing in CI (Debian package: prometheus)";
    GTEST_SKIP() << "promtool not installed (Debian package: prometheus)";
  }
  std::string file = dir_ + "/central.prom";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  std::FILE* p = ::popen((std::string(promtool) + " check metrics < " + file + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << out;
  EXPECT_EQ(out, "") << "promtool lint findings:\n" << out;
}

}  // namespace
}  // namespace cronrun::prof
