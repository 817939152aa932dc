// The HTML report opened in a real browser (headless Chromium): no script errors
// or console errors, every chart drawn with data points, the empty history
// readable; screenshots (desktop and phone width) are kept in the build directory
// as artifacts. Skips when Chromium is not installed (scripts/install-deps.sh all).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "profiler/report_html.h"

namespace cronrun::report {
namespace {

namespace fs = std::filesystem;

const fs::path kArtifacts = fs::path(CRONRUN_E2E_ARTIFACTS);

std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct BrowserRun {
  int status = -1;
  std::string out;  // stdout (the DOM for --dump-dom)
  std::string err;  // stderr (Chromium's log, console messages included)
};

// One headless Chromium run with a throwaway profile; extra flags pick the action.
BrowserRun run_chromium(const std::string& extra, const fs::path& page, const std::string& tag) {
  char profile[] = "/tmp/cronrun-chromium-XXXXXX";
  EXPECT_NE(::mkdtemp(profile), nullptr);
  const fs::path out = kArtifacts / (tag + ".stdout"), err = kArtifacts / (tag + ".stderr");
  std::string cmd = "timeout 120 " + chromium() +
                    " --headless --no-sandbox --disable-gpu --disable-background-networking"
                    " --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage"
                    " --enable-logging=stderr --v=0 --virtual-time-budget=5000 --user-data-dir=" +
                    profile + " " + extra + " 'file://" + page.string() + "' >" + out.string() + " 2>" + err.string();
  BrowserRun r;
  int rc = std::system(cmd.c_str());
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = read_all(out);
  r.err = read_all(err);
  fs::remove_all(profile);
  return r;
}

// data-* attributes the report's self-check writes on <html>.
std::string attr(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex("<html[^>]*\\s" + name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

// Chromium logs every console message and uncaught exception as "INFO:CONSOLE..."
// on stderr, without its level. The report logs nothing, so any such line fails.
std::vector<std::string> console_messages(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.find(":CONSOLE") != std::string::npos) out.push_back(line);
  return out;
}

constexpr double kNow = 1795600800;  // 2026-11-25T10:00:00Z

JobRow sample_job(const std::string& name, int j) {
  JobRow row;
  row.job = name;
  row.state = j == 0 ? "failing" : "up";
  row.runs = 30;
  row.ok = 28;
  row.failures = 2;
  row.last_status = "ok";
  row.last_started_at = "2026-11-25T02:00:00Z";
  row.suggested_memory_bytes = 1536ull << 20;
  row.suggested_cpu_pct = 150;
  row.suggested_timeout_s = 3000;
  for (int d = 0; d < 30; ++d) {
    RunPoint p;
    p.run_id = "0193f1c2-" + std::to_string(j) + "-" + std::to_string(d);
    p.started_at_s = kNow - (30 - d) * 86400.0;
    p.status = d % 13 == 5 ? "failed" : "ok";
    p.wall_s = 600 + 17.0 * (d % 7);
    p.memory_peak_bytes = (1ull << 30) + (static_cast<uint64_t>(d % 5) << 26);
    p.memory_limit_bytes = 2ull << 30;
    p.timeout_s = 3600;
    if (j == 0) p.db_queries = 18000 + 100 * d;
    row.series.push_back(p);
    DayCounts c;
    (p.status == "ok" ? c.ok : c.bad) = 1;
    row.days.push_back(c);
  }
  row.recent.assign(row.series.rbegin(), row.series.rbegin() + 6);
  row.last_run_id = row.recent.front().run_id;
  return row;
}

ReportInput sample() {
  ReportInput in;
  in.host = "e2e-box";
  in.generated_at = "2026-11-25T10:00:00Z";
  in.window = "30d";
  in.history_path = "/var/lib/cronrun/history.db";
  in.now_s = kNow;
  in.window_start_s = kNow - 30 * 86400.0;
  in.days_start_s = kNow - 10 * 3600.0 - 29 * 86400.0;
  for (int j = 0; j < 2; ++j) in.jobs.push_back(sample_job(j == 0 ? "nightly-report" : "sync <\"&'> job", j));
  in.failures.push_back({"nightly-report", "0193f1c2-0-18", "2026-11-19T02:10:00Z", "failed", 3, std::nullopt,
                         "/var/log/cronrun/nightly-report/0193f1c2-0000.log"});
  RunDetail d;
  d.run_id = "0193f1c2-0-18";
  d.job = "nightly-report";
  d.started_at = "2026-11-19T02:10:00Z";
  d.status = "failed";
  d.profile = "run 0193f1c2-0-18\n  status     failed, exit 3\n";
  d.log_tail = "line one\n<script>window.cronrunPwned = 1</script>\n";
  d.log_note = "/var/log/cronrun/nightly-report/0193f1c2-0000.log: whole log, 60 B";
  in.runs.push_back(d);
  HeatMap hm;
  hm.week = "2026-11-30";
  hm.host_memory_bytes = 4ull << 30;
  hm.memory_bytes[0][2] = 3ull << 30;
  hm.memory_bytes[3][14] = 1ull << 30;
  hm.peak = "3.00 GiB at Mon 02:00 (nightly-report, sync)";
  in.heatmap = hm;
  return in;
}

std::string fmt_job(int j) { return "job-" + std::to_string(j); }

class ReportInBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (chromium().empty()) {
      if (std::getenv("CI")) FAIL() << "chromium missing in CI (scripts/install-deps.sh all)";
      GTEST_SKIP() << "chromium not installed (scripts/install-deps.sh all)";
    }
    fs::create_directories(kArtifacts);
  }
  fs::path write(const std::string& name, const ReportInput& in) {
    fs::path p = kArtifacts / name;
    std::ofstream(p, std::ios::binary) << render_html(in);
    return p;
  }
};

TEST_F(ReportInBrowser, ChartsDrawnWithoutErrors) {
  if (!charts_available()) {
    if (std::getenv("CI")) FAIL() << "built without Chart.js in CI (libjs-chart.js)";
    GTEST_SKIP() << "built without Chart.js (libjs-chart.js)";
  }
  fs::path page = write("report.html", sample());
  // #expand-all opens every job's section; charts are drawn as sections open.
  BrowserRun r = run_chromium("--dump-dom", page.string() + "#expand-all", "report-dom");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(attr(r.out, "data-ready"), "1") << r.out.substr(0, 2000);
  EXPECT_EQ(attr(r.out, "data-errors"), "0");
  // 2 jobs: memory + wall each, DB queries for the first only.
  EXPECT_EQ(attr(r.out, "data-charts-expected"), "5");
  EXPECT_EQ(attr(r.out, "data-charts-drawn"), "5");
  EXPECT_EQ(attr(r.out, "data-points"), std::to_string(5 * 30));
  for (const char* id : {"c0-mem", "c0-wall", "c0-db", "c1-mem", "c1-wall"}) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex(std::string("<canvas id=\"") + id + "\"[^>]*data-points=\"(\\d+)\"")))
        << id;
    EXPECT_EQ(m[1], "30") << id;
  }
  EXPECT_TRUE(console_messages(r.err).empty()) << console_messages(r.err).front();
  // The job name with HTML metacharacters arrives as text, not markup; so does a log tail.
  EXPECT_NE(r.out.find("sync &lt;\"&amp;'&gt; job"), std::string::npos);
  EXPECT_NE(r.out.find("&lt;script&gt;window.cronrunPwned = 1&lt;/script&gt;"), std::string::npos);
  // Every in-page link has its anchor (the last-run link only where the run has a section).
  const std::regex href("href=\"#([^\"]+)\"");
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), href); it != std::sregex_iterator(); ++it) {
    std::string id = (*it)[1];
    if (id != "expand-all") {
      EXPECT_NE(r.out.find("id=\"" + id + "\""), std::string::npos) << id;
    }
  }
}

