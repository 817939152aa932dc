// `cronprof report --html OUT [--since 30d] [--crontab FILE...]`: writes the
// self-contained HTML report (report_html.h). With --crontab each job's state is
// judged against its schedule as `cronprof status` judges it (missed, late;
// report_html_status.h), and the planned week's memory heat-map is added (the
// plan's pessimistic case). The file is written next
// to OUT and renamed over it, so a web server never serves half a report. A
// missing or empty history still gives a report, one that says there is nothing
// yet.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/config_edit.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"
#include "profiler/plan_history.h"
#include "profiler/plan_run.h"
#include "profiler/report_html.h"
#include "profiler/report_html_history.h"
#include "profiler/report_html_status.h"
#include "profiler/status.h"

namespace cronrun::prof {

namespace {

// "-" and /dev/stdout write to standard output (a pipe, a terminal); any other
// target goes through write_file_atomically: a fresh O_EXCL temp file in a checked
// directory, renamed over a regular file only, so a symlink or FIFO planted at the
// target or at a guessable temp name is never written through.
Result<void> write_atomically(const std::string& path, const std::string& text) {
  if (path == "-" || path == "/dev/stdout") {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
      return fail_sys("write", "standard output");
    return {};
  }
  return write_file_atomically(path, text);
}

std::string peak_text(const plan::Peak& p) {
  std::string jobs;
  for (size_t i = 0; i < p.jobs.size() && i < 5; ++i) jobs += fmt::format("{}{}", i ? ", " : "", p.jobs[i].job);
  if (p.jobs.size() > 5) jobs += ", ...";
  return fmt::format("{} at {}{}", units::format_size(p.memory_bytes), plan::weekday_hhmm(p.minute),
                     jobs.empty() ? std::string() : fmt::format(" ({})", jobs));
}

}  // namespace

Command add_report(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string html;
    std::string since = "30d";
    plan::PlanArgs plan;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand("report", "Self-contained HTML report: per-job table and charts, "
                                                  "planned week heat-map, recent failures");
  app->add_option("--html", opts->html, "Write the report to this file (- for standard output)")
      ->type_name("OUT")
      ->required();
  app->add_option("--since", opts->since, "Window, e.g. 30d, 12h (default 30d)")->type_name("DURATION");
  app->add_option("--crontab", opts->plan.crontabs,
                  "Crontabs: each job's state against its schedule (missed, late; see `status`) and the "
                  "planned-week heat-map (see `plan`)")
      ->type_name("FILE")
      ->expected(1, -1);
  app->add_option("--host-memory", opts->plan.host_memory, "Host memory for the heat-map (default: this machine)")
      ->type_name("SIZE");
  app->add_option("--week", opts->plan.week, "Heat-map of the week holding this date (default: this week)")
      ->type_name("DATE");
  return {app, [opts, &g]() -> int {
            double now = now_unix_s();
            auto since = window_option("--since", opts->since, now);
            if (!since) return since.error();
            report::ReportInput in;
            std::vector<plan::JobProfile> profiles;
            HistoryFault fault = HistoryFault::none;
            auto store = HistoryStore::open(g.history_path, HistoryStore::Mode::read_only, &fault);
            if (store) print_journal_notes(*store);
            if (store) {
              auto r = report::report_from_history(*store, *since, now, opts->since);
              if (!r) return query_failed(*store, r.error());
              in = std::move(*r);
              in.history_path = g.history_label;  // the URI, not the private copy, for a central history
              if (!opts->plan.crontabs.empty()) {
                auto p = plan::load_profiles(*store, *since);
                if (!p) return query_failed(*store, p.error());
                profiles = std::move(*p);
              }
            } else if (fault == HistoryFault::missing) {
              // Nothing recorded yet: still a report, saying so.
              report::ReportInput empty;
              char host[256] = {};
              ::gethostname(host, sizeof host - 1);
              empty.host = host;
              empty.generated_at = format_utc(now);
              empty.window = opts->since;
              empty.history_path = g.history_label;
              empty.window_start_s = *since;
              empty.now_s = now;
              empty.notes.push_back("There is no history file yet at " + g.history_label + ".");
              in = std::move(empty);
            } else {
              print_error(store.error().message());
              return exit_code_for(fault);
            }
            if (!opts->plan.crontabs.empty()) {
              // State against the schedule, as `cronprof status` computes it.
              auto crontabs = status::load_crontabs(opts->plan.crontabs);
              if (!crontabs) {
                print_error("--crontab: " + crontabs.error().message());
                return kExitUsage;
              }
              status::Options so;
              so.now_s = now;
              so.window_s = now - *since;
              if (!g.central) so.history_path = g.history_path;
              auto st = status::compute_status(store ? &*store : nullptr, *crontabs, so);
              if (!st && store) return query_failed(*store, st.error());
              if (!st) {
                print_error(st.error().message());
                return kExitFailure;
              }
              report::apply_status(in, *st);
              opts->plan.history_path = g.history_label;
              auto out = plan::run_plan(opts->plan, profiles);
              if (!out) {
                print_usage_error(out.error().message());
                return kExitUsage;
              }
              const plan::PlanResult& p = out->plan;
              report::HeatMap hm;
              hm.week = fmt::format("{:04}-{:02}-{:02}", p.week.year, p.week.month, p.week.day);
              hm.memory_bytes = plan::hourly_memory_max(p.pessimistic);
              hm.host_memory_bytes = p.host.memory_bytes;
              hm.peak = peak_text(p.pessimistic.memory_peak);
              in.heatmap = hm;
              if (!out->rejected.empty())
                in.notes.push_back(fmt::format("{} crontab line(s) rejected; cronprof plan lists them.",
                                               out->rejected.size()));
            }
            if (auto w = write_atomically(opts->html, report::render_html(in)); !w) {
              print_error("--html: " + w.error().message());
              return kExitFailure;
            }
            if (g.json) {
              nlohmann::json states = nlohmann::json::object();
              for (const auto& j : in.jobs) states[j.state] = states.value(j.state, 0) + 1;
              std::printf("%s\n", json_text(nlohmann::json({{"schema", "cronrun.report/1"},
                                                            {"path", opts->html},
                                                            {"jobs", in.jobs.size()},
                                                            {"states", states},
                                                            {"failures", in.failures.size()},
                                                            {"runs", in.runs.size()},
                                                            {"charts", report::charts_available()},
                                                            {"heatmap", in.heatmap.has_value()}}),
                                             2)
                                       .c_str());
            }
            return kExitOk;
          },
          [opts]() {
            // The window, each job's newest ok run before it (LAST SUCCESS), and with
            // --crontab what the state against the schedule reads.
            CentralScope s = window_scope(opts->since, "");
            if (s.nothing) return s;
            s.last_success_before = true;
            if (opts->plan.crontabs.empty()) return s;
            auto crontabs = status::load_crontabs(opts->plan.crontabs);
            if (!crontabs) return CentralScope::none();
            status::Options o;
            o.now_s = now_unix_s();
            o.window_s = o.now_s - *s.since_unix_s;
            s.since_unix_s = std::min(*s.since_unix_s, status::reads(*crontabs, o).since_s);
            s.newest_before = true;
            return s;
          }};
}

}  // namespace cronrun::prof
