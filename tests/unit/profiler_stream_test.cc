// cronprof over a large history reads it streaming: one job's figures at a time
// (HistoryStore::scan with RunFilter::by_job), listings printed as they are read
// (Table's two passes, JsonListPrinter), summary over the narrow column scan.
// Here, on a small real history, every streamed result equals what the
// whole-history form gives (the form every command used before); that memory
// stays bounded is measured by bench/history_1m.sh, not asserted here.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/history.h"
#include "profiler/cli_support.h"
#include "profiler/plan_history.h"
#include "profiler/report_html.h"
#include "profiler/report_html_history.h"
#include "profiler/stats.h"
#include "profiler/suggest.h"
#include "profiler/summary.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {
namespace {

using ::testing::HasSubstr;

constexpr double kNow = 1764900000;  // a fixed "now": 2025-12-05
constexpr double kSince = kNow - 30 * 86400.0;

std::string rfc3339(double t) {
  time_t s = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&s, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// The probe of these tests: this boot is "this-boot", pid 4242 is alive.
RunnerProbe test_probe() {
  RunnerProbe p;
  p.boot_id = "this-boot";
  p.runner_alive = [](int64_t pid, uint64_t) { return pid == 4242; };
  return p;
}

class StreamedHistory : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronprof-stream-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/history.db";
    auto store = HistoryStore::open(path_, HistoryStore::Mode::read_write);
    ASSERT_TRUE(store) << store.error().message();
    // Jobs whose names sort differently by bytes and by case; statuses of every
    // kind, runs with and without cgroup figures, DB counters on some, lost and
    // live `running` rows, and runs before the window.
    const std::vector<std::string> jobs = {"nightly", "Backup", "a.b-c_d", "zz", "report"};
    std::mt19937_64 rng(15);
    std::uniform_real_distribution<double> u(0, 1);
    int n = 0;
    for (size_t j = 0; j < jobs.size(); ++j) {
      int runs = 12 + static_cast<int>(j) * 9;
      for (int i = 0; i < runs; ++i, ++n) {
        RunRecord r;
        r.run_id = fmt::format("0193f1c2-0000-7000-8000-{:012}", n);
        r.job = jobs[j];
        r.host = "h";
        r.user = "root";
        r.command = {"/bin/" + r.job};
        // Distinct start times, interleaved between jobs; a few before the window.
        double t = kNow - 3600.0 * (i * 5 + static_cast<int>(j)) - 7.0 * n - (i == runs - 1 ? 40 * 86400.0 : 0);
        r.started_at = rfc3339(t);
        double wall = 10 + 200 * u(rng);
        r.wall_s = wall;
        r.finished_at = rfc3339(t + wall);
        static constexpr RunStatus kMix[] = {RunStatus::ok,      RunStatus::ok,     RunStatus::failed,
                                             RunStatus::ok,      RunStatus::oom,    RunStatus::ok,
                                             RunStatus::skipped, RunStatus::ok,     RunStatus::timeout,
                                             RunStatus::ok,      RunStatus::killed, RunStatus::running};
        r.status = kMix[static_cast<size_t>(i + static_cast<int>(j)) % std::size(kMix)];
        r.exit_code = r.status == RunStatus::ok ? 0 : 1;
        r.limits.memory_max_bytes = (256ULL + 64 * j) << 20;
        r.limits.cpu_quota_pct = 100;
        r.limits.timeout_s = 600;
        if (r.status == RunStatus::skipped) {
          r.wall_s = 0;
          r.skip_reason = "lock held";
        } else {
          r.usage.cpu_user_s = wall * u(rng);
          r.usage.cpu_system_s = 0.5;
          if (i % 4 != 3) r.usage.memory_peak_bytes = static_cast<uint64_t>((50 + 100 * u(rng)) * (1 << 20));
          r.usage.max_rss_bytes = static_cast<uint64_t>((20 + 40 * u(rng)) * (1 << 20));
          r.usage.oom_kills = r.status == RunStatus::oom ? 1 : 0;
          r.usage.cpu_throttled_s = wall * 0.1 * u(rng);
          if (j % 2 == 0) r.counters["db.queries"] = std::floor(1000 * u(rng));
        }
        if (r.status == RunStatus::running) {
          r.finished_at.reset();
          r.wall_s.reset();
          r.exit_code.reset();
          // Every other one has a live runner; the rest are lost (another boot).
          r.runner_pid = i % 2 ? 4242 : 777;
          r.boot_id = i % 2 ? "this-boot" : "old-boot";
        }
        ASSERT_TRUE(store->record(r)) << n;
      }
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  HistoryStore open_ro() {
    auto store = HistoryStore::open(path_, HistoryStore::Mode::read_only);
    EXPECT_TRUE(store) << store.error().message();
    store->set_runner_probe(test_probe());
    return std::move(*store);
  }

  static std::vector<RunFigures> all(const HistoryStore& store, RunFilter f) {
    std::vector<RunFigures> out;
    auto r = store.scan(f, [&](const RunFigures& x) { out.push_back(x); });
    EXPECT_TRUE(r) << r.error().message();
    return out;
  }

  std::string dir_, path_;
};

TEST_F(StreamedHistory, ByJobScanGroupsJobsInNameOrderNewestFirst) {
  HistoryStore store = open_ro();
  RunFilter plain;
  plain.since_unix_s = kSince;
  RunFilter grouped = plain;
  grouped.by_job = true;
  auto a = all(store, plain), b = all(store, grouped);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 50u);
  // Grouped: job names never go back, and within a job start times never rise.
  for (size_t i = 1; i < b.size(); ++i) {
    ASSERT_LE(b[i - 1].job, b[i].job) << i;
    if (b[i - 1].job == b[i].job) {
      ASSERT_GE(b[i - 1].started_at_s, b[i].started_at_s) << i;
    }
  }
  // The plain scan is not grouped (the jobs' runs interleave in time), so the
  // order above is the flag's doing.
  size_t job_changes = 0;
  for (size_t i = 1; i < a.size(); ++i) job_changes += a[i - 1].job != a[i].job;
  EXPECT_GT(job_changes, 5u);
  // The same rows, with the same status (lost applied the same way).
  std::map<std::string, RunStatus> by_id;
  for (const auto& f : a) by_id[f.run_id] = f.status;
  std::map<RunStatus, int> statuses;
  for (const auto& f : b) {
    ASSERT_TRUE(by_id.count(f.run_id)) << f.run_id;
    EXPECT_EQ(by_id[f.run_id], f.status) << f.run_id;
    statuses[f.status]++;
  }
  EXPECT_GT(statuses[RunStatus::lost], 0);
  EXPECT_GT(statuses[RunStatus::running], 0);
}

TEST_F(StreamedHistory, SummaryEqualsTheWholeHistoryBuilder) {
  HistoryStore store = open_ro();
  auto last = store.last_success_by_job();
  ASSERT_TRUE(last);
  for (std::optional<std::string> job : {std::optional<std::string>(), std::optional<std::string>("Backup")}) {
    RunFilter f;
    f.since_unix_s = kSince;
    f.job = job;
    SummaryBuilder whole;
    for (const RunFigures& x : all(store, f)) whole.add(x);
    auto expected = whole.finish(*last);
    auto got = summarize(store, f, {});
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(got->size(), job ? 1u : 5u);
    EXPECT_EQ(summary_json(*got, kSince).dump(1), summary_json(expected, kSince).dump(1));
    EXPECT_EQ(summary_table(*got), summary_table(expected));
  }
}

TEST_F(StreamedHistory, SuggestPerJobEqualsTheWholeHistoryForm) {
  HistoryStore store = open_ro();
  RunFilter f;
  f.since_unix_s = kSince;
  std::map<std::string, std::vector<RunFigures>> per_job;
  for (const RunFigures& x : all(store, f)) per_job[x.job].push_back(x);
  f.by_job = true;
  std::vector<Suggestion> streamed;
  SuggestAcc acc;
  std::string current;
  ASSERT_TRUE(store.scan(f, [&](const RunFigures& x) {
    if (x.job != current && !acc.empty()) streamed.push_back(acc.finish(current, 1.3, 30, 4));
    current = x.job;
    acc.add(x);
  }));
  streamed.push_back(acc.finish(current, 1.3, 30, 4));
  ASSERT_EQ(streamed.size(), per_job.size());
  size_t i = 0, with_limits = 0;
  for (const auto& [job, runs] : per_job) {
    Suggestion whole = suggest_limits(job, runs, 1.3, 30, 4);
    EXPECT_EQ(suggestion_json(streamed[i]).dump(1), suggestion_json(whole).dump(1)) << job;
    EXPECT_EQ(suggestion_text(streamed[i]), suggestion_text(whole)) << job;
    with_limits += whole.enough_data;
    ++i;
  }
  EXPECT_GE(with_limits, 3u);  // the comparison covers real suggestions, not only "not enough"
}

TEST_F(StreamedHistory, PlanProfilesEqualTheWholeHistoryForm) {
  HistoryStore store = open_ro();
  RunFilter f;
  f.since_unix_s = kSince;
  f.finished_only = true;
  auto expected = plan::profiles_from(all(store, f));
  auto got = plan::load_profiles(store, kSince);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(got->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto &g = (*got)[i], &e = expected[i];
    EXPECT_EQ(g.job, e.job);
    EXPECT_EQ(g.runs, e.runs) << e.job;
    EXPECT_EQ(g.memory_peak_p95_bytes, e.memory_peak_p95_bytes) << e.job;
    EXPECT_EQ(g.memory_from_rss, e.memory_from_rss) << e.job;
    EXPECT_EQ(g.cpu_per_wall, e.cpu_per_wall) << e.job;
    EXPECT_EQ(g.wall_p50_s, e.wall_p50_s) << e.job;
    EXPECT_EQ(g.wall_p95_s, e.wall_p95_s) << e.job;
    EXPECT_EQ(g.memory_limit_bytes, e.memory_limit_bytes) << e.job;
  }
}

// The report's adapter as it was before it streamed: every run of the window in
// memory, grouped and sorted per job. The reference the streamed one must equal.
report::ReportInput whole_history_report(const HistoryStore& store, double since, double now) {
  using namespace report;
  ReportInput in;
  RunFilter filter;
  filter.since_unix_s = since;
  std::map<std::string, std::vector<RunFigures>> by_job;
  SummaryBuilder summary;
  EXPECT_TRUE(store.scan(filter, [&](const RunFigures& f) {
    summary.add(f);
    by_job[f.job].push_back(f);
  }));
  auto last_success = store.last_success_by_job();
  EXPECT_TRUE(last_success);
  auto executed = [](RunStatus s) {
    return s != RunStatus::skipped && s != RunStatus::running && s != RunStatus::lost;
  };
  std::vector<const RunFigures*> failed;
  const double window_days = std::max(0.1, (now - since) / 86400.0);
  for (const JobSummary& s : summary.finish(*last_success)) {
    auto& runs = by_job[s.job];
    std::sort(runs.begin(), runs.end(),
              [](const RunFigures& a, const RunFigures& b) { return a.started_at_s < b.started_at_s; });
    JobRow row;
    row.job = s.job;
    row.runs = s.runs;
    row.ok = s.ok;
    row.failures = s.failures;
    row.skipped = s.skipped;
    row.wall_p95_s = s.wall_s.p95;
    if (s.memory_peak_bytes.p95) row.memory_peak_p95_bytes = static_cast<uint64_t>(*s.memory_peak_bytes.p95);
    row.cpu_p95_s = s.cpu_s.p95;
    row.db_queries_p95 = s.db_queries.p95;
    if (!runs.empty()) {
      row.last_started_at = format_utc(runs.back().started_at_s);
      row.last_status = to_string(runs.back().status);
      row.last_run_id = runs.back().run_id;
    }
    for (const RunFigures& f : runs) {
      if (is_failure(f.status)) failed.push_back(&f);
      if (!executed(f.status)) continue;
      RunPoint p;
      p.run_id = f.run_id;
      p.started_at_s = f.started_at_s;
      p.status = to_string(f.status);
      p.wall_s = f.wall_s;
      p.memory_peak_bytes = f.memory_peak_bytes ? f.memory_peak_bytes : f.max_rss_bytes;
      p.db_queries = f.db_queries;
      p.memory_limit_bytes = f.memory_max_bytes;
      row.series.push_back(p);
    }
    if (row.series.size() > kMaxPointsPerJob)
      row.series.erase(row.series.begin(), row.series.end() - static_cast<std::ptrdiff_t>(kMaxPointsPerJob));
    Suggestion sg = suggest_limits(s.job, runs, 1.3, window_days);
    if (sg.enough_data) {
      row.suggested_memory_bytes = sg.memory_bytes;
      row.suggested_cpu_pct = sg.cpu_pct;
      row.suggested_timeout_s = sg.timeout_s;
      row.suggested_pids = sg.pids_max;
    }
    in.jobs.push_back(std::move(row));
  }
  std::sort(failed.begin(), failed.end(),
            [](const RunFigures* a, const RunFigures* b) { return a->started_at_s > b->started_at_s; });
  if (failed.size() > kMaxFailures) failed.resize(kMaxFailures);
  for (const RunFigures* f : failed) {
    Failure row{f->job, f->run_id, format_utc(f->started_at_s), to_string(f->status), f->exit_code,
                std::nullopt, std::nullopt};
    auto rec = store.find_run(f->run_id);
    if (rec && *rec) {
      row.signal = (*rec)->signal;
      row.log_path = (*rec)->log.path;
      if ((*rec)->exit_code) row.exit_code = (*rec)->exit_code;
    }
    in.failures.push_back(std::move(row));
  }
  return in;
}

TEST_F(StreamedHistory, ReportEqualsTheWholeHistoryReport) {
  HistoryStore store = open_ro();
  auto got = report::report_from_history(store, kSince, kNow, "30d");
  ASSERT_TRUE(got) << got.error().message();
  report::ReportInput expected = whole_history_report(store, kSince, kNow);
  expected.host = got->host;
  expected.generated_at = got->generated_at;
  expected.window = got->window;
  expected.history_path = got->history_path;
  ASSERT_EQ(got->jobs.size(), 5u);
  EXPECT_TRUE(got->notes.empty());  // no job has more runs than the charts draw
  ASSERT_GT(got->failures.size(), 5u);
  // The page lists jobs by state; compare them by name.
  auto by_name = [](std::vector<report::JobRow> v) {
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.job < b.job; });
    return v;
  };
  auto g = by_name(got->jobs), e = by_name(expected.jobs);
  ASSERT_EQ(g.size(), e.size());
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(g[i].job, e[i].job);
    EXPECT_EQ(g[i].runs, e[i].runs) << e[i].job;
    EXPECT_EQ(g[i].ok, e[i].ok) << e[i].job;
    EXPECT_EQ(g[i].failures, e[i].failures) << e[i].job;
    EXPECT_EQ(g[i].skipped, e[i].skipped) << e[i].job;
    EXPECT_EQ(g[i].wall_p95_s, e[i].wall_p95_s) << e[i].job;
    EXPECT_EQ(g[i].memory_peak_p95_bytes, e[i].memory_peak_p95_bytes) << e[i].job;
    EXPECT_EQ(g[i].cpu_p95_s, e[i].cpu_p95_s) << e[i].job;
    EXPECT_EQ(g[i].last_started_at, e[i].last_started_at) << e[i].job;
    EXPECT_EQ(g[i].last_status, e[i].last_status) << e[i].job;
    EXPECT_EQ(g[i].suggested_memory_bytes, e[i].suggested_memory_bytes) << e[i].job;
    EXPECT_EQ(g[i].suggested_cpu_pct, e[i].suggested_cpu_pct) << e[i].job;
    EXPECT_EQ(g[i].suggested_timeout_s, e[i].suggested_timeout_s) << e[i].job;
    EXPECT_EQ(g[i].suggested_pids, e[i].suggested_pids) << e[i].job;
    ASSERT_EQ(g[i].series.size(), e[i].series.size()) << e[i].job;
    for (size_t k = 0; k < g[i].series.size(); ++k) {
      EXPECT_EQ(g[i].series[k].run_id, e[i].series[k].run_id) << e[i].job;
      EXPECT_EQ(g[i].series[k].started_at_s, e[i].series[k].started_at_s) << e[i].job;
      EXPECT_EQ(g[i].series[k].wall_s, e[i].series[k].wall_s) << e[i].job;
      EXPECT_EQ(g[i].series[k].memory_peak_bytes, e[i].series[k].memory_peak_bytes) << e[i].job;
      EXPECT_EQ(g[i].series[k].memory_limit_bytes, e[i].series[k].memory_limit_bytes) << e[i].job;
    }
  }
  ASSERT_EQ(got->failures.size(), expected.failures.size());
  for (size_t i = 0; i < got->failures.size(); ++i) {
    EXPECT_EQ(got->failures[i].run_id, expected.failures[i].run_id);
    EXPECT_EQ(got->failures[i].exit_code, expected.failures[i].exit_code);
    EXPECT_EQ(got->failures[i].log_path, expected.failures[i].log_path);
  }
}

