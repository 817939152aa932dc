// Renders the HTML report. What it guards against:
//  - injection: job names, commands, paths and messages come from crontabs and
//    jobs; every one is escaped in HTML text and attributes, and the chart data is
//    JSON inside <script type="application/json"> with '<', '>' and '&' written
//    as \u003c.. so no value can close the element;
//  - the network: Chart.js is inlined (build time, see profiler/CMakeLists.txt; the
//    installed file at run time as a fallback), no fonts, no CDN, no images;
//  - phones: viewport meta, tables scroll sideways inside their own box, charts
//    follow their container's width;
//  - silent breakage: a small self-check at the end of the page records script
//    errors and how many charts were drawn with how many points in data-*
//    attributes of <html>, which the headless-browser test reads.
// Tables and the heat-map are plain HTML, so the report is still useful without
// JavaScript.
#include "profiler/report_html.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/units.h"
#include "profiler/chartjs_inline.h"
#include "profiler/text_escape.h"

namespace cronrun::report {

namespace {

using nlohmann::json;

constexpr const char* kStyle = R"css(
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#fff; --card:#f6f7f9; --bad:#b3261e; --ok:#1e7b34; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 0 0 .5rem; word-break: break-all; }
.meta, .note { color: var(--muted); font-size: .9rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { white-space: normal; word-break: break-all; min-width: 16rem; }
.status-ok { color: var(--ok); }
.status-bad { color: var(--bad); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .75rem; min-width: 0; }
.chart { position: relative; width: 100%; height: 180px; margin-bottom: .5rem; }
table.heat { width: auto; }
.heat td { width: 2.2rem; min-width: 1.7rem; height: 1.6rem; padding: 0; text-align: center; font-size: .7rem; border: 1px solid #fff; }
.heat th { font-weight: normal; color: var(--muted); font-size: .75rem; padding: 0 .25rem; }
.heat td.over { outline: 2px solid var(--bad); outline-offset: -2px; }
.empty { padding: 1rem; background: var(--card); border: 1px dashed var(--line); border-radius: 6px; }
#charts-unavailable { display: none; color: var(--bad); }
@media (max-width: 600px) {
  body { padding: .5rem; font-size: 14px; }
  .cards { grid-template-columns: 1fr; }
  .chart { height: 160px; }
}
)css";

// Draws the charts from the JSON block and records what it drew. Runs after
// Chart.js; every failure lands in data-errors instead of vanishing.
constexpr const char* kScript = R"js(
(function () {
  var root = document.documentElement, errors = window.cronrunErrors || [];
  var data = JSON.parse(document.getElementById('cronrun-data').textContent);
  var expected = 0, drawn = 0, points = 0;
  function mib(b) { return b == null ? null : b / 1048576; }
  function line(id, label, values, unit, limit) {
    expected++;
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === 'undefined') return;
    var datasets = [{ label: label, data: values, borderColor: '#2f6fdf', backgroundColor: '#2f6fdf',
                      pointRadius: 2, borderWidth: 1.5, spanGaps: true }];
    if (limit != null) {
      datasets.push({ label: 'limit', data: values.map(function () { return limit; }), borderColor: '#b3261e',
                      borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 });
    }
    var chart = new Chart(canvas, {
      type: 'line',
      data: { labels: data.labels[id], datasets: datasets },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 plugins: { legend: { display: limit != null } },
                 scales: { x: { ticks: { maxTicksLimit: 4, maxRotation: 0, autoSkipPadding: 16 } },
                           y: { beginAtZero: true, title: { display: true, text: unit } } } }
    });
    var meta = chart.getDatasetMeta(0), n = 0;
    meta.data.forEach(function (p) { if (isFinite(p.x) && isFinite(p.y)) n++; });
    canvas.dataset.points = n;
    if (n > 0) drawn++;
    points += n;
  }
  if (typeof Chart === 'undefined') {
    var u = document.getElementById('charts-unavailable');
    if (u) u.style.display = 'block';
  }
  data.jobs.forEach(function (j) {
    if (j.mem) line(j.id + '-mem', 'peak memory', j.mem.map(mib), 'MiB', mib(j.limit));
    if (j.wall) line(j.id + '-wall', 'wall time', j.wall, 'seconds', null);
    if (j.db) line(j.id + '-db', 'DB queries', j.db, 'queries', null);
  });
  root.dataset.chartsExpected = expected;
  root.dataset.chartsDrawn = drawn;
  root.dataset.points = points;
  root.dataset.errors = errors.length;
  root.dataset.ready = '1';
})();
)js";

