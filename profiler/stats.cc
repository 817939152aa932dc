// Nearest-rank percentiles (see stats.h for why not interpolation).
#include "profiler/stats.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

namespace cronrun::prof {

std::optional<double> percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty() || !(p > 0) || p > 100) return std::nullopt;
  // The tiny epsilon keeps p * N that is an exact integer in decimal (95% of 20 =
  // 19) from becoming 19.000000000000004 and rounding up a rank.
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()) - 1e-9);
  size_t idx = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(idx, sorted.size() - 1)];
}

std::optional<double> percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, p);
}

Spread spread_of(std::vector<double>& values) {
  Spread s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.p50 = percentile_sorted(values, 50);
  s.p95 = percentile_sorted(values, 95);
  s.p99 = percentile_sorted(values, 99);
  s.max = values.back();
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  return s;
}

nlohmann::json spread_json(const Spread& s) {
  auto v = [](const std::optional<double>& x) { return x ? nlohmann::json(*x) : nlohmann::json(nullptr); };
  return {{"p50", v(s.p50)}, {"p95", v(s.p95)}, {"max", v(s.max)}};
}

}  // namespace cronrun::prof
