// cronprof's logic without the binary: nearest-rank percentiles against known
// data sets, summary aggregation, suggest rules and rounding, the comment-keeping
// config edit and atomic write, export formats (Prometheus checked structurally
// and by promtool when installed), and the profile's DB line.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <sqlite3.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/history.h"
#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/config_edit.h"
#include "profiler/export.h"
#include "profiler/show.h"
#include "profiler/stats.h"
#include "profiler/suggest.h"
#include "profiler/text_escape.h"
#include "profiler/summary.h"

namespace cronrun::prof {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kGiB = 1024 * kMiB;

// ---------- percentiles ----------

TEST(Percentile, NearestRankOnTheClassicExample) {
  // The worked example of the nearest-rank method.
  std::vector<double> v = {15, 20, 35, 40, 50};
  EXPECT_EQ(percentile(v, 5), 15);
  EXPECT_EQ(percentile(v, 30), 20);
  EXPECT_EQ(percentile(v, 40), 20);
  EXPECT_EQ(percentile(v, 50), 35);
  EXPECT_EQ(percentile(v, 95), 50);
  EXPECT_EQ(percentile(v, 100), 50);
}

TEST(Percentile, TenValuesUnsorted) {
  std::vector<double> v = {20, 3, 16, 8, 7, 13, 8, 15, 6, 10};
  EXPECT_EQ(percentile(v, 25), 7);
  EXPECT_EQ(percentile(v, 50), 8);
  EXPECT_EQ(percentile(v, 75), 15);
  EXPECT_EQ(percentile(v, 100), 20);
}

TEST(Percentile, ExactRanksDoNotRoundUp) {
  std::vector<double> v;
  for (int i = 1; i <= 20; ++i) v.push_back(i);
  EXPECT_EQ(percentile(v, 95), 19);  // 0.95 * 20 = 19 exactly
  EXPECT_EQ(percentile(v, 50), 10);
  std::vector<double> h;
  for (int i = 1; i <= 100; ++i) h.push_back(i);
  EXPECT_EQ(percentile(h, 99), 99);
  EXPECT_EQ(percentile(h, 95), 95);
  EXPECT_EQ(percentile(h, 1), 1);
}

TEST(Percentile, EdgeCases) {
  EXPECT_FALSE(percentile({}, 50));
  EXPECT_EQ(percentile({42}, 1), 42);
  EXPECT_EQ(percentile({42}, 99), 42);
  EXPECT_FALSE(percentile({1, 2}, 0));
  EXPECT_FALSE(percentile({1, 2}, 101));
}

TEST(Percentile, SpreadAndJson) {
  std::vector<double> v = {5, 1, 4, 2, 3};
  Spread s = spread_of(v);
  EXPECT_EQ(s.n, 5u);
  EXPECT_EQ(s.p50, 3);
  EXPECT_EQ(s.p95, 5);
  EXPECT_EQ(s.max, 5);
  EXPECT_EQ(s.mean, 3);
  auto j = spread_json(s);
  EXPECT_EQ(j, (nlohmann::json{{"p50", 3.0}, {"p95", 5.0}, {"max", 5.0}}));
  std::vector<double> none;
  EXPECT_TRUE(spread_json(spread_of(none))["p50"].is_null());
}

// ---------- summary ----------

RunFigures fig(const std::string& job, RunStatus st, double wall, double cpu, uint64_t peak_mib, double t = 0) {
  RunFigures f;
  f.run_id = job + std::to_string(t);
  f.job = job;
  f.status = st;
  f.started_at_s = t;
  if (st != RunStatus::skipped && st != RunStatus::running) {
    f.wall_s = wall;
    f.cpu_s = cpu;
    f.memory_peak_bytes = peak_mib * kMiB;
  }
  return f;
}

TEST(Summary, CountsAndSpreadsPerJob) {
  SummaryBuilder b;
  // Job a: wall 1..20 s, 18 ok + 1 oom + 1 timeout, one skip, one running.
  for (int i = 1; i <= 20; ++i) {
    RunStatus st = i == 7 ? RunStatus::oom : (i == 13 ? RunStatus::timeout : RunStatus::ok);
    RunFigures f = fig("a", st, i, i / 2.0, 100 + static_cast<uint64_t>(i), i);
    f.db_queries = i * 10;
    f.cpu_throttled_s = 1.0;
    if (st == RunStatus::oom) f.oom_kills = 2;
    b.add(f);
  }
  b.add(fig("a", RunStatus::skipped, 0, 0, 0, 100));
  b.add(fig("a", RunStatus::running, 0, 0, 0, 101));
  b.add(fig("b", RunStatus::failed, 5, 1, 10, 3));
  auto jobs = b.finish({{"a", 20.0}});
  ASSERT_EQ(jobs.size(), 2u);
  const JobSummary& a = jobs[0];
  EXPECT_EQ(a.job, "a");
  EXPECT_EQ(a.runs, 22u);
  EXPECT_EQ(a.ok, 18u);
  EXPECT_EQ(a.failures, 2u);
  EXPECT_EQ(a.skipped, 1u);
  EXPECT_EQ(a.timeouts, 1u);
  EXPECT_EQ(a.oom_kills, 2u);
  EXPECT_EQ(a.running, 1u);
  EXPECT_EQ(a.wall_s.n, 20u);
  EXPECT_EQ(a.wall_s.p50, 10);
  EXPECT_EQ(a.wall_s.p95, 19);
  EXPECT_EQ(a.wall_s.max, 20);
  EXPECT_EQ(a.memory_peak_bytes.p95, 119.0 * kMiB);
  EXPECT_EQ(a.db_queries.p50, 100);
  EXPECT_EQ(a.cpu_throttled_mean_s, 1.0);
  EXPECT_EQ(a.last_success_s, 20.0);
  EXPECT_EQ(a.last_run_s, 101.0);
  const JobSummary& bj = jobs[1];
  EXPECT_EQ(bj.failures, 1u);
  EXPECT_FALSE(bj.last_success_s);
  EXPECT_FALSE(bj.db_queries.p50);

  auto j = summary_json(jobs, 0);
  EXPECT_EQ(j["percentiles"], "nearest-rank");
  const auto& ja = j["jobs"][0];
  for (const char* k : {"job", "runs", "failures", "skipped", "oom_kills", "wall_s", "memory_peak_bytes", "cpu_s",
                        "db_queries", "last_success"})
    EXPECT_TRUE(ja.contains(k)) << k;
  EXPECT_EQ(ja["wall_s"]["p95"], 19.0);
  EXPECT_EQ(ja["runs"], 22);
  EXPECT_TRUE(j["jobs"][1]["last_success"].is_null());
  EXPECT_TRUE(j["jobs"][1]["db_queries"]["p50"].is_null());
  std::string table = summary_table(jobs);
  EXPECT_THAT(table, HasSubstr("JOB"));
  EXPECT_THAT(table, HasSubstr("never"));
}

// ---------- suggest ----------

std::vector<RunFigures> steady_runs(int n, uint64_t peak_mib, double wall, double cpu) {
  std::vector<RunFigures> v;
  for (int i = 0; i < n; ++i) v.push_back(fig("j", RunStatus::ok, wall, cpu, peak_mib, i));
  return v;
}

TEST(Suggest, TooFewRunsSuggestsNothing) {
  auto s = suggest_limits("j", steady_runs(4, 100, 10, 5), 1.3, 30);
  EXPECT_FALSE(s.enough_data);
  EXPECT_FALSE(s.memory_bytes);
  EXPECT_FALSE(s.cpu_pct);
  EXPECT_FALSE(s.timeout_s);
  ASSERT_GE(s.evidence.size(), 2u);
  EXPECT_THAT(s.evidence[0], HasSubstr("4 runs in 30 days"));
  EXPECT_THAT(s.evidence[1], HasSubstr("at least 5"));
}

TEST(Suggest, FromSteadyRuns) {
  // 1 GiB peaks, 100 s wall, 50 s CPU (50%): 1.3 GiB -> rounded to 16 MiB; 65% -> 70%;
  // 130 s -> 3 min.
  auto s = suggest_limits("j", steady_runs(42, 1024, 100, 50), 1.3, 30);
  ASSERT_TRUE(s.enough_data);
  EXPECT_EQ(s.ok_runs, 42u);
  EXPECT_EQ(*s.memory_bytes, 1344 * kMiB);  // 1331.2 MiB rounded up to 16 MiB
  EXPECT_EQ(s.memory, "1344M");
  EXPECT_EQ(*s.cpu_pct, 70);
  EXPECT_EQ(s.cpu, "70%");
  EXPECT_EQ(*s.timeout_s, 180);
  EXPECT_EQ(s.timeout, "3m");
  EXPECT_THAT(s.evidence[0], HasSubstr("42 runs in 30 days (42 ok)"));
  EXPECT_THAT(s.evidence[1], HasSubstr("p99 1.00 GiB"));
  EXPECT_THAT(s.evidence[1], HasSubstr("0 OOM kills"));
}

TEST(Suggest, UsesP99NotMax) {
  auto runs = steady_runs(100, 100, 10, 1);
  runs[0].memory_peak_bytes = 4 * kGiB;  // one outlier in 100: above p99
  auto s = suggest_limits("j", runs, 1.0, 30);
  EXPECT_EQ(*s.memory_bytes, 100 * kMiB);
}

TEST(Suggest, RaisedAfterOomKillsUnderTheLimit) {
  auto runs = steady_runs(10, 900, 10, 1);
  RunFigures oom = fig("j", RunStatus::oom, 5, 1, 1024, 50);
  oom.memory_max_bytes = 1 * kGiB;
  oom.oom_kills = 1;
  runs.push_back(oom);
  auto s = suggest_limits("j", runs, 1.5, 30);
  EXPECT_EQ(*s.memory_bytes, 1536 * kMiB);  // 1 GiB limit x 1.5, above 900 MiB x 1.5
  EXPECT_EQ(s.memory, "1536M");
  EXPECT_THAT(s.evidence[1], HasSubstr("1 OOM kill under the 1.00 GiB limit"));
}

TEST(Suggest, CpuRaisedWhenThrottledUnderQuota) {
  auto runs = steady_runs(10, 100, 100, 100);  // 100% of a CPU
  for (auto& r : runs) {
    r.cpu_quota_pct = 100;
    r.cpu_throttled_s = 30;  // 30% of wall throttled
  }
  auto s = suggest_limits("j", runs, 1.3, 30);
  EXPECT_EQ(*s.cpu_pct, 130);
  EXPECT_THAT(s.evidence[2], HasSubstr("throttled 30.0% of wall"));
  EXPECT_EQ(*s.current_cpu_pct, 100);
}

TEST(Suggest, TimeoutRaisedAfterTimeouts) {
  auto runs = steady_runs(10, 100, 60, 1);
  RunFigures t = fig("j", RunStatus::timeout, 600, 1, 100, 99);
  t.timeout_s = 600;
  runs.push_back(t);
  auto s = suggest_limits("j", runs, 1.3, 30);
  EXPECT_EQ(*s.timeout_s, 780);  // 600 x 1.3 = 13 min
  EXPECT_EQ(s.timeout, "13m");
  EXPECT_THAT(s.evidence[3], HasSubstr("1 run timed out under 10m00s"));
}

TEST(Suggest, RssFallbackWithoutCgroupAccounting) {
  auto runs = steady_runs(6, 0, 10, 1);
  for (auto& r : runs) {
    r.memory_peak_bytes.reset();
    r.max_rss_bytes = 200 * kMiB;
  }
  auto s = suggest_limits("j", runs, 1.3, 30);
  EXPECT_EQ(s.memory, "272M");  // 260 MiB, >= 256 MiB so rounded up to 16 MiB
  EXPECT_THAT(s.evidence[1], HasSubstr("may understate"));
}

// Runs under a pids limit count their tasks; the suggestion is the largest count ×
// headroom (not a percentile: a refused fork fails the job), rounded up to 8.
TEST(Suggest, PidsFromTheLargestTaskCountUnderALimit) {
  auto runs = steady_runs(10, 100, 10, 1);
  for (size_t i = 0; i < runs.size(); ++i) {
    runs[i].pids_peak = 5 + 4 * i;  // 5 .. 41
    runs[i].pids_max = 64;
  }
  auto s = suggest_limits("j", runs, 1.3, 30);
  ASSERT_TRUE(s.pids_max);
  EXPECT_EQ(*s.pids_max, 56u);  // 41 x 1.3 = 53.3 -> 54 -> 56
  EXPECT_EQ(s.pids, "56");
  EXPECT_EQ(*s.current_pids_max, 64u);
  EXPECT_THAT(s.evidence, testing::Contains(HasSubstr("pids: at most 41 tasks over 10 successful runs that counted "
                                                      "them; 0 forks refused → 56 (× 1.3)")));
  auto j = suggestion_json(s);
  EXPECT_EQ(j["suggested"]["pids"], "56");
  EXPECT_EQ(j["suggested"]["pids_max"], 56);
  EXPECT_EQ(j["current"]["pids_max"], 64);
  EXPECT_THAT(suggestion_text(s), HasSubstr("pids 56"));
  EXPECT_THAT(suggestion_text(s), HasSubstr("now: pids 64"));
}

TEST(Suggest, PidsNeverBelowTheFloorAndRaisedAfterRefusedForks) {
  auto runs = steady_runs(6, 100, 10, 1);
  for (auto& r : runs) {
    r.pids_peak = 3;
    r.pids_max = 100;
  }
  auto s = suggest_limits("j", runs, 1.3, 30);
  EXPECT_EQ(s.pids, "32");
  EXPECT_THAT(s.evidence.back(), HasSubstr("raised to the 32 floor"));
  // One run failed with 40 forks refused under a limit of 100: at least 130.
  RunFigures refused = fig("j", RunStatus::failed, 10, 1, 100, 99);
  refused.pids_peak = 100;
  refused.pids_max_events = 40;
  refused.pids_max = 100;
  runs.push_back(refused);
  s = suggest_limits("j", runs, 1.3, 30);
  EXPECT_EQ(s.pids, "136");  // 100 x 1.3 = 130 -> 136
  EXPECT_THAT(s.evidence.back(), HasSubstr("40 forks refused under the 100 limit, so at least that × headroom"));
  EXPECT_TRUE(set_config_keys("", {{"pids", s.pids}}));  // what cronrun takes
}

TEST(Suggest, NoPidsLimitFromRunsThatCountedNoTasks) {
  auto s = suggest_limits("j", steady_runs(8, 100, 10, 1), 1.3, 30);
  EXPECT_FALSE(s.pids_max);
  EXPECT_EQ(s.pids, "");
  EXPECT_THAT(s.evidence.back(), HasSubstr("cronrun makes a pids cgroup only for --pids"));
  EXPECT_TRUE(suggestion_json(s)["suggested"]["pids"].is_null());
  EXPECT_THAT(suggestion_text(s), Not(HasSubstr("pids 3")));
  // A kernel without pids.peak still counts refused forks: the limit they hit × headroom.
  auto runs = steady_runs(8, 100, 10, 1);
  RunFigures refused = fig("j", RunStatus::failed, 10, 1, 100, 99);
  refused.pids_max_events = 2;
  refused.pids_max = 50;
  runs.push_back(refused);
  s = suggest_limits("j", runs, 1.3, 30);
  EXPECT_EQ(s.pids, "72");  // 50 x 1.3 = 65 -> 72
  EXPECT_THAT(s.evidence.back(), HasSubstr("no successful run counted its tasks (cronrun makes a pids cgroup only "
                                           "for --pids); 2 forks refused under the 50 limit"));
}

TEST(Suggest, ValueSpellings) {
  EXPECT_EQ(memory_value(2 * kGiB), "2G");
  EXPECT_EQ(memory_value(1536 * kMiB), "1536M");
  EXPECT_EQ(cpu_value(150), "150%");
  EXPECT_EQ(timeout_value(90), "90s");
  EXPECT_EQ(timeout_value(3000), "50m");
  EXPECT_EQ(timeout_value(7200), "2h");
  EXPECT_EQ(timeout_value(9000), "2h30m");
  auto j = suggestion_json(suggest_limits("j", steady_runs(5, 100, 10, 1), 1.3, 30));
  EXPECT_EQ(j["suggested"]["memory"], "130M");  // below 256 MiB: rounded to 1 MiB
  EXPECT_TRUE(j["enough_data"].get<bool>());
}

// ---------- config edit ----------

TEST(ConfigEdit, KeepsCommentsOrderAndOtherKeys) {
  std::string in = R"({
  // nightly report: heavy on Sundays
  "memory": "1G",   // raised after the March OOM
  "env": ["A=1", "B={not a brace}"],
  "nested": { "memory": "keep-me" },
  /* block comment */ "timeout": 600
}
)";
  auto out = set_config_keys(in, {{"memory", "1536M"}, {"timeout", "50m"}, {"cpu", "150%"}});
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_THAT(*out, HasSubstr("// nightly report: heavy on Sundays"));
  EXPECT_THAT(*out, HasSubstr(R"("memory": "1536M",   // raised after the March OOM)"));
  EXPECT_THAT(*out, HasSubstr(R"(/* block comment */ "timeout": "50m")"));
  EXPECT_THAT(*out, HasSubstr(R"("nested": { "memory": "keep-me" })"));
  auto j = nlohmann::json::parse(*out, nullptr, true, true);
  EXPECT_EQ(j["memory"], "1536M");
  EXPECT_EQ(j["cpu"], "150%");
  EXPECT_EQ(j["timeout"], "50m");
  EXPECT_EQ(j["nested"]["memory"], "keep-me");
  EXPECT_EQ(j["env"][1], "B={not a brace}");
}