// First thing in <head>: from here on, uncaught errors and console.error calls are
// counted, including any raised while Chart.js loads.
constexpr const char* kGuard = R"js(
window.cronrunErrors = [];
window.addEventListener('error', function (e) {
  window.cronrunErrors.push(String(e.message));
  document.documentElement.dataset.errors = window.cronrunErrors.length;
});
(function () {
  var original = console.error;
  console.error = function () {
    window.cronrunErrors.push(Array.prototype.join.call(arguments, ' '));
    document.documentElement.dataset.errors = window.cronrunErrors.length;
    return original.apply(console, arguments);
  };
})();
)js";

// Job content: controls and bytes that are not UTF-8 spelled out as in the
// terminal (text_escape.h), then HTML-escaped for text and attribute contexts.
std::string esc(std::string_view s) { return html_escape(prof::term_text(s)); }

std::string opt_size(const std::optional<uint64_t>& b) { return b ? units::format_size(*b) : "-"; }
std::string opt_dur(const std::optional<double>& s) { return s ? units::format_duration_s(*s) : "-"; }
std::string opt_num(const std::optional<double>& v) { return v ? fmt::format("{:.0f}", *v) : "-"; }

bool bad_status(std::string_view s) { return s != "ok" && s != "skipped" && s != "running" && !s.empty(); }

// JSON that may sit inside <script>: no '<', '>' or '&' survive as such.
std::string script_json(const json& j) {
  // ensure_ascii also turns U+2028/U+2029 (line ends to older JavaScript) into escapes.
  std::string raw = prof::json_text(j);
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

// The inlined Chart.js, or the installed copy when this build had none.
std::string chart_js() {
  std::string js = kChartJs;
  if (js.empty()) {
    std::ifstream in(kChartJsPath, std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      js = ss.str();
    }
  }
  // A literal "</script" would end the element early; split it.
  for (size_t pos = 0; (pos = js.find("</script", pos)) != std::string::npos; pos += 2) js.replace(pos, 2, "<\\/");
  return js;
}

std::string job_id(size_t i) { return fmt::format("job{}", i); }

void jobs_table(std::string& h, const ReportInput& in) {
  h += "<h2 id=\"jobs\">Jobs</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>Job</th><th>Last run</th>"
       "<th>Status</th><th class=\"num\">Runs</th><th class=\"num\">Failures</th><th class=\"num\">p95 wall</th>"
       "<th class=\"num\">p95 peak</th><th class=\"num\">p95 CPU</th><th class=\"num\">p95 DB queries</th>"
       "<th>Suggested limits</th></tr></thead>\n<tbody>\n";
  for (const auto& j : in.jobs) {
    std::string limits;
    if (j.suggested_memory_bytes) limits += fmt::format("--memory {}", units::format_size(*j.suggested_memory_bytes));
    if (j.suggested_cpu_pct) limits += fmt::format("{}--cpu {:.0f}%", limits.empty() ? "" : " ", *j.suggested_cpu_pct);
    if (j.suggested_timeout_s)
      limits += fmt::format("{}--timeout {}", limits.empty() ? "" : " ", units::format_duration_s(*j.suggested_timeout_s));
    if (limits.empty()) limits.push_back('-');
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td>{}</td></tr>\n",
        esc(j.job), esc(j.last_started_at.value_or("-")), bad_status(j.last_status) ? "status-bad" : "status-ok",
        esc(j.last_status.empty() ? "-" : j.last_status), j.runs, j.failures, opt_dur(j.wall_p95_s),
        opt_size(j.memory_peak_p95_bytes), opt_dur(j.cpu_p95_s), opt_num(j.db_queries_p95), esc(limits));
  }
  h += "</tbody></table></div>\n";
}

