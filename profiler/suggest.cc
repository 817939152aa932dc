// `cronprof suggest [--job J] [--since 30d] [--headroom 1.3] [--write [--config FILE]]`.
#include "profiler/suggest.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "common/fd.h"
#include "common/job_options.h"
#include "common/safe_file.h"
#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/config_edit.h"
#include "profiler/exit_codes.h"
#include "profiler/stats.h"
#include "profiler/suggest_seccomp.h"
#include "profiler/summary.h"
#include "profiler/text_escape.h"
#include "runner/cli.h"
#include "runner/job_spec.h"

namespace cronrun::prof {

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kGiB = 1024 * kMiB;
// Runs throttled for more than this share of their wall time were held back by
// the quota, so their utilisation understates what they wanted.
constexpr double kThrottledShare = 0.05;
// No memory limit below this is suggested: page cache and the runtime a job
// starts (a shell, an interpreter) need room beyond what its peak showed.
constexpr uint64_t kMinMemoryBytes = 16 * kMiB;
// No pids limit below this is suggested: a shell, its pipes and the odd helper a
// job starts now and then need room beyond the largest count seen.
constexpr uint64_t kMinPids = 32;
constexpr double kMaxPids = static_cast<double>(job_options::kMaxPids);

uint64_t round_up(uint64_t v, uint64_t step) { return (v + step - 1) / step * step; }

// Upper bounds of what is suggested at all, well inside what cronrun's parsers
// take (units::parse_size, parse_duration): beyond them the figures are damage or
// nonsense, and arithmetic on them would overflow.
constexpr double kMaxMemoryBytes = 1ull << 60;
constexpr double kMaxTimeout_s = 100 * 365.25 * 86400;

// A byte figure from a history row (a double that may be anything) for evidence text.
std::string size_text(double bytes) { return size_or_dash(std::optional<double>(bytes)); }

std::string plural(uint64_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

std::string memory_value(uint64_t bytes) {
  if (bytes % kGiB == 0) return fmt::format("{}G", bytes / kGiB);
  return fmt::format("{}M", (bytes + kMiB - 1) / kMiB);
}

std::string cpu_value(double pct) { return fmt::format("{:.0f}%", pct); }

std::string timeout_value(double seconds) {
  if (!(seconds >= 0 && seconds <= kMaxTimeout_s)) return "";
  auto s = static_cast<uint64_t>(std::ceil(seconds));
  if (s < 120) return fmt::format("{}s", s);
  uint64_t m = (s + 59) / 60;
  if (m % 60 == 0) return fmt::format("{}h", m / 60);
  if (m < 60) return fmt::format("{}m", m);
  return fmt::format("{}h{}m", m / 60, m % 60);
}

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<unsigned>(online) : 1;
}

void SuggestAcc::add(const RunFigures& f) {
  ++runs_;
  // The limits in force now: the newest run that executed.
  if (f.status != RunStatus::skipped && (!newest_s_ || f.started_at_s > *newest_s_)) {
    newest_s_ = f.started_at_s;
    current_memory_bytes_ = f.memory_max_bytes;
    current_cpu_pct_ = f.cpu_quota_pct;
    current_timeout_s_ = f.timeout_s;
    current_pids_max_ = f.pids_max;
  }
  by_status_[f.status]++;
  uint64_t kills = f.oom_kills.value_or(0);
  if (f.status == RunStatus::oom && kills == 0) kills = 1;
  if (kills) {
    oom_kills_ += kills;
    if (f.memory_max_bytes) oom_limit_ = std::max(oom_limit_.value_or(0), *f.memory_max_bytes);
  }
  if (f.pids_max_events && *f.pids_max_events) {
    pids_refused_ += *f.pids_max_events;
    if (f.pids_max) pids_refused_limit_ = std::max(pids_refused_limit_.value_or(0), *f.pids_max);
  }
  if (f.status == RunStatus::timeout) {
    ++timeouts_;
    if (f.timeout_s) timeout_limit_ = std::max(timeout_limit_.value_or(0), *f.timeout_s);
  }
  if (f.status != RunStatus::ok) return;
  ok_runs_++;
  if (f.memory_peak_bytes) peaks_.push_back(static_cast<double>(*f.memory_peak_bytes));
  if (f.max_rss_bytes) rss_.push_back(static_cast<double>(*f.max_rss_bytes));
  if (f.wall_s) walls_.push_back(*f.wall_s);
  if (f.pids_peak) {
    ++pids_runs_;
    pids_peak_max_ = std::max(pids_peak_max_, *f.pids_peak);
  }
  if (f.cpu_s && f.wall_s && *f.wall_s > 0) util_.push_back(100.0 * *f.cpu_s / *f.wall_s);
  if (f.cpu_throttled_s && f.wall_s && *f.wall_s > 0) {
    throttled_share_sum_ += *f.cpu_throttled_s / *f.wall_s;
    ++throttled_n_;
  }
}

Suggestion suggest_limits(const std::string& job, const std::vector<RunFigures>& runs, double headroom,
                          double window_days, std::optional<unsigned> host_cpus) {
  SuggestAcc acc;
  for (const RunFigures& f : runs) acc.add(f);
  return acc.finish(job, headroom, window_days, host_cpus);
}

Suggestion SuggestAcc::finish(const std::string& job, double headroom, double window_days,
                              std::optional<unsigned> host_cpus) {
  // Taken out first: the accumulator is empty again whichever way this returns.
  SuggestAcc a = std::move(*this);
  *this = SuggestAcc();
  Suggestion s;
  s.job = job;
  s.runs = a.runs_;
  s.ok_runs = a.ok_runs_;
  s.current_memory_bytes = a.current_memory_bytes_;
  s.current_cpu_pct = a.current_cpu_pct_;
  s.current_timeout_s = a.current_timeout_s_;
  s.current_pids_max = a.current_pids_max_;
  const auto& by_status = a.by_status_;
  auto& peaks = a.peaks_;
  auto& rss = a.rss_;
  auto& util = a.util_;
  auto& walls = a.walls_;
  const double throttled_share_sum = a.throttled_share_sum_;
  const uint64_t throttled_n = a.throttled_n_;
  const uint64_t oom_kills = a.oom_kills_;
  const std::optional<uint64_t> oom_limit = a.oom_limit_;
  const uint64_t timeouts = a.timeouts_;
  const std::optional<double> timeout_limit = a.timeout_limit_;

  std::string outcomes;
  for (const auto& [status, n] : by_status) outcomes += (outcomes.empty() ? "" : ", ") + fmt::format("{} {}", n, to_string(status));
  s.evidence.push_back(fmt::format("{} in {:g} days ({})", plural(s.runs, "run", "runs"), window_days,
                                   outcomes.empty() ? "none" : outcomes));
  if (s.ok_runs < kMinRuns) {
    s.evidence.push_back(fmt::format("only {} — at least {} are needed; no suggestion",
                                     plural(s.ok_runs, "successful run", "successful runs"), kMinRuns));
    return s;
  }
  s.enough_data = true;

  // Memory.
  bool from_rss = peaks.empty() && !rss.empty();
  std::vector<double>& mem = from_rss ? rss : peaks;
  if (!mem.empty()) {
    std::sort(mem.begin(), mem.end());
    double p99 = *percentile_sorted(mem, 99);
    double want = p99 * headroom;
    std::string why = fmt::format("memory: {} p99 {}, max {} over {} successful runs",
                                  from_rss ? "largest-process RSS (no cgroup accounting, may understate)" : "peak",
                                  size_text(p99), size_text(mem.back()), mem.size());
    why += fmt::format("; {}", plural(oom_kills, "OOM kill", "OOM kills"));
    if (oom_kills && oom_limit) {
      why += " under the " + units::format_size(*oom_limit) + " limit, so at least that × headroom";
      want = std::max(want, static_cast<double>(*oom_limit) * headroom);
    }
    if (!(want <= kMaxMemoryBytes)) {
      s.evidence.push_back(fmt::format("{}; × {:g} is beyond any memory limit, so the figures are damaged; no "
                                       "suggestion", why, headroom));
    } else {
      uint64_t bytes = static_cast<uint64_t>(std::ceil(want));
      const bool floored = bytes < kMinMemoryBytes;
      bytes = round_up(std::max<uint64_t>(bytes, kMinMemoryBytes), bytes >= 256 * kMiB ? 16 * kMiB : kMiB);
      s.memory_bytes = bytes;
      s.memory = memory_value(bytes);
      s.evidence.push_back(fmt::format("{} → {} (× {:g}{})", why, s.memory, headroom,
                                       floored ? fmt::format(" is {}; raised to the 16M floor", size_text(want)) : ""));
    }
  } else {
    s.evidence.push_back("memory: no run measured it; no suggestion");
  }

  // CPU.
  if (!util.empty()) {
    std::sort(util.begin(), util.end());
    double p95 = *percentile_sorted(util, 95);
    double want = p95 * headroom;
    std::string why = fmt::format("cpu: p95 {:.0f}% of one CPU (CPU time per wall second), max {:.0f}%", p95,
                                  util.back());
    if (throttled_n) {
      double share = throttled_share_sum / static_cast<double>(throttled_n);
      why += fmt::format("; throttled {:.1f}% of wall on average", 100.0 * share);
      if (share > kThrottledShare && s.current_cpu_pct) {
        why += fmt::format(" under the {:.0f}% quota, so at least that × headroom", *s.current_cpu_pct);
        want = std::max(want, *s.current_cpu_pct * headroom);
      }
    }
    double pct = std::max(10.0, std::ceil(want / 10.0 - 1e-9) * 10.0);
    if (host_cpus && !(pct <= 100.0 * *host_cpus)) {
      // Also where the figures are absurd (infinite utilisation of a zero wall).
      pct = 100.0 * *host_cpus;
      why += fmt::format("; capped at the {} CPU{} of this host", *host_cpus, *host_cpus == 1 ? "" : "s");
    }
    if (!(pct <= 100000.0)) {
      s.evidence.push_back(fmt::format("{}; × {:g} is beyond any CPU quota, so the figures are damaged; no "
                                       "suggestion", why, headroom));
    } else {
      s.cpu_pct = pct;
      s.cpu = cpu_value(pct);
      s.evidence.push_back(fmt::format("{} → {} (× {:g})", why, s.cpu, headroom));
    }
  } else {
    s.evidence.push_back("cpu: no run measured CPU time; no suggestion");
  }

  // Timeout.
  if (!walls.empty()) {
    std::sort(walls.begin(), walls.end());
    double p99 = *percentile_sorted(walls, 99);
    double want = p99 * headroom;
    std::string why = fmt::format("timeout: wall p99 {}, max {}", units::format_duration_s(p99),
                                  units::format_duration_s(walls.back()));
    if (timeouts) {
      why += "; " + plural(timeouts, "run timed out", "runs timed out");
      if (timeout_limit) {
        why += " under " + units::format_duration_s(*timeout_limit) + ", so at least that × headroom";
        want = std::max(want, *timeout_limit * headroom);
      }
    }
    double secs = std::max(10.0, want);
    if (!(secs <= kMaxTimeout_s)) {
      s.evidence.push_back(fmt::format("{}; × {:g} is beyond any timeout, so the figures are damaged; no "
                                       "suggestion", why, headroom));
    } else {
      if (secs < 120)
        secs = std::ceil(secs / 10.0) * 10.0;
      else if (secs < 7200)
        secs = std::ceil(secs / 60.0) * 60.0;
      else
        secs = std::ceil(secs / 300.0) * 300.0;
      s.timeout_s = secs;
      s.timeout = timeout_value(secs);
      s.evidence.push_back(fmt::format("{} → {} (× {:g})", why, s.timeout, headroom));
    }
  }

  // Tasks.
  std::optional<double> want_pids;
  std::string why = "pids: ";
  if (a.pids_runs_) {
    want_pids = static_cast<double>(a.pids_peak_max_) * headroom;
    why += fmt::format("at most {} over {} successful runs that counted them",
                       plural(a.pids_peak_max_, "task", "tasks"), a.pids_runs_);
  } else {
    why += "no successful run counted its tasks (cronrun makes a pids cgroup only for --pids)";
  }
  if (a.pids_refused_ || a.pids_runs_) why += "; " + plural(a.pids_refused_, "fork refused", "forks refused");
  if (a.pids_refused_ && a.pids_refused_limit_) {
    why += fmt::format(" under the {} limit, so at least that × headroom", *a.pids_refused_limit_);
    want_pids = std::max(want_pids.value_or(0), static_cast<double>(*a.pids_refused_limit_) * headroom);
  }
  if (!want_pids) {
    s.evidence.push_back(why + "; no suggestion");
  } else if (!(*want_pids <= kMaxPids)) {
    s.evidence.push_back(fmt::format("{}; × {:g} is beyond any pids limit cronrun takes; no suggestion", why, headroom));
  } else {
    auto n = static_cast<uint64_t>(std::ceil(*want_pids - 1e-9));
    const bool floored = n < kMinPids;
    n = std::min<uint64_t>(round_up(std::max(n, kMinPids), 8), static_cast<uint64_t>(kMaxPids));
    s.pids_max = n;
    s.pids = std::to_string(n);
    s.evidence.push_back(fmt::format("{} → {} (× {:g}{})", why, s.pids, headroom,
                                     floored ? fmt::format(" is {:g}; raised to the {} floor", *want_pids, kMinPids)
                                             : ""));
  }
  return s;
}

nlohmann::json suggestion_json(const Suggestion& s) {
  using nlohmann::json;
  auto str_or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  return {{"job", s.job},
          {"runs", s.runs},
          {"ok_runs", s.ok_runs},
          {"enough_data", s.enough_data},
          {"current", {{"memory_max_bytes", opt(s.current_memory_bytes)},
                       {"cpu_quota_pct", opt(s.current_cpu_pct)},
                       {"timeout_s", opt(s.current_timeout_s)},
                       {"pids_max", opt(s.current_pids_max)}}},
          {"suggested", {{"memory", str_or_null(s.memory)},
                         {"cpu", str_or_null(s.cpu)},
                         {"timeout", str_or_null(s.timeout)},
                         {"pids", str_or_null(s.pids)},
                         {"memory_max_bytes", opt(s.memory_bytes)},
                         {"cpu_quota_pct", opt(s.cpu_pct)},
                         {"timeout_s", opt(s.timeout_s)},
                         {"pids_max", opt(s.pids_max)}}},
          {"evidence", s.evidence}};
}

std::string suggestion_text(const Suggestion& s) {
  std::string head = term_text(s.job) + ": ";
  if (!s.enough_data) {
    head += "not enough history";
  } else {
    std::string parts;
    if (!s.memory.empty()) parts += "memory " + s.memory;
    if (!s.cpu.empty()) parts += (parts.empty() ? "" : ", ") + std::string("cpu ") + s.cpu;
    if (!s.timeout.empty()) parts += (parts.empty() ? "" : ", ") + std::string("timeout ") + s.timeout;
    if (!s.pids.empty()) parts += (parts.empty() ? "" : ", ") + std::string("pids ") + s.pids;
    head += parts.empty() ? "nothing to suggest" : parts;
  }
  std::string out = head + "\n";
  for (const auto& e : s.evidence) out += "  " + e + "\n";
  std::string cur;
  if (s.current_memory_bytes) cur += "memory " + units::format_size(*s.current_memory_bytes);
  if (s.current_cpu_pct) cur += (cur.empty() ? "" : ", ") + fmt::format("cpu {:.0f}%", *s.current_cpu_pct);
  if (s.current_timeout_s)
    cur += (cur.empty() ? "" : ", ") + std::string("timeout ") + units::format_duration_s(*s.current_timeout_s);
  if (s.current_pids_max) cur += (cur.empty() ? "" : ", ") + fmt::format("pids {}", *s.current_pids_max);
  out += "  now: " + (cur.empty() ? std::string("no limits") : cur) + "\n";
  return out;
}

namespace {

// A job config is a few keys; more than this is not one.
constexpr size_t kMaxConfigBytes = 1 << 20;
// cronrun's own reading of the config file that would be written (runner/cli.h):
// a file it would refuse is never put in place.
Result<void> cronrun_accepts(const std::string& job, const std::string& candidate_path) {
  JobSpec spec;
  spec.name = job;
  if (auto r = load_job_config(candidate_path, spec); !r)
    return std::unexpected(std::move(r.error()).context("cronrun would refuse the result, so it is not written"));
  return {};
}

// Writes the suggested keys of `s` into the job's config file.
Result<std::string> write_suggestion(const Suggestion& s, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> kv;
  if (!s.memory.empty()) kv.emplace_back("memory", s.memory);
  if (!s.cpu.empty()) kv.emplace_back("cpu", s.cpu);
  if (!s.timeout.empty()) kv.emplace_back("timeout", s.timeout);
  if (!s.pids.empty()) kv.emplace_back("pids", s.pids);
  if (kv.empty()) return std::string();
  std::string old;
  // Never read through a symlink write_file_atomically would refuse anyway, nor
  // block on a FIFO or read a device without end.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return fail(path + ": is a symlink; refusing to replace it (name the file itself)");
    auto text = read_regular_file(path, kMaxConfigBytes);
    if (!text) return std::unexpected(text.error());
    old = std::move(*text);
    // cronrun refuses an empty config file (not JSON): it is left alone, as any
    // other file that is not a JSON object.
    if (old.find_first_not_of(" \t\r\n") == std::string::npos)
      return fail(path + ": is empty, not a JSON object (cronrun refuses it); left alone: remove it or write {} in it");
  } else if (errno != ENOENT) {
    return fail_sys("lstat", path);
  }
  auto edited = set_config_keys(old, kv);
  if (!edited) return std::unexpected(std::move(edited.error()).context("config " + path));
  auto check = [&](const std::string& candidate) { return cronrun_accepts(s.job, candidate); };
  if (auto w = write_file_atomically(path, *edited, check); !w) return std::unexpected(w.error());
  std::string keys;
  for (const auto& [k, v] : kv) keys += (keys.empty() ? "" : ", ") + k + " " + v;
  return keys;
}

}  // namespace