TEST(ConfigEdit, NewAndEmptyObjects) {
  auto fresh = set_config_keys("", {{"memory", "2G"}});
  ASSERT_TRUE(fresh);
  EXPECT_EQ(nlohmann::json::parse(*fresh)["memory"], "2G");
  auto empty = set_config_keys("{}", {{"memory", "2G"}, {"cpu", "50%"}});
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_EQ(nlohmann::json::parse(*empty)["cpu"], "50%");
  auto one_line = set_config_keys(R"({"pids": 100})", {{"memory", "2G"}});
  ASSERT_TRUE(one_line) << one_line.error().message();
  auto j = nlohmann::json::parse(*one_line);
  EXPECT_EQ(j["pids"], 100);
  EXPECT_EQ(j["memory"], "2G");
}

TEST(ConfigEdit, RefusesWhatIsNotAnObject) {
  EXPECT_FALSE(set_config_keys("[1,2]", {{"memory", "2G"}}));
  EXPECT_FALSE(set_config_keys("{\"memory\": ", {{"memory", "2G"}}));
  EXPECT_FALSE(set_config_keys("not json", {{"memory", "2G"}}));
}

TEST(ConfigEdit, AtomicWriteKeepsMode) {
  char tmpl[] = "/tmp/cronrun-prof-test-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string path = dir + "/jobs.d/x.json";
  ASSERT_EQ(::mkdir((dir + "/jobs.d").c_str(), 0755), 0);  // an explicit path's directory must exist
  ASSERT_TRUE(write_file_atomically(path, "{}\n"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ::chmod(path.c_str(), 0600);
  ASSERT_TRUE(write_file_atomically(path, "{\"a\": 1}\n"));
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "{\"a\": 1}\n");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/jobs.d")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // no temp left behind
  std::filesystem::remove_all(dir);
}

// ---------- export ----------

std::vector<JobMetrics> sample_metrics() {
  JobMetrics a;
  a.job = "nightly-report";
  RunFigures f = fig("nightly-report", RunStatus::ok, 812.4, 545.1, 1536, 1795399800);
  f.finished_at_s = 1795400612.4;
  f.exit_code = 0;
  f.oom_kills = 0;
  f.db_queries = 18234;
  a.last = f;
  a.last_success_s = 1795399800;
  a.counts = {{RunStatus::ok, 40}, {RunStatus::failed, 2}};
  a.has_rows = true;
  JobMetrics b;
  b.job = "we\"ird\\job\nname";
  RunFigures g = fig(b.job, RunStatus::failed, 1, 0.1, 10, 1795399000);
  g.exit_code = 3;
  b.last = g;
  b.counts = {{RunStatus::failed, 1}};
  b.has_rows = true;
  b.running = 1;
  return {a, b};
}

TEST(Export, PrometheusStructure) {
  std::string text = prometheus_text(sample_metrics(), 1795400000);
  std::istringstream in(text);
  std::string line;
  std::set<std::string> helped, typed;
  std::map<std::string, int> samples;
  const std::regex sample_re(R"re(^(cronrun_[a-z_]+)(\{cronjob="(?:[^"\\]|\\.)*"(?:,status="[a-z]+")?\})? (-?[0-9.e+]+)$)re");
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.count(name)) << "TYPE before HELP: " << name;
      EXPECT_THAT(line, name == "cronrun_runs_total" ? HasSubstr(" counter") : HasSubstr(" gauge"));
      typed.insert(name);
      continue;
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, sample_re)) << line;
    EXPECT_TRUE(typed.count(m[1])) << "sample without TYPE: " << line;
    samples[m[1]]++;
  }
  EXPECT_EQ(samples["cronrun_last_success_timestamp_seconds"], 2);
  EXPECT_EQ(samples["cronrun_last_run_start_timestamp_seconds"], 2);
  EXPECT_EQ(samples["cronrun_export_timestamp_seconds"], 1);
  EXPECT_THAT(text, HasSubstr("cronrun_last_success_timestamp_seconds{cronjob=\"nightly-report\"} 1795399800\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_success{cronjob=\"nightly-report\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_status{cronjob=\"nightly-report\",status=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_last_run_status{cronjob=\"nightly-report\",status=\"failed\"} 0\n"));
  // Never succeeded: 0, so the "no success in 2 intervals" rule fires for it.
  EXPECT_THAT(text, HasSubstr("cronrun_last_success_timestamp_seconds{cronjob=\"we\\\"ird\\\\job\\nname\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cronrun_runs_in_progress{cronjob=\"we\\\"ird\\\\job\\nname\"} 1\n"));
  // Not measured: no sample (absent), never 0.
  EXPECT_THAT(text, Not(HasSubstr("cronrun_last_run_cpu_throttled_seconds{")));
  EXPECT_THAT(text, Not(HasSubstr("e+")));  // plain numbers for big timestamps
}

