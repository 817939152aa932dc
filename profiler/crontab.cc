// The crontab parser. It reads a file line by line the way Debian's cron does
// (Vixie cron 3.0, entry.c and env.c, with Debian's patches), because the plan is
// only right if it schedules exactly what the daemon schedules:
//  - blank lines and lines whose first non-blank is '#' are ignored; a '#' later on
//    a line is part of the command (cron has no trailing comments);
//  - `NAME = VALUE` is an environment setting (quotes around VALUE preserve blanks);
//    CRON_TZ is remembered for the entries that follow it;
//  - five time fields: lists, ranges, steps after '*' or a range, names for months
//    and days of week (also inside ranges), 7 as Sunday. A step after a single
//    number ("5/10"), a reversed range ("19-7"), a zero step, day of month or month
//    0 are refused, as Debian's cron refuses them;
//  - a day field whose text starts with '*' counts as unrestricted for the
//    "day of month OR day of week" rule (so "*/2" in day of month AND-s);
//  - @reboot/@yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly, case
//    sensitive as in cron;
//  - the file must end in a newline, or cron ignores all of it;
//  - one line cron refuses and it ignores all of the file (Debian's load_user()
//    stops at the first load_entry() failure: "Syntax error, this crontab file
//    will be ignored"), so a file with a bad line plans and watches nothing;
//  - in a system crontab the sixth word is the user, looked up with getpwnam: a
//    line written without one has its command's first word taken as the user and
//    the file is refused ("bad username").
#include "profiler/crontab.h"

#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/safe_file.h"

namespace cronrun::crontab {

namespace {

constexpr std::array<const char*, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 8> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_blank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits off the next blank-separated word of `rest`.
std::string_view next_word(std::string_view& rest) {
  while (!rest.empty() && is_blank(rest.front())) rest.remove_prefix(1);
  size_t n = 0;
  while (n < rest.size() && !is_blank(rest[n])) ++n;
  std::string_view word = rest.substr(0, n);
  rest.remove_prefix(n);
  return word;
}

struct FieldSpec {
  const char* name;
  int low;
  int high;
  const char* const* names;  // 3-letter names, index = value - names_base
  int names_count;
  int names_base;
};

constexpr FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0, 0},
    {"hour", 0, 23, nullptr, 0, 0},
    {"day of month", 1, 31, nullptr, 0, 0},
    {"month", 1, 12, kMonthNames.data(), 12, 1},
    {"day of week", 0, 7, kDayNames.data(), 8, 0},
};

Result<int> parse_value(std::string_view text, const FieldSpec& f) {
  if (text.empty()) return fail(fmt::format("{}: empty value", f.name));
  if (std::isdigit(static_cast<unsigned char>(text.front()))) {
    int v = 0;
    for (char c : text) {
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return fail(fmt::format("{}: '{}' is not a number", f.name, text));
      v = v * 10 + (c - '0');
      if (v > 1000) break;
    }
    if (v < f.low || v > f.high)
      return fail(fmt::format("{}: {} is out of range {}-{}", f.name, text, f.low, f.high));
    return v;
  }
  if (f.names != nullptr && text.size() == 3) {
    for (int i = 0; i < f.names_count; ++i) {
      if (strncasecmp(text.data(), f.names[i], 3) == 0) return i + f.names_base;
    }
  }
  if (f.names != nullptr)
    return fail(fmt::format("{}: '{}' is neither a number nor a 3-letter name", f.name, text));
  return fail(fmt::format("{}: '{}' is not a number", f.name, text));
}