json charts(std::string& h, const ReportInput& in) {
  json jobs = json::array(), labels = json::object();
  h += "<h2 id=\"charts\">Over time</h2>\n<p id=\"charts-unavailable\">Charts unavailable: this cronprof was built "
       "without Chart.js and none is installed (Debian package libjs-chart.js).</p>\n<div class=\"cards\">\n";
  for (size_t i = 0; i < in.jobs.size(); ++i) {
    const auto& j = in.jobs[i];
    const std::string id = job_id(i);
    std::vector<const RunPoint*> pts;
    for (const auto& p : j.series)
      if (p.wall_s || p.memory_peak_bytes) pts.push_back(&p);
    h += fmt::format("<section class=\"card\"><h3>{}</h3>\n", esc(j.job));
    if (pts.empty()) {
      h += "<p class=\"note\">No finished runs with figures in the window.</p></section>\n";
      continue;
    }
    json lab = json::array(), mem = json::array(), wall = json::array(), db = json::array();
    bool any_mem = false, any_wall = false, any_db = false;
    for (const RunPoint* p : pts) {
      // "2026-11-23T02:10:00.123Z" -> "11-23 02:10": short enough for a phone's axis.
      std::string t = p->started_at.size() >= 16 ? p->started_at.substr(5, 5) + " " + p->started_at.substr(11, 5)
                                                  : p->started_at;
      lab.push_back(t);
      mem.push_back(p->memory_peak_bytes ? json(*p->memory_peak_bytes) : json(nullptr));
      wall.push_back(p->wall_s ? json(*p->wall_s) : json(nullptr));
      db.push_back(p->db_queries ? json(*p->db_queries) : json(nullptr));
      any_mem = any_mem || p->memory_peak_bytes.has_value();
      any_wall = any_wall || p->wall_s.has_value();
      any_db = any_db || p->db_queries.has_value();
    }
    // A chart only where there is something to draw; otherwise say why not.
    auto chart = [&](bool any, const char* suffix, const char* what, const char* none) {
      if (!any) {
        h += fmt::format("<p class=\"note\">{}</p>\n", none);
        return;
      }
      labels[id + suffix] = lab;
      h += fmt::format(
          "<div class=\"chart\"><canvas id=\"{}{}\" role=\"img\" aria-label=\"{} of {}\"></canvas></div>\n", id,
          suffix, what, esc(j.job));
    };
    chart(any_mem, "-mem", "peak memory", "No memory figures (the host could not measure them).");
    chart(any_wall, "-wall", "wall time", "No wall times.");
    chart(any_db, "-db", "DB queries", "No DB queries counted (run with --count-db-queries).");
    h += "</section>\n";
    jobs.push_back({{"id", id},
                    {"mem", any_mem ? mem : json(nullptr)},
                    {"wall", any_wall ? wall : json(nullptr)},
                    {"db", any_db ? db : json(nullptr)},
                    {"limit", j.memory_limit_bytes ? json(*j.memory_limit_bytes) : json(nullptr)}});
  }
  h += "</div>\n";
  return {{"jobs", jobs}, {"labels", labels}};
}