TEST(Export, PrometheusPassesPromtool) {
  const char* promtool = nullptr;
  for (const char* p : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (::access(p, X_OK) == 0) promtool = p;
  }
  if (!promtool) {
    // CI installs it (scripts/install-deps.sh); only a partial dev machine may skip.
    if (std::getenv("CI")) FAIL() << "promtool missing in CI (Debian package: prometheus)";
    GTEST_SKIP() << "promtool not installed (Debian package: prometheus)";
  }
  char tmpl[] = "/tmp/cronrun-prom-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string text = prometheus_text(sample_metrics(), 1795400000);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  std::string cmd = std::string(promtool) + " check metrics < " + tmpl + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  ::unlink(tmpl);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "promtool lint findings:\n" << out;
}

TEST(Export, CsvQuotingAndShape) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  // No raw line break even inside quotes: escaped like on the terminal.
  EXPECT_EQ(csv_field("two\nlines"), "two\\nlines");
  EXPECT_EQ(csv_field("a,\x1b[2J"), "\"a,\\x1b[2J\"");
  RunRecord r;
  r.run_id = "id";
  r.job = "j";
  r.started_at = "2026-11-23T02:10:00.123Z";
  r.status = RunStatus::ok;
  r.command = {"/bin/sh", "-c", "echo a,b"};
  r.usage.memory_peak_bytes = 1024;
  r.counters["db.queries"] = 5;
  std::string header = csv_header();
  std::string row = csv_row(r);
  auto columns = [](const std::string& line) {
    size_t n = 1;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) ++n;
    }
    return n;
  };
  EXPECT_EQ(columns(header), columns(row));
  EXPECT_THAT(row, HasSubstr(",1024,"));
  EXPECT_THAT(row, HasSubstr("\"/bin/sh -c echo a,b\""));
  EXPECT_THAT(row, HasSubstr(",,"));  // nulls are empty fields
}

