// The HTML report: one self-contained file (styles, data and Chart.js inlined, no
// network at view time) that can be mailed or served as a static status page, and
// the page an on-call engineer opens first: each job's state at the top (failing
// and missed first), then per job its runs over real time, and each listed run's
// profile and log tail, reached by links inside the page.
// Rendering takes plain structs, filled by the `report` subcommand from the
// history and, with --crontab, the schedule (report_html_command.cc), so it is
// tested without a database.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cronrun::report {

// One finished run as the charts and the per-job run list draw it.
struct RunPoint {
  std::string run_id;
  double started_at_s = 0;  // Unix seconds: the charts' x axis is real time
  std::string status;       // "ok", "failed", "oom", "skipped", ...
  std::optional<double> wall_s;
  std::optional<uint64_t> memory_peak_bytes;
  std::optional<double> db_queries;
  std::optional<uint64_t> oom_kills;           // inside the run (a child may die, the job end ok)
  std::optional<uint64_t> memory_limit_bytes;  // the limit this run had
  std::optional<double> timeout_s;             // the timeout this run had
  std::optional<int> exit_code;
};

// Runs of one job on one UTC day, for the daily strip.
struct DayCounts {
  uint32_t ok = 0;
  uint32_t bad = 0;      // failed, killed, timeout, oom, error, lost, or ok with OOM kills
  uint32_t skipped = 0;
  uint32_t missed = 0;   // ticks with no run at all (only with --crontab)
};

// Per-job state tokens, as profiler/status.h spells them (and CSS classes use).
inline constexpr const char* kStates[] = {"failing", "missed", "late", "running", "up", "never_run"};

struct JobRow {
  std::string job;
  std::string state = "never_run";  // one of kStates
  std::string state_reason;         // one line: why this state
  std::optional<std::string> schedule;  // from the crontab, when given
  std::optional<std::string> last_started_at;
  std::string last_status;
  std::optional<std::string> last_run_id;
  size_t runs = 0;
  size_t ok = 0;         // ended ok
  size_t failures = 0;   // failed, killed, timeout, oom, error, lost
  size_t skipped = 0;
  uint64_t oom_kills = 0;          // summed over the window's runs
  size_t runs_with_oom_kills = 0;  // of them, how many runs had any
  uint64_t missed_ticks = 0;       // with --crontab
  uint64_t late_ticks = 0;
  std::optional<double> wall_p95_s;
  std::optional<uint64_t> memory_peak_p95_bytes;
  // When no run had a cgroup peak (an ordinary user without delegation): the
  // largest process's RSS, a lower bound, shown marked "rss".
  std::optional<uint64_t> max_rss_p95_bytes;
  std::optional<double> cpu_p95_s;  // CPU seconds per run
  std::optional<double> db_queries_p95;
  // Suggested limits (as `cronprof suggest` would write them).
  std::optional<uint64_t> suggested_memory_bytes;
  std::optional<double> suggested_cpu_pct;
  std::optional<double> suggested_timeout_s;
  std::optional<uint64_t> suggested_pids;
  std::vector<RunPoint> series;  // finished runs that executed, oldest first
  std::vector<RunPoint> recent;  // newest runs of any status (and the newest bad ones), newest first
  std::vector<DayCounts> days;   // one per day of ReportInput::days_start_s.., oldest first
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

// One run's page section: `cronprof show`'s profile and the end of its log.
struct RunDetail {
  std::string run_id;
  std::string job;
  std::string started_at;
  std::string status;
  std::string profile;                  // render_profile() text
  std::optional<std::string> log_tail;  // the log's last bytes, when kept and readable
  std::string log_note;                 // log not kept, how much of it is shown, or why it was not read
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
  double window_start_s = 0;  // Unix seconds: the charts' x range is [window_start_s, now_s]
  double now_s = 0;
  double days_start_s = 0;    // UTC midnight of the daily strip's first day
  bool schedule_known = false;  // state from the crontabs (missed, late) or from the history only
  std::vector<JobRow> jobs;       // most urgent first (see sort_jobs)
  std::vector<Failure> failures;  // newest first
  std::vector<RunDetail> runs;    // the runs the page links to
  std::optional<HeatMap> heatmap;
  std::vector<std::string> notes;  // shown under the title (e.g. crontab lines rejected)
};

// The whole document. Every job name, path, profile and log line is HTML-escaped;
// the chart data travels as JSON inside a non-executed <script type="application/json">.
std::string render_html(const ReportInput& in);

// &, <, >, " and ' as entities.
std::string html_escape(std::string_view text);

// Orders jobs as the page lists them: failing, missed, late, running, up, never
// run; by name within a state.
void sort_jobs(std::vector<JobRow>& jobs);

// Whether a run of this status (and OOM kills inside it) counts as bad: drawn as
// such and counted in the strip's red.
bool bad_run(std::string_view status, std::optional<uint64_t> oom_kills);

// Whether Chart.js was found when cronprof was built (or is installed now, see
// report_html.cc); without it the report has its tables and heat-map but no charts.
bool charts_available();

}  // namespace cronrun::report
