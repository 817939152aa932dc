// Renders the HTML report as an on-call page. Its order is the order of the
// questions: which jobs are in trouble (the state table, failing and missed first,
// filterable by state), what their runs did over real time (per-job sections,
// collapsed unless the job is in trouble), and what one run did (its profile and
// log tail, reached by link). What it guards against:
//  - injection: job names, commands, paths, profiles and log tails come from
//    crontabs and jobs; every one is escaped in HTML text and attributes, anchors
//    are built from sanitized ids, and the chart data is JSON inside
//    <script type="application/json"> with '<', '>' and '&' written as \u003c..
//    so no value can close the element;
//  - the network: Chart.js is inlined (build time, see profiler/CMakeLists.txt; the
//    installed file at run time as a fallback), no fonts, no CDN, no images, and
//    no date adapter: the time axes are linear scales over Unix milliseconds with
//    ticks placed on whole minutes/hours/days and printed by this script;
//  - width: nothing is wider than its box at a desktop width; long cells wrap
//    (suggested flags wrap between flags, never inside one), tables scroll sideways
//    inside their own box only on a phone;
//  - a page as long as the history: per-job sections are <details>, their charts
//    drawn when opened; a link to an anchor inside a closed section opens it;
//  - silent breakage: the self-check records script errors and how many charts
//    were drawn with how many points in data-* attributes of <html>, which the
//    headless-browser tests read.
// Tables, the strip and the heat-map are plain HTML, so the report is still useful
// without JavaScript (every section then shows, unfiltered).
#include "profiler/report_html.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/units.h"
#include "profiler/chartjs_inline.h"
#include "profiler/cli_support.h"
#include "profiler/suggest.h"
#include "profiler/text_escape.h"

