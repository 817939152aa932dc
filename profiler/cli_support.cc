// Shared cronprof plumbing: history opening with exit-code mapping, windows,
// formatting, tables.
#include "profiler/cli_support.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <chrono>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/run_record.h"
#include "common/units.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

// Messages quote history content (run ids, job names, paths): escaped like the tables.
void print_error(const std::string& message) {
  std::fprintf(stderr, "cronprof: %s\n", term_text(message).c_str());
}

int exit_code_for(HistoryFault fault) {
  switch (fault) {
    case HistoryFault::none: return kExitOk;
    case HistoryFault::missing: return kExitHistoryMissing;
    case HistoryFault::unreadable: return kExitUnreadable;
    case HistoryFault::newer_schema: return kExitNewerSchema;
    case HistoryFault::corrupt: return kExitCorrupt;
    case HistoryFault::other: return kExitFailure;
  }
  return kExitFailure;
}

std::expected<HistoryStore, int> open_history(const Global& g, HistoryStore::Mode mode) {
  if (mode == HistoryStore::Mode::read_write && ::access(g.history_path.c_str(), F_OK) != 0) {
    // gc must not create an empty history where the user mistyped a path.
    mode = HistoryStore::Mode::read_only;  // read_only reports "missing" precisely
  }
  HistoryFault fault = HistoryFault::none;
  auto store = HistoryStore::open(g.history_path, mode, &fault);
  if (store) return std::move(*store);
  std::string hint;
  switch (fault) {
    case HistoryFault::missing:
      hint = " (no run recorded yet? pass --history PATH to read another history)";
      break;
    case HistoryFault::unreadable: hint = " (check its permissions, and those of its -wal/-shm files)"; break;
    case HistoryFault::corrupt: hint = " (the file is damaged or is not a cronrun history)"; break;
    default: break;
  }
  print_error(store.error().message() + hint);
  return std::unexpected(exit_code_for(fault));
}

int query_failed(const HistoryStore& store, const Error& e) {
  print_error(e.message());
  HistoryFault f = store.last_fault();
  return f == HistoryFault::none ? kExitFailure : exit_code_for(f);
}

HistoryStore::CorruptRowFn SkippedRows::callback() {
  return [this](const std::string& run_id, const Error& why) {
    if (++count_ <= kMaxNamed) print_error("skipped unreadable history row, run " + run_id + ": " + why.message());
  };
}

void SkippedRows::report(const std::string& history_path) const {
  if (count_ == 0) return;
  std::string more = count_ > kMaxNamed ? fmt::format(" ({} not named above)", count_ - kMaxNamed) : "";
  print_error(fmt::format("skipped {} unreadable row{} of {}{}; the other rows are shown", count_,
                          count_ == 1 ? "" : "s", history_path, more));
}

double now_unix_s() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

Result<double> since_cutoff(const std::string& text, double now_s) {
  auto d = units::parse_duration(text);
  if (!d) return std::unexpected(d.error());
  return now_s - static_cast<double>(d->count()) / 1000.0;
}

std::expected<double, int> window_option(const char* flag, const std::string& text, double now_s) {
  auto cutoff = since_cutoff(text, now_s);
  if (cutoff) return *cutoff;
  print_error(std::string(flag) + ": " + cutoff.error().message());
  return std::unexpected(kExitUsage);
}