TEST_F(StreamedHistory, ReportChartsDrawTheNewestRunsAndSaySo) {
  // One more job with more runs than a chart draws: copies of one row, a minute apart.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  const size_t extra = report::kMaxPointsPerJob + 40;
  std::string sql = fmt::format(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) "
      "INSERT INTO runs (run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, "
      "memory_peak_bytes, max_rss_bytes, oom_kills, host, runner_pid, boot_id, record) "
      "SELECT 'many-' || i, 'many', 'ok', {} - 60 * i, {} - 60 * i + 5, 5, 0, 1, 1048576 * i, NULL, 0, 'h', 0, "
      "'', (SELECT record FROM runs WHERE status = 'ok' LIMIT 1) FROM n",
      extra, kNow, kNow);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  HistoryStore store = open_ro();
  auto got = report::report_from_history(store, kSince, kNow, "30d");
  ASSERT_TRUE(got) << got.error().message();
  auto many = std::find_if(got->jobs.begin(), got->jobs.end(), [](const auto& j) { return j.job == "many"; });
  ASSERT_NE(many, got->jobs.end());
  EXPECT_EQ(many->runs, extra);  // the table counts every run
  ASSERT_EQ(many->series.size(), report::kMaxPointsPerJob);
  // Oldest first, ending with the newest run (i = 1: 1 MiB), starting with the
  // 500th newest.
  EXPECT_EQ(many->series.back().started_at_s, kNow - 60);
  EXPECT_EQ(many->series.back().memory_peak_bytes, 1048576u);
  EXPECT_EQ(many->series.front().started_at_s, kNow - 60.0 * report::kMaxPointsPerJob);
  ASSERT_EQ(got->notes.size(), 1u);
  EXPECT_THAT(got->notes[0], HasSubstr("newest 500 finished runs (1 job(s) had more"));
  EXPECT_THAT(report::render_html(*got), HasSubstr("newest 500 finished runs"));
}

