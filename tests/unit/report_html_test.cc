// The HTML report as text: escaping of everything that comes from jobs, no
// network references, phone-friendly head, the empty-history message. That it
// draws in a browser is the e2e tier's job (tests/e2e/report_render_test.cc).
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
  JobRow j;
  j.job = "evil</script><script>alert(1)</script>";
  j.last_started_at = "2026-11-25T02:00:00.000Z";
  j.last_status = "failed";
  j.runs = 2;
  j.failures = 1;
  j.memory_limit_bytes = 512ull << 20;
  j.series = {{"2026-11-24T02:00:00.000Z", "ok", 12.5, 100ull << 20, 10},
              {"2026-11-25T02:00:00.000Z", "failed", 14.0, 120ull << 20, std::nullopt}};
  in.jobs.push_back(j);
  in.failures.push_back({j.job, "0193f1c2-aaaa", "2026-11-25T02:00:00.000Z", "failed", 3, std::nullopt,
                         "/var/log/cronrun/x/<run>.log"});
  return in;
}

TEST(ReportHtml, EscapesEverythingFromJobs) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  std::string h = render_html(sample());
  EXPECT_EQ(h.find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(h.find("evil&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("box&lt;1&gt;"), std::string::npos);
  EXPECT_NE(h.find("/var/log/cronrun/x/&lt;run&gt;.log"), std::string::npos);
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
  in.jobs[0].series[0].started_at = "2026-1\xff-24T02:00:00Z";  // the chart data's axis label
  std::string h;
  ASSERT_NO_THROW(h = render_html(in));
  EXPECT_EQ(h.find('\x1b'), std::string::npos);
  EXPECT_EQ(h.find('\xff'), std::string::npos);
  EXPECT_NE(h.find("bad\\xff\\x1b[2J"), std::string::npos);    // in the tables
  EXPECT_NE(h.find("\"1\\ufffd-24 02:00\""), std::string::npos);  // in the chart data
}

TEST(ReportHtml, SelfContainedAndPhoneFriendly) {
  std::string h = render_html(sample());
  EXPECT_NE(h.find("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"), std::string::npos);
  EXPECT_NE(h.find("@media (max-width: 600px)"), std::string::npos);
  // Nothing is fetched when the file is opened.
  EXPECT_FALSE(std::regex_search(h, std::regex(R"((src|href)\s*=)")));
  EXPECT_EQ(h.find("@import"), std::string::npos);
  if (charts_available()) {
    EXPECT_NE(h.find("Chart.js v"), std::string::npos);
  }
  EXPECT_NE(h.find("id=\"job0-mem\""), std::string::npos);
  EXPECT_NE(h.find("id=\"job0-wall\""), std::string::npos);
  EXPECT_NE(h.find("id=\"job0-db\""), std::string::npos);
  EXPECT_NE(h.find("\"limit\":536870912"), std::string::npos);
}

TEST(ReportHtml, TablesCarryTheFigures) {
  std::string h = render_html(sample());
  EXPECT_NE(h.find("Recent failures"), std::string::npos);
  EXPECT_NE(h.find("<td class=\"status-bad\">failed</td>"), std::string::npos);
  EXPECT_NE(h.find("0193f1c2-aaaa"), std::string::npos);
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
  size_t cells = 0;
  for (size_t pos = 0; (pos = h.find("title=\"", pos)) != std::string::npos; ++pos) ++cells;
  EXPECT_EQ(cells, 7u * 24);
}

}  // namespace
}  // namespace cronrun::report
