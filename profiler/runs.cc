// `cronprof runs [--job J] [--since 7d] [--status S] [--limit N]`: one line per
// run, newest first. The table reads only indexed columns; --json prints the
// full run records. Both print as they read: a listing of every run of a large
// history is never held in memory.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

namespace {

// The cgroup peak; without cgroup accounting the largest process' RSS, marked as
// such (it is a different, smaller figure).
std::string memory_text(const RunFigures& f) {
  if (f.memory_peak_bytes) return size_or_dash(f.memory_peak_bytes);
  if (f.max_rss_bytes) return "rss " + size_or_dash(f.max_rss_bytes);
  return "-";
}

std::string exit_text(const RunFigures& f) {
  if (f.exit_code) return std::to_string(*f.exit_code);
  return "-";
}

}  // namespace

Command add_runs(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string job;
    std::string since = "7d";
    std::string status;
    size_t limit = 100;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand("runs", "Recent runs, one line each, newest first");
  app->add_option("--job", opts->job, "Only this job");
  app->add_option("--since", opts->since, "Window, e.g. 7d, 12h (default 7d)");
  app->add_option("--status", opts->status, "Only runs with this status (ok, failed, killed, timeout, oom, "
                                            "skipped, error, running, lost)");
  app->add_option("--limit", opts->limit, "At most N runs (default 100; 0 = all)");
  return {app, [opts, &g]() -> int {
            RunFilter f;
            if (!opts->job.empty()) f.job = opts->job;
            auto since = window_option("--since", opts->since, now_unix_s());
            if (!since) return since.error();
            f.since_unix_s = *since;
            if (!opts->status.empty()) {
              auto s = parse_run_status(opts->status);
              if (!s) {
                print_error("--status: " + s.error().message());
                return kExitUsage;
              }
              f.status = *s;
            }
            if (opts->limit > 0) f.limit = opts->limit;
            auto store = open_history(g);
            if (!store) return store.error();

            SkippedRows skipped;
            if (g.json) {
              // Printed as read, one record at a time (JsonListPrinter: the same
              // text as the whole array dumped at once).
              JsonListPrinter list(stdout, "runs", {{"schema", "cronrun.runs/1"}, {"since", json_time(*since)}});
              auto r = store->each_run(f, [&](const RunRecord& rec) { list.add(to_json(rec)); }, skipped.callback());
              if (!r) {
                // Left unclosed: a parser must not take the part read for the whole.
                std::fputs("\n", stdout);
                return query_failed(*store, r.error());
              }
              list.finish();
              skipped.report(g.history_path);
              return kExitOk;
            }
            // A narrow terminal leaves out CPU, then peak memory, exit code and wall
            // time; long job names and the run id are shortened (a run id prefix
            // still names the run for `show`).
            Table t({{.header = "STARTED"},
                     {.header = "JOB", .min_width = 12},
                     {.header = "STATUS"},
                     {.header = "EXIT", .right = true, .drop = 2},
                     {.header = "WALL", .right = true, .drop = 1},
                     {.header = "CPU", .right = true, .drop = 4},
                     {.header = "PEAK MEM", .right = true, .drop = 3},
                     {.header = "RUN ID", .min_width = 14}});
            auto cells = [](const RunFigures& x) -> std::vector<std::string> {
              return {format_utc(x.started_at_s), x.job, to_string(x.status), exit_text(x), duration_or_dash(x.wall_s),
                      duration_or_dash(x.cpu_s), memory_text(x), x.run_id};
            };
            // Two passes over one snapshot of the history, so no listing is held
            // in memory: the first measures the columns, the second prints.
            // The first pass's unreadable rows are the second's: named once, there.
            bool any = false;
            auto r = store->read_snapshot([&]() -> Result<void> {
              auto widths = store->scan(f, [&](const RunFigures& x) {
                t.measure(cells(x));
                any = true;
              }, [](const std::string&, const Error&) {});
              if (!widths) return widths;
              if (!any) return {};
              t.fit(output_width(g));
              std::fputs(t.header_line().c_str(), stdout);
              return store->scan(f, [&](const RunFigures& x) { std::fputs(t.line(cells(x)).c_str(), stdout); },
                                 skipped.callback());
            });
            if (!r) return query_failed(*store, r.error());
            skipped.report(g.history_path);
            if (!any) {
              std::printf("no runs since %s\n", format_utc(*since).c_str());
              return kExitOk;
            }
            if (f.limit) {
              // Tell people (not scripts: stderr) when the limit hid older runs.
              RunFilter all = f;
              all.limit.reset();
              if (auto n = store->count(all); n && *n > *f.limit)
                std::fprintf(stderr, "cronprof: showing the newest %zu of %llu runs; --limit 0 shows all\n", *f.limit,
                             static_cast<unsigned long long>(*n));
            }
            return kExitOk;
          }};
}

}  // namespace cronrun::prof
