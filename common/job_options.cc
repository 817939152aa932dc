// The option table and the command-line grammar around it. Each row is one
// option; everything else (CLI11's options and --help, the config keys, the
// planner's reading of crontab lines, suggest --write's check) is derived from
// the rows, so adding an option is adding a row and its field in JobSpec.
#include "common/job_options.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fmt/format.h>

#include "common/run_record.h"
#include "common/units.h"

namespace cronrun {

// Names by enumerator order; the parsers below take the same names.
namespace {
constexpr std::array<const char*, 2> kOnLocked{"skip", "fail"};
constexpr std::array<const char*, 3> kCgroupMode{"required", "auto", "off"};
constexpr std::array<const char*, 3> kOutputMode{"passthrough", "on-failure", "discard"};
constexpr std::array<const char*, 2> kOnRevoke{"finish", "term"};

template <size_t N, class Enum>
const char* name_of(const std::array<const char*, N>& names, Enum v) {
  auto i = static_cast<size_t>(v);
  return i < N ? names[i] : "?";
}
}  // namespace

const char* to_string(OnLocked v) { return name_of(kOnLocked, v); }
const char* to_string(CgroupMode v) { return name_of(kCgroupMode, v); }
const char* to_string(OutputMode v) { return name_of(kOutputMode, v); }
const char* to_string(OnRevoke v) { return name_of(kOnRevoke, v); }

namespace {
bool job_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}
}  // namespace

bool valid_job_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::ranges::all_of(name, job_name_char);
}

std::string default_job_name(std::string_view command0) {
  std::string_view base = command0.substr(command0.find_last_of('/') + 1);
  std::string out;
  for (char c : base) out += job_name_char(c) ? c : '_';
  if (out.size() > 64) out.resize(64);
  if (out.empty() || out == "." || out == "..") out = "job";
  return out;
}

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.front() == '-') return false;
  if (name.find("..") != std::string_view::npos) return false;
  return std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

std::string format_tick(int64_t unix_seconds) {
  using namespace std::chrono;
  // Through the calendar types rather than gmtime_r: pure, and no time_t range to mind.
  sys_days days{std::chrono::days(unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400)};
  int64_t rest = unix_seconds - days.time_since_epoch().count() * int64_t{86400};
  year_month_day ymd{days};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), rest / 3600,
                     rest % 3600 / 60, rest % 60);
}

std::string default_tick(int64_t unix_seconds) {
  return format_tick(unix_seconds - ((unix_seconds % 60) + 60) % 60);
}

Result<int64_t> parse_tick(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail(fmt::format("expected a time like 2026-12-06T12:00:00Z, 2026-12-06T12:00 (UTC) or Unix seconds{}, "
                            "got '{}'",
                            why, text));
  };
  // The latest time RFC 3339's four-digit year can write.
  constexpr int64_t kLast = 253402300799;
  if (!text.empty() && std::ranges::all_of(text, [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t secs = 0;
    auto res = std::from_chars(text.data(), text.data() + text.size(), secs);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size() || secs > kLast) return bad(" (at most 9999)");
    return secs;
  }
  // The minute form and a zone-less time are UTC: "2026-12-06T12:00" → "...:00Z".
  std::string full(text);
  bool minute_form = full.size() >= 16 && full[13] == ':' && (full.size() == 16 || full[16] == 'Z' || full[16] == 'z');
  if (minute_form) full.insert(16, ":00");
  if (full.size() == 19) full += 'Z';
  auto secs = parse_rfc3339(full);
  if (!secs) return bad("");
  if (*secs < 0) return bad(" (not before 1970)");
  if (*secs != std::floor(*secs)) return bad(" (whole seconds: a tick is a scheduled time)");
  return static_cast<int64_t>(*secs);
}

