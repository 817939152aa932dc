// How cronprof subcommands plug into the thin main: each subcommand file defines
// one add_<name>() that registers its CLI11 sub-app and returns what to run when
// that sub-app was selected. Exit codes are in profiler/exit_codes.h.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace cronrun::prof {

struct Global {
  std::string history_path;  // --history, resolved to the default when empty
  // What messages name as the history: history_path, or for --history
  // postgresql://... the URI (password hidden) while history_path is the
  // private SQLite copy of it (profiler/central_history.h).
  std::string history_label;
  bool central = false;      // --history postgresql://: rows of many hosts (host columns shown)
  bool json = false;         // --json
  bool wide = false;         // --wide: tables as wide as their content (cli_support.h output_width)
};

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_runs(CLI::App& parent, const Global& g);
Command add_show(CLI::App& parent, const Global& g);
Command add_summary(CLI::App& parent, const Global& g);
Command add_suggest(CLI::App& parent, const Global& g);
Command add_export(CLI::App& parent, const Global& g);
Command add_ps(CLI::App& parent, const Global& g);
Command add_gc(CLI::App& parent, const Global& g);
Command add_plan(CLI::App& parent, const Global& g);    // capacity plan (planner)
Command add_report(CLI::App& parent, const Global& g);  // HTML report (planner)
Command add_status(CLI::App& parent, const Global& g);  // status against the schedule (planner)
Command add_fleet(CLI::App& parent, const Global& g);   // fleet mode: etcd + central history (profiler/fleet.h)

}  // namespace cronrun::prof
