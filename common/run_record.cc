// The run record as JSON (DESIGN.md section 4, schema cronrun.run/1), plus the
// small clocks and ids a record needs.
//
// Serialization writes every key of the schema, with null for a figure the host
// could not measure (std::nullopt), so readers can tell "not measured" from 0.
// Parsing is strict about types (a string where a number belongs is an error that
// names the key) but tolerant about presence: a missing optional key reads as
// null and unknown keys are ignored, so a newer writer's extra fields do not break
// an older reader. runner_pid / runner_start / boot_id are not part of the schema;
// the history keeps them in their own columns.
//
// Run ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits
// from getrandom(2), so ids sort by start time and need no coordination between
// the many cronrun processes that start in the same second.
#include "common/run_record.h"

#include <fmt/format.h>

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/fd.h"

namespace cronrun {

using nlohmann::json;

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::running: return "running";
    case RunStatus::ok: return "ok";
    case RunStatus::failed: return "failed";
    case RunStatus::killed: return "killed";
    case RunStatus::timeout: return "timeout";
    case RunStatus::oom: return "oom";
    case RunStatus::skipped: return "skipped";
    case RunStatus::error: return "error";
    case RunStatus::lost: return "lost";
  }
  return "unknown";
}

Result<RunStatus> parse_run_status(std::string_view text) {
  static constexpr RunStatus kAll[] = {RunStatus::running, RunStatus::ok,      RunStatus::failed,
                                       RunStatus::killed,  RunStatus::timeout, RunStatus::oom,
                                       RunStatus::skipped, RunStatus::error,   RunStatus::lost};
  for (RunStatus s : kAll) {
    if (text == to_string(s)) return s;
  }
  return fail("unknown run status '" + std::string(text) +
              "' (expected running, ok, failed, killed, timeout, oom, skipped, error or lost)");
}

namespace {

// ---- writing ----

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

// Strings go through text(): nlohmann refuses to dump invalid UTF-8 (type_error
// 316, an exception), and a record must always be writable.
json text(const std::string& s) { return json(valid_utf8(s)); }
json opt_text(const std::optional<std::string>& s) { return s ? text(*s) : json(nullptr); }

// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode table 3-7,
// "Well-Formed UTF-8 Byte Sequences"), 0 when the byte starts none.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i + k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  unsigned char c = byte(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;  // no surrogates
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;  // <= U+10FFFF
  return 0;
}

// ---- reading ----
// Each getter returns the value at `key` of object `o`; a missing key or null gives
// nullopt, a value of the wrong type an error naming `where`.`key`.

std::string key_path(std::string_view where, std::string_view key) {
  return where.empty() ? std::string(key) : std::string(where) + "." + std::string(key);
}

Error type_error(std::string_view where, std::string_view key, const char* expected, const json& v) {
  return Error("run record: '" + key_path(where, key) + "' must be " + expected + ", got " +
               std::string(v.type_name()));
}