// ---------- show ----------

RunRecord base_record() {
  RunRecord r;
  r.run_id = "0193f1c2-7d3a-7c1e-9f00-123456789abc";
  r.job = "nightly-report";
  r.started_at = "2026-11-23T02:10:00.123Z";
  r.status = RunStatus::ok;
  r.exit_code = 0;
  r.wall_s = 100;
  return r;
}

TEST(Show, DbNotCountedWhenNoDbKeys) {
  RunRecord r = base_record();
  r.counters["rows_exported"] = 5;
  EXPECT_THAT(render_db(r), HasSubstr("not counted"));
}

TEST(Show, DbNotObservedWhenNoClientLoaded) {
  RunRecord r = base_record();
  r.counters = {{"db.queries", 0}, {"db.processes", 3}, {"db.processes_with_client", 0}};
  std::string s = render_db(r);
  EXPECT_THAT(s, HasSubstr("not observed — no client library loaded"));
  EXPECT_THAT(s, Not(HasSubstr("0 queries")));
}

TEST(Show, DbQueriesShareOfWallBackendsAndCoverage) {
  RunRecord r = base_record();
  r.counters = {{"db.queries", 1200},        {"db.time_s", 25},           {"db.prepares", 40},
                {"db.pg.queries", 1000},     {"db.pg.time_s", 20},        {"db.sqlite.queries", 200},
                {"db.processes", 4},         {"db.processes_with_client", 2}, {"db.resolve_failures", 1},
                {"db.proc.report.queries", 1000}};
  std::string s = render_db(r);
  EXPECT_THAT(s, HasSubstr("1200 queries"));
  EXPECT_THAT(s, HasSubstr("(25% of wall)"));
  EXPECT_THAT(s, HasSubstr("40 prepares"));
  EXPECT_THAT(s, HasSubstr("pg: 1000 queries"));
  EXPECT_THAT(s, HasSubstr("sqlite: 200 queries"));
  EXPECT_THAT(s, HasSubstr("report: 1000 queries"));
  EXPECT_THAT(s, HasSubstr("attached to 4 processes, 2 loaded a DB client library"));
  EXPECT_THAT(s, HasSubstr("1 symbol resolve failures"));
}

