// The HTML report as text: escaping of everything that comes from jobs, no
// network references, phone-friendly head, the empty-history message, the order
// of states, flags as cronrun takes them. That it draws and navigates in a
// browser is the e2e tier's job (tests/e2e/report_render_test.cc,
// tests/e2e/report_page_test.sh).
#include <gtest/gtest.h>

#include <regex>

#include "profiler/report_html.h"

namespace cronrun::report {
namespace {

ReportInput sample() {
  ReportInput in;
  in.host = "box<1>";
  in.generated_at = "2026-11-25T10:00:00Z";
  in.window = "30d";
  in.history_path = "/var/lib/cronrun/history.db";
  in.now_s = 1795600800;
  in.window_start_s = in.now_s - 30 * 86400.0;
  in.days_start_s = in.now_s - 36000 - 29 * 86400.0;
  JobRow j;
  j.job = "evil</script><script>alert(1)</script>";
  j.state = "failing";
  j.last_started_at = "2026-11-25T02:00:00.000Z";
  j.last_status = "failed";
  j.last_run_id = "0193f1c2-aaaa";
  j.runs = 2;
  j.ok = 1;
  j.failures = 1;
  j.suggested_memory_bytes = 1536ull << 20;
  j.suggested_cpu_pct = 150;
  j.suggested_timeout_s = 3000;
  j.suggested_pids = 56;
  RunPoint a, b;
  a.run_id = "0193f1c2-9999";
  a.started_at_s = in.now_s - 86400 - 28800;
  a.status = "ok";
  a.wall_s = 12.5;
  a.memory_peak_bytes = 100ull << 20;
  a.db_queries = 10;
  a.memory_limit_bytes = 512ull << 20;
  b = a;
  b.run_id = "0193f1c2-aaaa";
  b.started_at_s = in.now_s - 28800;
  b.status = "failed";
  b.db_queries.reset();
  j.series = {a, b};
  j.recent = {b, a};
  j.days.assign(30, DayCounts{});
  j.days[28].ok = 1;
  j.days[29].bad = 1;
  in.jobs.push_back(j);
  in.failures.push_back({j.job, "0193f1c2-aaaa", "2026-11-25T02:00:00.000Z", "failed", 3, std::nullopt,
                         "/var/log/cronrun/x/<run>.log"});
  in.runs.push_back({"0193f1c2-aaaa", j.job, "2026-11-25T02:00:00.000Z", "failed",
                     "  command    sh -c '<img src=x onerror=alert(2)>'\n",
                     "tail </pre><script>alert(3)</script>\n", "/var/log/cronrun/x/<run>.log: whole log, 40 B"});
  return in;
}

TEST(ReportHtml, EscapesEverythingFromJobs) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  std::string h = render_html(sample());
  EXPECT_EQ(h.find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(h.find("evil&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("box&lt;1&gt;"), std::string::npos);
  EXPECT_NE(h.find("/var/log/cronrun/x/&lt;run&gt;.log"), std::string::npos);
  // The run's profile and log tail are text inside their <pre>.
  EXPECT_EQ(h.find("<img"), std::string::npos);
  EXPECT_NE(h.find("&lt;img src=x onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_NE(h.find("tail &lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;"), std::string::npos);
  // Exactly the scripts we put there: the error guard, the data block, Chart.js,
  // the drawing code.
  size_t scripts = 0;
  for (size_t pos = 0; (pos = h.find("<script", pos)) != std::string::npos; ++pos) ++scripts;
  EXPECT_EQ(scripts, 4u);
  size_t closes = 0;
  for (size_t pos = 0; (pos = h.find("</script", pos)) != std::string::npos; ++pos) ++closes;
  EXPECT_EQ(closes, 4u);
}

// A job name that is not UTF-8 (the history holds what the job's owner chose)
// used to throw nlohmann's type_error 316 out of the chart data and abort.
TEST(ReportHtml, JobNamesThatAreNotUtf8OrHoldControls) {
  ReportInput in = sample();
  in.jobs[0].job = "bad\xff\x1b[2J\xe2\x80\xa8name";
  in.failures[0].job = in.jobs[0].job;
  in.jobs[0].series[0].status = "o\xffk";  // in the chart data
  in.jobs[0].series[0].run_id = "id\xff\"<x>";  // in anchors
  in.jobs[0].recent[1].run_id = in.jobs[0].series[0].run_id;
  in.runs[0].run_id = in.jobs[0].series[0].run_id;
  std::string h;
  ASSERT_NO_THROW(h = render_html(in));
  EXPECT_EQ(h.find('\x1b'), std::string::npos);
  EXPECT_EQ(h.find('\xff'), std::string::npos);
  EXPECT_NE(h.find("bad\\xff\\x1b[2J"), std::string::npos);  // in the tables
  EXPECT_NE(h.find("\"o\\ufffdk\""), std::string::npos);     // in the chart data
  EXPECT_NE(h.find("id=\"run-id_FF_22_3Cx_3E\""), std::string::npos);  // the anchor
  EXPECT_NE(h.find("href=\"#run-id_FF_22_3Cx_3E\""), std::string::npos);
}

TEST(ReportHtml, SelfContainedAndPhoneFriendly) {
  std::string h = render_html(sample());
  EXPECT_NE(h.find("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"), std::string::npos);
  EXPECT_NE(h.find("@media (max-width: 700px)"), std::string::npos);
  // Nothing is fetched when the file is opened: no src at all, links only within the page.
  EXPECT_FALSE(std::regex_search(h, std::regex(R"(<[a-z]+[^<>]*\ssrc\s*=)")));
  EXPECT_FALSE(std::regex_search(h, std::regex(R"(href\s*=\s*"[^#])")));
  EXPECT_EQ(h.find("@import"), std::string::npos);
  if (charts_available()) {
    EXPECT_NE(h.find("Chart.js v"), std::string::npos);
  }
  EXPECT_NE(h.find("id=\"c0-mem\""), std::string::npos);
  EXPECT_NE(h.find("id=\"c0-wall\""), std::string::npos);
  EXPECT_NE(h.find("id=\"c0-db\""), std::string::npos);
  EXPECT_NE(h.find("\"lim\":536870912"), std::string::npos);
}

TEST(ReportHtml, TablesCarryTheFigures) {
  std::string h = render_html(sample());
  EXPECT_NE(h.find("Recent failures"), std::string::npos);
  EXPECT_NE(h.find("<span class=\"st st-bad\">failed</span>"), std::string::npos);
  EXPECT_NE(h.find("href=\"#run-0193f1c2-aaaa\""), std::string::npos);
  EXPECT_NE(h.find("id=\"run-0193f1c2-aaaa\""), std::string::npos);
}

TEST(ReportHtml, MemoryIsThePeakElseTheRssMarked) {
  ReportInput in = sample();
  in.jobs[0].memory_peak_p95_bytes = 300ull << 20;
  std::string h = render_html(in);
  EXPECT_NE(h.find("p95 peak 300 MiB"), std::string::npos);
  // An ordinary user's job without delegation: no cgroup peak, its RSS marked.
  in.jobs[0].memory_peak_p95_bytes.reset();
  in.jobs[0].max_rss_p95_bytes = 40ull << 20;
  h = render_html(in);
  EXPECT_NE(h.find("p95 peak rss 40.0 MiB"), std::string::npos) << h.substr(h.find("p95 peak"), 40);
  EXPECT_NE(h.find("<td class=\"num opt\">rss 40.0 MiB</td>"), std::string::npos);
}

// Suggested limits as cronrun takes them: what a reader copies is the flags,
// separated by plain spaces (no unit words such as "MiB", no non-breaking space).
TEST(ReportHtml, SuggestedLimitsAreCronrunFlags) {
  std::string h = render_html(sample());
  EXPECT_NE(h.find("<span class=\"flag\">--memory 1536M</span> <span class=\"flag\">--cpu 150%</span> "
                   "<span class=\"flag\">--timeout 50m</span> <span class=\"flag\">--pids 56</span>"),
            std::string::npos);
  EXPECT_EQ(h.find("MiB</span>"), std::string::npos);
}

// States in the order an on-call engineer reads them; an ok run with OOM kills
// inside and a skip are told apart from a good run.
TEST(ReportHtml, StatesAndBadRuns) {
  std::vector<JobRow> jobs(6);
  const char* states[] = {"up", "never_run", "missed", "running", "failing", "late"};
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].job = std::string("j") + states[i];
    jobs[i].state = states[i];
  }
  jobs.push_back(jobs[4]);
  jobs.back().job = "a-failing";
  sort_jobs(jobs);
  std::vector<std::string> order;
  for (const auto& j : jobs) order.push_back(j.job);
  EXPECT_EQ(order, (std::vector<std::string>{"a-failing", "jfailing", "jmissed", "jlate", "jrunning", "jup",
                                              "jnever_run"}));
  EXPECT_TRUE(bad_run("oom", std::nullopt));
  EXPECT_TRUE(bad_run("timeout", 0));
  EXPECT_TRUE(bad_run("ok", 2));
  EXPECT_FALSE(bad_run("ok", 0));
  EXPECT_FALSE(bad_run("skipped", std::nullopt));
  EXPECT_FALSE(bad_run("running", std::nullopt));
}

TEST(ReportHtml, EmptyHistorySaysSo) {
  ReportInput in;
  in.host = "box";
  in.window = "30d";
  in.history_path = "/tmp/none.db";
  std::string h = render_html(in);
  EXPECT_NE(h.find("id=\"no-history\""), std::string::npos);
  EXPECT_NE(h.find("No runs recorded in the last 30d"), std::string::npos);
  EXPECT_EQ(h.find("<canvas"), std::string::npos);
  EXPECT_EQ(h.find("Chart.js v"), std::string::npos);  // nothing to draw, nothing inlined
  EXPECT_NE(h.find("No failed runs"), std::string::npos);
}

TEST(ReportHtml, HeatMapCells) {
  ReportInput in = sample();
  HeatMap hm;
  hm.week = "2026-11-30";
  hm.host_memory_bytes = 1ull << 30;
  hm.memory_bytes[0][2] = 2ull << 30;  // Mon 02:00, over the host
  hm.memory_bytes[3][14] = 1ull << 29;
  hm.peak = "2.0 GiB at Mon 02:00 (a<b)";
  in.heatmap = hm;
  std::string h = render_html(in);
  EXPECT_NE(h.find("week of 2026-11-30"), std::string::npos);
  EXPECT_NE(h.find("(a&lt;b)"), std::string::npos);
  EXPECT_NE(h.find("class=\"over\""), std::string::npos);
  EXPECT_NE(h.find("title=\"Mon 02:00-02:59: 2.00 GiB\""), std::string::npos) << h.substr(h.find("Mon 02:00-02:59"), 40);
  const std::regex cell(R"(title="(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:00-)");
  EXPECT_EQ(std::distance(std::sregex_iterator(h.begin(), h.end(), cell), std::sregex_iterator()), 7 * 24);
  // Percent of the host's memory: 200 over the host, 50 at half of it.
  EXPECT_NE(h.find("2.00 GiB\">200</td>"), std::string::npos);
  EXPECT_NE(h.find("512 MiB\">50</td>"), std::string::npos);
}

}  // namespace
}  // namespace cronrun::report
