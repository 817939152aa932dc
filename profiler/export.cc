// `cronprof export --format json|csv|prometheus [--job J] [--since D] [--output FILE]`.
// JSON and CSV stream one run at a time so a large history needs no more memory
// than one record. --output replaces FILE atomically (temp + rename), which the
// textfile collector needs to never read a half-written file.
#include "profiler/export.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <tuple>

#include "profiler/central_history.h"
#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/config_edit.h"
#include "profiler/exit_codes.h"
#include "profiler/status.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

namespace {

constexpr RunStatus kStatuses[] = {RunStatus::running, RunStatus::ok,      RunStatus::failed,
                                   RunStatus::killed,  RunStatus::timeout, RunStatus::oom,
                                   RunStatus::skipped, RunStatus::error,   RunStatus::lost};

std::string num(double v) { return fmt::format("{}", v); }

// Prometheus spells non-finite sample values NaN, +Inf and -Inf.
std::string sample_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return num(v);
}

template <class T>
std::string opt(const std::optional<T>& v) {
  return v ? fmt::format("{}", *v) : "";
}

}  // namespace

std::string prometheus_label(const std::string& value) {
  // The text format knows only \\, \" and \n in a label value (any other escape
  // fails the whole file in the textfile collector). A newline keeps its \n; other
  // controls and bytes that are not UTF-8 are first spelled out by term_text,
  // whose backslashes are then escaped like any other.
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t nl = value.find('\n', start);
    for (char c : term_text(std::string_view(value).substr(start, nl == std::string::npos ? nl : nl - start))) {
      if (c == '\\') out += "\\\\";
      else if (c == '"') out += "\\\"";
      else out += c;
    }
    if (nl == std::string::npos) break;
    out += "\\n";
    start = nl + 1;
  }
  return out;
}

const std::vector<std::string>& schedule_states() {
  static const std::vector<std::string> kStates = [] {
    std::vector<std::string> v;
    for (auto s : {status::JobState::failing, status::JobState::missed, status::JobState::late,
                   status::JobState::running, status::JobState::up, status::JobState::never_run})
      v.push_back(status::to_string(s));
    return v;
  }();
  return kStates;
}

void add_run(JobMetrics& m, const RunFigures& x) {
  m.has_rows = true;
  if (x.status == RunStatus::running) {
    m.running++;
    return;
  }
  m.counts[x.status]++;
  // A skipped run did not execute: it neither succeeded nor failed.
  if (x.status == RunStatus::skipped) return;
  if (!m.last || x.started_at_s > m.last->started_at_s ||
      (x.started_at_s == m.last->started_at_s && x.run_id > m.last->run_id))
    m.last = x;
}