std::string format_utc(double unix_s) {
  // A row's time is whatever the file holds: outside years 0..9999 (or NaN) it is
  // no time a person could read, and converting it to time_t would be undefined.
  constexpr double kYear0 = -62167219200.0, kYear10000 = 253402300800.0;
  if (!(unix_s >= kYear0 && unix_s < kYear10000)) return "-";
  time_t t = static_cast<time_t>(std::floor(unix_s));
  struct tm tm {};
  if (!gmtime_r(&t, &tm)) return "-";
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

nlohmann::json json_time(double unix_s) {
  constexpr double kYear0 = -62167219200.0, kYear10000 = 253402300800.0;
  if (!(unix_s >= kYear0 && unix_s < kYear10000)) return nullptr;
  // To the nearest millisecond: a time read back from the history's REAL column
  // (…00.123 stored as …00.12299999) prints as the record wrote it.
  auto ms = std::chrono::milliseconds(std::llround(unix_s * 1000.0));
  return format_rfc3339(std::chrono::system_clock::time_point(ms));
}

size_t terminal_width(const char* columns_env, int fd) {
  if (columns_env && *columns_env) {
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(columns_env, &end, 10);
    if (errno == 0 && *end == '\0' && v > 0 && v < 100000 && columns_env[0] != '-') return v;
  }
  struct winsize ws {};
  if (::isatty(fd) && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

size_t output_width(const Global& g) {
  if (g.wide) return 0;
  return terminal_width(std::getenv("COLUMNS"), STDOUT_FILENO);
}

// Prose under the table: wrapped at blanks to `width`, continuation lines
// indented, so a long path or reason is read whole rather than cut.
std::string wrap_prose(const std::string& s, size_t width) {
  // The line's own indentation starts every piece; continuations go 4 further.
  const size_t lead = std::min(s.find_first_not_of(' '), s.size());
  const std::string first(lead, ' ');
  const std::string indent = first + "    ";
  if (width <= indent.size() + 8) return s + "\n";
  std::string out, line = first;
  size_t pos = lead;
  while (pos < s.size()) {
    size_t end = s.find(' ', pos);
    if (end == std::string::npos) end = s.size();
    std::string word = s.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() > first.size() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = indent;
    } else if (line.size() > first.size() && line != indent) {
      line += ' ';
    }
    line += word;
    // A word longer than a line (a long path) is cut into line-sized pieces.
    while (line.size() > width) {
      out += line.substr(0, width) + "\n";
      line = indent + line.substr(width);
    }
  }
  return out + line + "\n";
}

size_t display_width(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // count lead bytes
  return n;
}

std::string shorten(std::string_view text, size_t width) {
  if (display_width(text) <= width) return std::string(text);
  if (width == 0) return "";
  std::string out;
  size_t cols = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bool lead = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (lead && ++cols == width) break;
    out += text[i];
  }
  return out + "\u2026";
}

std::string size_or_dash(const std::optional<uint64_t>& bytes) {
  return bytes ? units::format_size(*bytes) : "-";
}
std::string size_or_dash(const std::optional<double>& bytes) {
  if (!bytes || !(*bytes >= 0)) return "-";
  // No real run's byte count, and beyond what uint64_t holds.
  if (*bytes >= 18446744073709551616.0) return ">" + units::format_size(UINT64_MAX);
  return units::format_size(static_cast<uint64_t>(std::round(*bytes)));
}
std::string duration_or_dash(const std::optional<double>& seconds) {
  return seconds ? units::format_duration_s(*seconds) : "-";
}
std::string number_or_dash(const std::optional<double>& v, int decimals) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : "-";
}

namespace {
std::vector<Column> plain_columns(std::vector<std::string> header, std::vector<bool> right_aligned) {
  right_aligned.resize(header.size(), false);
  std::vector<Column> columns;
  for (size_t i = 0; i < header.size(); ++i) columns.push_back(Column{.header = std::move(header[i]), .right = right_aligned[i]});
  return columns;
}
}  // namespace

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : Table(plain_columns(std::move(header), std::move(right_aligned))) {}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {
  for (const Column& c : columns_) {
    header_.push_back(c.header);
    right_.push_back(c.right);
    shown_.push_back(c.stand_in_for < 0);
  }
  width_.resize(header_.size(), 0);
  widen(header_);
  cut_ = width_;
}

void Table::escape(std::vector<std::string>& row) const {
  row.resize(header_.size());
  // Cells carry history content (job names, run ids): never raw to the terminal.
  for (auto& cell : row) cell = term_text(cell);
}

void Table::widen(const std::vector<std::string>& row) {
  for (size_t i = 0; i < row.size(); ++i) width_[i] = std::max(width_[i], display_width(row[i]));
  cut_ = width_;
}

void Table::add(std::vector<std::string> row) {
  escape(row);
  widen(row);
  rows_.push_back(std::move(row));
}

void Table::measure(std::vector<std::string> row) {
  escape(row);
  widen(row);
}