const json* member(const json& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> get_string(const json& o, std::string_view where, std::string_view key) {
  const json* v = member(o, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return std::unexpected(type_error(where, key, "a string", *v));
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<double>> get_double(const json& o, std::string_view where, std::string_view key) {
  const json* v = member(o, key);
  if (!v) return std::optional<double>();
  if (!v->is_number()) return std::unexpected(type_error(where, key, "a number", *v));
  return std::optional<double>(v->get<double>());
}

Result<std::optional<uint64_t>> get_u64(const json& o, std::string_view where, std::string_view key) {
  const json* v = member(o, key);
  if (!v) return std::optional<uint64_t>();
  if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
  if (v->is_number_integer() && v->get<int64_t>() >= 0)
    return std::optional<uint64_t>(static_cast<uint64_t>(v->get<int64_t>()));
  // Some tools write big integers as floats (1.5e9); accept those when integral.
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (d >= 0 && d < 1.8e19 && std::floor(d) == d) return std::optional<uint64_t>(static_cast<uint64_t>(d));
  }
  return std::unexpected(type_error(where, key, "a non-negative integer", *v));
}

Result<std::optional<int64_t>> get_i64(const json& o, std::string_view where, std::string_view key) {
  const json* v = member(o, key);
  if (!v) return std::optional<int64_t>();
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      return std::unexpected(type_error(where, key, "an integer in range", *v));
    return std::optional<int64_t>(v->get<int64_t>());
  }
  return std::unexpected(type_error(where, key, "an integer", *v));
}

Result<std::optional<int>> get_int(const json& o, std::string_view where, std::string_view key) {
  auto v = get_i64(o, where, key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return std::optional<int>();
  if (**v < std::numeric_limits<int>::min() || **v > std::numeric_limits<int>::max())
    return fail("run record: '" + key_path(where, key) + "' is out of range");
  return std::optional<int>(static_cast<int>(**v));
}

// Returns the sub-object `key` of `o`, an empty object when absent or null.
Result<const json*> get_object(const json& o, std::string_view key) {
  static const json kEmpty = json::object();
  const json* v = member(o, key);
  if (!v) return &kEmpty;
  if (!v->is_object()) return std::unexpected(type_error("", key, "an object", *v));
  return v;
}

// Assigns the parsed value or propagates the error (keeps the parser a flat list).
#define CRONRUN_TRY_ASSIGN(lhs, expr)                      \
  do {                                                     \
    auto try_value_ = (expr);                              \
    if (!try_value_) return std::unexpected(try_value_.error()); \
    lhs = std::move(*try_value_);                          \
  } while (0)

Result<std::string> require_string(const json& o, std::string_view key) {
  auto v = get_string(o, "", key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return fail("run record: '" + std::string(key) + "' is missing");
  return std::move(**v);
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER, one per invalid byte
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

size_t make_valid_utf8(RunRecord& r) {
  size_t changed = 0;
  auto fix = [&](std::string& s) {
    if (is_valid_utf8(s)) return;
    s = valid_utf8(s);
    ++changed;
  };
  auto fix_opt = [&](std::optional<std::string>& s) {
    if (s) fix(*s);
  };
  fix(r.run_id);
  fix(r.job);
  fix(r.host);
  fix(r.user);
  for (auto& arg : r.command) fix(arg);
  fix(r.started_at);
  fix_opt(r.finished_at);
  fix_opt(r.skip_reason);
  fix(r.isolation.cgroup);
  fix_opt(r.isolation.path);
  fix(r.isolation.accounting);
  fix_opt(r.isolation.note);
  fix_opt(r.isolation.unit);
  fix_opt(r.lock.path);
  fix_opt(r.log.path);
  fix(r.boot_id);
  if (r.seccomp) {
    fix(r.seccomp->profile);
    for (auto& v : r.seccomp->violations) fix(v.comm);
    fix_opt(r.seccomp->note);
    fix_opt(r.seccomp->failed_by);
  }
  if (r.pings) {
    fix(r.pings->url_host);
    for (auto& p : r.pings->pings) fix_opt(p.error);
  }
  if (r.fleet) {
    fix_opt(r.fleet->group);
    fix(r.fleet->host);
    fix(r.fleet->tick);
    if (r.fleet->holder) fix(r.fleet->holder->host);
    fix_opt(r.fleet->note);
  }
  // Counter names come from a file the job writes. Two names that differ only in
  // invalid bytes become one, summed like any repeated name.
  std::map<std::string, double> counters;
  for (auto& [name, value] : r.counters) {
    if (is_valid_utf8(name)) {
      counters[name] += value;
    } else {
      counters[valid_utf8(name)] += value;
      ++changed;
    }
  }
  r.counters = std::move(counters);
  return changed;
}

json to_json(const RunRecord& r) {
  json j = json::object();
  j["schema"] = kRunSchema;
  j["run_id"] = text(r.run_id);
  j["job"] = text(r.job);
  j["host"] = text(r.host);
  j["user"] = text(r.user);
  json command = json::array();
  for (const auto& arg : r.command) command.push_back(text(arg));
  j["command"] = std::move(command);
  j["started_at"] = text(r.started_at);
  j["finished_at"] = opt_text(r.finished_at);
  j["wall_s"] = opt(r.wall_s);
  j["start_delay_s"] = opt(r.start_delay_s);
  j["status"] = to_string(r.status);
  j["exit_code"] = opt(r.exit_code);
  j["signal"] = opt(r.signal);
  j["skip_reason"] = opt_text(r.skip_reason);
  j["isolation"] = {{"cgroup", text(r.isolation.cgroup)},
                    {"path", opt_text(r.isolation.path)},
                    {"accounting", text(r.isolation.accounting)},
                    {"note", opt_text(r.isolation.note)}};
  if (r.isolation.unit) j["isolation"]["unit"] = text(*r.isolation.unit);  // additive: only when placed in one
  const LimitsRecord& l = r.limits;
  j["limits"] = {{"memory_max_bytes", opt(l.memory_max_bytes)}, {"memory_high_bytes", opt(l.memory_high_bytes)},
                 {"swap_max_bytes", opt(l.swap_max_bytes)},     {"cpu_quota_pct", opt(l.cpu_quota_pct)},
                 {"cpu_weight", opt(l.cpu_weight)},             {"pids_max", opt(l.pids_max)},
                 {"timeout_s", opt(l.timeout_s)}};
  const Usage& u = r.usage;
  j["usage"] = {{"cpu_user_s", opt(u.cpu_user_s)},
                {"cpu_system_s", opt(u.cpu_system_s)},
                {"memory_peak_bytes", opt(u.memory_peak_bytes)},
                {"max_rss_bytes", opt(u.max_rss_bytes)},
                {"io_read_bytes", opt(u.io_read_bytes)},
                {"io_write_bytes", opt(u.io_write_bytes)},
                {"io_source", opt(u.io_source)},
                {"pids_peak", opt(u.pids_peak)},
                {"pids_max_events", opt(u.pids_max_events)},
                {"oom_kills", opt(u.oom_kills)},
                {"memory_max_events", opt(u.memory_max_events)},
                {"memory_high_events", opt(u.memory_high_events)},
                {"cpu_throttled_s", opt(u.cpu_throttled_s)},
                {"cpu_nr_throttled", opt(u.cpu_nr_throttled)},
                {"pressure_some_s",
                 {{"cpu", opt(u.pressure_some_s.cpu)},
                  {"memory", opt(u.pressure_some_s.memory)},
                  {"io", opt(u.pressure_some_s.io)}}}};
  j["usage"]["orphans_killed"] = opt(u.orphans_killed);
  j["usage"]["not_measured"] = u.not_measured;
  std::map<std::string, double> sums;
  for (const auto& [name, value] : r.counters) sums[valid_utf8(name)] += value;
  json counters = json::object();
  for (const auto& [key, value] : sums) {
    // A count reads 1200, not 1200.0 (DESIGN section 4): whole values a double
    // holds exactly are written as JSON integers.
    bool whole = std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9007199254740992.0;
    counters[key] = whole ? json(static_cast<int64_t>(value)) : json(value);
  }
  j["counters"] = std::move(counters);
  j["lock"] = {{"path", opt_text(r.lock.path)}, {"waited_s", r.lock.waited_s}, {"holder_pid", opt(r.lock.holder_pid)}};
  j["log"] = {{"path", opt_text(r.log.path)}, {"bytes", r.log.bytes}, {"dropped_bytes", r.log.dropped_bytes}};
  j["output"] = {{"dropped_bytes", r.output.dropped_bytes}};
  if (r.seccomp) {
    const SeccompRecord& sc = *r.seccomp;
    json violations = json::array();
    for (const auto& v : sc.violations)
      violations.push_back({{"syscall", text(v.syscall)}, {"count", v.count}, {"first_pid", v.first_pid},
                            {"comm", text(v.comm)}});
    j["seccomp"] = {{"profile", text(sc.profile)},           {"action", text(sc.action)},
                    {"violations_total", sc.violations_total}, {"violations", std::move(violations)},
                    {"answers_lost", sc.answers_lost},       {"note", opt_text(sc.note)},
                    {"failed_by", opt_text(sc.failed_by)}};
    // learn runs always carry it (an empty list is a finding: nothing outside strict).
    if (!sc.seen.empty() || sc.action == "continue") {
      json seen = json::array();
      for (const auto& name : sc.seen) seen.push_back(text(name));
      j["seccomp"]["seen"] = std::move(seen);
    }
  } else {
    j["seccomp"] = nullptr;
  }
  j["pings"] = nullptr;
  if (r.pings) {
    json list = json::array();
    for (const PingRecord& p : r.pings->pings)
      list.push_back({{"kind", text(p.kind)},
                      {"endpoint", text(p.endpoint)},
                      {"delivered", p.delivered},
                      {"attempts", p.attempts},
                      {"http_status", opt(p.http_status)},
                      {"error", opt_text(p.error)},
                      {"elapsed_s", p.elapsed_s}});
    j["pings"] = {{"url_host", text(r.pings->url_host)},
                  {"sent", r.pings->sent},
                  {"failed", r.pings->failed},
                  {"pings", std::move(list)}};
  }
  if (r.forwarded_signal) {  // additive: only when one was
    const ForwardedSignal& f = *r.forwarded_signal;
    j["forwarded_signal"] = {{"signal", f.signal},
                             {"sender_pid", opt(f.sender_pid)},
                             {"sender_uid", opt(f.sender_uid)},
                             {"count", f.count}};
  }
  j["fleet"] = nullptr;
  if (r.fleet) {
    const FleetRecord& f = *r.fleet;
    j["fleet"] = {{"group", opt_text(f.group)},
                  {"host", text(f.host)},
                  {"tick", text(f.tick)},
                  {"fence", opt(f.fence)},
                  {"holder", f.holder ? json{{"host", text(f.holder->host)}, {"revision", f.holder->revision}}
                                      : json(nullptr)},
                  {"lease_ttl_s", opt(f.lease_ttl_s)},
                  {"note", opt_text(f.note)}};
  }
  return j;
}

namespace {

// Compact JSON text in nlohmann's dump format, written in order. Callers emit the
// keys of each object in the DOM's order (std::map: byte-wise ascending), so the
// text equals the DOM's dump; run_record_test compares the two on every branch.
class TextWriter {
 public:
  explicit TextWriter(std::string& out) : out_(out) {}
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }
  // Keys are this file's own literals (letters, digits, '_'): nothing to escape.
  TextWriter& key(std::string_view k) {
    separator();
    out_ += '"';
    out_.append(k);
    out_.append("\":", 2);
    after_key_ = true;
    return *this;
  }
  // A key that is data (a counter's name, job-written): escaped as strings are.
  TextWriter& data_key(std::string_view k) {
    separator();
    string(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  void null() {
    separator();
    out_ += "null";
  }
  void boolean(bool v) {
    separator();
    out_ += v ? "true" : "false";
  }
  void number(int64_t v) {
    separator();
    integer(v);
  }
  void number(uint64_t v) {
    separator();
    integer(v);
  }
  void number(int v) { number(static_cast<int64_t>(v)); }
  void number(uint32_t v) { number(static_cast<uint64_t>(v)); }
  void number(double v) {
    separator();
    if (!std::isfinite(v)) {
      out_ += "null";
      return;
    }
    std::array<char, 64> buf{};
    char* end = nlohmann::detail::to_chars(buf.data(), buf.data() + buf.size(), v);
    out_.append(buf.data(), static_cast<size_t>(end - buf.data()));
  }
  // Strings are made valid UTF-8 first, as to_json's text() does.
  void text(std::string_view s) {
    separator();
    if (is_valid_utf8(s)) {
      string(s);
    } else {
      string(valid_utf8(s));
    }
  }
  template <class T>
  void opt(const std::optional<T>& v) {
    if (!v) return null();
    if constexpr (std::is_same_v<T, std::string>) {
      text(*v);
    } else {
      number(*v);
    }
  }

 private:
  void open(char c) {
    separator();
    out_ += c;
    first_ = true;
  }
  void close(char c) {
    out_ += c;
    first_ = false;
  }
  // A comma before every element but the first of its object or array; none
  // between a key and its value.
  void separator() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_ += ',';
    first_ = false;
  }
  template <class I>
  void integer(I v) {
    std::array<char, 24> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    out_.append(buf.data(), static_cast<size_t>(end - buf.data()));
  }
  // nlohmann's escapes with ensure_ascii off: the two-character forms, \u00xx
  // (lower-case) for the other control bytes, everything else as is.
  void string(std::string_view s) {
    out_ += '"';
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.substr(run, i - run));
      run = i + 1;
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 0xf];
        }
      }
    }
    out_.append(s.substr(run));
    out_ += '"';
  }
  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace

// Every object's keys below are in byte-wise ascending order (see TextWriter).
std::string to_json_text(const RunRecord& r, bool runner_fields) {
  std::string out;
  out.reserve(2048);
  TextWriter w(out);
  w.begin_object();
  if (runner_fields) w.key("boot_id").text(r.boot_id);
  w.key("command").begin_array();
  for (const auto& arg : r.command) w.text(arg);
  w.end_array();
  w.key("counters").begin_object();
  {
    // Summed per valid name, as to_json does; a sorted map gives the DOM's order.
    bool all_valid = true;
    for (const auto& kv : r.counters) all_valid = all_valid && is_valid_utf8(kv.first);
    std::map<std::string, double> fixed;
    if (!all_valid)
      for (const auto& [name, value] : r.counters) fixed[valid_utf8(name)] += value;
    for (const auto& [name, value] : all_valid ? r.counters : fixed) {
      w.data_key(name);
      bool whole = std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9007199254740992.0;
      if (whole) {
        w.number(static_cast<int64_t>(value));
      } else {
        w.number(value);
      }
    }
  }
  w.end_object();
  w.key("exit_code").opt(r.exit_code);
  w.key("finished_at").opt(r.finished_at);
  w.key("fleet");
  if (r.fleet) {
    const FleetRecord& f = *r.fleet;
    w.begin_object();
    w.key("fence").opt(f.fence);
    w.key("group").opt(f.group);
    w.key("holder");
    if (f.holder) {
      w.begin_object();
      w.key("host").text(f.holder->host);
      w.key("revision").number(f.holder->revision);
      w.end_object();
    } else {
      w.null();
    }
    w.key("host").text(f.host);
    w.key("lease_ttl_s").opt(f.lease_ttl_s);
    w.key("note").opt(f.note);
    w.key("tick").text(f.tick);
    w.end_object();
  } else {
    w.null();
  }
  if (r.forwarded_signal) {
    const ForwardedSignal& f = *r.forwarded_signal;
    w.key("forwarded_signal").begin_object();
    w.key("count").number(f.count);
    w.key("sender_pid").opt(f.sender_pid);
    w.key("sender_uid").opt(f.sender_uid);
    w.key("signal").number(f.signal);
    w.end_object();
  }
  w.key("host").text(r.host);
  w.key("isolation").begin_object();
  w.key("accounting").text(r.isolation.accounting);
  w.key("cgroup").text(r.isolation.cgroup);
  w.key("note").opt(r.isolation.note);
  w.key("path").opt(r.isolation.path);
  if (r.isolation.unit) w.key("unit").text(*r.isolation.unit);
  w.end_object();
  w.key("job").text(r.job);
  const LimitsRecord& l = r.limits;
  w.key("limits").begin_object();
  w.key("cpu_quota_pct").opt(l.cpu_quota_pct);
  w.key("cpu_weight").opt(l.cpu_weight);
  w.key("memory_high_bytes").opt(l.memory_high_bytes);
  w.key("memory_max_bytes").opt(l.memory_max_bytes);
  w.key("pids_max").opt(l.pids_max);
  w.key("swap_max_bytes").opt(l.swap_max_bytes);
  w.key("timeout_s").opt(l.timeout_s);
  w.end_object();
  w.key("lock").begin_object();
  w.key("holder_pid").opt(r.lock.holder_pid);
  w.key("path").opt(r.lock.path);
  w.key("waited_s").number(r.lock.waited_s);
  w.end_object();
  w.key("log").begin_object();
  w.key("bytes").number(r.log.bytes);
  w.key("dropped_bytes").number(r.log.dropped_bytes);
  w.key("path").opt(r.log.path);
  w.end_object();
  w.key("output").begin_object();
  w.key("dropped_bytes").number(r.output.dropped_bytes);
  w.end_object();
  w.key("pings");
  if (r.pings) {
    w.begin_object();
    w.key("failed").number(r.pings->failed);
    w.key("pings").begin_array();
    for (const PingRecord& p : r.pings->pings) {
      w.begin_object();
      w.key("attempts").number(p.attempts);
      w.key("delivered").boolean(p.delivered);
      w.key("elapsed_s").number(p.elapsed_s);
      w.key("endpoint").text(p.endpoint);
      w.key("error").opt(p.error);
      w.key("http_status").opt(p.http_status);
      w.key("kind").text(p.kind);
      w.end_object();
    }
    w.end_array();
    w.key("sent").number(r.pings->sent);
    w.key("url_host").text(r.pings->url_host);
    w.end_object();
  } else {
    w.null();
  }
  w.key("run_id").text(r.run_id);
  if (runner_fields) {
    w.key("runner_pid").number(r.runner_pid);
    w.key("runner_start").number(r.runner_start);
  }
  w.key("schema").text(kRunSchema);
  w.key("seccomp");
  if (r.seccomp) {
    const SeccompRecord& sc = *r.seccomp;
    w.begin_object();
    w.key("action").text(sc.action);
    w.key("answers_lost").number(sc.answers_lost);
    w.key("failed_by").opt(sc.failed_by);
    w.key("note").opt(sc.note);
    w.key("profile").text(sc.profile);
    if (!sc.seen.empty() || sc.action == "continue") {
      w.key("seen").begin_array();
      for (const auto& name : sc.seen) w.text(name);
      w.end_array();
    }
    w.key("violations").begin_array();
    for (const auto& v : sc.violations) {
      w.begin_object();
      w.key("comm").text(v.comm);
      w.key("count").number(v.count);
      w.key("first_pid").number(v.first_pid);
      w.key("syscall").text(v.syscall);
      w.end_object();
    }
    w.end_array();
    w.key("violations_total").number(sc.violations_total);
    w.end_object();
  } else {
    w.null();
  }
  w.key("signal").opt(r.signal);
  w.key("skip_reason").opt(r.skip_reason);
  w.key("start_delay_s").opt(r.start_delay_s);
  w.key("started_at").text(r.started_at);
  w.key("status").text(to_string(r.status));
  const Usage& u = r.usage;
  w.key("usage").begin_object();
  w.key("cpu_nr_throttled").opt(u.cpu_nr_throttled);
  w.key("cpu_system_s").opt(u.cpu_system_s);
  w.key("cpu_throttled_s").opt(u.cpu_throttled_s);
  w.key("cpu_user_s").opt(u.cpu_user_s);
  w.key("io_read_bytes").opt(u.io_read_bytes);
  w.key("io_source").opt(u.io_source);
  w.key("io_write_bytes").opt(u.io_write_bytes);
  w.key("max_rss_bytes").opt(u.max_rss_bytes);
  w.key("memory_high_events").opt(u.memory_high_events);
  w.key("memory_max_events").opt(u.memory_max_events);
  w.key("memory_peak_bytes").opt(u.memory_peak_bytes);
  w.key("not_measured").begin_array();
  for (const auto& name : u.not_measured) w.text(name);
  w.end_array();
  w.key("oom_kills").opt(u.oom_kills);
  w.key("orphans_killed").opt(u.orphans_killed);
  w.key("pids_max_events").opt(u.pids_max_events);
  w.key("pids_peak").opt(u.pids_peak);
  w.key("pressure_some_s").begin_object();
  w.key("cpu").opt(u.pressure_some_s.cpu);
  w.key("io").opt(u.pressure_some_s.io);
  w.key("memory").opt(u.pressure_some_s.memory);
  w.end_object();
  w.end_object();
  w.key("user").text(r.user);
  w.key("wall_s").opt(r.wall_s);
  w.end_object();
  return out;
}

Result<RunRecord> run_record_from_json(const json& j) {
  if (!j.is_object()) return fail("run record: expected a JSON object, got " + std::string(j.type_name()));
  // A record of another schema family would be misread field by field; refuse it.
  if (auto s = j.find("schema"); s != j.end()) {
    if (!s->is_string()) return std::unexpected(type_error("", "schema", "a string", *s));
    if (s->get<std::string>() != kRunSchema)
      return fail("run record: schema '" + s->get<std::string>() + "' is not " + kRunSchema);
  }

  RunRecord r;
  CRONRUN_TRY_ASSIGN(r.run_id, require_string(j, "run_id"));
  CRONRUN_TRY_ASSIGN(r.job, require_string(j, "job"));
  CRONRUN_TRY_ASSIGN(r.started_at, require_string(j, "started_at"));
  std::string status_text;
  CRONRUN_TRY_ASSIGN(status_text, require_string(j, "status"));
  CRONRUN_TRY_ASSIGN(r.status, parse_run_status(status_text));

  std::optional<std::string> s;
  CRONRUN_TRY_ASSIGN(s, get_string(j, "", "host"));
  r.host = s.value_or("");
  CRONRUN_TRY_ASSIGN(s, get_string(j, "", "user"));
  r.user = s.value_or("");
  if (const json* cmd = member(j, "command")) {
    if (!cmd->is_array()) return std::unexpected(type_error("", "command", "an array of strings", *cmd));
    for (const json& arg : *cmd) {
      if (!arg.is_string()) return std::unexpected(type_error("", "command", "an array of strings", arg));
      r.command.push_back(arg.get<std::string>());
    }
  }
  CRONRUN_TRY_ASSIGN(r.finished_at, get_string(j, "", "finished_at"));
  CRONRUN_TRY_ASSIGN(r.wall_s, get_double(j, "", "wall_s"));
  CRONRUN_TRY_ASSIGN(r.start_delay_s, get_double(j, "", "start_delay_s"));
  CRONRUN_TRY_ASSIGN(r.exit_code, get_int(j, "", "exit_code"));
  CRONRUN_TRY_ASSIGN(r.signal, get_int(j, "", "signal"));
  CRONRUN_TRY_ASSIGN(r.skip_reason, get_string(j, "", "skip_reason"));

  const json* o = nullptr;
  CRONRUN_TRY_ASSIGN(o, get_object(j, "isolation"));
  CRONRUN_TRY_ASSIGN(s, get_string(*o, "isolation", "cgroup"));
  r.isolation.cgroup = s.value_or("none");
  CRONRUN_TRY_ASSIGN(r.isolation.path, get_string(*o, "isolation", "path"));
  CRONRUN_TRY_ASSIGN(s, get_string(*o, "isolation", "accounting"));
  r.isolation.accounting = s.value_or("rusage");
  CRONRUN_TRY_ASSIGN(r.isolation.note, get_string(*o, "isolation", "note"));
  CRONRUN_TRY_ASSIGN(r.isolation.unit, get_string(*o, "isolation", "unit"));

  CRONRUN_TRY_ASSIGN(o, get_object(j, "limits"));
  LimitsRecord& l = r.limits;
  CRONRUN_TRY_ASSIGN(l.memory_max_bytes, get_u64(*o, "limits", "memory_max_bytes"));
  CRONRUN_TRY_ASSIGN(l.memory_high_bytes, get_u64(*o, "limits", "memory_high_bytes"));
  CRONRUN_TRY_ASSIGN(l.swap_max_bytes, get_u64(*o, "limits", "swap_max_bytes"));
  CRONRUN_TRY_ASSIGN(l.cpu_quota_pct, get_double(*o, "limits", "cpu_quota_pct"));
  CRONRUN_TRY_ASSIGN(l.cpu_weight, get_u64(*o, "limits", "cpu_weight"));
  CRONRUN_TRY_ASSIGN(l.pids_max, get_u64(*o, "limits", "pids_max"));
  CRONRUN_TRY_ASSIGN(l.timeout_s, get_double(*o, "limits", "timeout_s"));

  CRONRUN_TRY_ASSIGN(o, get_object(j, "usage"));
  Usage& u = r.usage;
  CRONRUN_TRY_ASSIGN(u.cpu_user_s, get_double(*o, "usage", "cpu_user_s"));
  CRONRUN_TRY_ASSIGN(u.cpu_system_s, get_double(*o, "usage", "cpu_system_s"));
  CRONRUN_TRY_ASSIGN(u.memory_peak_bytes, get_u64(*o, "usage", "memory_peak_bytes"));
  CRONRUN_TRY_ASSIGN(u.max_rss_bytes, get_u64(*o, "usage", "max_rss_bytes"));
  CRONRUN_TRY_ASSIGN(u.io_read_bytes, get_u64(*o, "usage", "io_read_bytes"));
  CRONRUN_TRY_ASSIGN(u.io_write_bytes, get_u64(*o, "usage", "io_write_bytes"));
  CRONRUN_TRY_ASSIGN(u.io_source, get_string(*o, "usage", "io_source"));
  CRONRUN_TRY_ASSIGN(u.pids_peak, get_u64(*o, "usage", "pids_peak"));
  CRONRUN_TRY_ASSIGN(u.pids_max_events, get_u64(*o, "usage", "pids_max_events"));
  CRONRUN_TRY_ASSIGN(u.oom_kills, get_u64(*o, "usage", "oom_kills"));
  CRONRUN_TRY_ASSIGN(u.memory_max_events, get_u64(*o, "usage", "memory_max_events"));
  CRONRUN_TRY_ASSIGN(u.memory_high_events, get_u64(*o, "usage", "memory_high_events"));
  CRONRUN_TRY_ASSIGN(u.cpu_throttled_s, get_double(*o, "usage", "cpu_throttled_s"));
  CRONRUN_TRY_ASSIGN(u.cpu_nr_throttled, get_u64(*o, "usage", "cpu_nr_throttled"));
  if (const json* p = member(*o, "pressure_some_s")) {
    if (!p->is_object()) return std::unexpected(type_error("usage", "pressure_some_s", "an object", *p));
    CRONRUN_TRY_ASSIGN(u.pressure_some_s.cpu, get_double(*p, "usage.pressure_some_s", "cpu"));
    CRONRUN_TRY_ASSIGN(u.pressure_some_s.memory, get_double(*p, "usage.pressure_some_s", "memory"));
    CRONRUN_TRY_ASSIGN(u.pressure_some_s.io, get_double(*p, "usage.pressure_some_s", "io"));
  }
  CRONRUN_TRY_ASSIGN(u.orphans_killed, get_u64(*o, "usage", "orphans_killed"));
  if (const json* n = member(*o, "not_measured"); n && !n->is_null()) {
    if (!n->is_array()) return std::unexpected(type_error("usage", "not_measured", "an array of strings", *n));
    for (const json& name : *n) {
      if (!name.is_string()) return std::unexpected(type_error("usage", "not_measured", "an array of strings", name));
      u.not_measured.push_back(name.get<std::string>());
    }
  }

  CRONRUN_TRY_ASSIGN(o, get_object(j, "counters"));
  for (const auto& [name, value] : o->items()) {
    if (value.is_null()) continue;
    if (!value.is_number()) return std::unexpected(type_error("counters", name, "a number", value));
    r.counters[name] = value.get<double>();
  }

  CRONRUN_TRY_ASSIGN(o, get_object(j, "lock"));
  CRONRUN_TRY_ASSIGN(r.lock.path, get_string(*o, "lock", "path"));
  std::optional<double> waited;
  CRONRUN_TRY_ASSIGN(waited, get_double(*o, "lock", "waited_s"));
  r.lock.waited_s = waited.value_or(0.0);
  CRONRUN_TRY_ASSIGN(r.lock.holder_pid, get_i64(*o, "lock", "holder_pid"));

  CRONRUN_TRY_ASSIGN(o, get_object(j, "log"));
  CRONRUN_TRY_ASSIGN(r.log.path, get_string(*o, "log", "path"));
  std::optional<uint64_t> bytes;
  CRONRUN_TRY_ASSIGN(bytes, get_u64(*o, "log", "bytes"));
  r.log.bytes = bytes.value_or(0);
  CRONRUN_TRY_ASSIGN(bytes, get_u64(*o, "log", "dropped_bytes"));
  r.log.dropped_bytes = bytes.value_or(0);
  CRONRUN_TRY_ASSIGN(o, get_object(j, "output"));
  CRONRUN_TRY_ASSIGN(bytes, get_u64(*o, "output", "dropped_bytes"));
  r.output.dropped_bytes = bytes.value_or(0);
  if (const json* sj = member(j, "seccomp")) {
    if (!sj->is_object()) return std::unexpected(type_error("", "seccomp", "an object", *sj));
    SeccompRecord sc;
    CRONRUN_TRY_ASSIGN(s, get_string(*sj, "seccomp", "profile"));
    sc.profile = s.value_or("");
    CRONRUN_TRY_ASSIGN(s, get_string(*sj, "seccomp", "action"));
    sc.action = s.value_or("");
    CRONRUN_TRY_ASSIGN(bytes, get_u64(*sj, "seccomp", "violations_total"));
    sc.violations_total = bytes.value_or(0);
    CRONRUN_TRY_ASSIGN(bytes, get_u64(*sj, "seccomp", "answers_lost"));
    sc.answers_lost = bytes.value_or(0);
    CRONRUN_TRY_ASSIGN(sc.note, get_string(*sj, "seccomp", "note"));
    CRONRUN_TRY_ASSIGN(sc.failed_by, get_string(*sj, "seccomp", "failed_by"));
    if (const json* list = member(*sj, "violations")) {
      if (!list->is_array()) return std::unexpected(type_error("seccomp", "violations", "an array", *list));
      for (const auto& item : *list) {
        if (!item.is_object()) return std::unexpected(type_error("seccomp", "violations[]", "an object", item));
        SeccompViolation v;
        CRONRUN_TRY_ASSIGN(s, get_string(item, "seccomp.violations[]", "syscall"));
        v.syscall = s.value_or("");
        CRONRUN_TRY_ASSIGN(bytes, get_u64(item, "seccomp.violations[]", "count"));
        v.count = bytes.value_or(0);
        std::optional<int64_t> pid;
        CRONRUN_TRY_ASSIGN(pid, get_i64(item, "seccomp.violations[]", "first_pid"));
        v.first_pid = pid.value_or(0);
        CRONRUN_TRY_ASSIGN(s, get_string(item, "seccomp.violations[]", "comm"));
        v.comm = s.value_or("");
        sc.violations.push_back(std::move(v));
      }
    }
    if (const json* seen = member(*sj, "seen")) {
      if (!seen->is_array()) return std::unexpected(type_error("seccomp", "seen", "an array", *seen));
      for (const auto& name : *seen) {
        if (!name.is_string()) return std::unexpected(type_error("seccomp", "seen[]", "a string", name));
        sc.seen.push_back(name.get<std::string>());
      }
    }
    r.seccomp = std::move(sc);
  }
  if (const json* p = member(j, "pings"); p && !p->is_null()) {
    if (!p->is_object()) return std::unexpected(type_error("", "pings", "an object", *p));
    PingsRecord pr;
    CRONRUN_TRY_ASSIGN(s, get_string(*p, "pings", "url_host"));
    pr.url_host = s.value_or("");
    CRONRUN_TRY_ASSIGN(bytes, get_u64(*p, "pings", "sent"));
    pr.sent = bytes.value_or(0);
    CRONRUN_TRY_ASSIGN(bytes, get_u64(*p, "pings", "failed"));
    pr.failed = bytes.value_or(0);
    if (const json* list = member(*p, "pings"); list && !list->is_null()) {
      if (!list->is_array()) return std::unexpected(type_error("pings", "pings", "an array of objects", *list));
      for (const json& e : *list) {
        if (!e.is_object()) return std::unexpected(type_error("pings", "pings", "an array of objects", e));
        PingRecord one;
        CRONRUN_TRY_ASSIGN(s, get_string(e, "pings.pings", "kind"));
        one.kind = s.value_or("");
        CRONRUN_TRY_ASSIGN(s, get_string(e, "pings.pings", "endpoint"));
        one.endpoint = s.value_or("");
        if (const json* d = member(e, "delivered"); d && !d->is_null()) {
          if (!d->is_boolean()) return std::unexpected(type_error("pings.pings", "delivered", "true or false", *d));
          one.delivered = d->get<bool>();
        }
        CRONRUN_TRY_ASSIGN(bytes, get_u64(e, "pings.pings", "attempts"));
        one.attempts = static_cast<uint32_t>(std::min<uint64_t>(bytes.value_or(0), UINT32_MAX));
        CRONRUN_TRY_ASSIGN(one.http_status, get_int(e, "pings.pings", "http_status"));
        CRONRUN_TRY_ASSIGN(one.error, get_string(e, "pings.pings", "error"));
        std::optional<double> elapsed;
        CRONRUN_TRY_ASSIGN(elapsed, get_double(e, "pings.pings", "elapsed_s"));
        one.elapsed_s = elapsed.value_or(0.0);
        pr.pings.push_back(std::move(one));
      }
    }
    r.pings = std::move(pr);
  }
  if (const json* f = member(j, "fleet")) {
    if (!f->is_object()) return std::unexpected(type_error("", "fleet", "an object", *f));
    FleetRecord fr;
    CRONRUN_TRY_ASSIGN(fr.group, get_string(*f, "fleet", "group"));
    CRONRUN_TRY_ASSIGN(s, get_string(*f, "fleet", "host"));
    fr.host = s.value_or("");
    CRONRUN_TRY_ASSIGN(s, get_string(*f, "fleet", "tick"));
    fr.tick = s.value_or("");
    CRONRUN_TRY_ASSIGN(fr.fence, get_i64(*f, "fleet", "fence"));
    if (const json* h = member(*f, "holder")) {
      if (!h->is_object()) return std::unexpected(type_error("fleet", "holder", "an object", *h));
      FleetHolder holder;
      CRONRUN_TRY_ASSIGN(s, get_string(*h, "fleet.holder", "host"));
      holder.host = s.value_or("");
      std::optional<int64_t> revision;
      CRONRUN_TRY_ASSIGN(revision, get_i64(*h, "fleet.holder", "revision"));
      holder.revision = revision.value_or(0);
      fr.holder = std::move(holder);
    }
    CRONRUN_TRY_ASSIGN(fr.lease_ttl_s, get_i64(*f, "fleet", "lease_ttl_s"));
    CRONRUN_TRY_ASSIGN(fr.note, get_string(*f, "fleet", "note"));
    r.fleet = std::move(fr);
  }
  if (const json* f = member(j, "forwarded_signal"); f && !f->is_null()) {
    if (!f->is_object()) return std::unexpected(type_error("", "forwarded_signal", "an object", *f));
    ForwardedSignal fs;
    std::optional<int> sig;
    CRONRUN_TRY_ASSIGN(sig, get_int(*f, "forwarded_signal", "signal"));
    fs.signal = sig.value_or(0);
    CRONRUN_TRY_ASSIGN(fs.sender_pid, get_i64(*f, "forwarded_signal", "sender_pid"));
    CRONRUN_TRY_ASSIGN(fs.sender_uid, get_i64(*f, "forwarded_signal", "sender_uid"));
    CRONRUN_TRY_ASSIGN(bytes, get_u64(*f, "forwarded_signal", "count"));
    fs.count = bytes.value_or(0);
    r.forwarded_signal = fs;
  }
  return r;
}

#undef CRONRUN_TRY_ASSIGN

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

std::string forwarded_signal_text(const ForwardedSignal& f) {
  std::string from = f.sender_pid ? fmt::format("from pid {}", *f.sender_pid) : std::string("from the kernel");
  if (f.sender_pid && f.sender_uid) from += fmt::format(" (uid {})", *f.sender_uid);
  std::string out = fmt::format("{} {}, forwarded to the job", signal_name(f.signal), from);
  if (f.count > 1) out += fmt::format(" ({} signals forwarded in all)", f.count);
  return out;
}

std::string now_rfc3339() { return format_rfc3339(std::chrono::system_clock::now()); }

std::string format_rfc3339(std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  // The calendar types, not gmtime_r: glibc's gmtime_r loads the local time zone
  // file (/etc/localtime) on first use, which a UTC timestamp never needs.
  auto ms = time_point_cast<milliseconds>(now);
  auto day = floor<days>(ms);
  year_month_day ymd{day};
  hh_mm_ss hms{ms - day};
  char buf[80];  // sized for any int fields, so the compiler can prove no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

Result<double> parse_rfc3339(std::string_view text) {
  auto bad = [&] {
    // fmt, not "'" + std::string(...): g++ 12 -O2 warns falsely (-Wrestrict, PR 105329).
    return fail(fmt::format("'{}' is not an RFC 3339 time (expected 2026-11-23T02:10:00.123Z)", text));
  };
  // Fixed-width fields; `pos` walks the text.
  size_t pos = 0;
  auto digits = [&](size_t n, int& out) {
    if (pos + n > text.size()) return false;
    out = 0;
    for (size_t i = 0; i < n; ++i) {
      char c = text[pos + i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    pos += n;
    return true;
  };
  auto expect = [&](std::string_view chars) {
    if (pos < text.size() && chars.find(text[pos]) != std::string_view::npos) {
      ++pos;
      return true;
    }
    return false;
  };
  int year, month, day, hour, minute, second;
  if (!digits(4, year) || !expect("-") || !digits(2, month) || !expect("-") || !digits(2, day) ||
      !expect("Tt ") || !digits(2, hour) || !expect(":") || !digits(2, minute) || !expect(":") ||
      !digits(2, second))
    return bad();
  double fraction = 0;
  if (expect(".")) {
    double scale = 0.1;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int offset_s = 0;
  if (expect("Zz")) {
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh, om;
    if (!digits(2, oh) || !expect(":") || !digits(2, om) || oh > 23 || om > 59) return bad();
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();

  using namespace std::chrono;
  year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                     std::chrono::day(static_cast<unsigned>(day))};
  // 60 allows a leap second; it is folded into the next minute like POSIX time does.
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return bad();
  int64_t days = sys_days(ymd).time_since_epoch().count();
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  return static_cast<double>(secs) + fraction;
}

std::string new_run_id() {
  uint8_t b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // getrandom cannot fail on Linux >= 3.17 once the pool is seeded; if it
      // somehow does, mix time and pid so ids still differ between processes.
      uint64_t mix = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                     (static_cast<uint64_t>(::getpid()) << 32);
      for (size_t i = got; i < sizeof b; ++i) b[i] = static_cast<uint8_t>(mix >> ((i % 8) * 8));
      break;
    }
    got += static_cast<size_t>(n);
  }
  uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));  // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0f];
  }
  return out;
}

