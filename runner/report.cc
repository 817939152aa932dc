// Formatting only; every figure that is null in the record is shown as "n/a"
// rather than 0, matching the contract that unmeasured is not zero.
#include "runner/report.h"

#include <fmt/format.h>

#include "common/units.h"

namespace cronrun {
namespace {

std::string size_or_na(const std::optional<uint64_t>& v) { return v ? units::format_size(*v) : "n/a"; }
std::string secs_or_na(const std::optional<double>& v) { return v ? units::format_duration_s(*v) : "n/a"; }

std::string exit_text(const RunRecord& r) {
  if (r.signal) return fmt::format("signal {}", *r.signal);
  if (r.exit_code) return fmt::format("exit {}", *r.exit_code);
  return "no exit status";
}

}  // namespace

std::string format_report(const RunRecord& r) {
  const Usage& u = r.usage;
  std::string out = fmt::format("cronrun report: job {} run {}\n  status {} ({}), wall {}\n", r.job, r.run_id,
                                to_string(r.status), exit_text(r), secs_or_na(r.wall_s));
  if (r.status == RunStatus::skipped) return out + fmt::format("  skipped: {}\n", r.skip_reason.value_or("?"));
  // A share of one CPU needs both halves of the CPU time: with one of them
  // unmeasured, a sum would print as a real (and low) figure.
  std::string util;
  if (u.cpu_user_s && u.cpu_system_s && r.wall_s && *r.wall_s > 0)
    util = fmt::format(" ({:.0f}% of one CPU)", 100.0 * (*u.cpu_user_s + *u.cpu_system_s) / *r.wall_s);
  out += fmt::format("  cpu {} user + {} system{}\n", secs_or_na(u.cpu_user_s), secs_or_na(u.cpu_system_s), util);
  std::string limit;
  if (r.limits.memory_max_bytes && u.memory_peak_bytes)
    limit = fmt::format(" of {} limit ({:.0f}%)", units::format_size(*r.limits.memory_max_bytes),
                        100.0 * static_cast<double>(*u.memory_peak_bytes) / static_cast<double>(*r.limits.memory_max_bytes));
  out += fmt::format("  memory peak {}{}, largest process {}\n", size_or_na(u.memory_peak_bytes), limit,
                     size_or_na(u.max_rss_bytes));
  out += fmt::format("  oom kills {}, memory.max events {}, pids peak {}{}\n",
                     u.oom_kills ? std::to_string(*u.oom_kills) : "n/a",
                     u.memory_max_events ? std::to_string(*u.memory_max_events) : "n/a",
                     u.pids_peak ? std::to_string(*u.pids_peak) : "n/a",
                     u.pids_max_events ? fmt::format(", forks refused by pids.max {}", *u.pids_max_events) : "");
  out += fmt::format("  io read {}, write {}{}\n", size_or_na(u.io_read_bytes), size_or_na(u.io_write_bytes),
                     u.io_source == "rusage" ? " (rusage block counts: disk IO of reaped processes)" : "");
  out += fmt::format("  cpu throttled {} ({} periods); pressure stalls cpu {} memory {} io {}\n",
                     secs_or_na(u.cpu_throttled_s), u.cpu_nr_throttled ? std::to_string(*u.cpu_nr_throttled) : "n/a",
                     secs_or_na(u.pressure_some_s.cpu), secs_or_na(u.pressure_some_s.memory),
                     secs_or_na(u.pressure_some_s.io));
  if (!u.not_measured.empty()) {
    std::string names;
    for (const auto& n : u.not_measured) names += (names.empty() ? "" : ", ") + n;
    out += fmt::format("  not measured (no cgroup of that controller was made for this run): {}\n", names);
  }
  if (auto q = r.counters.find("db.queries"); q != r.counters.end()) {
    // The query count can arrive without the time spent waiting (a driver that
    // counts but does not time): that time is unknown, not zero.
    auto t = r.counters.find("db.time_s");
    std::optional<double> db_s;
    if (t != r.counters.end()) db_s = t->second;
    out += fmt::format("  db {:.0f} queries, {} waiting{}\n", q->second, secs_or_na(db_s),
                       db_s && r.wall_s && *r.wall_s > 0 ? fmt::format(" ({:.0f}% of wall)", 100.0 * *db_s / *r.wall_s)
                                                         : "");
  }
  std::string counters;
  for (const auto& [k, v] : r.counters)
    if (!k.starts_with("db.")) counters += fmt::format(" {}={}", k, v);
  if (!counters.empty()) out += "  counters" + counters + "\n";
  out += fmt::format("  isolation {} {} ({} accounting){}\n", r.isolation.cgroup, r.isolation.path.value_or("-"),
                     r.isolation.accounting, r.isolation.note ? "; " + *r.isolation.note : "");
  if (r.lock.path) out += fmt::format("  lock {} (waited {})\n", *r.lock.path, units::format_duration_s(r.lock.waited_s));
  if (r.forwarded_signal) out += fmt::format("  signal {}\n", forwarded_signal_text(*r.forwarded_signal));
  if (u.orphans_killed.value_or(0) > 0)
    out += fmt::format("  orphans killed {} (left behind by the main process)\n", *u.orphans_killed);
  if (r.log.path)
    out += fmt::format("  log {} ({}{})\n", *r.log.path, units::format_size(r.log.bytes),
                       r.log.dropped_bytes ? fmt::format(", {} lost to write errors", units::format_size(r.log.dropped_bytes)) : "");
  if (r.output.dropped_bytes > 0)
    out += fmt::format("  output dropped {} (not passed on to cronrun's stdout/stderr)\n",
                       units::format_size(r.output.dropped_bytes));
  if (r.seccomp) {
    const SeccompRecord& sc = *r.seccomp;
    const bool learn = sc.action == "continue";
    out += fmt::format("  seccomp {}: {} syscall(s) {}", sc.profile, sc.violations_total,
                       learn ? "outside strict, let through (learn)" : fmt::format("denied ({})", sc.action));
    for (size_t i = 0; i < sc.violations.size() && i < 8; ++i) {
      const auto& v = sc.violations[i];
      out += fmt::format("{} {} x{} (first pid {} {})", i ? "," : ":", v.syscall, v.count, v.first_pid,
                         v.comm.empty() ? "?" : v.comm);
    }
    if (sc.violations.size() > 8) out += fmt::format(", and {} more", sc.violations.size() - 8);
    out += "\n";
    if (sc.failed_by)
      out += fmt::format("  seccomp: the run failed because of the filter ({})\n", *sc.failed_by);
  }
  return out;
}

}  // namespace cronrun