std::string prometheus_text(const std::vector<JobMetrics>& jobs, double generated_unix_s) {
  std::string out;
  auto family = [&](const char* name, const char* help, const char* type = "gauge") {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto sample = [&](const char* name, const JobMetrics& j, double v, const std::string& extra = "") {
    std::string host = j.host ? fmt::format(",host=\"{}\"", prometheus_label(*j.host)) : std::string();
    out += fmt::format("{}{{cronjob=\"{}\"{}{}}} {}\n", name, prometheus_label(j.job), host, extra, sample_value(v));
  };
  // One family per figure of the last run; a job whose last run did not measure
  // the figure has no sample (absent, not 0).
  struct Figure {
    const char* name;
    const char* help;
    std::optional<double> (*get)(const RunFigures&);
  };
  static const Figure kFigures[] = {
      {"cronrun_last_run_start_timestamp_seconds", "Start time of the newest finished run (Unix seconds).",
       [](const RunFigures& f) -> std::optional<double> { return f.started_at_s; }},
      {"cronrun_last_run_end_timestamp_seconds", "End time of the newest finished run (Unix seconds).",
       [](const RunFigures& f) { return f.finished_at_s; }},
      {"cronrun_last_run_duration_seconds", "Wall time of the newest finished run.",
       [](const RunFigures& f) { return f.wall_s; }},
      {"cronrun_last_run_exit_code", "Exit code of the newest finished run.",
       [](const RunFigures& f) -> std::optional<double> {
         return f.exit_code ? std::optional<double>(*f.exit_code) : std::nullopt;
       }},
      {"cronrun_last_run_success", "1 if the newest finished run succeeded, else 0.",
       [](const RunFigures& f) -> std::optional<double> { return f.status == RunStatus::ok ? 1.0 : 0.0; }},
      {"cronrun_last_run_cpu_seconds", "CPU time (user + system) of the newest finished run.",
       [](const RunFigures& f) { return f.cpu_s; }},
      {"cronrun_last_run_memory_peak_bytes", "Peak cgroup memory of the newest finished run.",
       [](const RunFigures& f) -> std::optional<double> {
         return f.memory_peak_bytes ? std::optional<double>(static_cast<double>(*f.memory_peak_bytes)) : std::nullopt;
       }},
      {"cronrun_last_run_memory_limit_bytes", "Memory limit the newest finished run had.",
       [](const RunFigures& f) -> std::optional<double> {
         return f.memory_max_bytes ? std::optional<double>(static_cast<double>(*f.memory_max_bytes)) : std::nullopt;
       }},
      {"cronrun_last_run_oom_kills", "OOM kills in the newest finished run.",
       [](const RunFigures& f) -> std::optional<double> {
         return f.oom_kills ? std::optional<double>(static_cast<double>(*f.oom_kills)) : std::nullopt;
       }},
      {"cronrun_last_run_cpu_throttled_seconds", "Time the newest finished run was CPU-throttled.",
       [](const RunFigures& f) { return f.cpu_throttled_s; }},
      {"cronrun_last_run_db_queries", "Database queries counted in the newest finished run.",
       [](const RunFigures& f) { return f.db_queries; }},
  };
  for (const Figure& fig : kFigures) {
    family(fig.name, fig.help);
    for (const JobMetrics& j : jobs) {
      if (!j.last) continue;
      if (auto v = fig.get(*j.last)) sample(fig.name, j, *v);
    }
  }
  family("cronrun_last_run_status", "Status of the newest finished run: 1 for its status, 0 for the others.");
  for (const JobMetrics& j : jobs) {
    if (!j.last) continue;
    for (RunStatus s : kStatuses) {
      if (s == RunStatus::running || s == RunStatus::skipped) continue;
      sample("cronrun_last_run_status", j, j.last->status == s ? 1 : 0,
             fmt::format(",status=\"{}\"", to_string(s)));
    }
  }
  family("cronrun_last_success_timestamp_seconds",
         "Start time of the newest successful run (Unix seconds); 0 if the job never succeeded.");
  for (const JobMetrics& j : jobs) {
    if (j.has_rows) sample("cronrun_last_success_timestamp_seconds", j, j.last_success_s.value_or(0));
  }
  // Per host: an entry without one is a job known only from the crontabs'
  // schedule, which has no runs of its own to count.
  const bool by_host = std::any_of(jobs.begin(), jobs.end(), [](const JobMetrics& j) { return j.host.has_value(); });
  family("cronrun_runs_total",
         "Runs recorded, by final status, including runs cronprof gc has since removed from the history.",
         "counter");
  for (const JobMetrics& j : jobs) {
    if (by_host && !j.host) continue;
    for (RunStatus s : kStatuses) {
      if (s == RunStatus::running) continue;
      auto it = j.counts.find(s);
      sample("cronrun_runs_total", j, static_cast<double>(it == j.counts.end() ? 0 : it->second),
             fmt::format(",status=\"{}\"", to_string(s)));
    }
  }
  family("cronrun_runs_in_progress", "Runs of the job in progress now (runner alive).");
  for (const JobMetrics& j : jobs)
    if (!by_host || j.host) sample("cronrun_runs_in_progress", j, static_cast<double>(j.running));
  // Against the schedule: only with --crontab, only for the jobs the crontabs run.
  bool scheduled = std::any_of(jobs.begin(), jobs.end(), [](const JobMetrics& j) { return j.schedule.has_value(); });
  if (scheduled) {
    family("cronrun_missed_ticks",
           "Ticks of the job's crontab schedule in the last day that had no run at all, not even a skip.");
    for (const JobMetrics& j : jobs)
      if (j.schedule) sample("cronrun_missed_ticks", j, static_cast<double>(j.schedule->missed));
    family("cronrun_late_ticks", "Ticks of the job's crontab schedule in the last day whose run started after the grace.");
    for (const JobMetrics& j : jobs)
      if (j.schedule) sample("cronrun_late_ticks", j, static_cast<double>(j.schedule->late));
    family("cronrun_job_state", "The job's state against its schedule (cronprof status): 1 for its state, 0 for the others.");
    for (const JobMetrics& j : jobs) {
      if (!j.schedule) continue;
      for (const std::string& s : schedule_states())
        sample("cronrun_job_state", j, j.schedule->state == s ? 1 : 0, fmt::format(",state=\"{}\"", s));
    }
  }
  out += "# HELP cronrun_export_timestamp_seconds When this file was written (Unix seconds).\n"
         "# TYPE cronrun_export_timestamp_seconds gauge\n";
  out += fmt::format("cronrun_export_timestamp_seconds {}\n", num(std::floor(generated_unix_s)));
  return out;
}

Result<std::vector<JobMetrics>> prometheus_metrics(const HistoryStore& store, const std::optional<std::string>& job,
                                                   const HistoryStore::CorruptRowFn& on_corrupt, bool by_host) {
  // One pass over the figures: counts by status, each job's newest run and newest
  // success, so a damaged row is skipped like in the other formats. One snapshot
  // for both reads: a gc in between would move runs from the rows to the removed
  // counts and the counter would jump.
  using Key = std::pair<std::string, std::optional<std::string>>;  // job, host
  std::map<Key, JobMetrics> by_job;
  auto r = store.read_snapshot([&]() -> Result<void> {
    RunFilter all;
    all.job = job;
    all.with_host = by_host;
    auto scanned = store.scan(all, [&](const RunFigures& x) {
      JobMetrics& m = by_job[Key(x.job, by_host ? std::optional<std::string>(x.host) : std::nullopt)];
      add_run(m, x);
      if (x.status == RunStatus::ok && (!m.last_success_s || x.started_at_s > *m.last_success_s))
        m.last_success_s = x.started_at_s;
    }, on_corrupt);
    if (!scanned) return scanned;
    // What gc removed keeps counting: the counter never goes down. (A history
    // of many hosts is the central one's copy: gc never runs there.)
    auto removed = store.removed_counts();
    if (!removed) return std::unexpected(removed.error());
    for (const auto& [name, by_status] : *removed) {
      if (job && name != *job) continue;
      for (const auto& [status, n] : by_status) by_job[Key(name, std::nullopt)].counts[status] += n;
    }
    return {};
  });
  if (!r) return std::unexpected(r.error());
  std::vector<JobMetrics> jobs;
  for (auto& [key, m] : by_job) {
    m.job = key.first;
    m.host = key.second;
    jobs.push_back(std::move(m));
  }
  return jobs;
}

std::string csv_field(const std::string& raw) {
  // No raw controls even inside quotes (RFC 4180 allows line breaks there, but a
  // terminal or a naive line-based reader does not): term_text first.
  std::string v = term_text(raw);
  if (v.find_first_of(",\"") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_header() {
  return "run_id,job,host,user,status,started_at,finished_at,wall_s,exit_code,signal,skip_reason,"
         "cpu_user_s,cpu_system_s,memory_peak_bytes,max_rss_bytes,memory_max_bytes,cpu_quota_pct,timeout_s,"
         "oom_kills,cpu_throttled_s,io_read_bytes,io_write_bytes,pids_peak,db_queries,db_time_s,isolation,command\n";
}

std::string csv_row(const RunRecord& r) {
  auto counter = [&](const char* k) {
    auto it = r.counters.find(k);
    return it == r.counters.end() ? std::string() : num(it->second);
  };
  std::string cmd;
  for (const auto& a : r.command) cmd += (cmd.empty() ? "" : " ") + a;
  std::vector<std::string> f = {r.run_id,
                                r.job,
                                r.host,
                                r.user,
                                to_string(r.status),
                                r.started_at,
                                r.finished_at.value_or(""),
                                opt(r.wall_s),
                                opt(r.exit_code),
                                opt(r.signal),
                                r.skip_reason.value_or(""),
                                opt(r.usage.cpu_user_s),
                                opt(r.usage.cpu_system_s),
                                opt(r.usage.memory_peak_bytes),
                                opt(r.usage.max_rss_bytes),
                                opt(r.limits.memory_max_bytes),
                                opt(r.limits.cpu_quota_pct),
                                opt(r.limits.timeout_s),
                                opt(r.usage.oom_kills),
                                opt(r.usage.cpu_throttled_s),
                                opt(r.usage.io_read_bytes),
                                opt(r.usage.io_write_bytes),
                                opt(r.usage.pids_peak),
                                counter("db.queries"),
                                counter("db.time_s"),
                                r.isolation.cgroup,
                                cmd};
  std::string line;
  for (size_t i = 0; i < f.size(); ++i) {
    if (i) line += ',';
    line += csv_field(f[i]);
  }
  return line + "\n";
}

namespace {

// A central history's all-time counters, from the database's own counts: its copy
// holds each job's newest runs on each host, not every row (export's CentralScope).
// A job whose rows on a host are all skips gets its entry here.
int add_central_counts(std::vector<JobMetrics>& jobs, const Global& g, const std::optional<std::string>& job) {
  auto counts = central_status_counts(g, job);
  if (!counts) return counts.error();
  std::map<std::pair<std::string, std::string>, size_t> index;  // (job, host) -> position in jobs
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!jobs[i].host) continue;
    std::erase_if(jobs[i].counts, [](const auto& c) { return c.first != RunStatus::running; });
    index.emplace(std::pair(jobs[i].job, *jobs[i].host), i);
  }
  for (const pg::StatusCount& c : *counts) {
    if (c.status == RunStatus::running) continue;  // in progress: the copy's rows (JobMetrics::running)
    auto [it, added] = index.emplace(std::pair(c.job, c.host), jobs.size());
    if (added) {
      JobMetrics m;
      m.job = c.job;
      m.host = c.host;
      jobs.push_back(std::move(m));
    }
    JobMetrics& m = jobs[it->second];
    m.has_rows = true;
    m.counts[c.status] = c.runs;
  }
  std::sort(jobs.begin(), jobs.end(), [](const JobMetrics& a, const JobMetrics& b) {
    return std::tie(a.job, a.host) < std::tie(b.job, b.host);
  });
  return kExitOk;
}

// Adds each crontab job's schedule figures (status.h, with `cronprof status`'s
// defaults: the last day, a grace of a tenth of the period) to `jobs`, a job the
// history does not know included. Prints the error and returns the exit code.
int add_schedule(std::vector<JobMetrics>& jobs, const HistoryStore& store, const std::vector<std::string>& paths,
                 const std::optional<std::string>& job, double now, const std::string& history_path) {
  auto crontabs = status::load_crontabs(paths);
  if (!crontabs) {
    print_error("--crontab: " + crontabs.error().message());
    return kExitUsage;
  }
  status::Options o;
  o.now_s = now;
  o.job = job;
  o.history_path = history_path;
  auto report = status::compute_status(&store, *crontabs, o);
  if (!report) return query_failed(store, report.error());
  for (const status::JobStatus& s : report->jobs) {
    // Per job: on a history of many hosts, an entry without a host of its own.
    auto it = std::find_if(jobs.begin(), jobs.end(), [&](const JobMetrics& m) { return m.job == s.job && !m.host; });
    if (it == jobs.end()) {
      JobMetrics m;
      m.job = s.job;
      jobs.push_back(std::move(m));
      it = std::prev(jobs.end());
    }
    it->schedule = JobMetrics::Schedule{.missed = s.missed, .late = s.late, .state = status::to_string(s.state)};
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const JobMetrics& a, const JobMetrics& b) { return std::tie(a.job, a.host) < std::tie(b.job, b.host); });
  return kExitOk;
}

}  // namespace

