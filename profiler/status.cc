// Status against the schedule. Two halves meet here:
//
// Ticks — when Debian's cron starts an entry. cron works in local wall-clock
// minutes (its "virtual time" is the epoch minute shifted by the UTC offset), and
// when that local minute jumps (DST) it treats jobs in two ways (cron(8), "clock
// changed by less than 3 hours"): an entry whose minute or hour field starts with
// '*' (a "wildcard" entry, @hourly included) runs on the new local time at once;
// a fixed-time entry runs once for each local minute that was skipped forward, and
// is not run again for local minutes repeated after a step back. ticks_between()
// walks UTC minutes, keeps the highest local minute seen (cron's virtual time) and
// applies exactly those two rules; it skips hours and minutes that cannot match so
// a year ahead costs thousands of localtime calls, not half a million.
//
// Runs — the history streamed newest first, one job at a time. Each tick owns the
// runs that started in [tick, next tick); walking ticks backward in step with the
// runs, only the earliest run of the tick in hand is kept, so memory is the tick
// list of the window, whatever the number of runs.
#include "profiler/status.h"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/safe_file.h"
#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/crontab_cronrun.h"
#include "profiler/exit_codes.h"

namespace cronrun::status {

using prof::format_utc;
using prof::json_time;
using prof::Table;

const char* to_string(JobState s) {
  switch (s) {
    case JobState::failing: return "failing";
    case JobState::missed: return "missed";
    case JobState::late: return "late";
    case JobState::running: return "running";
    case JobState::up: return "up";
    case JobState::never_run: return "never_run";
  }
  return "unknown";
}

int urgency(JobState s) { return static_cast<int>(s); }

bool alerts(JobState s) { return s == JobState::failing || s == JobState::missed; }

double Grace::for_period(double period_s) const {
  if (fixed_s) return *fixed_s;
  return std::max(kMinGraceS, fraction * period_s);
}

Result<Grace> parse_grace(std::string_view text) {
  Grace g;
  if (text.ends_with('%')) {
    std::string num(text.substr(0, text.size() - 1));
    char* end = nullptr;
    errno = 0;
    double pct = std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || errno != 0 || !(pct > 0) || pct > 100)
      return fail(fmt::format("--grace: '{}' is not a percentage of the period in (0, 100] (e.g. 10%)", text));
    g.fraction = pct / 100;
    return g;
  }
  auto d = units::parse_duration(text);
  if (!d || d->count() <= 0)
    return fail(fmt::format("--grace: '{}' is neither a duration (90s, 10m, 1h) nor a percentage (10%)", text));
  g.fixed_s = static_cast<double>(d->count()) / 1000;
  return g;
}

// ---- ticks ----

