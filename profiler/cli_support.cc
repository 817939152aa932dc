// Shared cronprof plumbing: history opening with exit-code mapping, windows,
// formatting, tables.
#include "profiler/cli_support.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <chrono>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

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

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned)) {
  right_.resize(header_.size(), false);
  width_.resize(header_.size(), 0);
  widen(header_);
}

void Table::escape(std::vector<std::string>& row) const {
  row.resize(header_.size());
  // Cells carry history content (job names, run ids): never raw to the terminal.
  for (auto& cell : row) cell = term_text(cell);
}

void Table::widen(const std::vector<std::string>& row) {
  for (size_t i = 0; i < row.size(); ++i) width_[i] = std::max(width_[i], row[i].size());
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

std::string Table::line(std::vector<std::string> row) const {
  escape(row);
  return format_line(row);
}

std::string Table::format_line(const std::vector<std::string>& row) const {
  std::string l;
  for (size_t i = 0; i < row.size(); ++i) {
    // A row wider than measured (not measured first) is printed whole, unaligned.
    size_t pad = width_[i] > row[i].size() ? width_[i] - row[i].size() : 0;
    bool last = i + 1 == row.size();
    if (right_[i]) l.append(pad, ' ');
    l += row[i];
    if (!right_[i] && !last) l.append(pad, ' ');
    if (!last) l += "  ";
  }
  while (!l.empty() && l.back() == ' ') l.pop_back();
  l += '\n';
  return l;
}

std::string Table::render() const {
  std::string out = format_line(header_);
  for (const auto& r : rows_) out += format_line(r);
  return out;
}

JsonListPrinter::JsonListPrinter(std::FILE* out, const std::string& key) : out_(out) {
  std::string head = json_text(nlohmann::json::object({{key, nlohmann::json::array()}}), 2);
  // `{\n  "KEY": []\n}`: everything up to and including the '['.
  head.resize(head.rfind('[') + 1);
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

void JsonListPrinter::finish() { std::fputs(first_ ? "]\n}\n" : "\n  ]\n}\n", out_); }

}  // namespace cronrun::prof
