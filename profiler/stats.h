// Order statistics for summary and suggest.
//
// Percentiles are NEAREST-RANK (no interpolation): the p-th percentile of N values
// is the value at 1-based rank ceil(p/100 * N) of the sorted values. Every figure
// cronprof reports is therefore one that a real run actually had — a p95 wall time
// is the wall time of a real run, never a blend of two — and small samples do not
// invent precision. For {15, 20, 35, 40, 50}: p5 = 15, p30 = 20, p40 = 20,
// p50 = 35, p95 = 50, p100 = 50.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace cronrun::prof {

// Nearest-rank percentile of `sorted` (ascending), p in (0, 100]; nullopt when empty.
std::optional<double> percentile_sorted(const std::vector<double>& sorted, double p);
// The same for unsorted input (sorts a copy).
std::optional<double> percentile(std::vector<double> values, double p);

// The spread of one figure over a set of runs.
struct Spread {
  size_t n = 0;  // runs that had the figure
  std::optional<double> p50, p95, p99, max, mean;
};
// Fills the spread; reorders `values` (partly sorts them: selection, not a sort).
Spread spread_of(std::vector<double>& values);

// {"p50": …, "p95": …, "max": …}; null members when there were no values.
// `whole` for figures that are counts or bytes: their values are JSON integers.
nlohmann::json spread_json(const Spread& s, bool whole = false);

// `v` as a JSON integer when it is a whole number a double holds exactly (below
// 2^53), else as a JSON real: a count or a byte size reads 1200, never 1200.0.
nlohmann::json json_number(double v);

}  // namespace cronrun::prof