namespace {

SeccompRunView seccomp_view(const RunRecord& r) {
  SeccompRunView v;
  v.status = r.status;
  if (r.seccomp) {
    v.profile = r.seccomp->profile;
    v.learn = r.seccomp->action == "continue";
    v.seen = r.seccomp->seen;
  }
  return v;
}

// `suggest --seccomp JOB`: the job's runs in the window, one record at a time.
int suggest_seccomp(const Global& g, const std::string& job, double since) {
  auto store = open_history(g);
  if (!store) return store.error();
  RunFilter f;
  f.job = job;
  f.since_unix_s = since;
  f.finished_only = true;
  SeccompSuggestAcc acc;
  SkippedRows skipped;
  auto r = store->each_run(f, [&](const RunRecord& rec) { acc.add(seccomp_view(rec)); }, skipped.callback());
  if (!r) return query_failed(*store, r.error());
  skipped.report(g.history_label);
  if (acc.runs() == 0) {
    print_error("no finished runs of job '" + job + "' since " + format_utc(since));
    return kExitNotFound;
  }
  auto profile = seccomp_profile_for(job, acc);
  if (!profile) {
    print_error(profile.error().message());
    return kExitNotFound;
  }
  std::fputs(seccomp_evidence(job, acc).c_str(), stderr);
  std::printf("%s\n", json_text(*profile, 2).c_str());
  return kExitOk;
}

}  // namespace