namespace {

constexpr int64_t kMinute = 60;
// cron(8): clock changes of more than this are corrections, not DST.
constexpr int64_t kMaxDstJumpMinutes = 3 * 60;

struct Local {
  int64_t minute_number;  // (t + UTC offset) / 60: cron's virtual clock
  std::tm tm;
};

Local local_at(int64_t t) {
  Local l{};
  time_t tt = static_cast<time_t>(t);
  localtime_r(&tt, &l.tm);
  l.minute_number = (t + l.tm.tm_gmtoff) / kMinute;
  if ((t + l.tm.tm_gmtoff) % kMinute < 0) --l.minute_number;
  return l;
}

// The calendar fields of a virtual (local) minute number.
std::tm fields_of_virtual(int64_t minute_number) {
  std::tm tm{};
  time_t tt = static_cast<time_t>(minute_number * kMinute);
  gmtime_r(&tt, &tm);
  return tm;
}

bool matches_tm(const crontab::Schedule& s, const std::tm& tm) {
  return s.matches(tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday);
}

bool is_wildcard(const crontab::Entry& e) {
  return e.fields.size() >= 2 && (e.fields[0].starts_with('*') || e.fields[1].starts_with('*'));
}

// Walks UTC minutes from `from` (inclusive) while fn returns true; fn gets each
// tick. `limit` bounds the walk.
template <typename Fn>
void walk_ticks(const crontab::Entry& e, int64_t from, int64_t limit, Fn&& fn) {
  if (e.schedule.reboot || e.fields.size() != 5) return;
  const bool wildcard = is_wildcard(e);
  const crontab::Schedule& s = e.schedule;
  int64_t t = from - ((from % kMinute) + kMinute) % kMinute;
  if (t < from) t += kMinute;
  // cron's virtual time before the walk starts.
  int64_t high_water = local_at(t - kMinute).minute_number;
  while (t < limit) {
    Local now = local_at(t);
    high_water = std::max(high_water, local_at(t - kMinute).minute_number);
    const int64_t jump = now.minute_number - high_water;
    bool fires = false;
    if (wildcard || jump > kMaxDstJumpMinutes || jump < -kMaxDstJumpMinutes) {
      // Wildcard entries (and any entry after a clock correction) follow the new local time.
      fires = matches_tm(s, now.tm);
    } else if (jump >= 1) {
      // Fixed-time entries run once for every local minute not yet seen: the
      // current one, and those a forward DST jump skipped.
      for (int64_t v = high_water + 1; v <= now.minute_number && !fires; ++v) fires = matches_tm(s, fields_of_virtual(v));
    }
    // jump < 1 for a fixed entry: a repeated local minute, not run again.
    high_water = std::max(high_water, now.minute_number);
    if (fires && !fn(t)) return;
    // Next candidate: within this local hour, the next minute the fields allow;
    // past it, the next local hour. A DST change mid-hour (no zone has one on the
    // minute grid outside hour or half-hour boundaries) only costs extra steps.
    int step = 1;
    if (jump == 1 || jump == 0) {
      const bool hour_ok = s.hours[static_cast<size_t>(now.tm.tm_hour)] &&
                           s.matches_day(now.tm.tm_mday, now.tm.tm_mon + 1, now.tm.tm_wday);
      int m = now.tm.tm_min + 1;
      if (hour_ok) {
        while (m < 60 && !s.minutes[static_cast<size_t>(m)]) ++m;
      } else {
        m = 60;
      }
      step = m - now.tm.tm_min;
    }
    t += step * kMinute;
  }
}

}  // namespace

std::vector<double> ticks_between(const crontab::Entry& entry, double from_s, double to_s) {
  std::vector<double> out;
  walk_ticks(entry, static_cast<int64_t>(std::ceil(from_s)), static_cast<int64_t>(std::ceil(to_s)), [&](int64_t t) {
    out.push_back(static_cast<double>(t));
    return true;
  });
  return out;
}

std::optional<double> next_tick(const crontab::Entry& entry, double after_s, double horizon_s) {
  std::optional<double> out;
  int64_t from = static_cast<int64_t>(std::floor(after_s)) + 1;
  walk_ticks(entry, from, static_cast<int64_t>(std::ceil(after_s + horizon_s)), [&](int64_t t) {
    out = static_cast<double>(t);
    return false;
  });
  return out;
}

std::optional<double> previous_tick(const crontab::Entry& entry, double before_s, double floor_s) {
  // Looks back an hour, a day, ... a year: a frequent job's walk stays short.
  for (double span : {3600.0, 86400.0, 8 * 86400.0, 32 * 86400.0, 367 * 86400.0}) {
    const double from = std::max(floor_s, before_s - span);
    std::optional<double> last;
    walk_ticks(entry, static_cast<int64_t>(std::ceil(from)), static_cast<int64_t>(std::ceil(before_s)), [&](int64_t t) {
      last = static_cast<double>(t);
      return true;
    });
    if (last || from <= floor_s) return last;
  }
  return std::nullopt;
}

// ---- matching runs with ticks ----

void TickMatcher::add_run(const RunFigures& run) {
  if (!last_run_) last_run_ = run;
  if (!last_executed_ && run.status != RunStatus::skipped) last_executed_ = run;
  if (!last_finished_executed_ && run.status != RunStatus::skipped && run.status != RunStatus::running)
    last_finished_executed_ = run;
  // Ticks newer than this run are settled: no later run can belong to them.
  while (cursor_ > 0 && ticks_[cursor_ - 1] > run.started_at_s) settle(cursor_ - 1);
  if (cursor_ == 0) return;  // before the first tick of the window
  earliest_ = run.started_at_s;
  earliest_status_ = run.status;
  has_earliest_ = true;
}