TEST_F(StreamedHistory, ReadSnapshotSeesOneHistoryWhileARunnerWrites) {
  HistoryStore reader = open_ro();
  auto writer = HistoryStore::open(path_, HistoryStore::Mode::read_write);
  ASSERT_TRUE(writer);
  auto before = reader.count({});
  ASSERT_TRUE(before);
  auto r = reader.read_snapshot([&]() -> Result<void> {
    auto first = reader.count({});
    EXPECT_EQ(*first, *before);
    RunRecord rec;
    rec.run_id = "0193f1c2-ffff-7000-8000-000000000000";
    rec.job = "late";
    rec.started_at = rfc3339(kNow);
    rec.status = RunStatus::ok;
    if (auto w = writer->record(rec); !w) return std::unexpected(w.error());
    auto second = reader.count({});
    EXPECT_EQ(*second, *before);  // the row landed, but not in this snapshot
    return {};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*reader.count({}), *before + 1);
}

// ---------- printing as read ----------

TEST(Streamed, TableInTwoPassesPrintsWhatRenderPrints) {
  std::vector<std::vector<std::string>> rows = {
      {"2026-11-23T02:10:00Z", "backup", "ok", "0", "1m", "12s", "64M", "id-1"},
      {"2026-11-23T02:11:00Z", "a-much-longer-job-name", "timeout", "-", "1h2m", "-", "rss 1G", "id-2"},
      {"2026-11-23T02:12:00Z", "esc\x1b[2J", "failed", "137"},  // short row, control bytes
  };
  Table whole({"STARTED", "JOB", "STATUS", "EXIT", "WALL", "CPU", "PEAK MEM", "RUN ID"},
              {false, false, false, true, true, true, true, false});
  Table streamed = whole;
  for (const auto& r : rows) whole.add(r);
  for (const auto& r : rows) streamed.measure(r);
  std::string text = streamed.header_line();
  for (const auto& r : rows) text += streamed.line(r);
  EXPECT_EQ(text, whole.render());
  EXPECT_THAT(text, HasSubstr("esc\\x1b[2J"));
}

std::string printed(const std::vector<nlohmann::json>& elements) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = ::open_memstream(&buf, &len);
  {
    JsonListPrinter list(out, "runs");
    for (const auto& e : elements) list.add(e);
    list.finish();
  }
  std::fclose(out);
  std::string text(buf, len);
  std::free(buf);
  return text;
}

