// `cronprof runs [--job J] [--since 7d] [--status S] [--limit N]`: one line per
// run, newest first. The table reads only indexed columns; --json prints the
// full run records. Both print as they read: a listing of every run of a large
// history is never held in memory.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

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

// What the table shows of a full record (the central history's rows, read with
// their host).
RunFigures figures_of(const RunRecord& r) {
  RunFigures f;
  f.run_id = r.run_id;
  f.job = r.job;
  f.status = r.status;
  if (auto s = parse_rfc3339(r.started_at)) f.started_at_s = *s;
  f.wall_s = r.wall_s;
  f.exit_code = r.exit_code;
  if (r.usage.cpu_user_s || r.usage.cpu_system_s) f.cpu_s = r.usage.cpu_user_s.value_or(0) + r.usage.cpu_system_s.value_or(0);
  f.memory_peak_bytes = r.usage.memory_peak_bytes;
  f.max_rss_bytes = r.usage.max_rss_bytes;
  return f;
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
                print_usage_error("--status: " + s.error().message());
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
              skipped.report(g.history_label);
              return kExitOk;
            }
            // A narrow terminal leaves out CPU, then peak memory, exit code and wall
            // time; long job names and the run id are shortened (a run id prefix
            // still names the run for `show`). A central history (rows of many
            // hosts) has a HOST column, read from the records: the figures index
            // has no host.
            const bool hosts = g.central;
            std::vector<Column> columns = {{.header = "STARTED"},
                                           {.header = "JOB", .min_width = 12},
                                           {.header = "STATUS"},
                                           {.header = "EXIT", .right = true, .drop = 2},
                                           {.header = "WALL", .right = true, .drop = 1},
                                           {.header = "CPU", .right = true, .drop = 4},
                                           {.header = "PEAK MEM", .right = true, .drop = 3},
                                           {.header = "RUN ID", .min_width = 14}};
            if (hosts) columns.insert(columns.begin() + 2, Column{.header = "HOST", .min_width = 10});
            Table t(std::move(columns));
            auto cells = [&](const RunFigures& x, const std::string* host) -> std::vector<std::string> {
              std::vector<std::string> c = {format_utc(x.started_at_s), x.job, to_string(x.status), exit_text(x),
                                            duration_or_dash(x.wall_s), duration_or_dash(x.cpu_s), memory_text(x),
                                            x.run_id};
              if (host) c.insert(c.begin() + 2, *host);
              return c;
            };
            // Two passes over one snapshot of the history, so no listing is held
            // in memory: the first measures the columns, the second prints.
            // The first pass's unreadable rows are the second's: named once, there.
            bool any = false;
            auto pass = [&](const std::function<void(const std::vector<std::string>&)>& fn,
                            const HistoryStore::CorruptRowFn& on_corrupt) -> Result<void> {
              if (!hosts) return store->scan(f, [&](const RunFigures& x) { fn(cells(x, nullptr)); }, on_corrupt);
              return store->each_run(f, [&](const RunRecord& rec) { fn(cells(figures_of(rec), &rec.host)); }, on_corrupt);
            };
            auto r = store->read_snapshot([&]() -> Result<void> {
              auto widths = pass([&](const std::vector<std::string>& c) {
                t.measure(c);
                any = true;
              }, [](const std::string&, const Error&) {});
              if (!widths) return widths;
              if (!any) return {};
              t.fit(output_width(g));
              std::fputs(t.header_line().c_str(), stdout);
              return pass([&](const std::vector<std::string>& c) { std::fputs(t.line(c).c_str(), stdout); },
                          skipped.callback());
            });
            if (!r) return query_failed(*store, r.error());
            skipped.report(g.history_label);
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
          },
          [opts]() { return window_scope(opts->since, opts->job, opts->status); }};
}

}  // namespace cronrun::prof