void TickMatcher::settle(size_t index) {
  // `index` is cursor_ - 1: the tick whose runs were being gathered.
  const double tick = ticks_[index];
  const double next = index + 1 < ticks_.size() ? ticks_[index + 1] : next_tick_;
  const double grace = grace_.for_period(next - tick);
  Outcome o = Outcome::pending;
  if (has_earliest_) {
    if (earliest_status_ == RunStatus::skipped) {
      o = Outcome::skipped;
    } else {
      o = earliest_ - tick > grace ? Outcome::late : Outcome::on_time;
    }
  } else if (now_ >= tick + grace) {
    o = Outcome::missed;
  }
  if (o != Outcome::pending) {
    if (tick >= count_from_) {
      ++due_;
      if (o == Outcome::missed) {
        ++missed_;
        missed_ticks_.push_back(tick);
      }
      if (o == Outcome::late) ++late_;
      if (o == Outcome::skipped) ++skipped_;
    }
    if (!decisive_) {
      decisive_ = o;
      decisive_tick_ = tick;
      decisive_grace_ = grace;
      decisive_start_ = has_earliest_ ? std::optional(earliest_) : std::nullopt;
    }
  }
  has_earliest_ = false;
  cursor_ = index;
}

TickMatcher::TickMatcher(std::vector<double> ticks, double next_tick_s, double now_s, Grace grace, double count_from_s)
    : ticks_(std::move(ticks)),
      next_tick_(next_tick_s),
      now_(now_s),
      grace_(grace),
      count_from_(count_from_s),
      cursor_(ticks_.size()) {}

void TickMatcher::finish() {
  while (cursor_ > 0) settle(cursor_ - 1);
  std::reverse(missed_ticks_.begin(), missed_ticks_.end());
}

// ---- crontabs ----

namespace {

// As crontab.cc's bound on one crontab file.
constexpr size_t kMaxCrontabListBytes = 4 << 20;

double mtime_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
}

// The invoking user's crontab as `crontab -l` prints it: the spool directory is
// not readable by users (crontab(1) is setgid crontab for that). Its stderr goes
// to /dev/null; a non-zero exit ("no crontab for USER") is nullopt.
Result<std::optional<std::string>> crontab_l() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_sys("pipe2", "crontab -l", errno);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  char arg0[] = "crontab", arg1[] = "-l";
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, "crontab", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail_sys("posix_spawnp", "crontab -l", rc);
  write_end.reset();
  auto text = read_bounded(read_end.get(), kMaxCrontabListBytes, "crontab -l");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail_sys("waitpid", "crontab -l", errno);
  }
  if (!text) return std::unexpected(text.error());
  if (text->truncated) return fail("crontab -l: output larger than the largest crontab read");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::optional<std::string>();
  return std::optional<std::string>(std::move(text->data));
}

}  // namespace

Result<Crontabs> load_crontabs(const std::vector<std::string>& paths) {
  Crontabs out;
  auto add = [&](const std::string& path, std::optional<crontab::Kind> kind) -> Result<void> {
    auto c = crontab::load_crontab(path, kind);
    if (!c) return std::unexpected(c.error());
    std::set<std::string> files;
    for (const auto& e : c->entries) files.insert(e.file);
    for (const auto& f : files) out.modified_at_s[f] = mtime_of(f);
    out.crontab.append(std::move(*c));
    return {};
  };
  if (!paths.empty()) {
    for (const auto& p : paths)
      if (auto r = add(p, std::nullopt); !r) return std::unexpected(r.error());
    return out;
  }
  // The defaults, each where readable: what cannot be read is said, not fatal.
  std::vector<std::pair<std::string, std::optional<crontab::Kind>>> defaults = {
      {"/etc/crontab", crontab::Kind::system}, {"/etc/cron.d", crontab::Kind::system}};
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name)
    defaults.emplace_back(std::string("/var/spool/cron/crontabs/") + pw->pw_name, crontab::Kind::user);
  for (const auto& [path, kind] : defaults) {
    const bool spool = kind == crontab::Kind::user;
    if (::access(path.c_str(), R_OK) != 0) {
      const int err = errno;
      if (spool && ::geteuid() != 0) break;  // users cannot read the spool: ask crontab -l below
      out.notes.push_back(err == ENOENT ? path + ": not present" : path + ": " + std::strerror(err) + " (left out)");
      continue;
    }
    if (auto r = add(path, kind); !r) out.notes.push_back(r.error().message() + " (left out)");
    if (spool) return out;
  }
  if (::geteuid() == 0) return out;
  const passwd* pw = ::getpwuid(::geteuid());
  const std::string user = pw && pw->pw_name ? pw->pw_name : std::to_string(::geteuid());
  auto listed = crontab_l();
  if (!listed) {
    out.notes.push_back("your crontab: " + listed.error().message() + " (left out)");
  } else if (!*listed) {
    out.notes.push_back("crontab -l: no crontab for " + user);
  } else {
    // No file, so no mtime: compute_status expects a line's ticks from its job's
    // first recorded run on (a line added an hour ago has not missed a day).
    out.crontab.append(crontab::parse_crontab(**listed, "crontab -l (" + user + ")", crontab::Kind::user));
    out.age_unknown.insert("crontab -l (" + user + ")");
    out.notes.push_back("crontab -l (" + user + "): its age is unknown (the spool is root's), so a job's ticks count from its "
                        "first recorded run");
  }
  return out;
}

