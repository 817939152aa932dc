// Applying the option table's parsed values (common/job_options.h) to a JobSpec.
// The command line and the job config file both come through apply_setting, so a
// key means exactly the same thing in both places and precedence is a matter of
// the order in which settings are applied (defaults, then file, then flags).
#include "runner/job_spec.h"

#include <unistd.h>

#include <algorithm>
#include <fmt/format.h>

namespace cronrun {

namespace {

using job_options::Id;
using job_options::Value;

// "lock" and "history": true/false turns it on or off, a path also turns it on.
void set_switch_or_path(const Value& v, bool& on, std::optional<std::string>& path) {
  if (const bool* b = std::get_if<bool>(&v)) {
    on = *b;
    return;
  }
  on = true;
  path = std::get<std::string>(v);
}

// Which field each option sets. The switch has no default, so an option added to
// the table without a field here is a -Wswitch error (-Werror).
void assign(JobSpec& s, Id id, const Value& v, std::string_view text) {
  switch (id) {
    case Id::name: s.name = std::get<std::string>(v); return;
    case Id::env: s.env.push_back(std::get<std::string>(v)); return;
    case Id::nice: s.nice = static_cast<int>(std::get<int64_t>(v)); return;
    case Id::ionice: s.ionice = std::get<IoNice>(v); return;
    case Id::timeout: s.timeout = std::get<std::chrono::milliseconds>(v); return;
    case Id::kill_after: s.kill_after = std::get<std::chrono::milliseconds>(v); return;
    case Id::keep_orphans: s.keep_orphans = std::get<bool>(v); return;
    case Id::memory: s.limits.memory_max_bytes = std::get<uint64_t>(v); return;
    case Id::memory_high: s.limits.memory_high_bytes = std::get<uint64_t>(v); return;
    case Id::swap: s.limits.swap_max_bytes = std::get<uint64_t>(v); return;
    case Id::cpu:
      s.limits.cpu_quota_pct = std::get<double>(v);
      s.cpu_quota_as_given = std::string(text);
      return;
    case Id::cpu_weight: s.limits.cpu_weight = std::get<int64_t>(v); return;
    case Id::pids: s.limits.pids_max = std::get<int64_t>(v); return;
    case Id::io_weight: s.limits.io_weight = std::get<int64_t>(v); return;
    case Id::cgroup_parent: s.cgroup_parent = std::get<std::string>(v); return;
    case Id::cgroup: s.cgroup_mode = std::get<CgroupMode>(v); return;
    case Id::seccomp: s.seccomp = std::get<std::string>(v); return;
    case Id::lock: set_switch_or_path(v, s.lock, s.lock_path); return;
    case Id::no_lock: s.lock = !std::get<bool>(v); return;
    case Id::lock_wait: s.lock_wait = std::get<std::chrono::milliseconds>(v); return;
    case Id::on_locked: s.on_locked = std::get<OnLocked>(v); return;
    case Id::history: set_switch_or_path(v, s.history, s.history_path); return;
    case Id::no_history: s.history = !std::get<bool>(v); return;
    case Id::summary: s.summary_path = std::get<std::string>(v); return;
    case Id::report: s.report = std::get<bool>(v); return;
    case Id::count_db_queries: s.count_db_queries = std::get<bool>(v); return;
    case Id::ping: s.ping_url = std::get<std::string>(v); return;
    case Id::output: s.output = std::get<OutputMode>(v); return;
    case Id::log_dir: s.log_dir = std::get<std::string>(v); return;
    case Id::log_max: s.log_max_bytes = std::get<uint64_t>(v); return;
    case Id::group: s.group = std::get<std::string>(v); return;
    case Id::fleet_config: s.fleet_config_path = std::get<std::string>(v); return;
    case Id::host: s.fleet_host = std::get<std::string>(v); return;
    case Id::tick: s.tick = std::get<std::string>(v); return;
    case Id::on_revoke: s.on_revoke = std::get<OnRevoke>(v); return;
    case Id::dry_run: s.dry_run = std::get<bool>(v); return;
    case Id::flush: s.flush = std::get<bool>(v); return;
    case Id::quiet:
      if (std::get<bool>(v) && s.verbosity <= 0) s.verbosity = -1;
      return;
    case Id::verbose:
      if (std::get<bool>(v)) s.verbosity = std::max(s.verbosity, 0) + 1;
      return;
    // Read by parse_args itself: which file to load, how --dry-run prints; and
    // CLI11's own --help and --version.
    case Id::config:
    case Id::json:
    case Id::help:
    case Id::version: return;
  }
}

}  // namespace

Result<void> apply_setting(JobSpec& spec, const job_options::Option& option, std::string_view value) {
  auto v = option.parse(value);
  if (!v) return std::unexpected(v.error());
  assign(spec, option.id, *v, value);
  return {};
}

Result<void> apply_setting(JobSpec& spec, std::string_view key, std::string_view value) {
  const job_options::Option* o = job_options::find_long(key);
  if (o == nullptr || key.starts_with("-")) return fail(fmt::format("unknown setting '{}'", key));
  return apply_setting(spec, *o, value);
}

bool fleet_mode(const JobSpec& spec) { return spec.group.has_value() || spec.fleet_config_path.has_value(); }

bool is_config_key(std::string_view key) { return job_options::find_config_key(key) != nullptr; }

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

Result<void> resolve_seccomp(JobSpec& spec) {
  spec.seccomp_profile.reset();
  if (!spec.seccomp || *spec.seccomp == "off") return {};
  auto p = seccomp::resolve_profile(*spec.seccomp);
  if (!p) return std::unexpected(p.error());
  spec.seccomp_profile = std::move(*p);
  return {};
}

void resolve_job(JobSpec& spec, const Invoker& who) {
  spec.euid = who.euid;
  spec.is_root = who.is_root();
  spec.paths = default_job_paths(who, spec.name);
  if (spec.history_path) {
    spec.paths.history = *spec.history_path;
    spec.paths.journal = journal_path(spec.paths.history);
  }
  if (spec.lock_path) spec.paths.lock = *spec.lock_path;
  if (spec.config_path) spec.paths.config = *spec.config_path;
}

}  // namespace cronrun
