// cronrun's options as data (DESIGN §2, §8): every option once, with its names,
// how many values it takes, how a value is parsed, its default, its help text and
// which layer (command line, job config file) may set it. The runner's CLI11
// parser is built from this table, the job config loader reads its keys from it,
// `cronprof plan` reads cronrun crontab lines with it and `cronprof suggest
// --write` checks what it writes against it. The job-name rules live here too, so
// a crontab entry and the history rows of its runs always name the same job.
//
// Pure: no I/O, no environment. Parsers never throw; their error text says what
// was expected and the caller prefixes the flag or file.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.h"

namespace cronrun {

enum class OnLocked { skip, fail };
enum class CgroupMode { required, automatic, off };
enum class OutputMode { passthrough, on_failure, discard };
// --on-revoke (fleet mode, DESIGN §10): what a running job does when this host
// leaves its group.
enum class OnRevoke { finish, term };

const char* to_string(OnLocked v);
const char* to_string(CgroupMode v);
const char* to_string(OutputMode v);
const char* to_string(OnRevoke v);

struct IoNice {
  int io_class = 2;  // 1 realtime, 2 best-effort, 3 idle (ioprio classes)
  int level = 4;     // 0..7 (ignored for idle)
};

// "[A-Za-z0-9_.-]{1,64}", and not "." or ".." (they would name a directory, not a
// job, in the lock, log and cgroup paths).
bool valid_job_name(std::string_view name);
// The job name when --name is not given: basename of COMMAND's first word, bytes
// outside the name alphabet mapped to '_', cut to 64; "job" when nothing is left.
std::string default_job_name(std::string_view command0);
// A fleet host name (--host, fleet.json's "host"): 1-253 characters from
// [A-Za-z0-9.-], not starting with '.' or '-', no empty label ("..").
bool valid_host_name(std::string_view name);

// --tick (fleet mode, DESIGN §10): the scheduled time a run belongs to. Accepts
// RFC 3339 ("2026-12-06T12:00:00Z", an offset, a zero fraction), the minute form
// "2026-12-06T12:00" (also with ":SS"; no zone means UTC, the same on every host
// whatever its TZ) and Unix seconds ("1796558400"). Returns Unix seconds; a
// fraction of a second is refused (ticks are whole seconds, and two that differ
// only in it would be one claim).
Result<int64_t> parse_tick(std::string_view text);
// Unix seconds as the normalized tick: RFC 3339 UTC seconds, "2026-12-06T12:00:00Z"
// (fixed width, so etcd keys sort by time).
std::string format_tick(int64_t unix_seconds);
// The default tick: `unix_seconds` (the run's start) truncated to the minute.
std::string default_tick(int64_t unix_seconds);

namespace job_options {

// The largest --pids cronrun takes (the kernel's own PID_MAX_LIMIT); `cronprof
// suggest` never proposes more.
inline constexpr int64_t kMaxPids = 4194304;

enum class Arity {
  flag,          // --report
  one,           // --memory SIZE
  optional_one,  // --lock [PATH]: the next word, unless it looks like an option
  many,          // --env A=1 B=2: the next word, and the KEY=VALUE words after it
};

enum class Layer { command_line, config_file, both };

enum class Id {
  name, config, env, nice, ionice, timeout, kill_after, keep_orphans,
  memory, memory_high, swap, cpu, cpu_weight, pids, io_weight, cgroup_parent, cgroup, seccomp,
  lock, no_lock, lock_wait, on_locked,
  history, no_history, summary, report, count_db_queries, ping,
  output, log_dir, log_max,
  group, fleet_config, host, tick, on_revoke,
  dry_run, quiet, verbose, json, flush, help, version,
};

// A parsed value. Which alternative an option yields is fixed per option (see
// job_options.cc); "lock" and "history" yield a bool (true/false, config files) or
// a path; "tick" yields the normalized tick (format_tick) as a string.
using Value = std::variant<bool, int64_t, uint64_t, double, std::chrono::milliseconds, std::string, IoNice,
                           OnLocked, CgroupMode, OutputMode, OnRevoke>;

struct Option {
  Id id;
  std::string_view name;         // long name without "--"; the config key when the file may set it
  char short_name;               // '\0': none
  Arity arity;
  Layer layer;
  std::string_view value_name;   // "SIZE", "[PATH]"; empty for flags
  std::string_view group;        // --help section
  std::string_view default_text; // as a user would write it; empty: unset / off
  std::string_view example;      // a value the parser accepts (tests, docs)
  std::string_view help;
  Result<Value> (*parse)(std::string_view);  // flags: true/false

  std::string flag() const { return "--" + std::string(name); }
  bool config_settable() const { return layer != Layer::command_line; }
  bool command_line_settable() const { return layer != Layer::config_file; }
};

// Every option, in --help order.
std::span<const Option> all();
const Option& get(Id id);
// By long name ("memory"; a leading "--" is allowed), by short letter, by config key.
const Option* find_long(std::string_view name);
const Option* find_short(char letter);
const Option* find_config_key(std::string_view key);

// One option as given on a command line: the words that were its values (a bare
// --lock has none; "--name=x" and "-nx" one).
struct Given {
  const Option* option;
  std::string spelled;  // "--memory", "-n": for messages
  std::vector<std::string> values;
};

// A cronrun command line cut where its options end (DESIGN §2): at "--" or at the
// first word that is not an option. `option_words` are the words before COMMAND
// without a closing "--" (what CLI11 parses), `given` the same read with the
// table, `command` COMMAND and its arguments, never looked at.
struct CommandLine {
  std::vector<std::string> option_words;
  std::vector<Given> given;
  std::vector<std::string> command;
};

// `args` without argv[0]. An unknown option (named, with the closest known one
// suggested), a missing value or an empty --lock PATH is an error: an option
// never slides into COMMAND. Values are not parsed here.
Result<CommandLine> split_command_line(std::span<const std::string> args);

// Every given value parses (errors name the flag).
Result<void> check_values(const CommandLine& line);
// The checks that do not depend on a config file or the host, shared by the
// runner and the planner so both refuse the same lines: check_values, a COMMAND
// is there (unless --flush, which takes none), --name is a valid name. Returns
// the job name: --name, else default_job_name; empty when the line runs no job
// (--flush, --help, --version).
Result<std::string> check_command_line(const CommandLine& line);

}  // namespace job_options
}  // namespace cronrun
