// Nearest-rank percentiles (see stats.h for why not interpolation).
#include "profiler/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace cronrun::prof {

namespace {

// The 0-based index of the nearest-rank p-th percentile among n > 0 values.
size_t rank_index(size_t n, double p) {
  // The tiny epsilon keeps p * N that is an exact integer in decimal (95% of 20 =
  // 19) from becoming 19.000000000000004 and rounding up a rank.
  double rank = std::ceil(p / 100.0 * static_cast<double>(n) - 1e-9);
  size_t idx = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return std::min(idx, n - 1);
}

}  // namespace

std::optional<double> percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty() || !(p > 0) || p > 100) return std::nullopt;
  return sorted[rank_index(sorted.size(), p)];
}

std::optional<double> percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, p);
}

Spread spread_of(std::vector<double>& values) {
  Spread s;
  s.n = values.size();
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  // Selection, not a sort: after nth_element every value past its rank is no
  // smaller, so the next (higher) rank is found in that tail alone: linear
  // passes instead of a sort of the whole window.
  const auto b = values.begin(), e = values.end();
  auto at = [&](size_t i) { return b + static_cast<std::ptrdiff_t>(i); };
  const size_t i50 = rank_index(s.n, 50), i95 = rank_index(s.n, 95), i99 = rank_index(s.n, 99);
  std::nth_element(b, at(i50), e);
  s.p50 = values[i50];
  if (i95 > i50) std::nth_element(at(i50 + 1), at(i95), e);
  s.p95 = values[i95];
  if (i99 > i95) std::nth_element(at(i95 + 1), at(i99), e);
  s.p99 = values[i99];
  s.max = *std::max_element(at(i99), e);
  return s;
}

nlohmann::json json_number(double v) {
  constexpr double kExact = 9007199254740992.0;  // 2^53
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < kExact) return static_cast<int64_t>(v);
  return v;
}

nlohmann::json spread_json(const Spread& s, bool whole) {
  auto v = [whole](const std::optional<double>& x) {
    if (!x) return nlohmann::json(nullptr);
    return whole ? json_number(*x) : nlohmann::json(*x);
  };
  return {{"p50", v(s.p50)}, {"p95", v(s.p95)}, {"max", v(s.max)}};
}

}  // namespace cronrun::prof
