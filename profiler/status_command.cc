// `cronprof status [--crontab FILE...] [--since 1d] [--grace 10%|DURATION]
// [--job J]`: per cronrun job in the crontabs, its state against the schedule
// (status.h), as a table or --json. The exit status makes it a monitoring check:
// 0 when nothing alerts, kExitStatusAlert when a job is failing or missed, the
// usual history codes when the history cannot be read. A missing history is not
// an error: every job is then never run, or missed when its ticks came due.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/status.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

Command add_status(CLI::App& parent, const Global& g) {
  struct Opts {
    std::vector<std::string> crontabs;
    std::string since = "1d";
    std::string grace = "10%";
    std::string job;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand(
      "status", "Per job against the schedule: up, failing, late, missed, running, never run (exit 8 on failing/missed)");
  app->add_option("--crontab", opts->crontabs,
                  "Crontab files or directories (default: /etc/crontab, /etc/cron.d, your crontab)")
      ->type_name("FILE")
      ->expected(1, -1);
  app->add_option("--since", opts->since, "Window for the missed and late counts (default 1d)")->type_name("DURATION");
  app->add_option("--grace", opts->grace,
                  "How late a start may be after its tick: a share of the period (default 10%, at least 30s) or a "
                  "duration")
      ->type_name("PCT|DURATION");
  app->add_option("--job", opts->job, "Only this job")->type_name("J");
  return {app,
          [opts, &g]() -> int {
            status::Options o;
            o.now_s = now_unix_s();
            auto since = window_option("--since", opts->since, o.now_s);
            if (!since) return since.error();
            o.window_s = o.now_s - *since;
            auto grace = status::parse_grace(opts->grace);
            if (!grace) {
              print_usage_error(grace.error().message());
              return kExitUsage;
            }
            o.grace = *grace;
            if (!opts->job.empty()) o.job = opts->job;
            // A central history's rows come from many hosts' own histories.
            if (!g.central) o.history_path = g.history_path;
            auto crontabs = status::load_crontabs(opts->crontabs);
            if (!crontabs) {
              print_error("--crontab: " + crontabs.error().message());
              return kExitUsage;
            }
            HistoryFault fault = HistoryFault::none;
            auto store = HistoryStore::open(g.history_path, HistoryStore::Mode::read_only, &fault);
            if (store) print_journal_notes(*store);
            if (!store && fault != HistoryFault::missing) {
              print_error(store.error().message());
              return exit_code_for(fault);
            }
            if (!store) crontabs->notes.push_back("no history at " + g.history_label);
            auto report = status::compute_status(store ? &*store : nullptr, *crontabs, o);
            if (!report) return query_failed(*store, report.error());
            std::string text =
                g.json ? json_text(status::to_json(*report), 2) + "\n" : status::format_text(*report, output_width(g));
            if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
              print_error("writing the status to standard output failed");
              return kExitFailure;
            }
            return status::exit_code(*report);
          },
          [opts]() {
            auto grace = status::parse_grace(opts->grace);
            auto crontabs = status::load_crontabs(opts->crontabs);
            if (!grace || !crontabs) return CentralScope::none();
            CentralScope s = window_scope(opts->since, opts->job);
            if (s.nothing) return s;
            status::Options o;
            o.now_s = now_unix_s();
            o.window_s = o.now_s - *s.since_unix_s;
            o.grace = *grace;
            if (!opts->job.empty()) o.job = opts->job;
            status::Reads r = status::reads(*crontabs, o);
            s.since_unix_s = r.since_s;
            s.jobs = std::move(r.jobs);
            s.newest_before = true;
            return s;
          }};
}

}  // namespace cronrun::prof