TEST(Show, ProfileSaysNotMeasuredAndPercentOfLimit) {
  RunRecord r = base_record();
  r.usage.cpu_user_s = 60;
  r.usage.cpu_system_s = 15;
  r.usage.memory_peak_bytes = 1536 * kMiB;
  r.limits.memory_max_bytes = 2 * kGiB;
  r.usage.oom_kills = 0;
  std::string p = render_profile(r);
  EXPECT_THAT(p, HasSubstr("peak 1.50 GiB of 2.00 GiB limit (75%)"));
  EXPECT_THAT(p, HasSubstr("75% of one CPU"));
  EXPECT_THAT(p, HasSubstr("OOM kills 0"));
  EXPECT_THAT(p, HasSubstr("process RSS not measured"));
  EXPECT_THAT(p, HasSubstr("read not measured"));
  EXPECT_THAT(p, HasSubstr("DB         not counted"));
}

// Issue 14 #6: IO counted from rusage (the cgroup could not) says where it came from.
TEST(Show, IoFromRusageSaysSo) {
  RunRecord r = base_record();
  r.usage.io_read_bytes = 0;
  r.usage.io_write_bytes = 10 * kMiB;
  r.usage.io_source = "rusage";
  EXPECT_THAT(render_profile(r), HasSubstr("write 10.0 MiB (rusage block counts"));
  r.usage.io_source = "cgroup";
  EXPECT_THAT(render_profile(r), Not(HasSubstr("rusage block")));
}

