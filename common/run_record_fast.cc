// Reading a run record's JSON text without a DOM (see run_record.h,
// run_record_from_text_fast).
//
// Every record the fold, cronprof and the central history read is parsed here
// first: nlohmann's SAX parser feeds one event at a time into a small state
// machine that writes straight into a RunRecord. Building the DOM first (a map
// node and a string per key, a json value per leaf) was two thirds of the cost of
// reading a record, and the fold reads two per run.
//
// The reader is deliberately narrow. It handles the shape the runner writes —
// the scalars, the fixed sub-objects, counters, the two string arrays — and
// gives up (nullopt) on anything else: a type the DOM reader would reject, a key
// given twice (the DOM keeps the last, this reader cannot undo the first), a
// non-null seccomp / pings / fleet / forwarded_signal object (rare), malformed JSON. The
// caller then runs run_record_from_json, which either accepts the record or
// says precisely what is wrong; so whatever this reader returns is exactly what
// the DOM reader returns for the same text (the run_record fuzzer checks it).
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/run_record.h"

namespace cronrun {

namespace {

using json = nlohmann::json;

// The objects the reader descends into.
enum class Obj : uint8_t { top, isolation, limits, usage, pressure, counters, lock, log, output };
enum class Arr : uint8_t { none, command, not_measured };

// One scalar as the SAX parser hands it over.
struct Value {
  enum Kind : uint8_t { null, boolean, integer, unsigned_integer, floating, string } kind = null;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  const std::string* s = nullptr;
};

// The DOM reader's conversions (run_record.cc get_*), as predicates that fail
// where it would report a type error.
bool as_double(const Value& v, std::optional<double>& out) {
  switch (v.kind) {
    case Value::null: return true;
    case Value::integer: out = static_cast<double>(v.i); return true;
    case Value::unsigned_integer: out = static_cast<double>(v.u); return true;
    case Value::floating: out = v.d; return true;
    default: return false;
  }
}
bool as_u64(const Value& v, std::optional<uint64_t>& out) {
  switch (v.kind) {
    case Value::null: return true;
    case Value::unsigned_integer: out = v.u; return true;
    case Value::integer:
      if (v.i < 0) return false;
      out = static_cast<uint64_t>(v.i);
      return true;
    case Value::floating:
      if (v.d >= 0 && v.d < 1.8e19 && std::floor(v.d) == v.d) {
        out = static_cast<uint64_t>(v.d);
        return true;
      }
      return false;
    default: return false;
  }
}
bool as_i64(const Value& v, std::optional<int64_t>& out) {
  switch (v.kind) {
    case Value::null: return true;
    case Value::integer: out = v.i; return true;
    case Value::unsigned_integer:
      if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      out = static_cast<int64_t>(v.u);
      return true;
    default: return false;
  }
}
bool as_int(const Value& v, std::optional<int>& out) {
  std::optional<int64_t> wide;
  if (!as_i64(v, wide)) return false;
  if (!wide) return true;
  if (*wide < std::numeric_limits<int>::min() || *wide > std::numeric_limits<int>::max()) return false;
  out = static_cast<int>(*wide);
  return true;
}
bool as_string(const Value& v, std::optional<std::string>& out) {
  if (v.kind == Value::null) return true;
  if (v.kind != Value::string) return false;
  out = *v.s;
  return true;
}
// A string member with a default for null (host, user, isolation.cgroup, ...).
bool as_string_or(const Value& v, std::string& out, const char* fallback) {
  if (v.kind == Value::null) {
    out = fallback;
    return true;
  }
  if (v.kind != Value::string) return false;
  out = *v.s;
  return true;
}
template <class T>
bool as_or(const Value& v, T& out, T fallback, bool (*conv)(const Value&, std::optional<T>&)) {
  std::optional<T> x;
  if (!conv(v, x)) return false;
  out = x.value_or(fallback);
  return true;
}

// Index of `key` in `names`, or -1: the bit it takes in the frame's seen-mask.
template <size_t N>
int index_of(const std::string& key, const std::string_view (&names)[N]) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == key) return static_cast<int>(i);
  return -1;
}

constexpr std::string_view kTopKeys[] = {
    "schema",   "run_id",        "job",        "started_at", "status",    "host",     "user",
    "command",  "finished_at",   "wall_s",     "start_delay_s", "exit_code", "signal", "skip_reason",
    "isolation", "limits",       "usage",      "counters",   "lock",      "log",      "output",
    "seccomp",  "pings",         "fleet",      "forwarded_signal", "runner_pid", "runner_start", "boot_id"};