// ---- the report ----

namespace {

LastRun last_run_of(const RunFigures& f) { return {f.run_id, f.started_at_s, f.status, f.exit_code}; }

// A grace or a delay for people: whole seconds below two minutes ("30s"), else
// hours and minutes ("74h24m").
std::string span_text(double s) {
  if (s >= 0 && s < 120) return fmt::format("{}s", static_cast<int64_t>(std::llround(s)));
  return units::format_duration_s(s);
}

// A tick for people, local time: the weekday within the last six days, else the date.
std::string local_tick_text(double t, double now) {
  time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, now - t < 6 * 86400.0 ? "%a %H:%M" : "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string zone_name() {
  if (const char* tz = std::getenv("TZ"); tz && *tz) return tz[0] == ':' ? tz + 1 : tz;
  std::error_code ec;
  auto target = std::filesystem::read_symlink("/etc/localtime", ec);
  if (!ec) {
    std::string s = target.string();
    if (auto pos = s.find("zoneinfo/"); pos != std::string::npos) return s.substr(pos + 9);
    return s;
  }
  tzset();
  return tzname[0];
}

struct JobInput {
  std::vector<const crontab::Entry*> entries;
  double expected_from_s = 0;  // the newest modification time of its crontab files
  // A line read with `crontab -l` (a user cannot stat the spool) has no mtime: its
  // ticks are expected only from the job's first recorded run on.
  bool since_unknown = false;
};

// Where a job whose crontab line has no known age starts to be expected: the
// window's start when the history has a run of it older than the window, else its
// first run in the window, else never (nothing shows the line existed before now).
Result<std::optional<double>> first_evidence(const HistoryStore& store, const std::string& job, double window_from) {
  RunFilter older;
  older.job = job;
  older.before_unix_s = window_from;
  older.limit = 1;
  bool any_older = false;
  if (auto r = store.scan(older, [&](const RunFigures&) { any_older = true; }); !r) return std::unexpected(r.error());
  if (any_older) return std::optional<double>(window_from);
  RunFilter in_window;
  in_window.job = job;
  in_window.since_unix_s = window_from;
  std::optional<double> first;
  auto r = store.scan(in_window, [&](const RunFigures& run) {
    if (!first || run.started_at_s < *first) first = run.started_at_s;
  });
  if (!r) return std::unexpected(r.error());
  return first;
}

// The crontab's cronrun entries grouped by job; why the others are left out goes
// to `unwatched` (when given).
std::map<std::string, JobInput> group_jobs(const Crontabs& crontabs, const Options& options,
                                           std::vector<Unwatched>* unwatched) {
  auto leave_out = [&](Unwatched u) {
    if (unwatched) unwatched->push_back(std::move(u));
  };
  std::map<std::string, JobInput> jobs;
  for (const auto& e : crontabs.crontab.entries) {
    std::string where = e.file + ":" + std::to_string(e.line);
    auto call = crontab::find_cronrun(e.command);
    if (!call) {
      leave_out({where, "", "cronrun call cron would start but cronrun refuses: " + call.error().message()});
      continue;
    }
    if (!*call) continue;  // a plain command: nothing records its runs
    const std::string& job = (*call)->job;
    if (options.job && job != *options.job) continue;
    if (e.schedule.reboot) {
      leave_out({where, job, "@reboot: not on the clock"});
      continue;
    }
    if ((*call)->history && !options.history_path.empty() &&
        !crontab::same_history(*(*call)->history, crontab::cron_home(e), options.history_path)) {
      leave_out({where, job, "records its runs in another history (" + *(*call)->history + ")"});
      continue;
    }
    JobInput& in = jobs[job];
    in.entries.push_back(&e);
    if (auto it = crontabs.modified_at_s.find(e.file); it != crontabs.modified_at_s.end())
      in.expected_from_s = std::max(in.expected_from_s, it->second);
    if (crontabs.age_unknown.contains(e.file)) in.since_unknown = true;
  }
  return jobs;
}

constexpr double kYear = 366 * 86400.0;

struct JobTicks {
  std::vector<double> ticks;  // ascending: the window's, preceded by those back to the newest due one
  std::optional<double> next;
};

// A job's ticks from `from` to now, and before them back to the newest tick whose
// grace has passed, not earlier than `expected_floor` (the window may hold none: a
// weekly job on a one-day window, or a daily job before today's grace is over).
JobTicks job_ticks(const JobInput& in, double from, double expected_floor, double now, const Grace& grace) {
  JobTicks out;
  std::vector<double>& ticks = out.ticks;
  for (const crontab::Entry* e : in.entries) {
    auto t = ticks_between(*e, from, now + 1);
    ticks.insert(ticks.end(), t.begin(), t.end());
    if (auto n = next_tick(*e, now, kYear); n && (!out.next || *n < *out.next)) out.next = n;
  }
  std::sort(ticks.begin(), ticks.end());
  ticks.erase(std::unique(ticks.begin(), ticks.end()), ticks.end());
  // Bounded: a grace of months on a job every minute would otherwise walk back
  // tick by tick.
  constexpr int kMaxLookBackTicks = 1000;
  double earlier_than = ticks.empty() ? std::min(from, now + 1) : ticks.front();
  for (int looked = 0; looked < kMaxLookBackTicks; ++looked) {
    std::optional<double> prev;
    for (const crontab::Entry* e : in.entries)
      if (auto p = previous_tick(*e, earlier_than, expected_floor); p && (!prev || *p > *prev)) prev = p;
    if (!prev) break;
    const double after = ticks.empty() ? out.next.value_or(now + kYear) : ticks.front();
    ticks.insert(ticks.begin(), *prev);
    if (now >= *prev + grace.for_period(after - *prev)) break;
    earlier_than = *prev;
  }
  return out;
}

}  // namespace

