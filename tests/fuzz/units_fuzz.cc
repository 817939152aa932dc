// Sizes, durations and CPU quotas: typed by admins on command lines, and read from
// job config files and crontab lines (common/units.h).
#include <cmath>
#include <string>

#include "common/units.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_units(const uint8_t* data, size_t size) {
  using namespace cronrun;
  std::string_view text = fuzz::as_text(data, size);
  if (auto bytes = units::parse_size(text)) {
    std::string shown = units::format_size(*bytes);
    FUZZ_CHECK_MSG(!shown.empty(), text);
  } else {
    FUZZ_CHECK(!bytes.error().message().empty());
  }
  if (auto d = units::parse_duration(text)) {
    // A duration is never negative (it becomes a timeout or a lock wait).
    FUZZ_CHECK_MSG(d->count() >= 0, text);
    std::string shown = units::format_duration_s(static_cast<double>(d->count()) / 1000.0);
    FUZZ_CHECK_MSG(!shown.empty() && shown.front() != '-', shown);
  } else {
    FUZZ_CHECK(!d.error().message().empty());
  }
  if (auto pct = units::parse_cpu_percent(text)) {
    FUZZ_CHECK_MSG(std::isfinite(*pct) && *pct >= 1.0, text);
  } else {
    FUZZ_CHECK(!pct.error().message().empty());
  }
  return 0;
}