TEST(Streamed, JsonListPrinterPrintsWhatTheWholeDocumentDumps) {
  nlohmann::json rec = {{"run_id", "r1"},
                        {"command", {"/bin/sh", "-c", "echo 'a\nb'"}},
                        {"usage", {{"cpu_s", 1.5}, {"pids_peak", nullptr}}},
                        {"counters", nlohmann::json::object()},
                        {"notes", nlohmann::json::array()},
                        {"job", "caf\xc3\xa9 \xff"}};
  for (size_t n : {0u, 1u, 3u}) {
    std::vector<nlohmann::json> elements(n, rec);
    nlohmann::json whole = {{"runs", elements}};
    EXPECT_EQ(printed(elements), json_text(whole, 2) + "\n") << n;
  }
}

TEST(Streamed, SpreadBySelectionEqualsSortedPercentiles) {
  std::mt19937_64 rng(7);
  for (size_t n : {1u, 2u, 5u, 19u, 20u, 21u, 100u, 1001u}) {
    std::vector<double> v;
    for (size_t i = 0; i < n; ++i) v.push_back(static_cast<double>(rng() % 50));  // many ties
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    Spread s = spread_of(v);
    EXPECT_EQ(s.p50, percentile_sorted(sorted, 50)) << n;
    EXPECT_EQ(s.p95, percentile_sorted(sorted, 95)) << n;
    EXPECT_EQ(s.p99, percentile_sorted(sorted, 99)) << n;
    EXPECT_EQ(s.max, sorted.back()) << n;
  }
}

}  // namespace
}  // namespace cronrun::prof
