// $CRONRUN_COUNTERS: a file the job writes, parsed by the runner (runner/counters.h).
#include <cmath>
#include <string>

#include "runner/counters.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_counters(const uint8_t* data, size_t size) {
  using namespace cronrun;
  ParsedCounters parsed = parse_counters(fuzz::as_text(data, size));
  FUZZ_CHECK(parsed.values.size() <= 1000);
  for (const auto& [name, value] : parsed.values) {
    FUZZ_CHECK_MSG(!name.empty() && name.size() <= 128, name);
    FUZZ_CHECK_MSG(!name.starts_with("db."), name);  // reserved for the DB-query counter
    // Counters go into the run record; JSON has no inf/nan, a non-finite sum
    // would be written as null and read back as a missing counter.
    FUZZ_CHECK_MSG(std::isfinite(value), name);
  }
  return 0;
}