Result<Report> compute_status(const HistoryStore* store, const Crontabs& crontabs, const Options& options) {
  Report report;
  report.now_s = options.now_s;
  report.window_s = options.window_s;
  report.timezone = zone_name();
  report.rejected = crontabs.crontab.rejected;
  report.notes = crontabs.notes;

  std::map<std::string, JobInput> jobs = group_jobs(crontabs, options, &report.unwatched);

  const double now = options.now_s;
  const double window_from = now - options.window_s;
  std::map<std::string, double> last_success;
  if (store) {
    auto ls = store->last_success_by_job();
    if (!ls) return std::unexpected(ls.error());
    last_success = std::move(*ls);
  }

  for (auto& [job, in] : jobs) {
    JobStatus js;
    js.job = job;
    for (const crontab::Entry* e : in.entries) {
      js.sources.push_back({e->file, e->line, e->time_text, e->user});
      if (!js.schedule.empty()) js.schedule += ", ";
      js.schedule += e->time_text;
    }
    js.where = js.sources.front().file + ":" + std::to_string(js.sources.front().line);
    if (js.sources.size() > 1) js.where += fmt::format(" +{}", js.sources.size() - 1);

    // Ticks counted: within the window and after the crontab last changed.
    double from = std::max(window_from, in.expected_from_s);
    // Ticks expected at all: after the crontab last changed (the window only
    // bounds the counts; the state is the newest due tick's, however old).
    double expected_floor = in.expected_from_s;
    if (in.since_unknown) {
      std::optional<double> evidence;
      if (store) {
        auto ev = first_evidence(*store, job, window_from);
        if (!ev) return std::unexpected(ev.error());
        evidence = *ev;
      }
      // No run at all: no tick is expected (now + 1 leaves none due).
      from = std::max(from, evidence ? *evidence - 1 : now + 1);
      // A run older than the window: the line was there before it.
      expected_floor = evidence && *evidence <= window_from ? 0 : from;
    }
    JobTicks jt = job_ticks(in, from, expected_floor, now, options.grace);
    const std::vector<double>& ticks = jt.ticks;
    const std::optional<double>& next = jt.next;
    if (!ticks.empty()) js.last_tick_s = ticks.back();
    js.next_tick_s = next;

    TickMatcher matcher(ticks, next.value_or(now + kYear), now, options.grace, from);
    if (store && !ticks.empty()) {
      RunFilter f;
      f.job = job;
      f.since_unix_s = ticks.front();
      auto r = store->scan(f, [&](const RunFigures& run) { matcher.add_run(run); });
      if (!r) return std::unexpected(r.error());
    }
    matcher.finish();
    // The newest runs when the window held none (or only skips): walk back in pages.
    if (store && (!matcher.last_run() || !matcher.last_finished_executed())) {
      std::optional<double> before = ticks.empty() ? std::nullopt : std::optional(ticks.front());
      for (;;) {
        RunFilter f;
        f.job = job;
        f.before_unix_s = before;
        f.limit = 256;
        size_t n = 0;
        auto r = store->scan(f, [&](const RunFigures& run) {
          ++n;
          matcher.note_older_run(run);
          before = run.started_at_s;
        });
        if (!r) return std::unexpected(r.error());
        if (n < 256 || matcher.last_finished_executed()) break;
      }
    }

    if (matcher.last_run()) js.last_run = last_run_of(*matcher.last_run());
    if (matcher.last_executed()) js.last_executed = last_run_of(*matcher.last_executed());
    if (auto it = last_success.find(job); it != last_success.end()) js.last_success_s = it->second;
    js.ticks = matcher.due();
    js.missed = matcher.missed();
    js.late = matcher.late();
    js.skipped = matcher.skipped();
    js.missed_ticks_s = matcher.missed_ticks();
    js.grace_s = matcher.decisive_grace().value_or(
        options.grace.for_period(next && js.last_tick_s ? *next - *js.last_tick_s : 60));

    const auto& fin = matcher.last_finished_executed();
    const auto decisive = matcher.decisive();
    if (fin && fin->status != RunStatus::ok) {
      js.state = JobState::failing;
      js.reason = fmt::format("last run {} ({})", to_string(fin->status), format_utc(fin->started_at_s));
    } else if (decisive == TickMatcher::Outcome::missed) {
      js.state = JobState::missed;
      js.reason = fmt::format("no run for the tick at {} (grace {})", local_tick_text(*matcher.decisive_tick(), now),
                              span_text(*matcher.decisive_grace()));
    } else if (decisive == TickMatcher::Outcome::late) {
      js.state = JobState::late;
      js.reason = fmt::format("started {} after the tick at {} (grace {})",
                              span_text(*matcher.decisive_start() - *matcher.decisive_tick()),
                              local_tick_text(*matcher.decisive_tick(), now),
                              span_text(*matcher.decisive_grace()));
    } else if (matcher.last_executed() && matcher.last_executed()->status == RunStatus::running) {
      // Skips after it (its own lock held) do not hide a run in progress.
      js.state = JobState::running;
      js.reason = "started " + format_utc(matcher.last_executed()->started_at_s);
    } else if (matcher.last_run()) {
      js.state = JobState::up;
      js.reason = matcher.last_run()->status == RunStatus::skipped ? "last tick skipped (lock or drain)" : "last run ok";
    } else {
      js.state = JobState::never_run;
      js.reason = in.since_unknown ? "no run recorded (the line's age is unknown: no tick expected before its first run)"
                  : ticks.empty()  ? "no tick due yet"
                                   : "no tick due yet past its grace";
    }
    report.jobs.push_back(std::move(js));
  }
  std::stable_sort(report.jobs.begin(), report.jobs.end(), [](const JobStatus& a, const JobStatus& b) {
    if (urgency(a.state) != urgency(b.state)) return urgency(a.state) < urgency(b.state);
    return a.job < b.job;
  });
  return report;
}