Command add_export(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string format;
    std::string job;
    std::string since;
    std::string output;
    std::vector<std::string> crontabs;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand("export", "Machine output: json, csv, or prometheus (node_exporter textfile)");
  app->add_option("--format", opts->format, "json, csv or prometheus")
      ->required()
      ->check(CLI::IsMember({"json", "csv", "prometheus"}));
  app->add_option("--job", opts->job, "Only this job");
  app->add_option("--since", opts->since, "Only runs started in this window (json, csv), e.g. 30d");
  app->add_option("--output", opts->output, "Write to FILE atomically instead of stdout (- or /dev/stdout: stdout)");
  app->add_option("--crontab", opts->crontabs,
                  "prometheus: also missed and late ticks and each job's state against these crontabs, as "
                  "`cronprof status` computes them")
      ->type_name("FILE")
      ->expected(1, -1);
  return {app, [opts, &g]() -> int {
            // As report --html's OUT: these two are standard output, streamed.
            if (opts->output == "-" || opts->output == "/dev/stdout") opts->output.clear();
            RunFilter f;
            if (!opts->job.empty()) f.job = opts->job;
            if (!opts->since.empty()) {
              auto since = window_option("--since", opts->since, now_unix_s());
              if (!since) return since.error();
              f.since_unix_s = *since;
            }
            auto store = open_history(g);
            if (!store) return store.error();
            std::string out;
            SkippedRows skipped;
            if (opts->format == "prometheus") {
              double now = now_unix_s();
              auto jobs = prometheus_metrics(*store, f.job, skipped.callback(), /*by_host=*/g.central);
              if (!jobs) return query_failed(*store, jobs.error());
              if (g.central) {
                if (int rc = add_central_counts(*jobs, g, f.job); rc != kExitOk) return rc;
              }
              if (!opts->crontabs.empty()) {
                if (int rc = add_schedule(*jobs, *store, opts->crontabs, f.job, now, g.central ? std::string() : g.history_path); rc != kExitOk) return rc;
              }
              out = prometheus_text(*jobs, now);
            } else if (opts->format == "csv") {
              out = csv_header();
              auto r = store->each_run(f, [&](const RunRecord& rec) {
                out += csv_row(rec);
                if (opts->output.empty() && out.size() > (1 << 16)) {
                  std::fputs(out.c_str(), stdout);
                  out.clear();
                }
              }, skipped.callback());
              if (!r) return query_failed(*store, r.error());
            } else {
              out = "[";
              bool first = true;
              auto r = store->each_run(f, [&](const RunRecord& rec) {
                out += first ? "\n" : ",\n";
                first = false;
                out += json_text(to_json(rec));
                if (opts->output.empty() && out.size() > (1 << 16)) {
                  std::fputs(out.c_str(), stdout);
                  out.clear();
                }
              }, skipped.callback());
              if (!r) return query_failed(*store, r.error());
              out += "\n]\n";
            }
            skipped.report(g.history_label);
            if (opts->output.empty()) {
              std::fputs(out.c_str(), stdout);
              return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
            }
            if (auto w = write_file_atomically(opts->output, out); !w) {
              print_error("--output: " + w.error().message());
              return kExitFailure;
            }
            return kExitOk;
          },
          [opts]() {
            // json and csv: their window (every run without --since).
            if (opts->format != "prometheus") {
              if (!opts->since.empty()) return window_scope(opts->since, opts->job);
              CentralScope s;
              if (!opts->job.empty()) s.job = opts->job;
              return s;
            }
            // Each job's newest runs on each host (the counters come from the
            // database: add_central_counts) and, with --crontab, what status reads.
            CentralScope s;
            if (!opts->job.empty()) s.job = opts->job;
            s.last_per_host = true;
            if (opts->crontabs.empty()) return s;
            auto crontabs = status::load_crontabs(opts->crontabs);
            if (!crontabs) return CentralScope::none();
            status::Options o;  // add_schedule's: the last day, the default grace
            o.now_s = now_unix_s();
            o.job = s.job;
            status::Reads r = status::reads(*crontabs, o);
            s.since_unix_s = r.since_s;
            s.jobs = std::move(r.jobs);
            s.newest_before = true;
            return s;
          }};
}

}  // namespace cronrun::prof
