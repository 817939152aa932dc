// Strict unit parsers. Every parser consumes the whole input or fails; the error
// text is "expected ..., got '<input>'" so the caller only prefixes the flag name.
#include "common/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fmt/format.h>

namespace cronrun::units {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Parses a non-negative decimal number ("12", "1.5") at the front of `s`;
// returns the number of characters consumed (0 when there is no number).
size_t parse_number(std::string_view s, double& out) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i + 1) return 0;  // "1." is not a number here
    i = j;
  }
  if (i == 0) return 0;
  auto res = std::from_chars(s.data(), s.data() + i, out);
  if (res.ec != std::errc() || res.ptr != s.data() + i) return 0;
  return i;
}

constexpr double kMaxDurationMs = 36500.0 * 86'400'000;

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  auto bad = [&] { return fail(fmt::format("expected a size like 512M or 2G, got '{}'", text)); };
  std::string_view s = trim(text);
  double value = 0;
  size_t n = parse_number(s, value);
  if (n == 0) return bad();
  std::string suffix = lower(trim(s.substr(n)));
  double mult = 0;
  if (suffix.empty() || suffix == "b") {
    if (s.substr(0, n).find('.') != std::string_view::npos) return bad();  // fractional bytes
    mult = 1;
  } else {
    static constexpr std::pair<char, double> kUnits[] = {
        {'k', 1024.0}, {'m', 1024.0 * 1024}, {'g', 1024.0 * 1024 * 1024}, {'t', 1024.0 * 1024 * 1024 * 1024}};
    for (auto [c, m] : kUnits) {
      if (suffix[0] != c) continue;
      std::string_view rest = std::string_view(suffix).substr(1);
      if (rest.empty() || rest == "b" || rest == "ib") mult = m;
    }
    if (mult == 0) return bad();
  }
  double bytes = std::round(value * mult);
  if (!(bytes >= 0) || bytes >= 18446744073709551616.0) return bad();
  return static_cast<uint64_t>(bytes);
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto bad = [&] { return fail(fmt::format("expected a duration like 90s, 15m, 2h or 7d, got '{}'", text)); };
  std::string_view s = trim(text);
  if (s.empty()) return bad();
  double total_ms = 0;
  bool bare = true;
  while (!s.empty()) {
    double value = 0;
    size_t n = parse_number(s, value);
    if (n == 0) return bad();
    s.remove_prefix(n);
    size_t u = 0;
    while (u < s.size() && std::isalpha(static_cast<unsigned char>(s[u]))) ++u;
    std::string unit = lower(s.substr(0, u));
    s.remove_prefix(u);
    double mult;
    if (unit.empty()) {
      if (!bare || !s.empty()) return bad();  // a bare number only on its own
      mult = 1000;
    } else if (unit == "ms") {
      mult = 1;
    } else if (unit == "s" || unit == "sec") {
      mult = 1000;
    } else if (unit == "m" || unit == "min") {
      mult = 60'000;
    } else if (unit == "h") {
      mult = 3'600'000;
    } else if (unit == "d") {
      mult = 86'400'000;
    } else {
      return bad();
    }
    bare = false;
    total_ms += value * mult;
  }
  // Callers add durations to steady_clock::now() (nanoseconds in an int64) and
  // turn them into timespecs; a cap of a century keeps every such sum far from
  // overflow while no real timeout or lock wait comes near it.
  if (!(total_ms <= kMaxDurationMs))
    return fail(fmt::format("expected a duration of at most 36500d, got '{}'", text));
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

Result<double> parse_cpu_percent(std::string_view text) {
  auto bad = [&] {
    return fail(fmt::format("expected a CPU quota like 50%, 250% or 1.5 (cores), got '{}'", text));
  };
  std::string_view s = trim(text);
  double value = 0;
  size_t n = parse_number(s, value);
  if (n == 0) return bad();
  std::string_view rest = trim(s.substr(n));
  double pct;
  if (rest == "%") {
    pct = value;
  } else if (rest.empty()) {
    pct = value * 100.0;
  } else {
    return bad();
  }
  // The kernel's minimum cfs quota is 1ms per 100ms period, i.e. 1%.
  if (pct < 1.0 || pct > 100000.0) return bad();
  return pct;
}

std::string format_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024.0 && i < 4) {
    v /= 1024.0;
    ++i;
  }
  if (i == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.{}f} {}", v, v < 10 ? 2 : (v < 100 ? 1 : 0), kUnits[i]);
}

std::string format_duration_s(double seconds) {
  // Durations read from a history row are whatever the file holds. NaN, negative
  // and absurdly long ones print plainly; converting them to an integer would be
  // undefined (and printed "-2562047788015215h-30m").
  constexpr double kHundredYears_s = 100 * 365.25 * 86400;
  if (!(seconds >= 0)) return "-";
  if (seconds >= kHundredYears_s) return ">100y";
  if (seconds < 60) return fmt::format("{:.{}f}s", seconds, seconds < 10 ? 2 : 1);
  auto total = static_cast<int64_t>(std::llround(seconds));
  int64_t h = total / 3600, m = (total % 3600) / 60, s = total % 60;
  if (h == 0) return fmt::format("{}m{:02}s", m, s);
  return fmt::format("{}h{:02}m", h, m);
}

}  // namespace cronrun::units
