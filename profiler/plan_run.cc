// Gathers the plan's inputs from the command line and the machine: crontabs (each
// path's kind from its location, directories as cron.d), the host (overrides, else
// /proc/meminfo and nproc) and the week (the one holding --week, else today's,
// local time).
#include "profiler/plan_run.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "common/history.h"
#include "common/units.h"

namespace cronrun::plan {

namespace {

Result<WeekStart> parse_week(const std::string& text) {
  if (text.empty()) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    return week_containing(tm.tm_year + 1900, static_cast<unsigned>(tm.tm_mon + 1), static_cast<unsigned>(tm.tm_mday));
  }
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3 || y < 1970 ||
      !std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}}.ok())
    return fail(fmt::format("--week: expected a date YYYY-MM-DD, got '{}'", text));
  return week_containing(y, m, d);
}

// Where cronrun records an entry's runs when that is not `read` (the history the
// plan reads), as a note for an entry without runs in `read`; "" when it is `read`
// or cannot be told: the line's own --history, else the default history of the
// user a system crontab runs it as, when that is not this user. A job config's
// "history" key is not looked at.
std::string elsewhere_note(const PlannedEntry& pe, const std::string& read) {
  if (!pe.call) return "";
  if (pe.call->history && !crontab::same_history(*pe.call->history, crontab::cron_home(pe.entry), read)) {
    return fmt::format("cronrun records this job in {} (its --history), which this plan does not read: "
                       "plan it with cronprof --history {}",
                       *pe.call->history, *pe.call->history);
  }
  if (pe.call->history || !pe.entry.user) return "";
  const std::string& user = *pe.entry.user;
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return fmt::format("runs as {}, who has no passwd entry on this machine", user);
  // The reader's own jobs are taken to be in the history it reads (default or given).
  if (pw->pw_uid == ::geteuid()) return "";
  std::string theirs = HistoryStore::default_path_for(pw->pw_uid, nullptr, pw->pw_dir);
  if (crontab::same_history(theirs, "", read)) return "";
  return fmt::format("runs as {}: cronrun records its runs in {}'s own history, {} (unless a job config names "
                     "another), which this plan does not read: plan it with cronprof --history {}",
                     user, user, theirs, theirs);
}

}  // namespace

Result<PlanOutput> run_plan(const PlanArgs& args, const std::vector<JobProfile>& profiles) {
  crontab::Crontab all;
  for (const auto& path : args.crontabs) {
    auto c = crontab::load_crontab(path);
    if (!c) return std::unexpected(std::move(c.error()).context("--crontab"));
    all.append(std::move(*c));
  }
  Host host;
  if (args.host_memory.empty() || args.host_cpus <= 0) {
    auto h = read_host();
    if (!h) return std::unexpected(std::move(h.error()).context("reading this host's memory and CPUs"));
    host = *h;
  }
  std::vector<std::string> given;
  if (!args.host_memory.empty()) {
    auto b = units::parse_size(args.host_memory);
    if (!b) return std::unexpected(std::move(b.error()).context("--host-memory"));
    host.memory_bytes = *b;
    given.push_back("--host-memory");
  }
  if (args.host_cpus > 0) {
    host.cpus = args.host_cpus;
    given.push_back("--host-cpus");
  }
  if (given.size() == 2) {
    host.source = "--host-memory, --host-cpus";
  } else if (given.size() == 1) {
    host.source = given[0] == "--host-memory" ? "--host-memory; CPUs from nproc" : "--host-cpus; memory from /proc/meminfo";
  }
  auto week = parse_week(args.week);
  if (!week) return std::unexpected(week.error());
  Options opt;
  opt.week = *week;
  opt.max_moves = args.max_moves;
  PlanOutput out;
  auto entries = plan_entries(all.entries);
  out.plan = make_plan(entries, profiles, host, opt);
  if (!args.history_path.empty()) {
    for (auto& rep : out.plan.entries) {
      if (rep.status != EntryStatus::no_history || !rep.note.empty()) continue;
      rep.note = elsewhere_note(entries[rep.index], args.history_path);
    }
  }
  out.rejected = std::move(all.rejected);
  return out;
}

}  // namespace cronrun::plan
