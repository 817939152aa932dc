// `cronprof show RUN-ID|JOB [--json]`: one run's full profile. An argument that is
// a run id (or an unambiguous prefix of one) wins; otherwise it names a job and
// the job's newest run is shown.
#include "profiler/show.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <memory>

#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

namespace {

constexpr const char* kNotMeasured = "not measured";

std::string size_or_nm(const std::optional<uint64_t>& v) { return v ? units::format_size(*v) : kNotMeasured; }
std::string secs_or_nm(const std::optional<double>& v) { return v ? units::format_duration_s(*v) : kNotMeasured; }
std::string count_or_nm(const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : kNotMeasured; }

std::string num(double v) {
  // Counters are summed doubles; show integers without a fraction. The range check
  // comes first: a job writes its own counters, and converting NaN, infinities or
  // values beyond long long is undefined.
  if (std::isfinite(v) && std::fabs(v) < 9e15 && v == std::trunc(v))
    return std::to_string(static_cast<long long>(v));
  if (std::isfinite(v) && std::fabs(v) >= 1e15) return fmt::format("{:.6g}", v);
  return fmt::format("{:.3f}", v);
}

// History strings are escaped where they enter the text (profiler/text_escape.h).
std::string t(std::string_view s) { return term_text(s); }

std::optional<double> counter(const RunRecord& r, const std::string& key) {
  auto it = r.counters.find(key);
  if (it == r.counters.end()) return std::nullopt;
  return it->second;
}

void row(std::string& out, const char* label, const std::string& text) {
  out += fmt::format("  {:<11}{}\n", label, text);
}

std::string status_line(const RunRecord& r) {
  std::string s = to_string(r.status);
  if (r.exit_code) s += fmt::format(", exit {}", *r.exit_code);
  if (r.signal) s += fmt::format(", signal {}", *r.signal);
  if (r.skip_reason) s += " — " + t(*r.skip_reason);
  if (r.status == RunStatus::lost)
    s += " — the runner is gone (crashed, killed or the host rebooted) without recording the end";
  if (r.status == RunStatus::running) s += " — in progress";
  return s;
}

}  // namespace

std::string render_db(const RunRecord& r) {
  bool any = false;
  for (const auto& [k, v] : r.counters) {
    if (k.rfind("db.", 0) == 0) any = true;
  }
  if (!any) return "not counted (run without --count-db-queries)";
  auto with_client = counter(r, "db.processes_with_client");
  if (with_client && *with_client == 0) {
    std::string s = "not observed — no client library loaded";
    if (auto procs = counter(r, "db.processes")) s += fmt::format(" (counter attached to {} processes)", num(*procs));
    return s;
  }
  std::string s = fmt::format("{} queries", num(counter(r, "db.queries").value_or(0)));
  if (auto t = counter(r, "db.time_s")) {
    s += fmt::format(", {} in the database", units::format_duration_s(*t));
    if (r.wall_s && *r.wall_s > 0) s += fmt::format(" ({:.0f}% of wall)", 100.0 * *t / *r.wall_s);
  }
  if (auto p = counter(r, "db.prepares")) s += fmt::format(", {} prepares", num(*p));
  for (const char* backend : {"pg", "mysql", "sqlite"}) {
    auto q = counter(r, fmt::format("db.{}.queries", backend));
    if (!q) continue;
    s += fmt::format("\n  {:<11}{}: {} queries", "", backend, num(*q));
    if (auto t = counter(r, fmt::format("db.{}.time_s", backend)))
      s += fmt::format(", {}", units::format_duration_s(*t));
  }
  // Per program, and how much of the job the counter could see.
  for (const auto& [k, v] : r.counters) {
    static const std::string kProc = "db.proc.";
    if (k.rfind(kProc, 0) != 0 || k.size() < kProc.size() + 9 || k.compare(k.size() - 8, 8, ".queries") != 0)
      continue;
    std::string program = k.substr(kProc.size(), k.size() - kProc.size() - 8);
    s += fmt::format("\n  {:<11}{}: {} queries", "", t(program), num(v));
  }
  auto procs = counter(r, "db.processes");
  if (procs || with_client) {
    s += fmt::format("\n  {:<11}coverage: attached to {} processes, {} loaded a DB client library", "",
                     procs ? num(*procs) : "?", with_client ? num(*with_client) : "?");
  }
  if (auto fails = counter(r, "db.resolve_failures"); fails && *fails > 0)
    s += fmt::format("; {} symbol resolve failures (queries there were not counted)", num(*fails));
  return s;
}