Command add_suggest(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string job;
    std::string since = "30d";
    double headroom = 1.3;
    bool write = false;
    std::string config;
    std::string seccomp_job;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand("suggest", "Memory, CPU, timeout and pids limits per job from its history, "
                                                   "with the evidence");
  app->add_option("--job", opts->job, "Only this job");
  app->add_option("--since", opts->since, "Window of history to learn from (default 30d)");
  app->add_option("--headroom", opts->headroom, "Multiplier over the observed figures (default 1.3)")
      ->check(CLI::Range(1.0, 10.0));
  app->add_flag("--write", opts->write, "Update the job config file (keeps its comments and other keys)");
  app->add_option("--config", opts->config, "Config file to update (default: the job's file under jobs.d/)");
  app->add_option("--seccomp", opts->seccomp_job,
                  "Instead of limits: a seccomp profile (cronrun.json(5)) for JOB from its runs under "
                  "--seccomp learn, on stdout; the evidence on stderr")
      ->option_text("JOB");
  return {app, [opts, &g]() -> int {
            double now = now_unix_s();
            auto since = window_option("--since", opts->since, now);
            if (!since) return since.error();
            if (!opts->seccomp_job.empty()) {
              if (opts->write || !opts->job.empty()) {
                print_usage_error("--seccomp JOB takes no --write or --job (redirect its output to a profile file)");
                return kExitUsage;
              }
              return suggest_seccomp(g, opts->seccomp_job, *since);
            }
            if (!opts->config.empty() && (opts->job.empty() || !opts->write)) {
              print_usage_error("--config needs --write and --job (it names one job's file)");
              return kExitUsage;
            }
            auto store = open_history(g);
            if (!store) return store.error();
            // One job's figures in memory at a time (rows come grouped by job);
            // the suggestions themselves are a few lines per job.
            double days = std::round((now - *since) / 86400.0 * 10) / 10;
            unsigned cpus = usable_cpus();
            std::vector<Suggestion> suggestions;
            SuggestAcc acc;
            std::string current;
            RunFilter f;
            if (!opts->job.empty()) f.job = opts->job;
            f.since_unix_s = *since;
            f.by_job = true;
            SkippedRows skipped;
            auto r = store->scan(f, [&](const RunFigures& x) {
              if (x.job != current) {
                if (!acc.empty()) suggestions.push_back(acc.finish(current, opts->headroom, days, cpus));
                current = x.job;
              }
              acc.add(x);
            }, skipped.callback());
            if (!r) return query_failed(*store, r.error());
            if (!acc.empty()) suggestions.push_back(acc.finish(current, opts->headroom, days, cpus));
            if (!opts->job.empty() && suggestions.empty()) {
              print_error("no runs of job '" + opts->job + "' since " + format_utc(*since));
              return kExitNotFound;
            }
            nlohmann::json arr = nlohmann::json::array();
            int rc = kExitOk;
            for (const Suggestion& s : suggestions) {
              const std::string& job = s.job;
              nlohmann::json j = suggestion_json(s);
              if (!g.json) std::fputs(suggestion_text(s).c_str(), stdout);
              if (opts->write && s.enough_data && opts->config.empty() && !valid_job_name(job)) {
                // The name comes from the history, which any job's owner writes: as
                // a path component it could point anywhere ("../../etc/x").
                print_error("not writing a config for job '" + job +
                            "': not a cronrun job name ([A-Za-z0-9_.-], at most 64); pass --job and --config FILE");
                rc = kExitFailure;
              } else if (opts->write && s.enough_data) {
                std::string path = opts->config.empty() ? default_job_config_path(job) : opts->config;
                auto w = write_suggestion(s, path);
                if (!w) {
                  print_error("writing the suggestion for job '" + job + "': " + w.error().message());
                  rc = kExitFailure;
                } else if (!w->empty()) {
                  j["written"] = path;
                  if (!g.json)
                    std::printf("  wrote %s to %s (comments and other keys kept)\n", w->c_str(),
                                term_text(path).c_str());
                }
              }
              arr.push_back(std::move(j));
            }
            if (g.json)
              std::printf("%s\n", json_text(nlohmann::json{{"schema", "cronrun.suggest/1"},
                                                            {"headroom", opts->headroom},
                                                            {"since", json_time(*since)},
                                                            {"percentiles", "nearest-rank"},
                                                            {"jobs", std::move(arr)}},
                                             2)
                                       .c_str());
            skipped.report(g.history_label);
            return rc;
          },
          [opts]() { return window_scope(opts->since, opts->seccomp_job.empty() ? opts->job : opts->seccomp_job); }};
}

}  // namespace cronrun::prof
