// The run record: one run of one job, as DESIGN.md section 4 (schema cronrun.run/1)
// defines it. It is what the runner writes to the history and to --summary, and
// what cronprof reads back. A figure the host cannot measure is std::nullopt and
// serializes as JSON null, never 0.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"

namespace cronrun {

inline constexpr const char* kRunSchema = "cronrun.run/1";

enum class RunStatus { running, ok, failed, killed, timeout, oom, skipped, error, lost };
const char* to_string(RunStatus s);
Result<RunStatus> parse_run_status(std::string_view text);

struct Isolation {
  std::string cgroup = "none";       // "v2" | "v1" | "hybrid" | "none"
  std::optional<std::string> path;   // cgroup path relative to the hierarchy root
  std::string accounting = "rusage"; // "cgroup" | "rusage"
  std::optional<std::string> note;   // why, when degraded
  // The systemd scope the run was placed in (DESIGN §9). Its initializer keeps
  // four-field aggregate initializations of Isolation free of warnings.
  std::optional<std::string> unit = std::nullopt;
};

struct LimitsRecord {
  std::optional<uint64_t> memory_max_bytes;
  std::optional<uint64_t> memory_high_bytes;
  std::optional<uint64_t> swap_max_bytes;
  std::optional<double> cpu_quota_pct;
  std::optional<uint64_t> cpu_weight;
  std::optional<uint64_t> pids_max;
  std::optional<double> timeout_s;
};

struct Pressure {
  std::optional<double> cpu;
  std::optional<double> memory;
  std::optional<double> io;
};

struct Usage {
  std::optional<double> cpu_user_s;
  std::optional<double> cpu_system_s;
  std::optional<uint64_t> memory_peak_bytes;  // cgroup peak, page cache included
  std::optional<uint64_t> max_rss_bytes;      // largest single process (rusage)
  std::optional<uint64_t> io_read_bytes;
  std::optional<uint64_t> io_write_bytes;
  // Where the IO figures come from: "cgroup" (v2 io.stat) or "rusage" (block counts
  // of the reaped processes, where the cgroup cannot count IO); null with them.
  std::optional<std::string> io_source;
  std::optional<uint64_t> pids_peak;
  // Forks and clones the pids limit refused (pids.events "max"): the job saw
  // EAGAIN. Null when the run made no pids cgroup.
  std::optional<uint64_t> pids_max_events;
  std::optional<uint64_t> oom_kills;
  std::optional<uint64_t> memory_max_events;
  std::optional<uint64_t> memory_high_events;
  std::optional<double> cpu_throttled_s;
  std::optional<uint64_t> cpu_nr_throttled;
  Pressure pressure_some_s;
  // Processes left behind by the main process and killed by cronrun (0 with
  // --keep-orphans); null when no job was supervised.
  std::optional<uint64_t> orphans_killed;
  // Usage fields left null because the run did not make the cgroup that counts them
  // (no limit of that controller was asked for), e.g. "pids_peak"; empty otherwise.
  // A field the host cannot measure at all is null without being named here.
  std::vector<std::string> not_measured;
};

struct LockRecord {
  std::optional<std::string> path;
  double waited_s = 0.0;
  std::optional<int64_t> holder_pid;
};

struct LogRecord {
  std::optional<std::string> path;
  uint64_t bytes = 0;
  uint64_t dropped_bytes = 0;  // lost to failed writes (not the --log-max cut)
};

// What became of the job's stdout/stderr under --output.
struct OutputRecord {
  // Bytes that did not reach cronrun's stdout/stderr: not copied through while the
  // reader was not reading (passthrough), or cut from the front of the on-failure
  // buffer (its tail is replayed) or left unwritten at its replay.
  uint64_t dropped_bytes = 0;
};

// `seccomp` (DESIGN §4, §11): the job's syscall filter and what it denied.
struct SeccompViolation {
  std::string syscall;     // libseccomp's name, "syscall_<nr>" when unknown
  uint64_t count = 0;
  int64_t first_pid = 0;
  std::string comm;        // "" when the process was gone before it was read
};
struct SeccompRecord {
  std::string profile;     // "baseline" | "strict" | "learn" | the profile file's path
  std::string action;      // "EPERM" | "EACCES" | "ENOSYS" | "continue" (learn)
  uint64_t violations_total = 0;
  std::vector<SeccompViolation> violations;
  uint64_t answers_lost = 0;        // callers killed while waiting for the answer
  std::vector<std::string> seen;    // learn: syscalls outside strict, in order seen
  std::optional<std::string> note;  // e.g. the listener broke: fail-closed from then on
  // Why the run's failure is the filter's doing: "non-native syscall" (killed by
  // SIGSYS: an i386/x32 syscall), "denied syscalls" (failed or killed after the
  // filter denied some); null when the run did not fail or nothing was denied.
  // Additive to Summary::to_json()'s shape (seccomp_listener.h), which this
  // object otherwise is, key for key.
  std::optional<std::string> failed_by;
};

// One Healthchecks-style ping of the run (--ping, DESIGN §12).
struct PingRecord {
  std::string kind;      // "start", "success", "failure", "log"
  std::string endpoint;  // what was appended to the URL: "/start", "", "/3", "/log"
  bool delivered = false;
  uint32_t attempts = 0;
  std::optional<int> http_status;  // of the last attempt that got a response
  std::optional<std::string> error;  // why it was not delivered (never the URL's path)
  double elapsed_s = 0.0;            // all attempts and the waits between them
};

// The run's pings. The ping URL's path and query are the check's secret (a UUID or
// ping key): only the host is kept.
struct PingsRecord {
  std::string url_host;
  uint64_t sent = 0;    // delivered (a 2xx answer)
  uint64_t failed = 0;  // given up on
  std::vector<PingRecord> pings;
};

// `forwarded_signal`: signals cronrun received while the job ran and passed on
// to it (SIGTERM from a stopping cron daemon, an admin's kill). Absent when none
// was; a job that then exits 0 is `ok`, and this says that it was asked to stop.
struct ForwardedSignal {
  int signal = 0;                      // the last one forwarded
  std::optional<int64_t> sender_pid;   // who sent it to cronrun; null: the kernel
  std::optional<int64_t> sender_uid;
  uint64_t count = 0;                  // how many were forwarded in all
};

// `fleet` (DESIGN §4, §10): the run's place in the fleet; the whole object is null
// outside fleet mode.
struct FleetHolder {
  std::string host;      // the host that holds the lock, or claimed the tick
  int64_t revision = 0;  // the etcd revision of that key (the lock's: its fence)
};
struct FleetRecord {
  std::optional<std::string> group;  // --group; null without one
  std::string host;                  // this host's fleet name (--host, fleet.json, FQDN)
  std::string tick;                  // RFC 3339 UTC seconds, "2026-12-06T12:00:00Z"
  // The fencing token: the create_revision of the lock this run took (what the
  // job got as CRONRUN_FENCE); null when it took none (skipped, unavailable: run).
  std::optional<int64_t> fence;
  // Whoever held the lock or had claimed the tick when this run skipped; null
  // when it did not lose a race.
  std::optional<FleetHolder> holder;
  std::optional<int64_t> lease_ttl_s;
  // What happened to the fleet side: revoked while running, lease not renewed,
  // ran without etcd ("unavailable": "run"), host name not the FQDN, ...
  std::optional<std::string> note;
};

struct RunRecord {
  std::string run_id;
  std::string job;
  std::string host;
  std::string user;
  std::vector<std::string> command;
  std::string started_at;                 // RFC 3339 UTC with milliseconds
  std::optional<std::string> finished_at;
  std::optional<double> wall_s;
  // Seconds from the runner's start to the job's exec (lock wait, placement,
  // start-up); null when the job was not started.
  std::optional<double> start_delay_s;
  RunStatus status = RunStatus::running;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<std::string> skip_reason;
  Isolation isolation;
  LimitsRecord limits;
  Usage usage;
  std::map<std::string, double> counters;  // summed per name
  LockRecord lock;
  LogRecord log;
  OutputRecord output;
  std::optional<SeccompRecord> seccomp;  // null with --seccomp off
  std::optional<PingsRecord> pings;  // null without --ping
  std::optional<FleetRecord> fleet;  // null outside fleet mode
  std::optional<ForwardedSignal> forwarded_signal;  // absent when none was