std::string render_fleet(const FleetRecord& f) {
  std::string s = "group " + (f.group ? t(*f.group) : std::string("-"));
  s += ", host " + (f.host.empty() ? std::string("-") : t(f.host));
  s += ", tick " + (f.tick.empty() ? std::string("-") : t(f.tick));
  s += f.fence ? fmt::format(", fence {}", *f.fence) : std::string(", no fence (no fleet lock taken)");
  if (f.lease_ttl_s) s += fmt::format(", lease {}s", *f.lease_ttl_s);
  if (f.holder) s += fmt::format("; held by host {} (revision {})", t(f.holder->host), f.holder->revision);
  if (f.note) s += " — " + t(*f.note);
  return s;
}

std::string render_seccomp(const RunRecord& r) {
  if (!r.seccomp) return "off";
  const SeccompRecord& sc = *r.seccomp;
  bool learn = sc.action == "continue";
  std::string s = t(sc.profile);
  if (sc.violations.empty()) {
    s += learn ? ": nothing made outside strict" : ": no violation";
  } else {
    s += learn ? fmt::format(": {} syscall(s) outside strict, run {} time(s) —", sc.violations.size(),
                             num(static_cast<double>(sc.violations_total)))
               : fmt::format(": {} violation(s) answered {} —", num(static_cast<double>(sc.violations_total)),
                             t(sc.action));
    for (size_t i = 0; i < sc.violations.size(); ++i) {
      const auto& v = sc.violations[i];
      s += fmt::format("{} {} ×{}", i ? "," : "", t(v.syscall), num(static_cast<double>(v.count)));
      if (v.first_pid > 0)
        s += fmt::format(" (first pid {}{})", v.first_pid, v.comm.empty() ? "" : " " + t(v.comm));
    }
  }
  if (sc.answers_lost) s += fmt::format("; {} caller(s) gone before the answer", sc.answers_lost);
  if (sc.note) s += " — " + t(*sc.note);
  if (sc.failed_by) s += "; the run failed because of the filter (" + t(*sc.failed_by) + ")";
  if (learn) s += fmt::format("; `cronprof suggest --seccomp {}` proposes a profile", t(r.job));
  return s;
}