void heatmap(std::string& h, const HeatMap& hm) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  uint64_t top = 0;
  for (const auto& row : hm.memory_bytes)
    for (uint64_t v : row) top = std::max(top, v);
  h += fmt::format("<h2 id=\"week\">Planned memory demand, week of {}</h2>\n", esc(hm.week));
  h += fmt::format("<p class=\"note\">Highest concurrent memory (p95 peaks, p95 durations) within each hour, from "
                   "<code>cronprof plan</code>. Peak: {}. Host memory {}; hours above it are outlined.</p>\n",
                   esc(hm.peak), units::format_size(hm.host_memory_bytes));
  h += "<div class=\"scroll\"><table class=\"heat\">\n<thead><tr><th></th>";
  for (int hour = 0; hour < 24; ++hour) h += fmt::format("<th>{:02}</th>", hour);
  h += "</tr></thead>\n<tbody>\n";
  for (size_t d = 0; d < 7; ++d) {
    h += fmt::format("<tr><th>{}</th>", kDays[d]);
    for (size_t hour = 0; hour < 24; ++hour) {
      uint64_t v = hm.memory_bytes[d][hour];
      double f = top ? static_cast<double>(v) / static_cast<double>(top) : 0.0;
      // White to deep blue; the text turns white on dark cells.
      int light = static_cast<int>(std::lround(97 - 57 * f));
      bool over = hm.host_memory_bytes && v > hm.host_memory_bytes;
      h += fmt::format("<td{} style=\"background:hsl(217,70%,{}%);color:{}\" title=\"{} {:02}:00-{:02}:59: {}\">{}</td>",
                       over ? " class=\"over\"" : "", light, light < 60 ? "#fff" : "#1d2330", kDays[d], hour, hour,
                       units::format_size(v), v ? fmt::format("{:.0f}", 100.0 * f) : "");
    }
    h += "</tr>\n";
  }
  h += "</tbody></table></div>\n<p class=\"note\">Cell numbers: percent of the week's highest hour.</p>\n";
}

void failures(std::string& h, const ReportInput& in) {
  h += "<h2 id=\"failures\">Recent failures</h2>\n";
  if (in.failures.empty()) {
    h += "<p class=\"note\">No failed runs in the window.</p>\n";
    return;
  }
  h += "<div class=\"scroll\"><table>\n<thead><tr><th>Started</th><th>Job</th><th>Status</th><th>Exit</th>"
       "<th>Log</th><th>Run id</th></tr></thead>\n<tbody>\n";
  for (const auto& f : in.failures) {
    std::string exit = f.signal ? fmt::format("signal {}", *f.signal)
                       : f.exit_code ? std::to_string(*f.exit_code)
                                     : std::string("-");
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"status-bad\">{}</td><td class=\"num\">{}</td><td class=\"path\">{}</td>"
        "<td><code>{}</code></td></tr>\n",
        esc(f.started_at), esc(f.job), esc(f.status), esc(exit), esc(f.log_path.value_or("-")), esc(f.run_id));
  }
  h += "</tbody></table></div>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

bool charts_available() {
  if (kChartJs[0] != '\0') return true;
  std::ifstream in(kChartJsPath);
  return static_cast<bool>(in);
}

std::string render_html(const ReportInput& in) {
  std::string h;
  h.reserve(64 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<script>";
  h += kGuard;
  h += "</script>\n";
  h += fmt::format("<title>cronrun report — {}</title>\n", esc(in.host));
  h += "<style>";
  h += kStyle;
  h += "</style>\n</head>\n<body>\n<main>\n";
  h += fmt::format("<h1>cronrun report — {}</h1>\n<p class=\"meta\">Generated {} · window {} · history <code>{}</code></p>\n",
                   esc(in.host), esc(in.generated_at), esc(in.window), esc(in.history_path));
  for (const auto& n : in.notes) h += fmt::format("<p class=\"note\">{}</p>\n", esc(n));

  json data = {{"jobs", json::array()}, {"labels", json::object()}};
  if (in.jobs.empty()) {
    h += fmt::format("<p class=\"empty\" id=\"no-history\">No runs recorded in the last {} (history <code>{}</code>). "
                     "Jobs appear here once they run under cronrun.</p>\n",
                     esc(in.window), esc(in.history_path));
  } else {
    jobs_table(h, in);
    data = charts(h, in);
  }
  if (in.heatmap) heatmap(h, *in.heatmap);
  failures(h, in);
  h += "</main>\n";
  h += "<script type=\"application/json\" id=\"cronrun-data\">";
  h += script_json(data);
  h += "</script>\n";
  if (!in.jobs.empty()) {
    h += "<script>\n";
    h += chart_js();
    h += "\n</script>\n";
  }
  h += "<script>";
  h += kScript;
  h += "</script>\n</body>\n</html>\n";
  return h;
}

}  // namespace cronrun::report