namespace job_options {
namespace {

// ---- value parsers ----

Result<int64_t> parse_int(std::string_view v, int64_t lo, int64_t hi, std::string_view what) {
  int64_t out = 0;
  auto res = std::from_chars(v.data(), v.data() + v.size(), out);
  if (res.ec != std::errc() || res.ptr != v.data() + v.size() || out < lo || out > hi)
    return fail(fmt::format("expected {} from {} to {}, got '{}'", what, lo, hi, v));
  return out;
}

template <int64_t Lo, int64_t Hi>
Result<Value> int_in(std::string_view v, std::string_view what) {
  auto n = parse_int(v, Lo, Hi, what);
  if (!n) return std::unexpected(n.error());
  return Value(*n);
}

Result<Value> parse_bool(std::string_view v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return Value(true);
  if (v == "false" || v == "0" || v == "no" || v == "off") return Value(false);
  return fail(fmt::format("expected true or false, got '{}'", v));
}

template <class Enum, size_t N>
Result<Value> parse_enum(std::string_view v, const std::array<Enum, N>& values) {
  std::string expected;
  for (Enum e : values) {
    if (v == to_string(e)) return Value(e);
    expected += expected.empty() ? "" : "|";
    expected += to_string(e);
  }
  return fail(fmt::format("expected {}, got '{}'", expected, v));
}

Result<Value> parse_name(std::string_view v) {
  if (!valid_job_name(v))
    return fail(fmt::format("expected a job name of 1-64 characters from [A-Za-z0-9_.-], not . or .., got '{}'", v));
  return Value(std::string(v));
}

Result<Value> parse_group(std::string_view v) {
  if (!valid_job_name(v))
    return fail(fmt::format("expected a group name of 1-64 characters from [A-Za-z0-9_.-], not . or .., got '{}'", v));
  return Value(std::string(v));
}

Result<Value> parse_host(std::string_view v) {
  if (!valid_host_name(v))
    return fail(fmt::format("expected a host name of 1-253 characters from [A-Za-z0-9.-], not starting with . or -, "
                            "got '{}'",
                            v));
  return Value(std::string(v));
}

// The tick as its normalized text, so the spec, the record and the etcd key all
// hold one spelling of it.
Result<Value> parse_tick_value(std::string_view v) {
  auto secs = parse_tick(v);
  if (!secs) return std::unexpected(std::move(secs.error()));
  return Value(format_tick(*secs));
}

Result<Value> parse_path(std::string_view v, std::string_view what) {
  if (v.empty()) return fail(fmt::format("expected {}, got ''", what));
  return Value(std::string(v));
}

// A parser's typed result as a Value.
template <class T>
Result<Value> as_value(Result<T> r) {
  if (!r) return std::unexpected(std::move(r.error()));
  return Value(std::move(*r));
}

// A memory limit or log cap of 0 is never meant: the job would be killed or its
// log empty before it starts. (--swap 0 is meaningful: no swap.)
Result<Value> parse_nonzero_size(std::string_view v) {
  auto b = units::parse_size(v);
  if (b && *b == 0) return fail(fmt::format("expected a size above 0 like 512M or 2G, got '{}'", v));
  return as_value(std::move(b));
}

Result<Value> parse_size(std::string_view v) { return as_value(units::parse_size(v)); }
Result<Value> parse_duration(std::string_view v) { return as_value(units::parse_duration(v)); }
Result<Value> parse_cpu(std::string_view v) { return as_value(units::parse_cpu_percent(v)); }

Result<Value> parse_positive_duration(std::string_view v) {
  auto d = units::parse_duration(v);
  if (d && d->count() <= 0) return fail(fmt::format("expected a positive duration like 90s, 15m or 2h, got '{}'", v));
  return as_value(std::move(d));
}

Result<Value> parse_ionice(std::string_view v) {
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
  return Value(out);
}

// "lock" and "history": a path, or true/false (config files; a bare --lock is
// "true").
Result<Value> parse_path_or_bool(std::string_view v, std::string_view what) {
  if (v == "true") return Value(true);
  if (v == "false") return Value(false);
  if (v.empty()) return fail(fmt::format("expected {}, got ''", what));
  return Value(std::string(v));
}

Result<Value> parse_cgroup_parent(std::string_view v) {
  if (v.empty() || v.find("..") != std::string_view::npos)
    return fail(fmt::format("expected a cgroup path relative to the hierarchy root, like /batch, got '{}'", v));
  return Value(v.front() == '/' ? std::string(v) : "/" + std::string(v));
}

Result<Value> parse_env(std::string_view v) {
  auto eq = v.find('=');
  if (eq == 0 || eq == std::string_view::npos) return fail(fmt::format("expected KEY=VALUE, got '{}'", v));
  return Value(std::string(v));
}

// --ping: checked when the line is read, so a typo is a usage error at once rather
// than a ping that fails at every run. The value is not echoed: its path is the
// check's secret (a Healthchecks UUID or ping key). libcurl parses it again when
// pinging; this only refuses what can never be a ping URL.
Result<Value> parse_ping_url(std::string_view v) {
  auto bad = [](std::string_view why) {
    return fail(fmt::format("expected an http:// or https:// URL like https://hc-ping.com/UUID ({})", why));
  };
  constexpr size_t kUrlMax = 2048;
  if (v.size() > kUrlMax) return bad(fmt::format("longer than {} bytes", kUrlMax));
  if (std::ranges::any_of(v, [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
    return bad("it contains a space or a control character");
  auto lower_prefix = [&](std::string_view p) {
    return v.size() >= p.size() && std::equal(p.begin(), p.end(), v.begin(), [](char a, char b) {
             return a == std::tolower(static_cast<unsigned char>(b));
           });
  };
  size_t scheme_end = lower_prefix("https://") ? 8 : lower_prefix("http://") ? 7 : 0;
  if (scheme_end == 0) return bad("the scheme must be http or https");
  if (v.find('#') != std::string_view::npos) return bad("a #fragment is never sent");
  std::string_view authority = v.substr(scheme_end, v.find_first_of("/?", scheme_end) - scheme_end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host = authority, port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 host needs its closing ]");
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("junk after the IPv6 host");
      port = authority.substr(close + 2);
      if (port.empty()) return bad("an empty port");
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return bad("an empty port");
  }
  if (host.empty() || host == "[]") return bad("no host");
  if (!port.empty() && !parse_int(port, 1, 65535, "a port")) return bad("the port must be 1-65535");
  return Value(std::string(v));
}

// ---- the table ----

using enum Arity;
using enum Layer;
constexpr std::string_view kJob = "Job", kLimits = "Limits", kLock = "Lock", kRecording = "Recording",
                           kOutput = "Output", kFleet = "Fleet mode",
                           kOther = "Other";

constexpr std::array<Option, 43> kOptions{{
    {Id::name, "name", 'n', one, both, "NAME", kJob, "", "nightly-report",
     "job name [A-Za-z0-9_.-]{1,64} (default: basename of COMMAND)", parse_name},
    {Id::config, "config", 'c', one, command_line, "FILE", kJob, "", "/etc/cronrun/jobs.d/x.json",
     "job config (JSON, comments allowed); default /etc/cronrun/jobs.d/NAME.json (root) "
     "or $XDG_CONFIG_HOME/cronrun/jobs.d/NAME.json",
     [](std::string_view v) { return parse_path(v, "a job config file"); }},
    {Id::env, "env", '\0', many, both, "KEY=VALUE", kJob, "", "MODE=full",
     "extra environment for the job (repeatable)", parse_env},
    {Id::nice, "nice", '\0', one, both, "N", kJob, "", "10", "scheduling priority of the job (-20..19)",
     [](std::string_view v) { return int_in<-20, 19>(v, "a nice value"); }},
    {Id::ionice, "ionice", '\0', one, both, "CLASS[:LEVEL]", kJob, "", "best-effort:7",
     "IO priority: realtime|best-effort|idle[:0-7]", parse_ionice},
    {Id::timeout, "timeout", '\0', one, both, "DURATION", kJob, "", "50m",
     "wall limit (90s, 15m, 2h): SIGTERM, then kill the cgroup", parse_positive_duration},
    {Id::kill_after, "kill-after", '\0', one, both, "DURATION", kJob, "10s", "30s",
     "grace between SIGTERM and kill on timeout (default 10s)", parse_duration},
    {Id::keep_orphans, "keep-orphans", '\0', flag, both, "", kJob, "", "true",
     "do not kill processes left behind when the job exits", parse_bool},

    {Id::memory, "memory", '\0', one, both, "SIZE", kLimits, "", "2G", "hard memory limit (512M, 2G, 1.5GiB, bytes)",
     parse_nonzero_size},
    {Id::memory_high, "memory-high", '\0', one, both, "SIZE", kLimits, "", "1G",
     "soft memory limit / reclaim pressure", parse_nonzero_size},
    {Id::swap, "swap", '\0', one, both, "SIZE", kLimits, "", "512M", "swap limit (v1: applied as memory + swap)",
     parse_size},
    {Id::cpu, "cpu", '\0', one, both, "QUOTA", kLimits, "", "50%", "CPU quota: 50% of one CPU, 250%, or cores (1.5)",
     parse_cpu},
    {Id::cpu_weight, "cpu-weight", '\0', one, both, "N", kLimits, "", "100", "relative CPU weight 1-10000",
     [](std::string_view v) { return int_in<1, 10000>(v, "a weight"); }},
    {Id::pids, "pids", '\0', one, both, "N", kLimits, "", "64", "max tasks",
     [](std::string_view v) { return int_in<1, kMaxPids>(v, "a task count"); }},
    {Id::io_weight, "io-weight", '\0', one, both, "N", kLimits, "", "100",
     "relative IO weight 1-10000, where available", [](std::string_view v) { return int_in<1, 10000>(v, "a weight"); }},
    {Id::cgroup_parent, "cgroup-parent", '\0', one, both, "PATH", kLimits, "", "/batch",
     "create job cgroups under this path (relative to the cgroup root)", parse_cgroup_parent},
    {Id::cgroup, "cgroup", '\0', one, both, "MODE", kLimits, "auto", "auto",
     "required|auto|off; auto falls back to rlimits + rusage without a writable cgroup (default auto)",
     [](std::string_view v) {
       return parse_enum(v, std::array{CgroupMode::required, CgroupMode::automatic, CgroupMode::off});
     }},
    // The value is kept as given: a built-in name or a profile file, read and
    // checked once the settings are applied (runner/seccomp_profile.h).
    {Id::seccomp, "seccomp", '\0', one, both, "MODE|FILE", kLimits, "off", "strict",
     "syscall filter for the job: off, baseline, strict, learn or a profile file (cronrun.json(5))",
     [](std::string_view v) { return parse_path(v, "off, baseline, strict, learn or a profile file"); }},

    {Id::lock, "lock", '\0', optional_one, both, "[PATH]", kLock, "true", "/run/lock/x.pid",
     "pid-file lock (on by default); default /run/cronrun/locks/NAME.pid (root) "
     "or $XDG_RUNTIME_DIR/cronrun/NAME.pid, else /tmp/cronrun-UID/NAME.pid; an explicit PATH's "
     "directory must exist, and a file there must be empty or hold a pid",
     [](std::string_view v) { return parse_path_or_bool(v, "a lock file path, true or false"); }},
    {Id::no_lock, "no-lock", '\0', flag, command_line, "", kLock, "", "true", "run without the pid-file lock",
     parse_bool},
    {Id::lock_wait, "lock-wait", '\0', one, both, "DURATION", kLock, "0", "5m",
     "wait up to this long for the lock (default 0)", parse_duration},
    {Id::on_locked, "on-locked", '\0', one, both, "skip|fail", kLock, "skip", "fail",
     "lock busy: skip (exit 0, run recorded as skipped) or fail (exit 75)",
     [](std::string_view v) { return parse_enum(v, std::array{OnLocked::skip, OnLocked::fail}); }},

    {Id::history, "history", '\0', one, both, "PATH", kRecording, "", "/srv/cronrun/history.db",
     "SQLite history (default /var/lib/cronrun/history.db as root, else $XDG_STATE_HOME/cronrun/history.db); "
     "an explicit PATH's directory must exist",
     [](std::string_view v) { return parse_path_or_bool(v, "a history database path"); }},
    {Id::no_history, "no-history", '\0', flag, command_line, "", kRecording, "", "true",
     "do not record the run in the history", parse_bool},
    {Id::summary, "summary", '\0', one, both, "FILE", kRecording, "", "-",
     "also write this run's summary JSON to FILE (- = stdout); its directory must exist, and a "
     "symlink, FIFO or device someone else planted there is refused",
     [](std::string_view v) { return parse_path(v, "a file path or -"); }},
    {Id::report, "report", '\0', flag, both, "", kRecording, "", "true",
     "print a short profile of the run on stderr at the end", parse_bool},
    {Id::count_db_queries, "count-db-queries", '\0', flag, both, "", kRecording, "", "true",
     "count DB queries (libpq, MySQL/MariaDB client, SQLite) via LD_PRELOAD", parse_bool},
    {Id::ping, "ping", '\0', one, both, "URL", kRecording, "", "https://hc-ping.com/your-uuid",
     "Healthchecks-style pings: URL/start before the job, URL on success, URL/CODE on failure "
     "(http or https; bounded time, never changes the exit status)",
     parse_ping_url},

    {Id::output, "output", '\0', one, both, "MODE", kOutput, "passthrough", "on-failure",
     "job's stdout/stderr: passthrough|on-failure|discard (default passthrough)",
     [](std::string_view v) {
       return parse_enum(v, std::array{OutputMode::passthrough, OutputMode::on_failure, OutputMode::discard});
     }},
    {Id::log_dir, "log-dir", '\0', one, both, "DIR", kOutput, "", "/var/log/cronrun",
     "keep each run's output in DIR/NAME/RUN-ID.log (DIR must exist)",
     [](std::string_view v) { return parse_path(v, "a directory"); }},
    {Id::log_max, "log-max", '\0', one, both, "SIZE", kOutput, "16M", "2M", "cap of each kept log (default 16M)",
     parse_nonzero_size},

    // Fleet mode (cronrun(1) FLEET MODE): --group or --fleet-config engages it.
    {Id::group, "group", '\0', one, both, "NAME", kFleet, "", "scripts1",
     "fleet mode: run only on a host in this group of the fleet's groups (etcd PREFIX/config), "
     "once per tick fleet-wide",
     parse_group},
    {Id::fleet_config, "fleet-config", '\0', one, both, "FILE", kFleet, "", "/etc/cronrun/fleet.json",
     "fleet mode with this fleet config (etcd endpoints, prefix, lease_ttl, history; cronrun.json(5)); "
     "default /etc/cronrun/fleet.json (root) or $XDG_CONFIG_HOME/cronrun/fleet.json",
     [](std::string_view v) { return parse_path(v, "a fleet config file"); }},
    {Id::host, "host", '\0', one, both, "NAME", kFleet, "", "box1.example.com",
     "this host's name in the fleet (default: fleet.json's host, else the FQDN)", parse_host},
    // Command line only: a fixed tick in a job config would make every run after
    // the first a skip.
    {Id::tick, "tick", '\0', one, command_line, "TIME", kFleet, "", "2026-12-06T12:00",
     "the scheduled time the run belongs to: RFC 3339, YYYY-MM-DDTHH:MM (UTC) or Unix seconds "
     "(default: the start time truncated to the minute); a tick runs at most once fleet-wide",
     parse_tick_value},
    {Id::on_revoke, "on-revoke", '\0', one, both, "finish|term", kFleet, "finish", "term",
     "this host leaves the job's group while it runs: finish (default) or term (SIGTERM, --kill-after, kill)",
     [](std::string_view v) { return parse_enum(v, std::array{OnRevoke::finish, OnRevoke::term}); }},

    {Id::dry_run, "dry-run", '\0', flag, command_line, "", kOther, "", "true",
     "print the resolved spec, cgroup placement and why, then exit 0", parse_bool},
    {Id::quiet, "quiet", 'q', flag, command_line, "", kOther, "", "true", "only errors from cronrun itself",
     parse_bool},
    {Id::verbose, "verbose", 'v', flag, command_line, "", kOther, "", "true",
     "more of cronrun's own messages (repeatable)", parse_bool},
    {Id::json, "json", '\0', flag, command_line, "", kOther, "", "true",
     "with --dry-run: print one JSON document instead of text", parse_bool},
    {Id::flush, "flush", '\0', flag, command_line, "", kOther, "", "true",
     "fold the run journal into the history (fleet: and forward it), remove the files killed runners "
     "left, then exit (takes no COMMAND)", parse_bool},
    {Id::help, "help", 'h', flag, command_line, "", kOther, "", "true", "print this help and exit", parse_bool},
    {Id::version, "version", '\0', flag, command_line, "", kOther, "", "true", "print cronrun's version and exit",
     parse_bool},
}};

// A row's position is its Id, so get() is an index and a row out of place is a
// build error here rather than a wrong option at run time.
constexpr bool rows_in_id_order() {
  for (size_t i = 0; i < kOptions.size(); ++i)
    if (static_cast<size_t>(kOptions[i].id) != i) return false;
  return true;
}
static_assert(rows_in_id_order());
static_assert(static_cast<size_t>(Id::version) + 1 == kOptions.size());

bool looks_like_option(std::string_view arg) { return arg.size() > 1 && arg.front() == '-'; }

// "--env A=1 B=2 -- job" has always set both: the words after --env's first value
// that read as KEY=VALUE are its values too. The first word that does not ends
// the options, so "--env A=1 job" runs job.
bool looks_like_env_value(std::string_view arg) {
  auto eq = arg.find('=');
  if (eq == 0 || eq == std::string_view::npos) return false;
  if (std::isdigit(static_cast<unsigned char>(arg.front()))) return false;
  return std::all_of(arg.begin(), arg.begin() + static_cast<std::ptrdiff_t>(eq),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::unexpected<Error> unknown_option(std::string_view arg) {
  std::string name(arg.substr(0, arg.find('=')));
  std::string best;
  size_t best_distance = 3;  // suggest only close misspellings
  for (const Option& o : kOptions)
    if (size_t d = edit_distance(name, o.flag()); d < best_distance) {
      best_distance = d;
      best = o.flag();
    }
  return fail(fmt::format("unknown option '{}'{} (options go before COMMAND; see cronrun --help)", name,
                          best.empty() ? "" : fmt::format(", did you mean {}?", best)));
}

}  // namespace

std::span<const Option> all() { return kOptions; }
const Option& get(Id id) { return kOptions[static_cast<size_t>(id)]; }

const Option* find_long(std::string_view name) {
  if (name.starts_with("--")) name.remove_prefix(2);
  for (const Option& o : kOptions)
    if (o.name == name) return &o;
  return nullptr;
}

const Option* find_short(char letter) {
  for (const Option& o : kOptions)
    if (o.short_name != '\0' && o.short_name == letter) return &o;
  return nullptr;
}

const Option* find_config_key(std::string_view key) {
  const Option* o = find_long(key);
  return o && !key.starts_with("-") && o->config_settable() ? o : nullptr;
}

Result<CommandLine> split_command_line(std::span<const std::string> args) {
  CommandLine out;
  size_t i = 0;
  auto take_value = [&](Given& g) -> Result<void> {
    if (i + 1 >= args.size()) return fail(fmt::format("{}: expected a value after it", g.spelled));
    out.option_words.push_back(args[++i]);
    g.values.push_back(args[i]);
    return {};
  };
  for (; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (!looks_like_option(arg)) break;
    out.option_words.emplace_back(arg);
    if (arg.starts_with("--")) {
      auto eq = arg.find('=');
      const Option* opt = find_long(arg.substr(0, eq));
      if (opt == nullptr) return unknown_option(arg);
      Given g{opt, std::string(arg.substr(0, eq)), {}};
      // CLI11 gives a bare --lock as "", so an explicit empty PATH is refused
      // here: `--lock "$UNSET"` must not quietly mean the default lock.
      auto empty_optional = [&] { return fail(fmt::format("{}: expected a path after it, got ''", g.spelled)); };
      if (eq != std::string_view::npos) {  // --name=value
        if (opt->arity == optional_one && eq + 1 == arg.size()) return empty_optional();
        g.values.emplace_back(arg.substr(eq + 1));
      } else if (opt->arity == one || opt->arity == many) {
        if (auto r = take_value(g); !r) return std::unexpected(r.error());
        while (opt->arity == many && i + 1 < args.size() && looks_like_env_value(args[i + 1])) {
          out.option_words.push_back(args[++i]);
          g.values.push_back(args[i]);
        }
      } else if (opt->arity == optional_one && i + 1 < args.size() && !looks_like_option(args[i + 1])) {
        if (args[i + 1].empty()) return empty_optional();
        out.option_words.push_back(args[++i]);
        g.values.push_back(args[i]);
      }
      out.given.push_back(std::move(g));
      continue;
    }
    // A group of short options: flags, the last of which may take a value, which is
    // the rest of the group or else the next argument (-vq, -n NAME, -nNAME).
    for (size_t k = 1; k < arg.size(); ++k) {
      const Option* opt = find_short(arg[k]);
      if (opt == nullptr) return unknown_option(k == 1 ? arg : std::string("-") + arg[k]);
      Given g{opt, std::string("-") + arg[k], {}};
      if (opt->arity == flag) {
        out.given.push_back(std::move(g));
        continue;
      }
      if (k + 1 == arg.size()) {
        if (auto r = take_value(g); !r) return std::unexpected(r.error());
      } else {
        g.values.emplace_back(arg.substr(k + 1));
      }
      out.given.push_back(std::move(g));
      break;
    }
  }
  out.command.assign(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())), args.end());
  return out;
}

Result<void> check_values(const CommandLine& line) {
  for (const Given& g : line.given)
    for (const std::string& v : g.values)
      if (auto r = g.option->parse(v); !r) return fail(fmt::format("{}: {}", g.spelled, r.error().message()));
  return {};
}

Result<std::string> check_command_line(const CommandLine& line) {
  if (auto r = check_values(line); !r) return std::unexpected(r.error());
  bool flush = false;
  const std::string* name = nullptr;
  for (const Given& g : line.given) {
    if (g.option->id == Id::help || g.option->id == Id::version) return std::string();  // prints, runs nothing
    if (g.option->id == Id::flush)
      flush = g.values.empty() || std::get<bool>(*g.option->parse(g.values.back()));
    if (g.option->id == Id::name && !g.values.empty()) name = &g.values.back();
  }
  if (flush) {
    if (!line.command.empty())
      return fail("--flush: takes no COMMAND (it folds the run journal into the history and exits)");
    return std::string();
  }
  if (line.command.empty())
    return fail("missing COMMAND: usage is cronrun [OPTIONS] -- COMMAND [ARG...]; in a crontab, cron cuts the "
                "line at an unescaped % (write \\% there, or give --cpu in cores, like --cpu 1.5)");
  if (line.command.front().empty()) return fail("COMMAND: expected a program name or path, got ''");
  return name ? *name : default_job_name(line.command.front());
}

}  // namespace job_options
}  // namespace cronrun
