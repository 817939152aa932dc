// Gathers the plan's inputs from the command line and the machine: crontabs (each
// path's kind from its location, directories as cron.d), the host (overrides, else
// /proc/meminfo and nproc) and the week (the one holding --week, else today's,
// local time).
#include "profiler/plan_run.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

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
  out.plan = make_plan(plan_entries(all.entries), profiles, host, opt);
  out.rejected = std::move(all.rejected);
  return out;
}

}  // namespace cronrun::plan
