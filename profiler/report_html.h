// The HTML report: one self-contained file (styles, data and Chart.js inlined, no
// network at view time) that can be mailed or served as a static status page.
// Rendering takes plain structs, filled by the `report` subcommand from the
// history (report_html_command.cc), so it is tested without a database.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cronrun::report {

struct RunPoint {
  std::string started_at;  // RFC 3339, as in the run record
  std::string status;      // "ok", "failed", ...
  std::optional<double> wall_s;
  std::optional<uint64_t> memory_peak_bytes;
  std::optional<double> db_queries;
};

struct JobRow {
  std::string job;
  std::optional<std::string> last_started_at;
  std::string last_status;
  size_t runs = 0;
  size_t failures = 0;  // failed, killed, timeout, oom, error, lost
  std::optional<double> wall_p95_s;
  std::optional<uint64_t> memory_peak_p95_bytes;
  std::optional<double> cpu_p95_s;  // CPU seconds per run
  std::optional<double> db_queries_p95;
  std::optional<uint64_t> memory_limit_bytes;  // of the latest run: the chart's limit line
  // Suggested limits (as `cronprof suggest` would write them).
  std::optional<uint64_t> suggested_memory_bytes;
  std::optional<double> suggested_cpu_pct;
  std::optional<double> suggested_timeout_s;
  std::vector<RunPoint> series;  // oldest first
};

struct Failure {
  std::string job;
  std::string run_id;
  std::string started_at;
  std::string status;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<std::string> log_path;
};

// The planned week from `cronprof plan`: highest memory demand per hour.
struct HeatMap {
  std::string week;  // "2026-11-30"
  std::array<std::array<uint64_t, 24>, 7> memory_bytes{};  // Monday first
  uint64_t host_memory_bytes = 0;
  std::string peak;  // "4.0 GiB at Mon 02:00 (backup, report)"
};

struct ReportInput {
  std::string host;
  std::string generated_at;  // RFC 3339
  std::string window;        // "30d"
  std::string history_path;
  std::vector<JobRow> jobs;
  std::vector<Failure> failures;  // newest first
  std::optional<HeatMap> heatmap;
  std::vector<std::string> notes;  // shown under the title (e.g. crontab lines rejected)
};

// The whole document. Every job name, path and message is HTML-escaped; the chart
// data travels as JSON inside a non-executed <script type="application/json">.
std::string render_html(const ReportInput& in);

// &, <, >, " and ' as entities.
std::string html_escape(std::string_view text);

// Whether Chart.js was found when cronprof was built (or is installed now, see
// report_html.cc); without it the report has its tables and heat-map but no charts.
bool charts_available();

}  // namespace cronrun::report