enum TopKey {
  kSchema, kRunId, kJob, kStartedAt, kStatus, kHost, kUser, kCommand, kFinishedAt, kWall, kStartDelay, kExitCode,
  kSignal, kSkipReason, kIsolation, kLimits, kUsage, kCounters, kLock, kLog, kOutput, kSeccomp, kPings, kFleet,
  kForwardedSignal, kRunnerPid, kRunnerStart, kBootId  // the runner's fields last (runner_field)
};
constexpr std::string_view kIsolationKeys[] = {"cgroup", "path", "accounting", "note", "unit"};
constexpr std::string_view kLimitsKeys[] = {"memory_max_bytes", "memory_high_bytes", "swap_max_bytes", "cpu_quota_pct",
                                            "cpu_weight",       "pids_max",          "timeout_s"};
constexpr std::string_view kUsageKeys[] = {
    "cpu_user_s",         "cpu_system_s",       "memory_peak_bytes", "max_rss_bytes",   "io_read_bytes",
    "io_write_bytes",     "io_source",          "pids_peak",         "oom_kills",       "memory_max_events",
    "memory_high_events", "cpu_throttled_s",    "cpu_nr_throttled",  "pressure_some_s", "orphans_killed",
    "not_measured",       "pids_max_events"};
constexpr std::string_view kPressureKeys[] = {"cpu", "memory", "io"};
constexpr std::string_view kLockKeys[] = {"path", "waited_s", "holder_pid"};
constexpr std::string_view kLogKeys[] = {"path", "bytes", "dropped_bytes"};
constexpr std::string_view kOutputKeys[] = {"dropped_bytes"};

// nlohmann's SAX interface. Every callback returns false to stop the parse: the
// text is then left to the DOM reader.
class Reader {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit Reader(bool runner_fields) : runner_fields_(runner_fields) {}

  bool null() { return scalar(Value{}); }
  bool boolean(bool) { return scalar(Value{Value::boolean}); }
  bool number_integer(number_integer_t v) {
    Value x{Value::integer};
    x.i = v;
    return scalar(x);
  }
  bool number_unsigned(number_unsigned_t v) {
    Value x{Value::unsigned_integer};
    x.u = v;
    return scalar(x);
  }
  bool number_float(number_float_t v, const string_t&) {
    Value x{Value::floating};
    x.d = v;
    return scalar(x);
  }
  bool string(string_t& v) {
    Value x{Value::string};
    x.s = &v;
    return scalar(x);
  }
  bool binary(binary_t&) { return false; }

