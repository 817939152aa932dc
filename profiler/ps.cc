// `cronprof ps`: runs in progress now — `running` rows whose runner is alive —
// with live figures read from each run's cgroup through the read-only half of the
// cgroup module (cgroup::LiveReader: no libcgroup, nothing written; the host's
// mounts are read once per listing, not once per run). A run without a cgroup
// (isolation none, rusage accounting), or a figure whose cgroup the run did not
// make (usage.not_measured), has no live figure; the columns read "-" rather than 0.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <vector>

#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"
#include "runner/cgroup_read.h"

namespace cronrun::prof {

Command add_ps(CLI::App& parent, const Global& g) {
  CLI::App* app = parent.add_subcommand("ps", "Runs in progress now, with live cgroup figures");
  return {app, [&g]() -> int {
            auto store = open_history(g);
            if (!store) return store.error();
            // in_progress(), with a damaged row skipped and named instead of failing it all.
            RunFilter running;
            running.status = RunStatus::running;
            SkippedRows skipped;
            std::vector<RunRecord> live_runs;
            if (auto r = store->each_run(running, [&](const RunRecord& rec) { live_runs.push_back(rec); },
                                         skipped.callback());
                !r)
              return query_failed(*store, r.error());
            const auto* runs = &live_runs;
            double now = now_unix_s();
            // Only when there is a cgroup to read: a host without /proc mounts
            // still lists its runs.
            std::optional<Result<cgroup::LiveReader>> reader;
            nlohmann::json arr = nlohmann::json::array();
            // A central history's runs are on many hosts: a HOST column, and no
            // live figures (each run's cgroup is on its own host, not here).
            std::vector<Column> columns = {{.header = "RUN ID", .min_width = 14},
                                           {.header = "JOB", .min_width = 12},
                                           {.header = "STARTED", .drop = 4},
                                           {.header = "ELAPSED", .right = true},
                                           {.header = "MEM NOW", .right = true},
                                           {.header = "MEM LIMIT", .right = true, .drop = 2},
                                           {.header = "CPU SO FAR", .right = true, .drop = 3},
                                           {.header = "TASKS", .right = true, .drop = 1},
                                           {.header = "RUNNER", .right = true, .drop = 5}};
            if (g.central) columns.insert(columns.begin() + 2, Column{.header = "HOST", .min_width = 10});
            Table t(std::move(columns));
            for (const RunRecord& r : *runs) {
              std::optional<double> elapsed, started_s;
              if (auto started = parse_rfc3339(r.started_at)) {
                started_s = *started;
                elapsed = std::max(0.0, now - *started);
              }
              cgroup::LiveUsage live;
              std::optional<std::string> live_error;
              if (g.central) {
                live_error = "not read here: the run is on host " + r.host + " (cronprof ps there reads it)";
              } else if (r.isolation.path && r.isolation.cgroup != "none") {
                if (!reader) reader = cgroup::LiveReader::open();
                auto layout = cgroup::parse_layout(r.isolation.cgroup);
                auto got = !*reader ? Result<cgroup::LiveUsage>(std::unexpected((*reader).error()))
                           : layout ? (**reader).read(*layout, *r.isolation.path)
                                    : Result<cgroup::LiveUsage>(std::unexpected(layout.error()));
                if (got)
                  live = *got;
                else
                  live_error = got.error().message();  // shown per run, not fatal: the run may just have ended
              }
              auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
              arr.push_back({{"run_id", r.run_id},
                             {"job", r.job},
                             {"host", r.host},
                             {"started_at", started_s ? json_time(*started_s) : nlohmann::json(r.started_at)},
                             {"elapsed_s", opt(elapsed)},
                             {"runner_pid", r.runner_pid},
                             {"cgroup", opt(r.isolation.path)},
                             {"memory_current_bytes", opt(live.memory_current_bytes)},
                             {"memory_peak_bytes", opt(live.memory_peak_bytes)},
                             {"memory_max_bytes", opt(r.limits.memory_max_bytes)},
                             {"cpu_s", opt(live.cpu_s)},
                             {"pids_current", opt(live.pids_current)},
                             {"io_read_bytes", opt(live.io_read_bytes)},
                             {"io_write_bytes", opt(live.io_write_bytes)},
                             {"pressure_some_s",
                              {{"cpu", opt(live.pressure_some_s.cpu)},
                               {"memory", opt(live.pressure_some_s.memory)},
                               {"io", opt(live.pressure_some_s.io)}}},
                             {"timeout_s", opt(r.limits.timeout_s)},
                             {"live_error", opt(live_error)}});
              std::vector<std::string> cells = {r.run_id, r.job, started_s ? format_utc(*started_s) : r.started_at,
                                                duration_or_dash(elapsed), size_or_dash(live.memory_current_bytes),
                                                size_or_dash(r.limits.memory_max_bytes), duration_or_dash(live.cpu_s),
                                                live.pids_current ? std::to_string(*live.pids_current) : "-",
                                                r.runner_pid > 0 ? std::to_string(r.runner_pid) : "-"};
              if (g.central) cells.insert(cells.begin() + 2, r.host);
              t.add(std::move(cells));
              if (live_error && !g.json && !g.central) print_error("run " + r.run_id + ": " + *live_error);
            }
            if (g.json) {
              std::printf("%s\n",
                          json_text(nlohmann::json{{"schema", "cronrun.ps/1"}, {"runs", std::move(arr)}}, 2).c_str());
            } else if (t.empty()) {
              std::printf("no runs in progress\n");
            } else {
              t.fit(output_width(g));
              std::fputs(t.render().c_str(), stdout);
              if (g.central) std::printf("live figures are read on each run's own host (cronprof ps there)\n");
            }
            skipped.report(g.history_label);
            return kExitOk;
          },
          []() {
            CentralScope s;
            s.status = RunStatus::running;  // runs in progress are all it shows
            return s;
          }};
}

}  // namespace cronrun::prof
