// How cronprof subcommands plug into the thin main: each subcommand file defines
// one add_<name>() that registers its CLI11 sub-app and returns what to run when
// that sub-app was selected. Exit codes are in profiler/exit_codes.h.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/run_record.h"

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
  std::string central_uri;   // that URI, password included (for a subcommand's own queries)
  bool json = false;         // --json
  bool wide = false;         // --wide: tables as wide as their content (cli_support.h output_width)
};

// The rows of a central history (--history postgresql://) a subcommand reads. The
// private copy (profiler/central_history.h) holds only these, so that `runs
// --since 7d` of a fleet does not first copy its every run. The window is taken
// a moment before the subcommand takes its own, so it holds a little more.
struct CentralScope {
  std::optional<double> since_unix_s;  // started_at >= this
  std::optional<std::string> job;
  std::optional<std::vector<std::string>> jobs;  // one of these (status: the crontabs' jobs)
  std::optional<RunStatus> status;     // as the central history stores it
  // Also each job's newest ok run before since_unix_s (summary's last success).
  bool last_success_before = false;
  // Also each job's newest run, newest executed (not skipped), newest finished
  // executing (neither skipped nor running) and newest ok run before since_unix_s:
  // what status walks back to (status::reads).
  bool newest_before = false;
  // Also, on each host, each job's newest run that executed and ended, its newest
  // ok run, and every running row: what export --format prometheus reads beside
  // the counts it asks the database for. Without since_unix_s, only these.
  bool last_per_host = false;
  // Instead of all the above: the runs whose id starts with this, and the newest
  // run of the job so named (show's RUN-ID or JOB).
  std::optional<std::string> run_or_job;
  // The subcommand's own options do not parse: it will say so; nothing to copy.
  bool nothing = false;
  static CentralScope none() {
    CentralScope s;
    s.nothing = true;
    return s;
  }
};

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
  // Unset: the subcommand reads the whole central history.
  std::function<CentralScope()> central_scope = {};
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