  bool start_object(std::size_t) {
    if (skip_ > 0) return ++skip_, true;
    if (arr_ != Arr::none) return false;  // the arrays read hold strings only
    if (frames_.empty()) return frames_.push_back(Frame{Obj::top, 0}), true;
    int k = claim();
    if (k == -2) return false;
    if (k == -1 || runner_field(k)) return skip_ = 1, true;  // an unknown member: skipped whole
    Frame& f = frames_.back();
    Obj into;
    if (f.obj == Obj::top) {
      switch (k) {
        case kIsolation: into = Obj::isolation; break;
        case kLimits: into = Obj::limits; break;
        case kUsage: into = Obj::usage; break;
        case kCounters: into = Obj::counters; break;
        case kLock: into = Obj::lock; break;
        case kLog: into = Obj::log; break;
        case kOutput: into = Obj::output; break;
        default: return false;  // a scalar member, or seccomp / pings / fleet / forwarded_signal
      }
    } else if (f.obj == Obj::usage && k == 13) {
      into = Obj::pressure;
    } else {
      return false;
    }
    frames_.push_back(Frame{into, 0});
    return true;
  }
  bool end_object() {
    if (skip_ > 0) return --skip_, true;
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    if (skip_ > 0) return ++skip_, true;
    if (arr_ != Arr::none || frames_.empty()) return false;
    int k = claim();
    if (k == -2) return false;
    if (k == -1 || runner_field(k)) return skip_ = 1, true;
    Obj o = frames_.back().obj;
    if (o == Obj::top && k == kCommand) arr_ = Arr::command;
    else if (o == Obj::usage && k == 15) arr_ = Arr::not_measured;
    else return false;
    return true;
  }
  bool end_array() {
    if (skip_ > 0) return --skip_, true;
    arr_ = Arr::none;
    return true;
  }
  bool key(string_t& k) {
    if (skip_ == 0) key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  // After a parse that went through: the record, if the members the DOM reader
  // requires were there.
  std::optional<RunRecord> take() {
    constexpr uint64_t required = (1u << kRunId) | (1u << kJob) | (1u << kStartedAt) | (1u << kStatus);
    if ((top_seen_ & required) != required) return std::nullopt;
    return std::move(r_);
  }

 private:
  struct Frame {
    Obj obj;
    uint64_t seen;
  };

  // The index of key_ in the current object's list, marked seen: -1 when the
  // key is not one the reader knows (its value is ignored, as the DOM reader
  // ignores it), -2 when it was seen before in this object.
  int claim() {
    Frame& f = frames_.back();
    int k = -1;
    switch (f.obj) {
      case Obj::top:
        k = index_of(key_, kTopKeys);
        if (!runner_fields_ && k >= kRunnerPid) k = -1;
        break;
      case Obj::isolation: k = index_of(key_, kIsolationKeys); break;
      case Obj::limits: k = index_of(key_, kLimitsKeys); break;
      case Obj::usage: k = index_of(key_, kUsageKeys); break;
      case Obj::pressure: k = index_of(key_, kPressureKeys); break;
      case Obj::lock: k = index_of(key_, kLockKeys); break;
      case Obj::log: k = index_of(key_, kLogKeys); break;
      case Obj::output: k = index_of(key_, kOutputKeys); break;
      case Obj::counters: return 0;  // names are the job's: counter() tells repeats
    }
    if (k < 0) return -1;
    uint64_t bit = uint64_t{1} << k;
    if (f.seen & bit) return -2;
    f.seen |= bit;
    if (f.obj == Obj::top) top_seen_ = f.seen;
    return k;
  }

  // decode_payload ignores a runner field of the wrong type, an array or object too.
  bool runner_field(int k) const { return frames_.back().obj == Obj::top && k >= kRunnerPid; }

  bool scalar(const Value& v) {
    if (skip_ > 0) return true;
    if (frames_.empty()) return false;  // the text is not an object
    if (arr_ == Arr::command) {
      if (v.kind != Value::string) return false;
      r_.command.push_back(*v.s);
      return true;
    }
    if (arr_ == Arr::not_measured) {
      if (v.kind != Value::string) return false;
      r_.usage.not_measured.push_back(*v.s);
      return true;
    }
    Obj o = frames_.back().obj;
    if (o == Obj::counters) return counter(v);
    int k = claim();
    if (k == -2) return false;
    if (k == -1) return true;
    switch (o) {
      case Obj::top: return top(k, v);
      case Obj::isolation: return isolation(k, v);
      case Obj::limits: return limits(k, v);
      case Obj::usage: return usage(k, v);
      case Obj::pressure: {
        Pressure& p = r_.usage.pressure_some_s;
        return as_double(v, k == 0 ? p.cpu : k == 1 ? p.memory : p.io);
      }
      case Obj::lock:
        if (k == 0) return as_string(v, r_.lock.path);
        if (k == 1) return as_or<double>(v, r_.lock.waited_s, 0.0, as_double);
        return as_i64(v, r_.lock.holder_pid);
      case Obj::log:
        if (k == 0) return as_string(v, r_.log.path);
        return as_or<uint64_t>(v, k == 1 ? r_.log.bytes : r_.log.dropped_bytes, 0, as_u64);
      case Obj::output: return as_or<uint64_t>(v, r_.output.dropped_bytes, 0, as_u64);
      case Obj::counters: break;
    }
    return false;
  }

  bool counter(const Value& v) {
    // A repeated name: the DOM keeps the last value (null included), this
    // reader would keep the first; leave such a record to the DOM reader.
    if (!counter_names_.insert(key_).second) return false;
    if (v.kind == Value::null) return true;
    std::optional<double> d;
    if (!as_double(v, d) || !d) return false;
    r_.counters[key_] = *d;
    return true;
  }

  bool top(int k, const Value& v) {
    switch (k) {
      case kSchema: return v.kind == Value::string && *v.s == kRunSchema;
      case kRunId: return required(v, r_.run_id);
      case kJob: return required(v, r_.job);
      case kStartedAt: return required(v, r_.started_at);
      case kStatus: {
        if (v.kind != Value::string) return false;
        auto st = parse_run_status(*v.s);
        if (!st) return false;
        r_.status = *st;
        return true;
      }
      case kHost: return as_string_or(v, r_.host, "");
      case kUser: return as_string_or(v, r_.user, "");
      case kCommand: return v.kind == Value::null;  // an array is read by start_array
      case kFinishedAt: return as_string(v, r_.finished_at);
      case kWall: return as_double(v, r_.wall_s);
      case kStartDelay: return as_double(v, r_.start_delay_s);
      case kExitCode: return as_int(v, r_.exit_code);
      case kSignal: return as_int(v, r_.signal);
      case kSkipReason: return as_string(v, r_.skip_reason);
      // The objects: null is "absent" (defaults); anything else but an object
      // is the DOM reader's type error.
      case kIsolation: case kLimits: case kUsage: case kCounters: case kLock: case kLog: case kOutput:
      case kSeccomp: case kPings: case kFleet: case kForwardedSignal:
        return v.kind == Value::null;
      // decode_payload's runner fields: a value of another type is ignored there.
      case kRunnerPid:
        if (v.kind == Value::integer) r_.runner_pid = v.i;
        else if (v.kind == Value::unsigned_integer) r_.runner_pid = static_cast<int64_t>(v.u);
        return true;
      case kRunnerStart:
        if (v.kind == Value::unsigned_integer) r_.runner_start = v.u;
        return true;
      case kBootId:
        if (v.kind == Value::string) r_.boot_id = *v.s;
        return true;
    }
    return false;
  }
  static bool required(const Value& v, std::string& out) {
    if (v.kind != Value::string) return false;
    out = *v.s;
    return true;
  }

  bool isolation(int k, const Value& v) {
    Isolation& i = r_.isolation;
    switch (k) {
      case 0: return as_string_or(v, i.cgroup, "none");
      case 1: return as_string(v, i.path);
      case 2: return as_string_or(v, i.accounting, "rusage");
      case 3: return as_string(v, i.note);
      default: return as_string(v, i.unit);
    }
  }

  bool limits(int k, const Value& v) {
    LimitsRecord& l = r_.limits;
    switch (k) {
      case 0: return as_u64(v, l.memory_max_bytes);
      case 1: return as_u64(v, l.memory_high_bytes);
      case 2: return as_u64(v, l.swap_max_bytes);
      case 3: return as_double(v, l.cpu_quota_pct);
      case 4: return as_u64(v, l.cpu_weight);
      case 5: return as_u64(v, l.pids_max);
      default: return as_double(v, l.timeout_s);
    }
  }

  bool usage(int k, const Value& v) {
    Usage& u = r_.usage;
    switch (k) {
      case 0: return as_double(v, u.cpu_user_s);
      case 1: return as_double(v, u.cpu_system_s);
      case 2: return as_u64(v, u.memory_peak_bytes);
      case 3: return as_u64(v, u.max_rss_bytes);
      case 4: return as_u64(v, u.io_read_bytes);
      case 5: return as_u64(v, u.io_write_bytes);
      case 6: return as_string(v, u.io_source);
      case 7: return as_u64(v, u.pids_peak);
      case 8: return as_u64(v, u.oom_kills);
      case 9: return as_u64(v, u.memory_max_events);
      case 10: return as_u64(v, u.memory_high_events);
      case 11: return as_double(v, u.cpu_throttled_s);
      case 12: return as_u64(v, u.cpu_nr_throttled);
      case 13: return v.kind == Value::null;  // pressure_some_s: an object is a frame
      case 14: return as_u64(v, u.orphans_killed);
      case 15: return v.kind == Value::null;  // not_measured: an array is read by start_array
      default: return as_u64(v, u.pids_max_events);
    }
  }

  bool runner_fields_;
  RunRecord r_;
  std::vector<Frame> frames_;
  Arr arr_ = Arr::none;
  int skip_ = 0;  // depth inside a value that is skipped whole
  std::string key_;
  uint64_t top_seen_ = 0;
  std::set<std::string> counter_names_;
};

}  // namespace

std::optional<RunRecord> run_record_from_text_fast(std::string_view text, bool runner_fields) {
  Reader reader(runner_fields);
  if (!json::sax_parse(text, &reader)) return std::nullopt;
  return reader.take();
}

}  // namespace cronrun