Reads reads(const Crontabs& crontabs, const Options& options) {
  const double now = options.now_s;
  const double window_from = now - options.window_s;
  Reads out;
  // A line of unknown age whose job first ran in the window: from that run, less 1 s.
  out.since_s = window_from - 1;
  for (const auto& [job, in] : group_jobs(crontabs, options, nullptr)) {
    out.jobs.push_back(job);
    const double from = std::max(window_from, in.expected_from_s);
    // A line of unknown age as when the history holds a run older than the window:
    // the case that looks back furthest (compute_status).
    const double expected_floor = in.since_unknown ? 0 : in.expected_from_s;
    JobTicks jt = job_ticks(in, from, expected_floor, now, options.grace);
    if (!jt.ticks.empty()) out.since_s = std::min(out.since_s, jt.ticks.front());
  }
  return out;
}

void TickMatcher::note_older_run(const RunFigures& run) {
  if (!last_run_) last_run_ = run;
  if (!last_executed_ && run.status != RunStatus::skipped) last_executed_ = run;
  if (!last_finished_executed_ && run.status != RunStatus::skipped && run.status != RunStatus::running)
    last_finished_executed_ = run;
}

// ---- output ----

namespace {

nlohmann::json time_or_null(const std::optional<double>& t) {
  return t ? json_time(*t) : nlohmann::json(nullptr);
}

nlohmann::json last_run_json(const std::optional<LastRun>& r) {
  if (!r) return nullptr;
  nlohmann::json j = {{"run_id", r->run_id}, {"started_at", json_time(r->started_at_s)},
                      {"status", to_string(r->status)}};
  j["exit_code"] = r->exit_code ? nlohmann::json(*r->exit_code) : nlohmann::json(nullptr);
  return j;
}

std::string ago(double now, const std::optional<double>& t) {
  if (!t) return "-";
  double d = now - *t;
  if (d < 0) d = 0;
  if (d < 120) return fmt::format("{}s ago", static_cast<int64_t>(d));
  if (d < 7200) return fmt::format("{}m ago", static_cast<int64_t>(d / 60));
  if (d < 172800) return fmt::format("{}h ago", static_cast<int64_t>(d / 3600));
  return fmt::format("{}d ago", static_cast<int64_t>(d / 86400));
}

// For people: "never run" rather than the token.
std::string state_text(JobState s) { return s == JobState::never_run ? "never run" : to_string(s); }

std::string shorten(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  if (width <= 1) return s.substr(0, width);
  return s.substr(0, width - 1) + "~";
}

std::string window_text(double s) {
  if (std::fmod(s, 86400) == 0) return fmt::format("{}d", static_cast<int64_t>(s / 86400));
  if (std::fmod(s, 3600) == 0) return fmt::format("{}h", static_cast<int64_t>(s / 3600));
  return units::format_duration_s(s);
}

}  // namespace

