// One table of settings serves both the command line and the job config file, so
// a key means exactly the same thing in both places and precedence is a matter of
// the order in which settings are applied (defaults, then file, then flags).
#include "runner/job_spec.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <fmt/format.h>
#include <functional>

#include "common/units.h"

namespace cronrun {

const char* to_string(OnLocked v) { return v == OnLocked::skip ? "skip" : "fail"; }
const char* to_string(CgroupMode v) {
  switch (v) {
    case CgroupMode::required: return "required";
    case CgroupMode::automatic: return "auto";
    case CgroupMode::off: return "off";
  }
  return "?";
}
const char* to_string(OutputMode v) {
  switch (v) {
    case OutputMode::passthrough: return "passthrough";
    case OutputMode::on_failure: return "on-failure";
    case OutputMode::discard: return "discard";
  }
  return "?";
}
const char* to_string(SeccompMode v) {
  switch (v) {
    case SeccompMode::off: return "off";
    case SeccompMode::baseline: return "baseline";
    case SeccompMode::strict: return "strict";
  }
  return "?";
}

namespace {

Result<int64_t> parse_int(std::string_view v, int64_t lo, int64_t hi, std::string_view what) {
  int64_t out = 0;
  auto res = std::from_chars(v.data(), v.data() + v.size(), out);
  if (res.ec != std::errc() || res.ptr != v.data() + v.size() || out < lo || out > hi)
    return fail(fmt::format("expected {} from {} to {}, got '{}'", what, lo, hi, v));
  return out;
}

Result<bool> parse_bool(std::string_view v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return fail(fmt::format("expected true or false, got '{}'", v));
}

template <class Enum, size_t N>
Result<Enum> parse_enum(std::string_view v, const std::array<std::pair<const char*, Enum>, N>& names) {
  std::string expected;
  for (const auto& [name, value] : names) {
    if (v == name) return value;
    expected += expected.empty() ? "" : "|";
    expected += name;
  }
  return fail(fmt::format("expected {}, got '{}'", expected, v));
}

Result<IoNice> parse_ionice(std::string_view v) {
  auto bad = [&] {
    return fail(fmt::format("expected CLASS[:LEVEL] with CLASS realtime|best-effort|idle (or 1-3) "
                            "and LEVEL 0-7, got '{}'", v));
  };
  std::string_view cls = v.substr(0, v.find(':'));
  IoNice out;
  if (cls == "realtime" || cls == "1") out.io_class = 1;
  else if (cls == "best-effort" || cls == "2") out.io_class = 2;
  else if (cls == "idle" || cls == "3") out.io_class = 3;
  else return bad();
  if (auto colon = v.find(':'); colon != std::string_view::npos) {
    auto lvl = parse_int(v.substr(colon + 1), 0, 7, "a level");
    if (!lvl || out.io_class == 3) return bad();
    out.level = static_cast<int>(*lvl);
  }
  return out;
}

// A memory limit or log cap of 0 is never meant: the job would be killed or its
// log empty before it starts. (--swap 0 is meaningful: no swap.)
Result<uint64_t> parse_nonzero_size(std::string_view v) {
  auto b = units::parse_size(v);
  if (b && *b == 0) return fail(fmt::format("expected a size above 0 like 512M or 2G, got '{}'", v));
  return b;
}

using Setter = std::function<Result<void>(JobSpec&, std::string_view)>;

template <class T, class F>
Result<void> assign(Result<T> parsed, F&& set) {
  if (!parsed) return std::unexpected(parsed.error());
  set(*parsed);
  return {};
}

const std::vector<std::pair<std::string_view, Setter>>& settings() {
  static const std::vector<std::pair<std::string_view, Setter>> table = {
      {"name", [](JobSpec& s, std::string_view v) -> Result<void> {
         if (!valid_job_name(v)) return fail(fmt::format("expected a job name of 1-64 characters from [A-Za-z0-9_.-], not . or .., got '{}'", v));
         s.name = std::string(v);
         return {};
       }},
      {"memory", [](JobSpec& s, std::string_view v) {
         return assign(parse_nonzero_size(v), [&](uint64_t b) { s.limits.memory_max_bytes = b; });
       }},
      {"memory-high", [](JobSpec& s, std::string_view v) {
         return assign(parse_nonzero_size(v), [&](uint64_t b) { s.limits.memory_high_bytes = b; });
       }},
      {"swap", [](JobSpec& s, std::string_view v) {
         return assign(units::parse_size(v), [&](uint64_t b) { s.limits.swap_max_bytes = b; });
       }},
      {"cpu", [](JobSpec& s, std::string_view v) {
         return assign(units::parse_cpu_percent(v), [&](double p) {
           s.limits.cpu_quota_pct = p;
           s.cpu_quota_as_given = std::string(v);
         });
       }},
      {"cpu-weight", [](JobSpec& s, std::string_view v) {
         return assign(parse_int(v, 1, 10000, "a weight"), [&](int64_t n) { s.limits.cpu_weight = n; });
       }},
      {"pids", [](JobSpec& s, std::string_view v) {
         return assign(parse_int(v, 1, 4194304, "a task count"), [&](int64_t n) { s.limits.pids_max = n; });
       }},
      {"io-weight", [](JobSpec& s, std::string_view v) {
         return assign(parse_int(v, 1, 10000, "a weight"), [&](int64_t n) { s.limits.io_weight = n; });
       }},
      {"nice", [](JobSpec& s, std::string_view v) {
         return assign(parse_int(v, -20, 19, "a nice value"), [&](int64_t n) { s.nice = static_cast<int>(n); });
       }},
      {"ionice", [](JobSpec& s, std::string_view v) {
         return assign(parse_ionice(v), [&](IoNice n) { s.ionice = n; });
       }},
      {"timeout", [](JobSpec& s, std::string_view v) -> Result<void> {
         auto d = units::parse_duration(v);
         if (!d) return std::unexpected(d.error());
         if (d->count() <= 0) return fail(fmt::format("expected a positive duration like 90s, 15m or 2h, got '{}'", v));
         s.timeout = *d;
         return {};
       }},
      {"kill-after", [](JobSpec& s, std::string_view v) {
         return assign(units::parse_duration(v), [&](std::chrono::milliseconds d) { s.kill_after = d; });
       }},
      // "lock": a path, or true/false (config files); "--lock" alone gives "true".
      {"lock", [](JobSpec& s, std::string_view v) -> Result<void> {
         if (v == "true" || v == "false") {
           s.lock = v == "true";
           return {};
         }
         if (v.empty()) return fail("expected a lock file path, true or false, got ''");
         s.lock = true;
         s.lock_path = std::string(v);
         return {};
       }},
      {"no-lock", [](JobSpec& s, std::string_view v) {
         return assign(parse_bool(v), [&](bool b) { s.lock = !b; });
       }},
      {"lock-wait", [](JobSpec& s, std::string_view v) {
         return assign(units::parse_duration(v), [&](std::chrono::milliseconds d) { s.lock_wait = d; });
       }},
      {"on-locked", [](JobSpec& s, std::string_view v) {
         static constexpr std::array<std::pair<const char*, OnLocked>, 2> kNames{{{"skip", OnLocked::skip}, {"fail", OnLocked::fail}}};
         return assign(parse_enum(v, kNames), [&](OnLocked o) { s.on_locked = o; });
       }},
      {"cgroup-parent", [](JobSpec& s, std::string_view v) -> Result<void> {
         if (v.empty() || v.find("..") != std::string_view::npos)
           return fail(fmt::format("expected a cgroup path relative to the hierarchy root, like /batch, got '{}'", v));
         s.cgroup_parent = v.front() == '/' ? std::string(v) : "/" + std::string(v);
         return {};
       }},
      {"cgroup", [](JobSpec& s, std::string_view v) {
         static constexpr std::array<std::pair<const char*, CgroupMode>, 3> kNames{
             {{"required", CgroupMode::required}, {"auto", CgroupMode::automatic}, {"off", CgroupMode::off}}};
         return assign(parse_enum(v, kNames), [&](CgroupMode m) { s.cgroup_mode = m; });
       }},
      {"keep-orphans", [](JobSpec& s, std::string_view v) {
         return assign(parse_bool(v), [&](bool b) { s.keep_orphans = b; });
       }},
      // "history": a path, or false (config files).
      {"history", [](JobSpec& s, std::string_view v) -> Result<void> {
         if (v == "true" || v == "false") {
           s.history = v == "true";
           return {};
         }
         if (v.empty()) return fail("expected a history database path, got ''");
         s.history = true;
         s.history_path = std::string(v);
         return {};
       }},
      {"no-history", [](JobSpec& s, std::string_view v) {
         return assign(parse_bool(v), [&](bool b) { s.history = !b; });
       }},
      {"summary", [](JobSpec& s, std::string_view v) -> Result<void> {
         if (v.empty()) return fail("expected a file path or -, got ''");
         s.summary_path = std::string(v);
         return {};
       }},
      {"output", [](JobSpec& s, std::string_view v) {
         static constexpr std::array<std::pair<const char*, OutputMode>, 3> kNames{
             {{"passthrough", OutputMode::passthrough}, {"on-failure", OutputMode::on_failure}, {"discard", OutputMode::discard}}};
         return assign(parse_enum(v, kNames), [&](OutputMode m) { s.output = m; });
       }},
      {"log-dir", [](JobSpec& s, std::string_view v) -> Result<void> {
         if (v.empty()) return fail("expected a directory, got ''");
         s.log_dir = std::string(v);
         return {};
       }},
      {"log-max", [](JobSpec& s, std::string_view v) {
         return assign(parse_nonzero_size(v), [&](uint64_t b) { s.log_max_bytes = b; });
       }},
      {"report", [](JobSpec& s, std::string_view v) {
         return assign(parse_bool(v), [&](bool b) { s.report = b; });
       }},
      {"count-db-queries", [](JobSpec& s, std::string_view v) {
         return assign(parse_bool(v), [&](bool b) { s.count_db_queries = b; });
       }},
      {"seccomp", [](JobSpec& s, std::string_view v) {
         static constexpr std::array<std::pair<const char*, SeccompMode>, 3> kNames{
             {{"baseline", SeccompMode::baseline}, {"strict", SeccompMode::strict}, {"off", SeccompMode::off}}};
         return assign(parse_enum(v, kNames), [&](SeccompMode m) { s.seccomp = m; });
       }},
      {"env", [](JobSpec& s, std::string_view v) -> Result<void> {
         auto eq = v.find('=');
         if (eq == 0 || eq == std::string_view::npos)
           return fail(fmt::format("expected KEY=VALUE, got '{}'", v));
         s.env.emplace_back(v);
         return {};
       }},
  };
  return table;
}

}  // namespace

Result<void> apply_setting(JobSpec& spec, std::string_view key, std::string_view value) {
  for (const auto& [name, setter] : settings())
    if (name == key) return setter(spec, value);
  return fail(fmt::format("unknown setting '{}'", key));
}

bool is_config_key(std::string_view key) {
  return std::ranges::any_of(settings(), [&](const auto& kv) { return kv.first == key; });
}

namespace {
bool job_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}
}  // namespace