  // Not part of the JSON schema; kept in the history so a crashed runner can be
  // told apart from a live one (section 5: `running` rows whose runner is gone).
  int64_t runner_pid = 0;
  // The runner's start time in clock ticks after boot (/proc/<pid>/stat field 22),
  // so a pid the kernel later reuses for another process is not taken for the
  // runner. 0 = unknown (rows written before schema 4).
  uint64_t runner_start = 0;
  std::string boot_id;
};

// The record as JSON. Every string is made valid UTF-8 on the way in (argv,
// environment, paths and job-written counter names are bytes, not text), so the
// result always serializes; dump it with error_handler_t::replace all the same.
nlohmann::json to_json(const RunRecord& r);
// The same record as compact JSON text, byte for byte what
// to_json(r).dump(-1, ' ', false, replace) gives (keys in the DOM's sorted order,
// its number and escape formats), written straight into one string without
// building the DOM: the run journal writes two per run. With `runner_fields`, the
// top-level object also holds runner_pid, runner_start and boot_id (the journal's
// payload, common/journal.h).
std::string to_json_text(const RunRecord& r, bool runner_fields = false);
// Strict about types; unknown keys are ignored (forward compatible).
Result<RunRecord> run_record_from_json(const nlohmann::json& j);
// The record read from its JSON text without building a DOM (common/run_record_fast.cc):
// what run_record_from_json would return for the same text, or nullopt when the text
// is anything but a well-formed record of the shape the runner writes (bad JSON, a
// type error, a key given twice, a seccomp/pings/fleet object); the caller then
// parses the DOM, which accepts the record or says what is wrong with it. With
// `runner_fields`, also runner_pid, runner_start and boot_id (the journal's payload).
std::optional<RunRecord> run_record_from_text_fast(std::string_view text, bool runner_fields);

// `text` with every byte that does not belong to a well-formed UTF-8 sequence
// (stray continuation bytes, truncated or overlong sequences, surrogates, code
// points above U+10FFFF) replaced by U+FFFD. Valid text is returned unchanged.
std::string valid_utf8(std::string_view text);
bool is_valid_utf8(std::string_view text);
// Makes every string of `r` valid UTF-8 in place (see valid_utf8); returns how
// many strings it had to change.
size_t make_valid_utf8(RunRecord& r);

// Current time as "2026-11-23T02:10:00.123Z".
// "SIGTERM"; "signal 77" for a number without a name.
std::string signal_name(int sig);
// "SIGTERM from pid 4321 (uid 0), forwarded to the job" (and how many in all, when
// more than one): what the report, FINISH line and cronprof show say.
std::string forwarded_signal_text(const ForwardedSignal& f);

std::string now_rfc3339();
// `t` in the same format.
std::string format_rfc3339(std::chrono::system_clock::time_point t);
// Parses the format above (and without milliseconds) to Unix seconds.
Result<double> parse_rfc3339(std::string_view text);
// A fresh run id: a UUIDv7 (time-ordered), lower-case hex with dashes.
std::string new_run_id();
// /proc/sys/kernel/random/boot_id, or "" when unreadable.
std::string current_boot_id();
// When process `pid` started, in clock ticks after boot (/proc/<pid>/stat field
// 22). Fails with the errno of the read (ENOENT: no such process, or hidden by
// hidepid) or when the line does not parse.
Result<uint64_t> process_start_ticks(int64_t pid);
// Field 22 (starttime) of a /proc/<pid>/stat line.
Result<uint64_t> parse_stat_start_ticks(std::string_view stat);

}  // namespace cronrun