// The checks above can fail: a page that logs an error is caught by both the
// self-check and the console scan.
TEST_F(ReportInBrowser, SelfCheckCatchesErrors) {
  std::string html = render_html(sample());
  html.insert(html.rfind("</body>"), "<script>console.error('planted'); null.boom();</script>\n");
  fs::path page = kArtifacts / "report-broken.html";
  std::ofstream(page, std::ios::binary) << html;
  BrowserRun r = run_chromium("--dump-dom", page, "report-broken-dom");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(attr(r.out, "data-errors"), "2");
  EXPECT_EQ(console_messages(r.err).size(), 2u);
}

TEST_F(ReportInBrowser, ScreenshotsDesktopAndPhone) {
  fs::path page = write("report.html", sample());
  for (auto [tag, size] : {std::pair{"report-desktop", "1280,2200"}, std::pair{"report-phone", "390,2400"}}) {
    fs::path png = kArtifacts / (std::string(tag) + ".png");
    fs::remove(png);
    BrowserRun r = run_chromium("--hide-scrollbars --window-size=" + std::string(size) + " --screenshot=" + png.string(),
                                page, tag);
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(fs::exists(png)) << r.err;
    EXPECT_GT(fs::file_size(png), 10'000u) << png;  // a blank page compresses to almost nothing
    EXPECT_TRUE(console_messages(r.err).empty()) << console_messages(r.err).front();
  }
}

// A page with `probe` (a script run after load) inserted before </body>; the probe
// writes what it measured into <html data-probe="...">.
fs::path write_probed(const std::string& name, const ReportInput& in, const std::string& probe) {
  std::string html = render_html(in);
  html.insert(html.rfind("</body>"), "<script>window.addEventListener('load', function () {" + probe + "});</script>\n");
  fs::path p = kArtifacts / name;
  std::ofstream(p, std::ios::binary) << html;
  return p;
}

// Thirty jobs used to be thirty chart cards, an 8000 px page. The page an on-call
// engineer opens now states every job in one table at the top, troubled jobs
// first, and keeps the rest collapsed.
TEST_F(ReportInBrowser, ThirtyJobsFitOneScreenOfStates) {
  ReportInput in = sample();
  in.jobs.clear();
  for (int j = 0; j < 30; ++j) {
    JobRow row = sample_job(fmt_job(j), 1);
    row.state = j == 17 ? "failing" : "up";
    in.jobs.push_back(row);
  }
  sort_jobs(in.jobs);
  fs::path page = write_probed("report-30.html", in, R"js(
    var first = document.querySelector('table');
    var rows = first ? first.querySelectorAll('tbody tr') : [];
    document.documentElement.dataset.probe = [document.documentElement.scrollHeight, rows.length,
      rows.length ? rows[0].innerText.indexOf('job-17') >= 0 : false,
      first ? first.getBoundingClientRect().bottom : -1].join(' ');
  )js");
  BrowserRun r = run_chromium("--window-size=1400,900 --dump-dom", page, "report-30-dom");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream probe(attr(r.out, "data-probe"));
  double height = 0, table_bottom = 0;
  size_t rows = 0;
  std::string failing_first;
  probe >> height >> rows >> failing_first >> table_bottom;
  EXPECT_EQ(rows, 30u) << "every job's state in the first table";
  EXPECT_EQ(failing_first, "true") << "the failing job is listed first";
  EXPECT_LT(table_bottom, 3000) << "the state table is near the top";
  EXPECT_LT(height, 6000) << "the page with 30 jobs collapsed";
  EXPECT_EQ(attr(r.out, "data-errors"), "0");
}

// Every hour of a week touched by a frequent job used to read 100 (percent of the
// week's highest hour). Cells now read the share of the host's memory.
TEST_F(ReportInBrowser, HeatMapCellsReadShareOfHostMemory) {
  ReportInput in = sample();
  for (auto& day : in.heatmap->memory_bytes) day.fill(1ull << 30);  // 1 GiB every hour
  in.heatmap->memory_bytes[2][3] = 2ull << 30;
  in.heatmap->host_memory_bytes = 10ull << 30;
  fs::path page = write_probed("report-heat.html", in, R"js(
    var cells = document.querySelectorAll('table.heat td');
    var texts = {};
    cells.forEach(function (c) { texts[c.innerText.trim()] = (texts[c.innerText.trim()] || 0) + 1; });
    document.documentElement.dataset.probe = JSON.stringify(texts).replace(/"/g, "'");
  )js");
  BrowserRun r = run_chromium("--dump-dom", page, "report-heat-dom");
  ASSERT_EQ(r.status, 0) << r.err;
  // 1 GiB of 10 GiB is 10 percent, 2 GiB is 20: 167 cells and 1.
  EXPECT_EQ(attr(r.out, "data-probe"), "{'10':167,'20':1}");
}

TEST_F(ReportInBrowser, EmptyHistorySaysSo) {
  ReportInput in;
  in.host = "e2e-box";
  in.generated_at = "2026-11-25T10:00:00Z";
  in.window = "30d";
  in.history_path = "/tmp/none.db";
  fs::path page = write("report-empty.html", in);
  BrowserRun r = run_chromium("--dump-dom", page, "report-empty-dom");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(attr(r.out, "data-ready"), "1");
  EXPECT_EQ(attr(r.out, "data-errors"), "0");
  EXPECT_EQ(attr(r.out, "data-charts-expected"), "0");
  EXPECT_NE(r.out.find("No runs recorded in the last 30d"), std::string::npos);
  EXPECT_TRUE(console_messages(r.err).empty()) << console_messages(r.err).front();
  fs::path png = kArtifacts / "report-empty.png";
  r = run_chromium("--window-size=390,900 --screenshot=" + png.string(), page, "report-empty-shot");
  EXPECT_TRUE(fs::exists(png));
}

}  // namespace
}  // namespace cronrun::report
