// The resolved job spec: built-in defaults < job config file < command-line flags.
// Typed and parsed once; "unset" is std::nullopt, never 0 or -1.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/job_options.h"
#include "common/job_paths.h"
#include "runner/cgroup.h"
#include "runner/fleet_config.h"
#include "runner/seccomp_profile.h"

namespace cronrun {

// OnLocked, CgroupMode, OutputMode, IoNice and the job-name rules
// are declared with the option table (common/job_options.h).

struct JobSpec {
  std::string name;
  std::vector<std::string> command;
  std::optional<std::string> config_path;  // the file actually read, if any

  // Resolved once by resolve_job() at the end of parse_args: root-vs-user and
  // every path a later step uses (explicit settings, else the defaults). Nothing
  // after parse_args computes a default path or calls geteuid() for these.
  uid_t euid = 0;
  bool is_root = false;
  JobPaths paths;

  cgroup::Limits limits;
  std::string cpu_quota_as_given;  // --cpu as written ("150", "150%"), for messages
  std::optional<int> nice;
  std::optional<IoNice> ionice;
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};

  bool lock = true;
  std::optional<std::string> lock_path;  // as given; unset: paths.lock is the default
  std::chrono::milliseconds lock_wait{0};
  OnLocked on_locked = OnLocked::skip;

  std::optional<std::string> cgroup_parent;
  CgroupMode cgroup_mode = CgroupMode::automatic;
  bool keep_orphans = false;

  bool history = true;
  std::optional<std::string> history_path;  // as given; unset: paths.history is the default
  std::optional<std::string> summary_path;  // "-" = stdout

  OutputMode output = OutputMode::passthrough;
  std::optional<std::string> log_dir;
  uint64_t log_max_bytes = 16ull << 20;

  bool report = false;
  bool count_db_queries = false;
  // --seccomp as given (off, baseline, strict, learn or a profile file's path);
  // unset: off. `seccomp_profile` is what it resolved to (resolve_seccomp), set
  // before anything is locked or created; nullopt: no filter.
  std::optional<std::string> seccomp;
  std::optional<seccomp::Profile> seccomp_profile;
  std::optional<std::string> ping_url;  // --ping: a check's ping URL (a secret: not logged, not recorded)
  std::vector<std::string> env;  // KEY=VALUE

  // Fleet mode (DESIGN §10): on when `group` or `fleet_config_path` is set. The
  // fields are as given; `fleet` is the fleet config they resolved to (read once
  // by parse_args, host included), nullopt outside fleet mode.
  std::optional<std::string> group;              // --group
  std::optional<std::string> fleet_config_path;  // --fleet-config
  std::optional<std::string> fleet_host;         // --host
  std::optional<std::string> tick;               // --tick, normalized (format_tick); unset: the start's minute
  OnRevoke on_revoke = OnRevoke::finish;
  std::optional<fleet::Config> fleet;

  bool dry_run = false;
  bool flush = false;  // --flush: fold the run journal into the history and exit (no COMMAND)
  int verbosity = 0;  // -1 quiet, 0 normal, 1+ verbose
};

// Applies one setting by its long option name ("memory", "cpu", "lock", ...), the
// same names the config file uses, parsed by the option table
// (common/job_options.h). The error text names what was expected; the caller
// prefixes the flag or file.
Result<void> apply_setting(JobSpec& spec, std::string_view key, std::string_view value);
Result<void> apply_setting(JobSpec& spec, const job_options::Option& option, std::string_view value);
// Keys a config file may carry: the table's config-settable options.
bool is_config_key(std::string_view key);

// A CPU quota above the host's CPU count limits nothing, and given in cores
// ("--cpu 150") it is almost always "150%" with the % cut off by cron. Pure: the
// caller passes the count (host_cpu_count() for real runs); the error names the
// value and, for cores, suggests the percentage.
Result<void> check_cpu_quota(const JobSpec& spec, unsigned host_cpus);
// CPUs online on this host (sysconf). Not the affinity mask: that says how this
// runner was started (taskset, a cpuset), and a refusal must only catch quotas
// that cannot mean anything here.
unsigned host_cpu_count();

// Reads --seccomp's profile (a built-in, or the file, bounded, regular files only)
// into spec.seccomp_profile; "off" or unset leaves it nullopt. The error names the
// file and what is wrong (bad JSON, unknown syscall); the caller prefixes the flag.
Result<void> resolve_seccomp(JobSpec& spec);

// --group or --fleet-config given (command line or job config).
bool fleet_mode(const JobSpec& spec);

// Fills spec.euid, spec.is_root and spec.paths for `who`, from the explicit settings where
// given. Called once, after every setting is applied.
void resolve_job(JobSpec& spec, const Invoker& who);

}  // namespace cronrun
