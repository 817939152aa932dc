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
#include "runner/cgroup.h"

namespace cronrun {

enum class OnLocked { skip, fail };
enum class CgroupMode { required, automatic, off };
enum class OutputMode { passthrough, on_failure, discard };
enum class SeccompMode { off, baseline, strict };

const char* to_string(OnLocked v);
const char* to_string(CgroupMode v);
const char* to_string(OutputMode v);
const char* to_string(SeccompMode v);

struct IoNice {
  int io_class = 2;  // 1 realtime, 2 best-effort, 3 idle (ioprio classes)
  int level = 4;     // 0..7 (ignored for idle)
};

struct JobSpec {
  std::string name;
  std::vector<std::string> command;
  std::optional<std::string> config_path;  // the file actually read, if any

  cgroup::Limits limits;
  std::string cpu_quota_as_given;  // --cpu as written ("150", "150%"), for messages
  std::optional<int> nice;
  std::optional<IoNice> ionice;
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};

  bool lock = true;
  std::optional<std::string> lock_path;  // unset: the default path for NAME
  std::chrono::milliseconds lock_wait{0};
  OnLocked on_locked = OnLocked::skip;

  std::optional<std::string> cgroup_parent;
  CgroupMode cgroup_mode = CgroupMode::automatic;
  bool keep_orphans = false;

  bool history = true;
  std::optional<std::string> history_path;  // unset: HistoryStore::default_path()
  std::optional<std::string> summary_path;  // "-" = stdout

  OutputMode output = OutputMode::passthrough;
  std::optional<std::string> log_dir;
  uint64_t log_max_bytes = 16ull << 20;

  bool report = false;
  bool count_db_queries = false;
  SeccompMode seccomp = SeccompMode::off;
  std::vector<std::string> env;  // KEY=VALUE

  bool dry_run = false;
  // --flush: fold the run journal into the history and exit (runner/flush.h).
  bool flush = false;
  int verbosity = 0;  // -1 quiet, 0 normal, 1+ verbose
};

// Applies one setting by its long option name ("memory", "cpu", "lock", ...), the
// same names the config file uses. The error text names what was expected; the
// caller prefixes the flag or file.
Result<void> apply_setting(JobSpec& spec, std::string_view key, std::string_view value);
// Keys a config file may carry (the long option names that take values or are flags).
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

// "[A-Za-z0-9_.-]{1,64}", and not "." or ".."
bool valid_job_name(std::string_view name);
// Default job name from COMMAND: basename, invalid characters mapped to '_'.
std::string default_job_name(const std::string& command0);

// Default lock path for NAME: /run/cronrun/locks/NAME.pid (root), else
// $XDG_RUNTIME_DIR/cronrun/NAME.pid, else /tmp/cronrun-UID/NAME.pid.
std::string default_lock_path(const std::string& name);
// Default config path for NAME: /etc/cronrun/jobs.d/NAME.json (root), else
// $XDG_CONFIG_HOME/cronrun/jobs.d/NAME.json (~/.config when unset).
std::string default_config_path(const std::string& name);

}  // namespace cronrun