namespace cronrun::report {

namespace {

using nlohmann::json;

constexpr const char* kStyle = R"css(
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#fff; --card:#f6f7f9; --bad:#b3261e; --ok:#1e7b34;
        --missed:#8a3ffc; --late:#b45309; --skip:#64748b; --run:#1d4ed8; --none:#e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1340px; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h4 { margin: .75rem 0 .25rem; font-size: .9rem; }
a { color: #1a4fb5; }
.meta, .note, .why { color: var(--muted); font-size: .85rem; }
.why { display: block; white-space: normal; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; }
th, td { padding: .3rem .45rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.job { min-width: 10rem; max-width: 22rem; overflow-wrap: anywhere; }
td.when { white-space: nowrap; }
td.path { overflow-wrap: anywhere; min-width: 12rem; }
.state, .st { display: inline-block; padding: 0 .4rem; border-radius: 3px; font-size: .8rem; font-weight: 600;
              white-space: nowrap; border: 1px solid transparent; }
.state-failing, .st-bad { background: var(--bad); color: #fff; }
.state-missed { background: var(--missed); color: #fff; }
.state-late { background: #fde68a; color: #713f12; border-color: var(--late); }
.state-running, .st-running { background: #dbeafe; color: var(--run); border-color: var(--run); }
.state-up, .st-ok { background: #dcfce7; color: var(--ok); border-color: var(--ok); }
.state-never_run { background: var(--none); color: var(--muted); }
.st-skipped { background: #f1f5f9; color: var(--skip); border: 1px dashed var(--skip); font-weight: 500; }
.st-warn { background: #fef3c7; color: #92400e; border-color: #d97706; }
.flags { font: .82rem/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--card);
         padding: .1rem .3rem; border-radius: 3px; user-select: all; white-space: normal; }
.flag { white-space: nowrap; }
.strip { display: inline-flex; gap: 1px; vertical-align: middle; }
.strip i { display: inline-block; width: 7px; height: 16px; background: var(--none); }
.strip i.d-ok { background: var(--ok); }
.strip i.d-bad { background: var(--bad); }
.strip i.d-missed { background: var(--missed); }
.strip i.d-skipped { background: repeating-linear-gradient(45deg, #cbd5e1 0 2px, #f1f5f9 2px 4px); }
.legend { font-size: .8rem; color: var(--muted); }
.legend .strip i { height: 10px; }
.filters { display: flex; flex-wrap: wrap; gap: .35rem; margin: .25rem 0 .6rem; }
.filters button { font: inherit; font-size: .85rem; padding: .15rem .6rem; border: 1px solid var(--line);
                  border-radius: 999px; background: #fff; cursor: pointer; }
.filters button[aria-pressed="true"] { background: var(--fg); color: #fff; border-color: var(--fg); }
details.job, details.run { border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0; background: #fff; }
details.job > summary, details.run > summary { cursor: pointer; padding: .45rem .6rem; background: var(--card);
                                               border-radius: 6px; overflow-wrap: anywhere; }
details[open] > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
.body { padding: .6rem; min-width: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
.chart { position: relative; width: 100%; height: 200px; min-width: 0; }
pre { background: #0f172a; color: #e2e8f0; padding: .6rem; border-radius: 4px; overflow-x: auto; font-size: .8rem;
      white-space: pre-wrap; overflow-wrap: anywhere; max-height: 28rem; }
table.heat { width: auto; }
.heat td { width: 2.2rem; min-width: 1.7rem; height: 1.6rem; padding: 0; text-align: center; font-size: .7rem;
           border: 1px solid #fff; vertical-align: middle; }
.heat th { font-weight: normal; color: var(--muted); font-size: .75rem; padding: 0 .25rem; }
.heat td.over { outline: 2px solid var(--bad); outline-offset: -2px; }
.empty { padding: 1rem; background: var(--card); border: 1px dashed var(--line); border-radius: 6px; }
#charts-unavailable { display: none; color: var(--bad); }
:target { scroll-margin-top: .5rem; }
@media (max-width: 700px) {
  body { padding: .5rem; font-size: 14px; }
  .charts { grid-template-columns: 1fr; }
  .chart { height: 170px; }
  table.jobs th.opt, table.jobs td.opt { display: none; }
}
)css";

// Everything the page does once loaded: state filters, opening the section a link
// points into, and drawing a job's charts when its section opens. Runs after
// Chart.js; every failure lands in data-errors instead of vanishing.
constexpr const char* kScript = R"js(
(function () {
  var root = document.documentElement, errors = window.cronrunErrors || [];
  var data = JSON.parse(document.getElementById('cronrun-data').textContent);
  var hasChart = typeof Chart !== 'undefined';
  var drawn = 0, points = 0, done = {};
  var DAY = 864e5;
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function day(ms) { var d = new Date(ms); return pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()); }
  function hhmm(ms) { var d = new Date(ms); return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()); }
  // Tick steps a person reads at a glance; at most about six ticks per axis.
  var steps = [6e4, 3e5, 9e5, 18e5, 36e5, 108e5, 216e5, 432e5, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY];
  function timeTicks(scale) {
    var span = scale.max - scale.min, step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) if (span / steps[i] <= 6) { step = steps[i]; break; }
    var ticks = [];
    for (var t = Math.ceil(scale.min / step) * step; t <= scale.max; t += step) ticks.push({ value: t });
    scale.ticks = ticks;
  }
  function tickLabel(v) { return v % DAY === 0 ? day(v) : hhmm(v); }
  function fmtY(kind, v) {
    return kind === 'mem' ? v.toFixed(1) + ' MiB' : kind === 'db' ? String(v) : v.toFixed(v < 10 ? 2 : 0) + ' s';
  }

  function draw(job, kind) {
    var id = 'c' + job.i + '-' + kind, canvas = document.getElementById(id);
    if (!canvas || done[id]) return;
    done[id] = true;
    if (!hasChart) return;
    var all = [], bad = [], limit = [], anyLimit = false;
    job.runs.forEach(function (r) {
      var y = kind === 'mem' ? (r.mem == null ? null : r.mem / 1048576) : kind === 'db' ? r.db : r.wall;
      var l = kind === 'mem' ? (r.lim == null ? null : r.lim / 1048576) : kind === 'db' ? null : r.to;
      limit.push({ x: r.t, y: l });
      if (l != null) anyLimit = true;
      if (y == null) return;
      var p = { x: r.t, y: y, a: r.a, st: r.st };
      all.push(p);
      if (r.bad) bad.push(p);
    });
    if (limit.length) limit.push({ x: data.now, y: limit[limit.length - 1].y });
    var datasets = [
      { label: kind === 'mem' ? 'peak memory' : kind === 'db' ? 'DB queries' : 'duration', data: all, borderColor: '#2f6fdf',
        backgroundColor: '#2f6fdf', pointRadius: 2, borderWidth: 1.5 },
      { label: 'bad run', data: bad, showLine: false, pointStyle: 'triangle', pointRadius: 6,
        pointHoverRadius: 8, borderColor: '#b3261e', backgroundColor: '#b3261e' }
    ];
    if (anyLimit)
      datasets.push({ label: kind === 'mem' ? 'memory limit' : 'timeout', data: limit, stepped: 'after',
                      borderColor: '#b3261e', borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5, spanGaps: false });
    var chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: true,
        interaction: { mode: 'nearest', intersect: true },
        plugins: {
          legend: { labels: { boxWidth: 12, font: { size: 11 } } },
          tooltip: { callbacks: {
            title: function (items) { var x = items[0].parsed.x; return day(x) + ' ' + hhmm(x) + ' UTC'; },
            label: function (item) {
              var p = item.raw || {};
              return item.dataset.label + ': ' + fmtY(kind, item.parsed.y) + (p.st ? ' (' + p.st + ')' : '');
            } } }
        },
        onClick: function (e, els) {
          if (!els.length) return;
          var p = chart.data.datasets[els[0].datasetIndex].data[els[0].index];
          if (p && p.a) location.hash = p.a;
        },
        scales: {
          x: { type: 'linear', min: data.start, max: data.now, afterBuildTicks: timeTicks,
               ticks: { callback: tickLabel, maxRotation: 0, autoSkip: false } },
          y: { beginAtZero: true,
               title: { display: true, text: kind === 'mem' ? 'MiB' : kind === 'db' ? 'queries' : 'seconds' } }
        }
      }
    });
    // Points of the runs' own series (a bad run is drawn again, marked, on top).
    var n = 0;
    chart.getDatasetMeta(0).data.forEach(function (p) { if (isFinite(p.x) && isFinite(p.y)) n++; });
    canvas.dataset.points = n;
    if (n > 0) drawn++;
    points += n;
    root.dataset.chartsDrawn = drawn;
    root.dataset.points = points;
  }
  var byIndex = {};
  data.jobs.forEach(function (j) { byIndex[j.i] = j; });
  function drawSection(section) {
    var j = byIndex[section.dataset.job];
    if (j && section.open) { draw(j, 'wall'); draw(j, 'mem'); draw(j, 'db'); }
  }
  var sections = document.querySelectorAll('details.job');
  sections.forEach(function (s) {
    s.addEventListener('toggle', function () { drawSection(s); });
    drawSection(s);
  });

  // A link into a closed section opens it (and every section around it).
  function reveal(id) {
    if (id === 'expand-all') {
      document.querySelectorAll('details').forEach(function (d) { d.open = true; });
      return;
    }
    var el = document.getElementById(id);
    if (!el) return;
    for (var n = el; n; n = n.parentElement) if (n.tagName === 'DETAILS') n.open = true;
    el.scrollIntoView();
  }
  function fromHash() { if (location.hash.length > 1) reveal(decodeURIComponent(location.hash.slice(1))); }
  window.addEventListener('hashchange', fromHash);
  fromHash();

  // Filters by state: rows of the table and the per-job sections.
  var bar = document.getElementById('filters');
  if (bar) {
    bar.hidden = false;
    bar.addEventListener('click', function (e) {
      var b = e.target.closest('button');
      if (!b) return;
      var want = b.dataset.filter;
      bar.querySelectorAll('button').forEach(function (o) { o.setAttribute('aria-pressed', o === b ? 'true' : 'false'); });
      document.querySelectorAll('[data-state]').forEach(function (el) {
        el.hidden = want !== 'all' && el.dataset.state !== want;
      });
    });
  }

  if (!hasChart) {
    var u = document.getElementById('charts-unavailable');
    if (u) u.style.display = 'block';
  }
  root.dataset.chartsExpected = document.querySelectorAll('canvas').length;
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
// Multi-line text (a profile, a log tail): its line breaks kept.
std::string esc_lines(std::string_view s) { return html_escape(prof::term_lines(s)); }

std::string opt_size(const std::optional<uint64_t>& b) { return b ? units::format_size(*b) : "-"; }
std::string opt_dur(const std::optional<double>& s) { return s ? units::format_duration_s(*s) : "-"; }
// The p95 of the cgroup's peak, else (no run had one) of the RSS, marked.
std::string mem_p95(const JobRow& j) {
  if (!j.memory_peak_p95_bytes && j.max_rss_p95_bytes) return "rss " + units::format_size(*j.max_rss_p95_bytes);
  return opt_size(j.memory_peak_p95_bytes);
}

// "2026-11-23 02:10Z": minutes are what a person compares runs by.
std::string when(const std::string& rfc3339) {
  if (rfc3339.size() < 16 || rfc3339[10] != 'T') return rfc3339;
  return rfc3339.substr(0, 10) + " " + rfc3339.substr(11, 5) + "Z";
}
std::string when_s(double unix_s) { return when(prof::format_utc(unix_s)); }

// An anchor from a run id: ids are UUIDs, but the history is not trusted to hold
// only those; anything outside [A-Za-z0-9_-] is spelled as _XX.
std::string run_anchor(std::string_view run_id) {
  std::string out = "run-";
  for (unsigned char c : run_id) {
    if (std::isalnum(c) || c == '-') out += static_cast<char>(c);
    else out += fmt::format("_{:02X}", c);
  }
  return out;
}

std::string job_anchor(size_t i) { return fmt::format("job-{}", i); }

std::string state_label(std::string_view s) { return s == "never_run" ? "never run" : std::string(s); }

std::string state_badge(std::string_view s) {
  return fmt::format("<span class=\"state state-{}\">{}</span>", esc(s), esc(state_label(s)));
}

// A run's status as a badge: bad runs red, skipped dashed grey, ok green, an ok
// run that lost processes to the OOM killer amber with the count.
std::string status_badge(std::string_view status, std::optional<uint64_t> oom_kills) {
  if (status == "skipped") return "<span class=\"st st-skipped\">skipped</span>";
  if (status == "running") return "<span class=\"st st-running\">running</span>";
  if (status == "ok" && oom_kills && *oom_kills > 0)
    return fmt::format("<span class=\"st st-warn\" title=\"ended ok, but the OOM killer killed {} process(es) "
                       "inside it\">ok, {} OOM kill{}</span>",
                       *oom_kills, *oom_kills, *oom_kills == 1 ? "" : "s");
  if (status == "ok") return "<span class=\"st st-ok\">ok</span>";
  return fmt::format("<span class=\"st st-bad\">{}</span>", esc(status.empty() ? "-" : status));
}

// The suggested limits as cronrun flags, exactly as they are typed: one <code>
// whose text is the flags separated by plain spaces (a click selects it all);
// each flag with its value never wraps apart.
std::string flags_html(const JobRow& j) {
  std::vector<std::string> flags;
  if (j.suggested_memory_bytes) flags.push_back("--memory " + prof::memory_value(*j.suggested_memory_bytes));
  if (j.suggested_cpu_pct) flags.push_back("--cpu " + prof::cpu_value(*j.suggested_cpu_pct));
  if (j.suggested_timeout_s) flags.push_back("--timeout " + prof::timeout_value(*j.suggested_timeout_s));
  if (j.suggested_pids) flags.push_back("--pids " + std::to_string(*j.suggested_pids));
  if (flags.empty()) return "<span class=\"note\">not enough runs</span>";
  std::string h = "<code class=\"flags\" title=\"cronrun flags: click to select, then copy\">";
  for (size_t i = 0; i < flags.size(); ++i)
    h += fmt::format("{}<span class=\"flag\">{}</span>", i ? " " : "", esc(flags[i]));
  return h + "</code>";
}

std::string success_text(const JobRow& j) {
  size_t executed = j.ok + j.failures;
  if (executed == 0) return "-";
  double pct = 100.0 * static_cast<double>(j.ok) / static_cast<double>(executed);
  // 99.6% is not 100%: a rate shown as 100 must mean no failure at all.
  std::string p = j.failures && pct > 99 ? fmt::format("{:.1f}", std::min(pct, 99.9)) : fmt::format("{:.0f}", pct);
  return fmt::format("{}%<span class=\"why\">of {}</span>", p, executed);
}

std::string day_label(double day_start_s) { return prof::format_utc(day_start_s).substr(0, 10); }

std::string strip_html(const ReportInput& in, const JobRow& j) {
  std::string h = "<span class=\"strip\">";
  for (size_t d = 0; d < j.days.size(); ++d) {
    const DayCounts& c = j.days[d];
    const char* cls = c.bad ? "d-bad" : c.missed ? "d-missed" : c.ok ? "d-ok" : c.skipped ? "d-skipped" : "d-none";
    std::string t = fmt::format("{}: {} ok, {} failed, {} skipped", day_label(in.days_start_s + 86400.0 * d), c.ok,
                                c.bad, c.skipped);
    if (in.schedule_known) t += fmt::format(", {} missed", c.missed);
    h += fmt::format("<i class=\"{}\" title=\"{}\"></i>", cls, t);
  }
  return h + "</span>";
}

std::string job_notes(const ReportInput& in, const JobRow& j) {
  std::vector<std::string> parts;
  if (!j.state_reason.empty()) parts.push_back(esc(j.state_reason));
  if (j.oom_kills)
    parts.push_back(fmt::format("{} OOM kill{} in {} run{}", j.oom_kills, j.oom_kills == 1 ? "" : "s",
                                j.runs_with_oom_kills, j.runs_with_oom_kills == 1 ? "" : "s"));
  if (in.schedule_known && j.missed_ticks) parts.push_back(fmt::format("{} missed tick(s)", j.missed_ticks));
  if (in.schedule_known && j.late_ticks) parts.push_back(fmt::format("{} late start(s)", j.late_ticks));
  std::string h;
  for (size_t i = 0; i < parts.size(); ++i) h += (i ? " · " : "") + parts[i];
  return h;
}

void filters(std::string& h, const ReportInput& in) {
  std::map<std::string, size_t> n;
  for (const auto& j : in.jobs) ++n[j.state];
  h += "<div class=\"filters\" id=\"filters\" role=\"group\" aria-label=\"Show jobs by state\" hidden>";
  h += fmt::format("<button type=\"button\" data-filter=\"all\" aria-pressed=\"true\">all {}</button>", in.jobs.size());
  for (const char* s : kStates)
    if (n.count(s))
      h += fmt::format("<button type=\"button\" data-filter=\"{}\" aria-pressed=\"false\">{} {}</button>", s,
                       state_label(s), n[s]);
  h += "</div>\n";
}

void jobs_table(std::string& h, const ReportInput& in, const std::map<std::string, bool>& has_detail) {
  h += "<h2 id=\"jobs\">Jobs</h2>\n";
  h += in.schedule_known
           ? "<p class=\"meta\">State against the schedule in the given crontabs and the history.</p>\n"
           : "<p class=\"meta\">State from the history only (failing, running, up); give <code>--crontab FILE</code> "
             "for missed and late runs against the schedule.</p>\n";
  filters(h, in);
  size_t ndays = in.jobs.empty() ? 0 : in.jobs.front().days.size();
  h += fmt::format(
      "<div class=\"scroll\"><table class=\"jobs\">\n<thead><tr><th>State</th><th>Job</th><th>Last run</th>"
      "<th class=\"num\">Success</th><th>Daily, last {} days (UTC)</th><th class=\"num opt\">p95 wall</th>"
      "<th class=\"num opt\">p95 peak</th><th class=\"opt\">Suggested limits</th></tr></thead>\n<tbody>\n",
      ndays);
  for (size_t i = 0; i < in.jobs.size(); ++i) {
    const JobRow& j = in.jobs[i];
    std::string last = "<span class=\"note\">none in the window</span>";
    if (j.last_started_at) {
      std::string t = esc(when(*j.last_started_at));
      std::optional<uint64_t> oom;
      if (!j.recent.empty()) oom = j.recent.front().oom_kills;
      // A link only to a run the page has a section for (a damaged record has none).
      bool linked = j.last_run_id && has_detail.count(*j.last_run_id);
      last = (linked ? fmt::format("<a href=\"#{}\">{}</a>", run_anchor(*j.last_run_id), t) : t) + " " +
             status_badge(j.last_status, oom);
    }
    h += fmt::format(
        "<tr class=\"jobrow\" data-state=\"{}\" data-job=\"{}\"><td>{}</td><td class=\"job\"><a href=\"#{}\">{}</a>"
        "<span class=\"why\">{}</span></td><td class=\"when\">{}</td><td class=\"num\">{}</td><td>{}</td>"
        "<td class=\"num opt\">{}</td><td class=\"num opt\">{}</td><td class=\"opt\">{}</td></tr>\n",
        esc(j.state), esc(j.job), state_badge(j.state), job_anchor(i), esc(j.job), job_notes(in, j), last,
        success_text(j), strip_html(in, j), opt_dur(j.wall_p95_s), mem_p95(j),
        flags_html(j));
  }
  h += "</tbody></table></div>\n";
  h += "<p class=\"legend\">Strip: <span class=\"strip\"><i class=\"d-ok\"></i></span> all ok "
       "<span class=\"strip\"><i class=\"d-bad\"></i></span> a run failed ";
  if (in.schedule_known) h += "<span class=\"strip\"><i class=\"d-missed\"></i></span> a tick missed ";
  h += "<span class=\"strip\"><i class=\"d-skipped\"></i></span> only skipped "
       "<span class=\"strip\"><i class=\"d-none\"></i></span> no run. Hover a day for its counts.</p>\n";
}

json job_section(std::string& h, const ReportInput& in, size_t i, const std::map<std::string, bool>& has_detail) {
  const JobRow& j = in.jobs[i];
  bool trouble = j.state == "failing" || j.state == "missed";
  h += fmt::format("<details class=\"job\" id=\"{}\" data-job=\"{}\" data-state=\"{}\"{}>\n<summary>{} <b>{}</b>",
                   job_anchor(i), i, esc(j.state), trouble ? " open" : "", state_badge(j.state), esc(j.job));
  std::string notes = job_notes(in, j);
  if (!notes.empty()) h += " <span class=\"note\">— " + notes + "</span>";
  h += "</summary>\n<div class=\"body\">\n<p>";
  if (j.schedule) h += fmt::format("Schedule <code>{}</code> · ", esc(*j.schedule));
  h += fmt::format("{} run{} in the window: {} ok, {} failed, {} skipped", j.runs, j.runs == 1 ? "" : "s", j.ok,
                   j.failures, j.skipped);
  if (j.ok + j.failures)
    h += fmt::format(" · success {:.0f}%", 100.0 * static_cast<double>(j.ok) / static_cast<double>(j.ok + j.failures));
  h += fmt::format(" · p95 wall {} · p95 peak {} · p95 CPU {}</p>\n", opt_dur(j.wall_p95_s),
                   mem_p95(j), opt_dur(j.cpu_p95_s));
  h += "<p>Suggested limits: " + flags_html(j) + " <a href=\"#jobs\">back to jobs</a></p>\n";

  json runs = json::array();
  bool any_wall = false, any_mem = false, any_db = false;
  for (const RunPoint& p : j.series) {
    any_wall = any_wall || p.wall_s.has_value();
    any_mem = any_mem || p.memory_peak_bytes.has_value();
    any_db = any_db || p.db_queries.has_value();
    auto it = has_detail.find(p.run_id);
    runs.push_back({{"t", std::llround(p.started_at_s * 1000)},
                    {"st", p.status},
                    {"bad", bad_run(p.status, p.oom_kills)},
                    {"a", it != has_detail.end() ? json(run_anchor(p.run_id)) : json(nullptr)},
                    {"wall", p.wall_s ? json(*p.wall_s) : json(nullptr)},
                    {"mem", p.memory_peak_bytes ? json(*p.memory_peak_bytes) : json(nullptr)},
                    {"lim", p.memory_limit_bytes ? json(*p.memory_limit_bytes) : json(nullptr)},
                    {"to", p.timeout_s ? json(*p.timeout_s) : json(nullptr)},
                    {"db", p.db_queries ? json(*p.db_queries) : json(nullptr)}});
  }
  if (any_wall || any_mem) {
    h += "<div class=\"charts\">";
    if (any_wall)
      h += fmt::format("<div class=\"chart\"><canvas id=\"c{}-wall\" role=\"img\" aria-label=\"duration of {} over "
                       "time, timeout drawn, bad runs marked\"></canvas></div>",
                       i, esc(j.job));
    if (any_mem)
      h += fmt::format("<div class=\"chart\"><canvas id=\"c{}-mem\" role=\"img\" aria-label=\"peak memory of {} over "
                       "time, memory limit drawn, bad runs marked\"></canvas></div>",
                       i, esc(j.job));
    if (any_db)
      h += fmt::format("<div class=\"chart\"><canvas id=\"c{}-db\" role=\"img\" aria-label=\"DB queries of {} over "
                       "time\"></canvas></div>",
                       i, esc(j.job));
    h += "</div>\n";
    if (!any_mem) h += "<p class=\"note\">No memory figures (the host could not measure them).</p>\n";
  } else {
    h += "<p class=\"note\">No finished runs with figures in the window.</p>\n";
  }

  if (!j.recent.empty()) {
    h += "<h4>Recent runs</h4>\n<div class=\"scroll\"><table>\n<thead><tr><th>Started</th><th>Status</th>"
         "<th class=\"num\">Exit</th><th class=\"num\">Wall</th><th class=\"num\">Peak</th><th>Run</th></tr></thead>"
         "\n<tbody>\n";
    for (const RunPoint& p : j.recent) {
      std::string link = has_detail.count(p.run_id)
                             ? fmt::format("<a href=\"#{}\">profile and log</a>", run_anchor(p.run_id))
                             : "<span class=\"note\">not listed</span>";
      h += fmt::format("<tr><td class=\"when\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                       "<td class=\"num\">{}</td><td>{}</td></tr>\n",
                       esc(when_s(p.started_at_s)), status_badge(p.status, p.oom_kills),
                       p.exit_code ? std::to_string(*p.exit_code) : "-", opt_dur(p.wall_s),
                       opt_size(p.memory_peak_bytes), link);
    }
    h += "</tbody></table></div>\n";
  }
  h += "</div>\n</details>\n";
  return {{"i", i}, {"runs", runs}};
}

json job_sections(std::string& h, const ReportInput& in, const std::map<std::string, bool>& has_detail) {
  json jobs = json::array();
  h += "<h2 id=\"per-job\">Per job</h2>\n<p class=\"meta\">Jobs in trouble are open; the others open on a click. "
       "Charts: each run at its real start time (UTC); red triangles are bad runs (failed, killed, timeout, OOM, or "
       "ok with OOM kills inside); dashed red lines are the limits the runs had. Click a point for its run. "
       "<a href=\"#expand-all\">Open all</a></p>\n<p id=\"charts-unavailable\">Charts unavailable: this cronprof was "
       "built without Chart.js and none is installed (Debian package libjs-chart.js).</p>\n";
  for (size_t i = 0; i < in.jobs.size(); ++i) jobs.push_back(job_section(h, in, i, has_detail));
  return jobs;
}

void heatmap(std::string& h, const HeatMap& hm) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  uint64_t top = 0;
  for (const auto& row : hm.memory_bytes)
    for (uint64_t v : row) top = std::max(top, v);
  // Cells read percent of the host's memory: a share of the week's own highest
  // hour reads 100 in every hour a frequent job touches, however small it is.
  const uint64_t scale = hm.host_memory_bytes ? hm.host_memory_bytes : top;
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
      double f = scale ? std::min(1.0, static_cast<double>(v) / static_cast<double>(scale)) : 0.0;
      // White to deep blue; the text turns white on dark cells.
      int light = static_cast<int>(std::lround(97 - 57 * f));
      bool over = hm.host_memory_bytes && v > hm.host_memory_bytes;
      double pct = scale ? 100.0 * static_cast<double>(v) / static_cast<double>(scale) : 0.0;
      std::string text = !v ? "" : pct < 1 ? "&lt;1" : fmt::format("{:.0f}", pct);
      h += fmt::format("<td{} style=\"background:hsl(217,70%,{}%);color:{}\" title=\"{} {:02}:00-{:02}:59: {}\">{}</td>",
                       over ? " class=\"over\"" : "", light, light < 60 ? "#fff" : "#1d2330", kDays[d], hour, hour,
                       units::format_size(v), text);
    }
    h += "</tr>\n";
  }
  h += fmt::format("</tbody></table></div>\n<p class=\"note\">Cell numbers: percent of {}.</p>\n",
                   hm.host_memory_bytes ? "the host's memory" : "the week's highest hour (host memory unknown)");
}

void failures(std::string& h, const ReportInput& in, const std::map<std::string, bool>& has_detail) {
  h += "<h2 id=\"failures\">Recent failures</h2>\n";
  if (in.failures.empty()) {
    h += "<p class=\"note\">No failed runs in the window.</p>\n";
    return;
  }
  h += "<div class=\"scroll\"><table>\n<thead><tr><th>Started</th><th>Job</th><th>Status</th><th class=\"num\">Exit"
       "</th><th>Log</th><th>Run</th></tr></thead>\n<tbody>\n";
  for (const auto& f : in.failures) {
    std::string exit = f.signal ? fmt::format("signal {}", *f.signal)
                       : f.exit_code ? std::to_string(*f.exit_code)
                                     : std::string("-");
    std::string run = has_detail.count(f.run_id)
                          ? fmt::format("<a href=\"#{}\"><code>{}</code></a>", run_anchor(f.run_id), esc(f.run_id))
                          : fmt::format("<code>{}</code>", esc(f.run_id));
    h += fmt::format("<tr><td class=\"when\">{}</td><td class=\"job\">{}</td><td>{}</td><td class=\"num\">{}</td>"
                     "<td class=\"path\">{}</td><td>{}</td></tr>\n",
                     esc(when(f.started_at)), esc(f.job), status_badge(f.status, std::nullopt), esc(exit),
                     esc(f.log_path.value_or("-")), run);
  }
  h += "</tbody></table></div>\n";
}

void run_details(std::string& h, const ReportInput& in, const std::map<std::string, size_t>& job_index) {
  if (in.runs.empty()) return;
  h += "<h2 id=\"runs\">Runs</h2>\n<p class=\"meta\">Each listed run's profile (as <code>cronprof show</code> "
       "prints it) and the end of its log when it was kept.</p>\n";
  for (const RunDetail& r : in.runs) {
    auto it = job_index.find(r.job);
    h += fmt::format("<details class=\"run\" id=\"{}\"><summary>{} <b>{}</b> {}</summary>\n<div class=\"body\">\n",
                     run_anchor(r.run_id), esc(when(r.started_at)), esc(r.job), status_badge(r.status, std::nullopt));
    h += "<pre class=\"profile\">" + esc_lines(r.profile) + "</pre>\n";
    h += "<h4>Log</h4>\n<p class=\"note\">" + esc(r.log_note) + "</p>\n";
    if (r.log_tail) h += "<pre class=\"log\">" + esc_lines(*r.log_tail) + "</pre>\n";
    if (it != job_index.end()) h += fmt::format("<p><a href=\"#{}\">back to the job</a></p>\n", job_anchor(it->second));
    h += "</div>\n</details>\n";
  }
}

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

bool bad_run(std::string_view status, std::optional<uint64_t> oom_kills) {
  if (status == "ok") return oom_kills && *oom_kills > 0;
  return status != "skipped" && status != "running" && !status.empty();
}

void sort_jobs(std::vector<JobRow>& jobs) {
  auto rank = [](const std::string& s) {
    for (size_t i = 0; i < std::size(kStates); ++i)
      if (s == kStates[i]) return i;
    return std::size(kStates);
  };
  std::stable_sort(jobs.begin(), jobs.end(), [&](const JobRow& a, const JobRow& b) {
    size_t ra = rank(a.state), rb = rank(b.state);
    return ra != rb ? ra < rb : a.job < b.job;
  });
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
  size_t trouble = 0;
  for (const auto& j : in.jobs) trouble += j.state == "failing" || j.state == "missed";
  h += fmt::format("<title>{}cronrun — {}</title>\n", trouble ? fmt::format("({} failing or missed) ", trouble) : "",
                   esc(in.host));
  h += "<style>";
  h += kStyle;
  h += "</style>\n</head>\n<body>\n<main>\n";
  h += fmt::format("<h1>cronrun — {}</h1>\n<p class=\"meta\">Generated {} · window {} · history <code>{}</code> · "
                   "times in UTC</p>\n",
                   esc(in.host), esc(when(in.generated_at)), esc(in.window), esc(in.history_path));
  for (const auto& n : in.notes) h += fmt::format("<p class=\"note\">{}</p>\n", esc(n));

  std::map<std::string, bool> has_detail;
  for (const auto& r : in.runs) has_detail[r.run_id] = true;
  std::map<std::string, size_t> job_index;
  for (size_t i = 0; i < in.jobs.size(); ++i) job_index.emplace(in.jobs[i].job, i);

  json data = {{"jobs", json::array()},
               {"start", std::llround(in.window_start_s * 1000)},
               {"now", std::llround(in.now_s * 1000)}};
  if (in.jobs.empty()) {
    h += fmt::format("<p class=\"empty\" id=\"no-history\">No runs recorded in the last {} (history <code>{}</code>). "
                     "Jobs appear here once they run under cronrun.</p>\n",
                     esc(in.window), esc(in.history_path));
  } else {
    jobs_table(h, in, has_detail);
    data["jobs"] = job_sections(h, in, has_detail);
  }
  failures(h, in, has_detail);
  run_details(h, in, job_index);
  if (in.heatmap) heatmap(h, *in.heatmap);
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