// One field: a comma list of '*', N, N-M, each of the last two or '*' optionally
// followed by /STEP. Sets bits in `bits` (indexed by value, 0..f.high).
Result<void> parse_field(std::string_view text, const FieldSpec& f, std::bitset<64>& bits) {
  if (text.empty()) return fail(fmt::format("{}: missing", f.name));
  size_t pos = 0;
  while (true) {
    size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (item.empty()) return fail(fmt::format("{}: empty element in list '{}'", f.name, text));

    std::string_view range = item, step_text;
    bool has_step = false;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      step_text = item.substr(slash + 1);
      has_step = true;
    }
    if (range.empty()) return fail(fmt::format("{}: '{}' is not a value, range or step", f.name, item));
    int from = 0, to = 0;
    if (range == "*") {
      from = f.low;
      to = f.high;
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos && dash > 0) {
      auto a = parse_value(range.substr(0, dash), f);
      if (!a) return std::unexpected(a.error());
      auto b = parse_value(range.substr(dash + 1), f);
      if (!b) return std::unexpected(b.error());
      from = *a;
      to = *b;
      if (from > to)
        return fail(fmt::format("{}: range '{}' runs backwards (cron does not wrap around)", f.name, range));
    } else {
      auto a = parse_value(range, f);
      if (!a) return std::unexpected(a.error());
      if (has_step)
        return fail(fmt::format("{}: step after a single value '{}' (Debian cron needs a range: '{}-{}/{}')",
                                f.name, item, range, f.high, step_text));
      from = to = *a;
    }
    int step = 1;
    if (has_step) {
      if (step_text.empty() || !std::all_of(step_text.begin(), step_text.end(),
                                            [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return fail(fmt::format("{}: step '{}' is not a number", f.name, step_text));
      if (step_text.size() > 4) return fail(fmt::format("{}: step '{}' is too large", f.name, step_text));
      step = std::stoi(std::string(step_text));
      if (step == 0) return fail(fmt::format("{}: step 0 in '{}'", f.name, item));
    }
    for (int v = from; v <= to; v += step) bits.set(static_cast<size_t>(v));

    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return {};
}

template <size_t N>
std::bitset<N> narrow(const std::bitset<64>& b) {
  std::bitset<N> out;
  for (size_t i = 0; i < N; ++i) out[i] = b[i];
  return out;
}

struct AtWord {
  const char* word;
  const char* fields;
};
constexpr AtWord kAtWords[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

// Environment setting per cron's load_env(): NAME (no blanks, may be quoted), optional
// blanks, '=', value with leading/trailing blanks dropped unless quoted.
std::optional<std::pair<std::string, std::string>> parse_env(std::string_view line) {
  std::string_view s = line;
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  std::string name;
  if (!s.empty() && (s.front() == '"' || s.front() == '\'')) {
    char q = s.front();
    size_t end = s.find(q, 1);
    if (end == std::string_view::npos) return std::nullopt;
    name = std::string(s.substr(1, end - 1));
    s.remove_prefix(end + 1);
  } else {
    size_t n = 0;
    while (n < s.size() && s[n] != '=' && !is_blank(s[n])) ++n;
    name = std::string(s.substr(0, n));
    s.remove_prefix(n);
  }
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  if (s.empty() || s.front() != '=' || name.empty()) return std::nullopt;
  s.remove_prefix(1);
  s = trim(s);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    s = s.substr(1, s.size() - 2);
  }
  return std::make_pair(std::move(name), std::string(s));
}

// cron's '%' rule: the first unescaped '%' ends the command; the rest is stdin with
// every unescaped '%' as a newline; "\%" stands for a literal '%'.
void split_percent(std::string_view raw, Entry& e) {
  std::string cmd, input;
  bool in_stdin = false;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    std::string& out = in_stdin ? input : cmd;
    if (c == '\\' && i + 1 < raw.size() && raw[i + 1] == '%') {
      out += '%';
      ++i;
    } else if (c == '%') {
      if (in_stdin) {
        out += '\n';
      } else {
        in_stdin = true;
      }
    } else {
      out += c;
    }
  }
  e.command = std::move(cmd);
  if (in_stdin) e.stdin_text = std::move(input);
}

std::string format_set(const std::bitset<64>& bits, int low, int high) {
  std::vector<int> v;
  for (int i = low; i <= high; ++i)
    if (bits[static_cast<size_t>(i)]) v.push_back(i);
  if (v.empty()) return "";
  if (static_cast<int>(v.size()) == high - low + 1) return "*";
  // An arithmetic progression of 3+ values reads best as a step.
  if (v.size() >= 3) {
    int step = v[1] - v[0];
    bool ap = true;
    for (size_t i = 2; i < v.size(); ++i) ap = ap && (v[i] - v[i - 1] == step);
    if (ap && step > 1) {
      if (v.front() == low && v.back() + step > high) return fmt::format("*/{}", step);
      return fmt::format("{}-{}/{}", v.front(), v.back(), step);
    }
  }
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!out.empty()) out += ',';
    if (j - i >= 2) {
      out += fmt::format("{}-{}", v[i], v[j]);
    } else {
      for (size_t k = i; k <= j; ++k) out += fmt::format("{}{}", k > i ? "," : "", v[k]);
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

bool Schedule::matches_day(int day_of_month, int month, int day_of_week) const {
  if (reboot) return false;
  bool dom = days_of_month[static_cast<size_t>(day_of_month)];
  bool dow = days_of_week[static_cast<size_t>(day_of_week % 7)];
  bool day = (dom_star || dow_star) ? (dom && dow) : (dom || dow);
  return day && months[static_cast<size_t>(month)];
}

bool Schedule::matches(int minute, int hour, int day_of_month, int month, int day_of_week) const {
  return minutes[static_cast<size_t>(minute)] && hours[static_cast<size_t>(hour)] &&
         matches_day(day_of_month, month, day_of_week);
}

Result<Schedule> parse_schedule(std::string_view text) {
  text = trim(text);
  Schedule s;
  if (text == "@reboot") {
    s.reboot = true;
    return s;
  }
  if (!text.empty() && text.front() == '@') {
    for (const auto& w : kAtWords) {
      if (text == w.word) return parse_schedule(w.fields);
    }
    return fail(fmt::format("unknown special '{}' (cron knows @reboot @yearly @annually @monthly "
                            "@weekly @daily @midnight @hourly, lower case)",
                            text));
  }
  std::string_view rest = text;
  std::bitset<64> bits[5];
  for (int i = 0; i < 5; ++i) {
    std::string_view word = next_word(rest);
    if (word.empty()) return fail(fmt::format("{}: missing (a schedule has 5 fields)", kFields[i].name));
    if (auto r = parse_field(word, kFields[i], bits[i]); !r) return std::unexpected(r.error());
    if (i == 2) s.dom_star = word.front() == '*';
    if (i == 4) s.dow_star = word.front() == '*';
  }
  if (!trim(rest).empty()) return fail(fmt::format("unexpected '{}' after the 5 time fields", trim(rest)));
  if (bits[4][7]) bits[4].set(0);  // 7 is Sunday too
  s.minutes = narrow<60>(bits[0]);
  s.hours = narrow<24>(bits[1]);
  s.days_of_month = narrow<32>(bits[2]);
  s.months = narrow<13>(bits[3]);
  s.days_of_week = narrow<7>(bits[4]);
  return s;
}

std::string format_minutes(const std::bitset<60>& minutes) {
  std::bitset<64> b;
  for (size_t i = 0; i < 60; ++i) b[i] = minutes[i];
  return format_set(b, 0, 59);
}

std::string format_hours(const std::bitset<24>& hours) {
  std::bitset<64> b;
  for (size_t i = 0; i < 24; ++i) b[i] = hours[i];
  return format_set(b, 0, 23);
}

const char* to_string(Kind k) { return k == Kind::system ? "system" : "user"; }

Kind kind_for_path(std::string_view path) {
  std::filesystem::path p{std::string(path)};
  if (p.filename() == "crontab" && p.parent_path().filename() == "etc") return Kind::system;
  if (p.parent_path().filename() == "cron.d") return Kind::system;
  return Kind::user;
}

bool valid_cron_d_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void Crontab::append(Crontab&& other) {
  std::move(other.entries.begin(), other.entries.end(), std::back_inserter(entries));
  std::move(other.env.begin(), other.env.end(), std::back_inserter(env));
  std::move(other.rejected.begin(), other.rejected.end(), std::back_inserter(rejected));
}

namespace {

// A word no passwd entry can be named (useradd and cron's own crontab(1) refuse
// these): the sign that the user field was left out and a path or the command
// took its place.
bool impossible_user_name(std::string_view user, std::string_view command) {
  return user.find('/') != std::string_view::npos || user.find(':') != std::string_view::npos ||
         command.starts_with('-');
}

}  // namespace

Crontab parse_crontab(std::string_view text, std::string_view file_name, Kind kind, const UserExists& user_exists) {
  Crontab out;
  std::optional<std::string> cron_tz;
  const std::string file(file_name);
  if (!text.empty() && text.back() != '\n') {
    // Debian's cron: "Missing newline before EOF, this crontab file will be ignored".
    out.rejected.push_back({file, 0, "", "no newline at the end of the file: cron ignores the whole file"});
    return out;
  }
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;

    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto reject = [&](std::string reason) {
      out.rejected.push_back({file, line_no, std::string(line), std::move(reason)});
    };
    if (auto env = parse_env(line)) {
      if (env->first == "CRON_TZ") cron_tz = env->second.empty() ? std::nullopt : std::optional(env->second);
      out.env.push_back({file, line_no, env->first, env->second});
      continue;
    }

    // The schedule is one word for @specials, five words otherwise.
    std::string_view rest = line;
    std::string time_text;
    if (line.front() == '@') {
      time_text = std::string(next_word(rest));
    } else {
      std::string_view start = rest;
      for (int i = 0; i < 5; ++i) next_word(rest);
      time_text = std::string(trim(start.substr(0, start.size() - rest.size())));
    }
    auto schedule = parse_schedule(time_text);
    if (!schedule) {
      reject(schedule.error().message());
      continue;
    }
    Entry e;
    e.file = file;
    e.line = line_no;
    e.time_text = time_text;
    e.schedule = *schedule;
    e.cron_tz = cron_tz;
    std::string expanded = time_text;
    for (const auto& w : kAtWords)
      if (time_text == w.word) expanded = w.fields;
    if (!e.schedule.reboot) {
      std::string_view fr = expanded;
      for (int i = 0; i < 5; ++i) e.fields.emplace_back(next_word(fr));
    }
    if (kind == Kind::system) {
      std::string_view user = next_word(rest);
      if (user.empty()) {
        reject("missing user field (system crontab: schedule, user, command)");
        continue;
      }
      std::string_view after_user = trim(rest);
      if (user_exists ? !user_exists(std::string(user)) : impossible_user_name(user, after_user)) {
        reject(fmt::format("bad username '{}': no such user (a system crontab line is schedule, user, command; "
                           "is the user field missing?)",
                           user));
        continue;
      }
      e.user = std::string(user);
    }
    std::string_view command = trim(rest);
    if (command.empty()) {
      reject(kind == Kind::system ? "missing command after the user field" : "missing command");
      continue;
    }
    split_percent(command, e);
    if (trim(e.command).empty()) {
      reject("empty command before '%'");
      continue;
    }
    out.entries.push_back(std::move(e));
  }
  const size_t loaded = out.entries.size() + out.env.size() + out.rejected.size();
  if (!out.rejected.empty()) {
    const Rejected& first = out.rejected.front();
    out.entries.clear();
    out.env.clear();
    out.rejected.push_back({file, 0, "",
                            fmt::format("cron ignores the whole file (\"Syntax error, this crontab file will be "
                                        "ignored\"): line {} {}",
                                        first.line,
                                        out.rejected.size() == 1 ? "is refused" : fmt::format("and {} other lines are refused",
                                                                                               out.rejected.size() - 1))});
  } else if (loaded > static_cast<size_t>(kMaxCrontabLines)) {
    out.entries.clear();
    out.env.clear();
    out.rejected.push_back(
        {file, 0, "", fmt::format("more than {} entries and settings: cron ignores the whole file", kMaxCrontabLines)});
  }
  return out;
}

namespace {

// Far above any real crontab; a FIFO, a device or a runaway file named with
// --crontab must fail at once, not hang or fill memory.
constexpr size_t kMaxCrontabBytes = 4 << 20;

Result<std::string> read_file(const std::string& path) { return read_regular_file(path, kMaxCrontabBytes); }

// Debian's cron ignores system crontabs that are group- or world-writable, and
// under /etc those not owned by root. Files elsewhere (copies, test fixtures) are
// not held to the owner rule, so they can be checked before installing.
std::optional<std::string> unsafe_system_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return "group- or world-writable: cron ignores insecure system crontabs";
  if (path.starts_with("/etc/") && st.st_uid != 0) return "not owned by root: cron ignores it";
  return std::nullopt;
}

Result<Crontab> load_file(const std::string& path, Kind kind) {
  auto text = read_file(path);
  if (!text) return std::unexpected(std::move(text.error()).context("reading crontab"));
  if (kind == Kind::system) {
    if (auto why = unsafe_system_file(path)) {
      Crontab c;
      c.rejected.push_back({path, 0, "", *why});
      return c;
    }
  }
  UserExists lookup;
  if (kind == Kind::system && path.starts_with("/etc/")) {
    lookup = [](const std::string& user) {
      // getpwnam_r: a huge group of NSS entries must not overflow a fixed buffer.
      std::vector<char> buf(16384);
      passwd pw{};
      passwd* found = nullptr;
      return ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr;
    };
  }
  return parse_crontab(*text, path, kind, lookup);
}

}  // namespace

Result<Crontab> load_crontab(const std::string& path, std::optional<Kind> kind) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return load_file(path, kind.value_or(kind_for_path(path)));

  std::vector<std::filesystem::path> files;
  for (auto it = std::filesystem::directory_iterator(path, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    files.push_back(it->path());
  }
  if (ec) return fail_sys("opendir", path, ec.value());
  std::sort(files.begin(), files.end());
  Crontab all;
  for (const auto& f : files) {
    std::string name = f.filename().string();
    if (name.starts_with('.')) continue;  // .placeholder and friends: ignored by cron, by design
    if (!valid_cron_d_name(name)) {
      // README, .placeholder and package leftovers are expected here; say why each is skipped.
      all.rejected.push_back({f.string(), 0, "",
                              "file name is not only letters, digits, '_' and '-': cron ignores this file"});
      continue;
    }
    // cron skips what is not a regular file; so do we, saying why, instead of
    // failing the whole directory on a FIFO.
    if (struct stat st {}; ::stat(f.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      all.rejected.push_back(
          {f.string(), 0, "", fmt::format("is a {}, not a regular file: cron ignores it", file_type_name(st.st_mode))});
      continue;
    }
    auto c = load_file(f.string(), kind.value_or(Kind::system));
    if (!c) return std::unexpected(c.error());
    all.append(std::move(*c));
  }
  return all;
}

}  // namespace cronrun::crontab
