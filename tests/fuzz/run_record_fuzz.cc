// Run records as cronprof reads them back: the JSON in a history row's `record`
// column (any process that can write the history file can put anything there),
// parsed as common/history_query.cc does, then written again as `runs --json` and
// `export` do. Also the RFC 3339 times the record carries.
#include <nlohmann/json.hpp>
#include <string>

#include "common/run_record.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_run_record(const uint8_t* data, size_t size) {
  using namespace cronrun;
  std::string_view text = fuzz::as_text(data, size);
  (void)parse_rfc3339(text);
  (void)parse_run_status(text);
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto r = run_record_from_json(j);
  if (!r) {
    FUZZ_CHECK(!r.error().message().empty());
    return 0;
  }
  (void)parse_rfc3339(r->started_at);
  // What was read is written again, and reads back the same.
  nlohmann::json out = to_json(*r);
  std::string dumped = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto back = run_record_from_json(nlohmann::json::parse(dumped, nullptr, false));
  FUZZ_CHECK_MSG(back.has_value(), dumped);
  FUZZ_CHECK_MSG(to_json(*back) == out, dumped);
  return 0;
}