TEST(Show, TasksLineSaysTheForksThePidsLimitRefused) {
  RunRecord r = base_record();
  r.usage.pids_peak = 10;
  r.limits.pids_max = 10;
  EXPECT_THAT(render_profile(r), HasSubstr("peak 10 (limit 10)\n"));
  r.usage.pids_max_events = 7;
  EXPECT_THAT(render_profile(r), HasSubstr("peak 10 (limit 10); forks refused by the limit 7\n"));
}

// The command line keeps its word boundaries: `sh -c 'a b'` is not `sh -c a b`.
TEST(Show, CommandWordsThatAreNotPlainAreQuoted) {
  RunRecord r = base_record();
  r.command = {"/bin/sh", "-c", "echo 'hi' > /tmp/x", ""};
  EXPECT_THAT(render_profile(r), HasSubstr("/bin/sh -c 'echo '\\''hi'\\'' > /tmp/x' ''\n"));
}

// ---------- hostile history content ----------
// Another user controls a job's argv, its counters file and so the strings the
// history holds; none of it may reach the terminal as a control sequence.

// ESC [2J (clear screen), CR, LF, U+009B (CSI as a C1 control), a lone 0x9b and an
// invalid 0xff byte, and an OSC title change ended by BEL.
const std::string kHostile = "x\x1b[2J\r\n\xc2\x9b\x9b\xff\x1b]0;pwned\x07y";

// The first byte of `s` that a terminal would obey (a C0 control other than the
// newline, DEL, a C1 control) or that is not UTF-8; "" when there is none.
std::string first_unsafe_byte(const std::string& s, bool allow_newline = true) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n' && allow_newline) continue;
    if (c < 0x20 || c == 0x7f) return fmt::format("control 0x{:02x} at {}", c, i);
    if (c < 0x80) continue;
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (len == 0 || i + len > s.size()) return fmt::format("invalid UTF-8 0x{:02x} at {}", c, i);
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return fmt::format("invalid UTF-8 at {}", i);
    if (c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) return fmt::format("C1 control at {}", i);
    i += len - 1;
  }
  return "";
}

RunRecord hostile_record(const std::string& h) {
  RunRecord r = base_record();
  r.job = "job" + h;
  r.host = "host" + h;
  r.user = "user" + h;
  r.command = {"/bin/sh", "-c", "echo " + h};
  r.skip_reason = "reason" + h;
  r.counters["rows" + h] = 3;
  r.counters["db.proc.prog" + h + ".queries"] = 7;
  r.isolation.cgroup = "none";
  r.isolation.note = "note" + h;
  r.isolation.path = "/cg" + h;
  r.lock.path = "/lock" + h;
  r.log.path = "/log" + h;
  return r;
}

