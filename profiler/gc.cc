// `cronprof gc --keep 90d [--dry-run]`: retention. Deletes finished and lost runs
// that started longer ago than --keep, in one transaction (HistoryStore::
// delete_before); live runs are kept however old. Needs write access to the
// history (root for the system history). The kept logs of the deleted runs
// (--log-dir) are removed after their rows (gc_logs.h).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/gc_logs.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

Command add_gc(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string keep;
    bool dry_run = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand("gc", "Retention: delete runs older than --keep, in one transaction");
  app->add_option("--keep", opts->keep, "Keep runs that started within this window, e.g. 90d")->required();
  app->add_flag("--dry-run", opts->dry_run, "Only count what would be deleted");
  return {app, [opts, &g]() -> int {
            double now = now_unix_s();
            auto cutoff = window_option("--keep", opts->keep, now);
            if (!cutoff) return cutoff.error();
            // A dry run only counts: it needs no write access (nor folds the journal).
            auto store = open_history(g, opts->dry_run ? HistoryStore::Mode::read_only : HistoryStore::Mode::read_write);
            if (!store) return store.error();
            auto logs = logs_of_runs_before(*store, *cutoff);
            if (!logs) return query_failed(*store, logs.error());
            auto n = store->delete_before(*cutoff, opts->dry_run);
            if (!n) return query_failed(*store, n.error());
            LogRemoval removal;
            if (!opts->dry_run) removal = remove_run_logs(*store, *logs);
            for (const std::string& f : removal.failures) std::fprintf(stderr, "cronprof: gc: %s\n", term_text(f).c_str());
            if (g.json) {
              std::printf("%s\n", json_text(nlohmann::json{{"schema", "cronrun.gc/1"},
                                                 {"deleted", opts->dry_run ? 0 : *n},
                                                 {"would_delete", opts->dry_run ? *n : 0},
                                                 {"before", json_time(*cutoff)},
                                                 {"dry_run", opts->dry_run},
                                                 {"logs_deleted", removal.removed},
                                                 {"logs_would_delete", opts->dry_run ? logs->size() : 0},
                                                 {"logs_failed", removal.failures.size()}},
                                  2)
                                  .c_str());
            } else {
              std::printf("%s %llu runs that started before %s\n", opts->dry_run ? "would delete" : "deleted",
                          static_cast<unsigned long long>(*n), format_utc(*cutoff).c_str());
              if (!logs->empty())
                std::printf("%s %zu kept logs of those runs\n", opts->dry_run ? "would delete" : "deleted",
                            opts->dry_run ? logs->size() : static_cast<size_t>(removal.removed));
            }
            return removal.failures.empty() ? kExitOk : kExitFailure;
          }};
}

}  // namespace cronrun::prof