nlohmann::json to_json(const Report& report) {
  nlohmann::json j;
  j["schema"] = "cronrun.status/1";
  j["generated_at"] = json_time(report.now_s);
  j["window_s"] = static_cast<int64_t>(report.window_s);
  j["timezone"] = report.timezone;
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& js : report.jobs) {
    nlohmann::json sources = nlohmann::json::array();
    for (const auto& s : js.sources) {
      nlohmann::json o = {{"file", s.file}, {"line", s.line}, {"schedule", s.schedule}};
      o["user"] = s.user ? nlohmann::json(*s.user) : nlohmann::json(nullptr);
      sources.push_back(std::move(o));
    }
    nlohmann::json missed = nlohmann::json::array();
    for (double t : js.missed_ticks_s) missed.push_back(json_time(t));
    jobs.push_back({{"job", js.job},
                    {"state", to_string(js.state)},
                    {"reason", js.reason},
                    {"schedule", js.schedule},
                    {"sources", std::move(sources)},
                    {"last_run", last_run_json(js.last_run)},
                    {"last_executed", last_run_json(js.last_executed)},
                    {"last_success_at", time_or_null(js.last_success_s)},
                    {"last_tick_at", time_or_null(js.last_tick_s)},
                    {"next_tick_at", time_or_null(js.next_tick_s)},
                    {"grace_s", static_cast<int64_t>(std::llround(js.grace_s))},
                    {"ticks", js.ticks},
                    {"missed", js.missed},
                    {"late", js.late},
                    {"skipped", js.skipped},
                    {"missed_ticks", std::move(missed)}});
  }
  j["jobs"] = std::move(jobs);
  nlohmann::json unwatched = nlohmann::json::array();
  for (const auto& u : report.unwatched) unwatched.push_back({{"where", u.where}, {"job", u.job}, {"reason", u.reason}});
  j["unwatched"] = std::move(unwatched);
  nlohmann::json rejected = nlohmann::json::array();
  for (const auto& r : report.rejected)
    rejected.push_back({{"file", r.file}, {"line", r.line}, {"text", r.text}, {"reason", r.reason}});
  j["rejected"] = std::move(rejected);
  j["notes"] = report.notes;
  return j;
}