TEST(Hostile, ShowEscapesEveryHistoryString) {
  std::string p = render_profile(hostile_record(kHostile));
  EXPECT_EQ(first_unsafe_byte(p), "") << p;
  EXPECT_THAT(p, HasSubstr("x\\x1b[2J\\r\\n\\u{009b}\\x9b\\xff\\x1b]0;pwned\\x07y"));
  // Our own line structure is intact: the injected newlines made no extra lines.
  std::string plain = render_profile(hostile_record("x"));
  EXPECT_EQ(std::count(p.begin(), p.end(), '\n'), std::count(plain.begin(), plain.end(), '\n'));
}

TEST(Hostile, CsvAndPrometheusCarryNoRawControls) {
  RunRecord r = base_record();
  r.job = "job" + kHostile;
  r.host = kHostile;
  r.command = {"echo", kHostile};
  std::string row = csv_row(r);
  ASSERT_FALSE(row.empty());
  EXPECT_EQ(first_unsafe_byte(row.substr(0, row.size() - 1), false), "") << row;
  EXPECT_EQ(row.back(), '\n');

  std::vector<JobMetrics> jobs(1);
  jobs[0].job = "job" + kHostile + "\\\"";
  jobs[0].counts[RunStatus::ok] = 1;
  std::string text = prometheus_text(jobs, 1.8e9);
  EXPECT_EQ(first_unsafe_byte(text), "") << text;
  // Only the escapes the text format knows: \\, \" and \n.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("cronjob=\"((?:[^\"\\\\]|\\\\.)*)\"")));
  std::string label = m[1];
  for (size_t i = 0; i < label.size(); ++i) {
    if (label[i] != '\\') continue;
    ASSERT_LT(i + 1, label.size());
    EXPECT_THAT(std::string("\\\"n"), HasSubstr(std::string(1, label[i + 1]))) << label;
    ++i;
  }
}

TEST(Hostile, SummaryAndSuggestTextsAreEscaped) {
  std::vector<RunFigures> runs;
  for (int i = 0; i < 6; ++i) {
    RunFigures f = fig("j", RunStatus::ok, 10, 1, 100, i);
    f.job = "job" + kHostile;
    runs.push_back(f);
  }
  SummaryBuilder b;
  for (const auto& f : runs) b.add(f);
  std::string table = summary_table(b.finish({}));
  EXPECT_EQ(first_unsafe_byte(table), "") << table;
  std::string text = suggestion_text(suggest_limits(runs[0].job, runs, 1.3, 30));
  EXPECT_EQ(first_unsafe_byte(text), "") << text;
}

// ---------- absurd figures ----------

TEST(Absurd, DurationsFormatPlainly) {
  EXPECT_EQ(units::format_duration_s(std::nan("")), "-");
  EXPECT_EQ(units::format_duration_s(-1), "-");
  EXPECT_EQ(units::format_duration_s(std::numeric_limits<double>::infinity()), ">100y");
  EXPECT_EQ(units::format_duration_s(1e300), ">100y");
  EXPECT_EQ(units::format_duration_s(9.3e18), ">100y");
  EXPECT_EQ(units::format_duration_s(7265), "2h01m");
  EXPECT_EQ(units::format_duration_s(5.5), "5.50s");
  EXPECT_EQ(format_utc(1e300), "-");
  EXPECT_EQ(format_utc(std::nan("")), "-");
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(size_or_dash(std::optional<double>(1e300)), ">" + units::format_size(UINT64_MAX));
  EXPECT_EQ(size_or_dash(std::optional<double>(std::nan(""))), "-");
}

TEST(Absurd, ShowPrintsHugeCountersWithoutOverflow) {
  RunRecord r = base_record();
  r.counters["huge"] = 1e300;
  r.counters["inf"] = std::numeric_limits<double>::infinity();
  r.counters["db.queries"] = -1e30;
  r.wall_s = std::numeric_limits<double>::infinity();
  std::string p = render_profile(r);
  EXPECT_THAT(p, HasSubstr("huge 1e+300"));
  EXPECT_THAT(p, HasSubstr(">100y"));
  EXPECT_THAT(p, Not(HasSubstr("-2562047788015215h")));
}

// What suggest proposes is always something cronrun's parsers take.
TEST(Absurd, SuggestNeverProposesWhatCronrunRejects) {
  std::vector<RunFigures> runs;
  for (int i = 0; i < 6; ++i) {
    RunFigures f = fig("j", RunStatus::ok, 10, 1, 100, i);
    f.wall_s = i % 2 ? std::numeric_limits<double>::infinity() : 1e-300;
    f.cpu_s = 1e300;
    f.memory_peak_bytes = UINT64_MAX;
    f.pids_peak = UINT64_MAX;
    runs.push_back(f);
  }
  Suggestion s = suggest_limits("j", runs, 1.3, 30, 4u);
  EXPECT_FALSE(s.pids_max) << s.pids;
  ASSERT_TRUE(s.enough_data);
  EXPECT_FALSE(s.memory_bytes) << s.memory;
  EXPECT_FALSE(s.timeout_s) << s.timeout;
  ASSERT_TRUE(s.cpu_pct);
  EXPECT_EQ(s.cpu, "400%");  // capped at the host's 4 CPUs
  for (const std::string& e : s.evidence) EXPECT_EQ(first_unsafe_byte(e), "") << e;
  EXPECT_THAT(s.evidence, testing::Contains(HasSubstr("beyond any memory limit")));
  EXPECT_THAT(s.evidence, testing::Contains(HasSubstr("beyond any timeout")));
  EXPECT_THAT(s.evidence, testing::Contains(HasSubstr("beyond any pids limit")));
  EXPECT_TRUE(units::parse_cpu_percent(s.cpu));
}

