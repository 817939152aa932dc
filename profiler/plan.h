// The capacity plan: a week of crontab starts, minute by minute, weighed with what
// the history says each job needs. Pure computation over plain structs (no
// database, no clock, no files), so it is tested with known answers; the cronprof
// `plan` subcommand (plan_command.cc) feeds it from the crontab parser and the
// history (plan_history.cc).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "profiler/crontab.h"
#include "profiler/crontab_cronrun.h"

namespace cronrun::plan {

inline constexpr int kMinutesPerWeek = 7 * 24 * 60;  // 10,080

// What the history says about one job over the window (--since).
struct JobProfile {
  std::string job;
  size_t runs = 0;                                 // finished runs with figures
  std::optional<uint64_t> memory_peak_p95_bytes;   // cgroup peak, p95 over runs
  bool memory_from_rss = false;                    // some runs had no cgroup: their max RSS stood in
  std::optional<double> cpu_per_wall;              // CPU s per wall s (cores), p95 over runs
  std::optional<double> wall_p50_s;                // typical duration
  std::optional<double> wall_p95_s;                // pessimistic duration
  std::optional<uint64_t> memory_limit_bytes;      // --memory of the latest run
};

struct Host {
  uint64_t memory_bytes = 0;
  double cpus = 0;
  std::string source;  // "/proc/meminfo, nproc" or "--host-memory, --host-cpus"
};

// A Monday, the first day of the planned week (local wall clock; DST changes inside
// the week are not modelled).
struct WeekStart {
  int year = 2026;
  unsigned month = 1;
  unsigned day = 5;
};
// The Monday of the week that contains the given date.
WeekStart week_containing(int year, unsigned month, unsigned day);
// "Mon 02:00" for a minute of the week (0 = Monday 00:00).
std::string weekday_hhmm(int minute_of_week);

struct Options {
  WeekStart week;
  size_t max_moves = 10;  // stagger: how many entries the greedy search may move
};

// One crontab entry as the plan sees it.
struct PlannedEntry {
  crontab::Entry entry;
  std::optional<crontab::CronrunCall> call;  // nullopt: not run through cronrun
  std::optional<std::string> call_error;     // runs cronrun, but the call is unusable
};

// PlannedEntry for every entry, with the cronrun call found in its command.
std::vector<PlannedEntry> plan_entries(const std::vector<crontab::Entry>& entries);

enum class EntryStatus {
  profiled,     // cronrun job with history: in the simulation
  no_history,   // cronrun job, no finished runs in the window
  not_cronrun,  // a plain command: cron runs it, nobody measures it
  bad_call,     // cronrun call we cannot read (no COMMAND, invalid --name)
  reboot,       // @reboot: not on the clock
  not_this_week // day-of-month/month fields do not fire in the planned week
};
const char* to_string(EntryStatus s);

struct EntryReport {
  size_t index = 0;  // into the input entries
  std::string where; // "file:line"
  std::string job;   // cronrun job name, or "" when not run through cronrun
  std::string schedule;  // the time fields as written
  std::string command;   // as cron runs it (up to the first '%')
  EntryStatus status = EntryStatus::not_cronrun;
  size_t starts_per_week = 0;
  std::string note;  // e.g. the bad call's error, "no memory figures", CRON_TZ ignored
};

struct Contributor {
  std::string job;
  std::string where;
  int start_minute = 0;  // of the run holding the minute (minute of the week)
  uint64_t memory_bytes = 0;
  double cpu_cores = 0;  // average over that minute
};

struct Peak {
  int minute = 0;  // of the week
  uint64_t memory_bytes = 0;
  double cpu_cores = 0;
  std::vector<Contributor> jobs;  // largest first
};

struct JobRuns {
  size_t starts = 0;  // cron starts per week
  size_t lost = 0;    // starts that found the lock held
};

// One way of weighing durations: typical (wall p50) or pessimistic (wall p95).
struct Scenario {
  std::string name;
  std::vector<uint64_t> memory_bytes;  // per minute of the week
  std::vector<double> cpu_cores;       // per minute of the week
  Peak memory_peak;
  Peak cpu_peak;
  std::map<std::string, JobRuns> runs;  // by job
  size_t lost_total = 0;
};

struct Outlasting {
  std::string job;
  std::vector<std::string> where;
  double interval_s = 0;  // shortest gap between two starts (all entries sharing the lock)
  std::optional<double> wall_p50_s, wall_p95_s;
  size_t starts = 0;
  size_t lost_typical = 0;
  size_t lost_pessimistic = 0;
  bool lock = true;  // false: runs overlap instead of being lost
};

struct Move {
  size_t index = 0;  // entry
  std::string job;
  std::string where;
  std::string before;  // the five time fields (or @word) as written
  std::string after;   // the proposed five time fields
  int shift_minutes = 0;
};

struct Stagger {
  std::string method;
  std::vector<Move> moves;
  uint64_t memory_peak_before_bytes = 0, memory_peak_after_bytes = 0;  // pessimistic
  int memory_peak_before_minute = 0, memory_peak_after_minute = 0;
  double cpu_peak_before_cores = 0, cpu_peak_after_cores = 0;         // pessimistic
  uint64_t typical_memory_peak_after_bytes = 0;
};

struct PlanResult {
  WeekStart week;
  Host host;
  std::vector<EntryReport> entries;
  Scenario typical, pessimistic;
  std::vector<Outlasting> outlasting;
  Stagger stagger;
  std::vector<std::string> notes;
};

PlanResult make_plan(const std::vector<PlannedEntry>& entries, const std::vector<JobProfile>& profiles,
                     const Host& host, const Options& options);

nlohmann::json to_json(const PlanResult& plan, const std::vector<crontab::Rejected>& rejected);
// The human report (tables, sizes as "1.5 GiB"); every line fitted to `width`
// columns (0: no limit), cut with an ellipsis, never wrapped.
std::string format_text(const PlanResult& plan, const std::vector<crontab::Rejected>& rejected, size_t width = 0);

// The host as seen from /proc/meminfo (MemTotal) and the CPUs this process may run
// on (what nproc prints).
Result<Host> read_host();

// 7 x 24 cells: the highest planned memory demand within each hour, Monday first;
// what the HTML report draws as a heat-map.
std::array<std::array<uint64_t, 24>, 7> hourly_memory_max(const Scenario& s);

}  // namespace cronrun::plan