void Table::fit(size_t width) {
  const size_t n = columns_.size();
  std::vector<bool> dropped(n, false);
  auto visible = [&](size_t i) {
    int principal = columns_[i].stand_in_for;
    return !dropped[i] && (principal < 0 || dropped[static_cast<size_t>(principal)]);
  };
  // The line's width with every visible column at its natural width, or with the
  // shortenable ones at their minimum.
  auto total = [&](bool at_min) {
    size_t sum = 0, count = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!visible(i)) continue;
      size_t w = width_[i];
      if (at_min && columns_[i].min_width > 0) w = std::min(w, columns_[i].min_width);
      sum += w;
      ++count;
    }
    return sum + (count ? 2 * (count - 1) : 0);
  };
  cut_ = width_;
  line_max_ = width;
  if (width > 0) {
    std::vector<size_t> order;
    for (size_t i = 0; i < n; ++i)
      if (columns_[i].drop > 0) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return columns_[a].drop > columns_[b].drop; });
    for (size_t k = 0; k < order.size() && total(true) > width; ++k) dropped[order[k]] = true;
    // Then the widest shortenable column loses a column at a time.
    for (size_t t = total(false); t > width; --t) {
      size_t best = n;
      for (size_t i = 0; i < n; ++i) {
        if (!visible(i) || columns_[i].min_width == 0 || cut_[i] <= columns_[i].min_width) continue;
        if (best == n || cut_[i] > cut_[best]) best = i;
      }
      if (best == n) break;
      --cut_[best];
    }
  }
  for (size_t i = 0; i < n; ++i) shown_[i] = visible(i);
}

std::string Table::line(std::vector<std::string> row) const {
  escape(row);
  return format_line(row);
}

std::string Table::format_line(const std::vector<std::string>& row) const {
  std::string l;
  size_t last = row.size();
  while (last > 0 && !shown_[last - 1]) --last;
  for (size_t i = 0; i < last; ++i) {
    if (!shown_[i]) continue;
    std::string cell = display_width(row[i]) > cut_[i] ? shorten(row[i], cut_[i]) : row[i];
    size_t w = display_width(cell);
    // A row wider than measured (not measured first) is printed whole, unaligned.
    size_t pad = cut_[i] > w ? cut_[i] - w : 0;
    bool is_last = i + 1 == last;
    if (right_[i]) l.append(pad, ' ');
    l += cell;
    if (!right_[i] && !is_last) l.append(pad, ' ');
    if (!is_last) l += "  ";
  }
  while (!l.empty() && l.back() == ' ') l.pop_back();
  if (line_max_ > 0 && display_width(l) > line_max_) l = shorten(l, line_max_);
  l += '\n';
  return l;
}

std::string Table::render() const {
  std::string out = format_line(header_);
  for (const auto& r : rows_) out += format_line(r);
  return out;
}

JsonListPrinter::JsonListPrinter(std::FILE* out, const std::string& key)
    : JsonListPrinter(out, key, nlohmann::json::object()) {}

JsonListPrinter::JsonListPrinter(std::FILE* out, const std::string& key, const nlohmann::json& others) : out_(out) {
  nlohmann::json doc = others;
  doc[key] = nlohmann::json::array();
  std::string text = json_text(doc, 2);
  // `{\n  ...\n  "KEY": [],\n  ...\n}`: the head ends at that '[', the tail starts after its ']'.
  std::string marker = json_text(nlohmann::json(key)) + ": []";
  size_t at = text.find("\n  " + marker);
  size_t open = at + 3 + marker.size() - 2;  // the '['
  std::string head = text.substr(0, open + 1);
  tail_ = text.substr(open + 2);
  std::fputs(head.c_str(), out_);
}

void JsonListPrinter::add(const nlohmann::json& element) {
  std::string text = json_text(element, 2);
  std::string indented = first_ ? "\n    " : ",\n    ";
  indented.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    indented += c;
    if (c == '\n') indented += "    ";  // json_text escapes the newlines inside strings
  }
  std::fputs(indented.c_str(), out_);
  first_ = false;
}

void JsonListPrinter::finish() {
  std::fputs(first_ ? "]" : "\n  ]", out_);
  std::fputs(tail_.c_str(), out_);
  std::fputs("\n", out_);
}

}  // namespace cronrun::prof