// One argument as a shell would need it to stay one word: as it is when it is
// plain, else in single quotes ('' for an empty one), so the boundaries of
// `sh -c 'a b'` show.
std::string shell_word(const std::string& a) {
  if (!a.empty() && a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-") ==
                        std::string::npos)
    return a;
  std::string out = "'";
  for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string render_profile(const RunRecord& r) {
  std::string out;
  out += fmt::format("run {} of job {}", t(r.run_id), t(r.job));
  if (!r.host.empty()) out += " on " + t(r.host);
  if (!r.user.empty()) out += " as " + t(r.user);
  out += "\n";
  std::string cmd;
  for (const auto& a : r.command) cmd += (cmd.empty() ? "" : " ") + shell_word(t(a));
  row(out, "command", cmd.empty() ? "-" : cmd);
  row(out, "status", status_line(r));
  if (r.forwarded_signal) row(out, "signal", forwarded_signal_text(*r.forwarded_signal));
  row(out, "started", t(r.started_at));
  row(out, "finished", t(r.finished_at.value_or("-")));
  std::string wall = secs_or_nm(r.wall_s);
  if (r.wall_s && r.limits.timeout_s)
    wall += fmt::format(" (timeout {}, {:.0f}% used)", units::format_duration_s(*r.limits.timeout_s),
                        100.0 * *r.wall_s / *r.limits.timeout_s);
  row(out, "wall", wall);

  const Usage& u = r.usage;
  std::string cpu;
  if (u.cpu_user_s || u.cpu_system_s) {
    double total = u.cpu_user_s.value_or(0) + u.cpu_system_s.value_or(0);
    cpu = fmt::format("user {}, system {}, total {}", secs_or_nm(u.cpu_user_s), secs_or_nm(u.cpu_system_s),
                      units::format_duration_s(total));
    if (r.wall_s && *r.wall_s > 0) cpu += fmt::format("; {:.0f}% of one CPU over the wall", 100.0 * total / *r.wall_s);
    if (r.limits.cpu_quota_pct) cpu += fmt::format(" (quota {:.0f}%)", *r.limits.cpu_quota_pct);
  } else {
    cpu = kNotMeasured;
  }
  row(out, "CPU", cpu);
  std::string throttled = secs_or_nm(u.cpu_throttled_s);
  if (u.cpu_nr_throttled) throttled += fmt::format(" in {} periods", *u.cpu_nr_throttled);
  row(out, "throttled", throttled);

  std::string mem = "peak " + size_or_nm(u.memory_peak_bytes);
  if (r.limits.memory_max_bytes) {
    mem += " of " + units::format_size(*r.limits.memory_max_bytes) + " limit";
    if (u.memory_peak_bytes)
      mem += fmt::format(" ({:.0f}%)", 100.0 * static_cast<double>(*u.memory_peak_bytes) /
                                           static_cast<double>(*r.limits.memory_max_bytes));
  } else {
    mem += " (no limit)";
  }
  if (r.limits.memory_high_bytes) mem += "; high " + units::format_size(*r.limits.memory_high_bytes);
  row(out, "memory", mem);
  row(out, "largest", "process RSS " + size_or_nm(u.max_rss_bytes));
  std::string oom = "OOM kills " + count_or_nm(u.oom_kills);
  oom += "; memory.max events " + count_or_nm(u.memory_max_events);
  oom += ", memory.high events " + count_or_nm(u.memory_high_events);
  row(out, "OOM", oom);
  const Pressure& p = u.pressure_some_s;
  row(out, "stalls", fmt::format("some: cpu {}, memory {}, io {}", secs_or_nm(p.cpu), secs_or_nm(p.memory),
                                 secs_or_nm(p.io)));
  row(out, "IO", "read " + size_or_nm(u.io_read_bytes) + ", write " + size_or_nm(u.io_write_bytes) +
                    (u.io_source == "rusage" ? " (rusage block counts of the reaped processes)" : ""));
  std::string tasks = "peak " + count_or_nm(u.pids_peak);
  if (r.limits.pids_max) tasks += fmt::format(" (limit {})", *r.limits.pids_max);
  if (u.pids_max_events) tasks += "; forks refused by the limit " + count_or_nm(u.pids_max_events);
  row(out, "tasks", tasks);
  row(out, "DB", render_db(r));

  std::string counters;
  for (const auto& [k, v] : r.counters) {
    if (k.rfind("db.", 0) == 0) continue;
    counters += (counters.empty() ? "" : ", ") + t(k) + " " + num(v);
  }
  row(out, "counters", counters.empty() ? "none" : counters);

  std::string iso = t(r.isolation.cgroup);
  if (r.isolation.path) iso += " " + t(*r.isolation.path);
  iso += " (accounting " + t(r.isolation.accounting) + ")";
  if (r.isolation.note) iso += " — " + t(*r.isolation.note);
  row(out, "isolation", iso);
  std::string lock = r.lock.path ? t(*r.lock.path) : "none";
  lock += fmt::format(", waited {}", units::format_duration_s(r.lock.waited_s));
  if (r.lock.holder_pid) lock += fmt::format(", held by pid {}", *r.lock.holder_pid);
  row(out, "lock", lock);
  if (r.fleet) row(out, "fleet", render_fleet(*r.fleet));
  row(out, "seccomp", render_seccomp(r));
  row(out, "log", r.log.path ? fmt::format("{} ({})", t(*r.log.path), units::format_size(r.log.bytes)) : "not kept");
  return out;
}

Command add_show(CLI::App& parent, const Global& g) {
  auto target = std::make_shared<std::string>();
  CLI::App* app = parent.add_subcommand("show", "One run's full profile (RUN-ID, or JOB for its newest run)");
  app->add_option("target", *target, "Run id (or unique prefix), or job name")->required();
  return {app, [target, &g]() -> int {
            auto store = open_history(g);
            if (!store) return store.error();
            auto found = store->find_run(*target);
            // A prefix of several run ids is not a run: the word may still name a job.
            std::optional<std::string> ambiguous;
            if (!found && store->last_fault() == HistoryFault::none) {
              ambiguous = found.error().message();
              found = std::optional<RunRecord>();
            }
            if (!found) return query_failed(*store, found.error());
            if (!*found) {
              auto latest = store->latest_run(*target);
              if (!latest) return query_failed(*store, latest.error());
              *found = std::move(*latest);
            }
            if (!*found) {
              print_error(ambiguous ? *ambiguous + ", and no job is named so in " + g.history_label
                                    : "no run with id '" + *target + "' and no job named '" + *target + "' in " +
                                          g.history_label);
              return kExitNotFound;
            }
            if (g.json)
              std::printf("%s\n", json_text(to_json(**found), 2).c_str());
            else
              std::fputs(render_profile(**found).c_str(), stdout);
            return kExitOk;
          },
          [target]() {
            CentralScope s;
            s.run_or_job = *target;
            return s;
          }};
}

}  // namespace cronrun::prof