bool valid_job_name(std::string_view name) {
  // "." and ".." would name a directory, not a job, in the lock, log and cgroup paths.
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::ranges::all_of(name, job_name_char);
}

std::string default_job_name(const std::string& command0) {
  std::string base = command0.substr(command0.find_last_of('/') + 1);
  std::string out;
  for (char c : base) out += job_name_char(c) ? c : '_';
  if (out.size() > 64) out.resize(64);
  if (out.empty() || out == "." || out == "..") out = "job";
  return out;
}

unsigned host_cpu_count() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

Result<void> check_cpu_quota(const JobSpec& spec, unsigned host_cpus) {
  if (!spec.limits.cpu_quota_pct || host_cpus == 0) return {};
  double pct = *spec.limits.cpu_quota_pct;
  if (pct <= host_cpus * 100.0) return {};
  const std::string& given = spec.cpu_quota_as_given;
  bool in_cores = !given.empty() && given.find('%') == std::string::npos;
  if (in_cores)
    return fail(fmt::format("'{}' means {} CPUs, more than this host's {}; did you mean {}%? (in a crontab, "
                            "write \\% for %, or give cores like 1.5)",
                            given, pct / 100.0, host_cpus, given));
  return fail(fmt::format("'{}' is {} CPUs, more than this host's {} (at most {}%)", given.empty() ? fmt::format("{}%", pct) : given,
                          pct / 100.0, host_cpus, host_cpus * 100));
}

std::string default_lock_path(const std::string& name) {
  if (geteuid() == 0) return "/run/cronrun/locks/" + name + ".pid";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg == '/')
    return std::string(xdg) + "/cronrun/" + name + ".pid";
  return fmt::format("/tmp/cronrun-{}/{}.pid", geteuid(), name);
}

std::string default_config_path(const std::string& name) {
  if (geteuid() == 0) return "/etc/cronrun/jobs.d/" + name + ".json";
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg == '/')
    return std::string(xdg) + "/cronrun/jobs.d/" + name + ".json";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.config/cronrun/jobs.d/" + name + ".json";
}

}  // namespace cronrun