TEST(Absurd, SuggestedValuesParseAsCronrunParsesThem) {
  for (double wall : {0.001, 10.0, 119.0, 3599.0, 86400.0 * 400}) {
    std::vector<RunFigures> runs;
    for (int i = 0; i < 6; ++i) runs.push_back(fig("j", RunStatus::ok, wall, wall * 3, 1 << 20, i));
    Suggestion s = suggest_limits("j", runs, 10, 30, 2u);
    if (s.timeout_s) {
      EXPECT_TRUE(units::parse_duration(s.timeout)) << s.timeout;
    }
    if (s.memory_bytes) {
      EXPECT_TRUE(units::parse_size(s.memory)) << s.memory;
    }
    if (s.cpu_pct) {
      EXPECT_TRUE(units::parse_cpu_percent(s.cpu)) << s.cpu;
      EXPECT_LE(*s.cpu_pct, 200);
    }
  }
}


// ---------- damaged and non-UTF-8 rows in a real history ----------

// A history written by HistoryStore, then three rows changed with the SQLite API:
// a command argument with a raw 0xff byte in the record text, a record that is
// not JSON, and a figure column holding text.
class DamagedHistory : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronprof-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/history.db";
    auto store = HistoryStore::open(path_, HistoryStore::Mode::read_write);
    ASSERT_TRUE(store) << store.error().message();
    for (int i = 0; i < 5; ++i) {
      RunRecord r = base_record();
      r.run_id = fmt::format("0193f1c2-0000-7000-8000-00000000000{}", i);
      r.started_at = fmt::format("2026-11-23T02:1{}:00.000Z", i);
      r.finished_at = r.started_at;
      r.command = {"/bin/echo", "marker"};
      ASSERT_TRUE(store->record(r)) << i;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE runs SET record = replace(record, 'marker', ?1) WHERE run_id = ?2",
                                 -1, &st, nullptr),
              SQLITE_OK);
    const std::string bad = "ma\xffrk\\u001b[2J";  // ESC as the runner writes it, 0xff raw
    sqlite3_bind_text(st, 1, bad.data(), static_cast<int>(bad.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, "0193f1c2-0000-7000-8000-000000000000", -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE runs SET record = 'garbage' WHERE run_id = '0193f1c2-0000-7000-8000-000000000001';"
                           "UPDATE runs SET wall_s = 'x' WHERE run_id = '0193f1c2-0000-7000-8000-000000000002';",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(DamagedHistory, EachRunSkipsTheDamagedRowAndReadsNonUtf8AsReplacement) {
  auto store = HistoryStore::open(path_, HistoryStore::Mode::read_only);
  ASSERT_TRUE(store);
  std::vector<RunRecord> got;
  std::vector<std::string> skipped;
  auto r = store->each_run({}, [&](const RunRecord& rec) { got.push_back(rec); },
                           [&](const std::string& id, const Error& why) { skipped.push_back(id + ": " + why.message()); });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(got.size(), 4u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_THAT(skipped[0], HasSubstr("0193f1c2-0000-7000-8000-000000000001: stored record is not valid JSON"));
  auto bad = std::find_if(got.begin(), got.end(), [](const RunRecord& x) { return x.run_id.back() == '0'; });
  ASSERT_NE(bad, got.end());
  EXPECT_EQ(bad->command.at(1), "ma\xef\xbf\xbdrk\x1b[2J");
  // The JSON cronprof prints from it parses and is ASCII; the profile has no raw control.
  std::string text = json_text(to_json(*bad), 2);
  EXPECT_FALSE(nlohmann::json::parse(text, nullptr, false).is_discarded());
  EXPECT_EQ(first_unsafe_byte(text), "");
  EXPECT_EQ(first_unsafe_byte(render_profile(*bad)), "");
  // Without a handler the first damaged row still fails the query (show, gc).
  EXPECT_FALSE(store->each_run({}, [](const RunRecord&) {}));
}

TEST_F(DamagedHistory, ScanSkipsAFigureColumnHoldingText) {
  auto store = HistoryStore::open(path_, HistoryStore::Mode::read_only);
  ASSERT_TRUE(store);
  size_t rows = 0;
  std::vector<std::string> skipped;
  auto r = store->scan({}, [&](const RunFigures&) { ++rows; },
                       [&](const std::string& id, const Error& why) { skipped.push_back(id + ": " + why.message()); });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(rows, 4u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_THAT(skipped[0], HasSubstr("000000000002: wall_s is not a number"));
}

}  // namespace
}  // namespace cronrun::prof