std::string format_text(const Report& report, size_t width) {
  std::string out;
  const std::string window = window_text(report.window_s);
  if (report.jobs.empty()) {
    out += "No cronrun job in the crontabs read.\n";
  } else {
    // Columns that may shrink are the free text ones; the rest are short.
    // MISSED and LATE count ticks in the window (the last line says which).
    Table t({"JOB", "STATE", "SCHEDULE", "LAST RUN", "MISSED", "LATE", "CRONTAB"},
            {false, false, false, false, true, true, false});
    struct Row {
      std::string job, state, schedule, last, missed, late, where;
    };
    std::vector<Row> rows;
    for (const auto& js : report.jobs) {
      std::string last = "-";
      if (js.last_run) last = fmt::format("{} {}", ago(report.now_s, js.last_run->started_at_s), to_string(js.last_run->status));
      const Source& src = js.sources.front();
      std::string where = std::filesystem::path(src.file).filename().string() + ":" + std::to_string(src.line);
      if (js.sources.size() > 1) where += fmt::format(" +{}", js.sources.size() - 1);
      rows.push_back({js.job, state_text(js.state), js.schedule, last, std::to_string(js.missed), std::to_string(js.late),
                      where});
    }
    // Fit the terminal (DESIGN §6): shrink the free-text columns (crontab, then
    // schedule, then job), never below kMinCell; short columns stay whole.
    constexpr size_t kMinCell = 8;
    const std::vector<std::string> header = {"JOB", "STATE", "SCHEDULE", "LAST RUN", "MISSED", "LATE", "CRONTAB"};
    std::vector<size_t> w(header.size());
    for (size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
    for (const auto& r : rows) {
      const std::string* cells[] = {&r.job, &r.state, &r.schedule, &r.last, &r.missed, &r.late, &r.where};
      for (size_t i = 0; i < header.size(); ++i) w[i] = std::max(w[i], cells[i]->size());
    }
    size_t total = 2 * (header.size() - 1);
    for (size_t x : w) total += x;
    for (size_t col : {size_t{6}, size_t{2}, size_t{0}}) {
      size_t floor = std::max(kMinCell, header[col].size());
      if (width == 0 || total <= width || w[col] <= floor) continue;  // 0: --wide
      size_t cut = std::min(total - width, w[col] - floor);
      w[col] -= cut;
      total -= cut;
    }
    for (const auto& r : rows)
      t.add({shorten(r.job, w[0]), r.state, shorten(r.schedule, w[2]), r.last, r.missed, r.late,
             r.where.size() > w[6] ? "~" + r.where.substr(r.where.size() - (w[6] - 1)) : r.where});
    out += t.render();
  }
  size_t alerting = 0;
  for (const auto& js : report.jobs)
    if (alerts(js.state)) ++alerting;
  for (const auto& js : report.jobs)
    if (alerts(js.state) || js.state == JobState::late) out += prof::wrap_prose(fmt::format("  {} ({}): {}", js.job, state_text(js.state), js.reason), width);
  for (const auto& u : report.unwatched)
    out += prof::wrap_prose(fmt::format("not watched: {} {}: {}", u.where, u.job, u.reason), width);
  for (const auto& r : report.rejected) {
    std::string where = r.line ? r.file + ":" + std::to_string(r.line) : r.file;
    out += prof::wrap_prose(fmt::format("rejected: {}: {}", where, r.reason), width);
  }
  for (const auto& n : report.notes) out += prof::wrap_prose("note: " + n, width);
  out += prof::wrap_prose(fmt::format("{} job(s), {} failing or missed; MISSED and LATE: ticks in the last {}, local time "
                             "({}) as cron starts them",
                             report.jobs.size(), alerting, window, report.timezone),
                 width);
  return out;
}

int exit_code(const Report& report) {
  for (const auto& js : report.jobs)
    if (alerts(js.state)) return prof::kExitStatusAlert;
  return prof::kExitOk;
}

}  // namespace cronrun::status
