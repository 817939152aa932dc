// cronprof: reads the cronrun history. Thin main: global options, one sub-app per
// subcommand (each registered by its own file), parse, run the selected one.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <vector>

#include "common/fd.h"

#include "common/history.h"
#include "profiler/central_history.h"
#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"

int main(int argc, char** argv) {
  using namespace cronrun::prof;
  if (!cronrun::open_standard_fds()) {
    static const char msg[] = "cronprof: /dev/null: cannot open it in place of a closed standard descriptor\n";
    [[maybe_unused]] ssize_t n = ::write(2, msg, sizeof msg - 1);
    return kExitFailure;
  }
  CLI::App app{"cronprof: profiles of cronrun jobs from their run history (see cronprof(1))", "cronprof"};
  Global g;
  app.add_option("--history", g.history_path,
                 "History database (default: cronrun's default history), or the fleet's central history as a "
                 "postgresql:// URI");
  app.add_flag("--json", g.json, "Machine-readable JSON output");
  app.add_flag("--wide", g.wide, "Tables as wide as their content, not cut to the terminal's width");
  app.set_version_flag("--version", std::string("cronprof ") + CRONRUN_VERSION, "Print cronprof's version and exit");
  app.require_subcommand(1);
  // Subcommands inherit fallthrough, so --history and --json work after the
  // subcommand name too ("cronprof runs --history X").
  app.fallthrough();
  std::vector<Command> commands = {add_runs(app, g),    add_show(app, g),   add_summary(app, g),
                                   add_suggest(app, g), add_plan(app, g),   add_report(app, g),
                                   add_export(app, g),  add_ps(app, g),     add_gc(app, g),
                                   add_status(app, g),  add_fleet(app, g)};
  app.footer(exit_status_help(""));
  for (const Command& c : commands) c.app->footer(exit_status_help(c.app->get_name()));
  // Usage errors are one "cronprof: " line, --help goes to stdout (cli_support.h).
  if (auto done = parse_command_line(app, argc, argv)) return *done;
  if (g.history_path.empty()) g.history_path = cronrun::HistoryStore::default_path();
  for (const Command& c : commands) {
    if (!c.app || !c.app->parsed() || !c.run) continue;
    // The one place the history's kind is decided: a postgresql:// URI is read
    // into a private copy that lives until the subcommand is done.
    set_running_subcommand(c.app->get_name());
    std::optional<CentralScope> scope;
    if (c.central_scope && is_central_history_uri(g.history_path)) scope = c.central_scope();
    auto copy = prepare_history(g, c.app->get_name(), scope);
    if (!copy) return copy.error();
    return c.run();
  }
  return kExitUsage;
}
