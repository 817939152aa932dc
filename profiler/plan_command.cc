// `cronprof plan --crontab FILE... [--host-memory SIZE] [--host-cpus N] [--since 30d]
// [--week DATE] [--max-moves N]`: the capacity plan (plan.h) of the given crontabs
// weighed with the history. A missing history is not an error here: the plan
// still lists the schedule and says every job is unprofiled.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"
#include "profiler/plan_history.h"
#include "profiler/plan_run.h"

namespace cronrun::prof {

namespace {

// The history's profiles, or none when there is no history yet (noted in `notes`).
std::expected<std::vector<plan::JobProfile>, int> profiles_or_none(const Global& g, double since,
                                                                   std::vector<std::string>& notes) {
  HistoryFault fault = HistoryFault::none;
  auto store = HistoryStore::open(g.history_path, HistoryStore::Mode::read_only, &fault);
  if (store) print_journal_notes(*store);
  if (!store) {
    if (fault == HistoryFault::missing) {
      notes.push_back("no history at " + g.history_label + ": no job is profiled yet");
      return std::vector<plan::JobProfile>{};
    }
    print_error(store.error().message());
    return std::unexpected(exit_code_for(fault));
  }
  auto profiles = plan::load_profiles(*store, since);
  if (!profiles) return std::unexpected(query_failed(*store, profiles.error()));
  return std::move(*profiles);
}

}  // namespace

Command add_plan(CLI::App& parent, const Global& g) {
  struct Opts {
    plan::PlanArgs args;
    std::string since = "30d";
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand(
      "plan", "Capacity plan of crontabs over a week: peak concurrent memory and CPU, lost runs, stagger proposal");
  app->add_option("--crontab", opts->args.crontabs,
                  "Crontab files or directories (/etc/crontab, /etc/cron.d, a user crontab)")
      ->type_name("FILE")
      ->required()
      ->expected(1, -1);
  app->add_option("--host-memory", opts->args.host_memory, "Host memory (default: MemTotal of this machine)")
      ->type_name("SIZE");
  app->add_option("--host-cpus", opts->args.host_cpus, "Host CPUs (default: nproc)")
      ->check(CLI::PositiveNumber)
      ->type_name("N");
  app->add_option("--since", opts->since, "History window for the job profiles (default 30d)")->type_name("DURATION");
  app->add_option("--week", opts->args.week, "Plan the week (Monday to Sunday) holding this date, YYYY-MM-DD "
                                             "(default: this week)")
      ->type_name("DATE");
  app->add_option("--max-moves", opts->args.max_moves, "Stagger: entries the proposal may move (default 10)")
      ->type_name("N");
  return {app, [opts, &g]() -> int {
            double now = now_unix_s();
            auto since = window_option("--since", opts->since, now);
            if (!since) return since.error();
            std::vector<std::string> notes;
            auto profiles = profiles_or_none(g, *since, notes);
            if (!profiles) return profiles.error();
            opts->args.history_path = g.history_label;
            auto out = plan::run_plan(opts->args, *profiles);
            if (!out) {
              print_usage_error(out.error().message());
              return kExitUsage;
            }
            out->plan.notes.insert(out->plan.notes.begin(), notes.begin(), notes.end());
            if (g.json) {
              nlohmann::json j = plan::to_json(out->plan, out->rejected);
              j["since"] = json_time(*since);
              std::printf("%s\n", json_text(j, 2).c_str());
            } else {
              std::fputs(term_lines(plan::format_text(out->plan, out->rejected, output_width(g))).c_str(), stdout);
            }
            return kExitOk;
          },
          [opts]() { return window_scope(opts->since, ""); }};
}

}  // namespace cronrun::prof