std::string current_boot_id() {
  auto text = read_file("/proc/sys/kernel/random/boot_id");
  if (!text) return "";
  std::string id = std::move(*text);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

Result<uint64_t> parse_stat_start_ticks(std::string_view stat) {
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'. Field 3 (state) is the first after it.
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return fail("no ')' after the command name");
  std::string_view rest = stat.substr(close + 1);
  int field = 2;
  size_t pos = 0;
  while (true) {
    while (pos < rest.size() && (rest[pos] == ' ' || rest[pos] == '\n')) ++pos;
    if (pos >= rest.size()) return fail("no field 22 (starttime)");
    size_t end = rest.find_first_of(" \n", pos);
    if (end == std::string_view::npos) end = rest.size();
    if (++field == 22) {
      uint64_t ticks = 0;
      auto [p, ec] = std::from_chars(rest.data() + pos, rest.data() + end, ticks);
      if (ec != std::errc() || p != rest.data() + end) return fail("field 22 (starttime) is not a number");
      return ticks;
    }
    pos = end;
  }
}

Result<uint64_t> process_start_ticks(int64_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  auto text = read_file(path);
  if (!text) return std::unexpected(text.error());
  auto ticks = parse_stat_start_ticks(*text);
  if (!ticks) return std::unexpected(std::move(ticks.error()).context("reading " + path));
  return ticks;
}

}  // namespace cronrun
