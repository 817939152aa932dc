// Run records as cronprof reads them back: the JSON in a history row's `record`
// column (any process that can write the history file can put anything there),
// parsed as common/history_query.cc does, then written again as `runs --json` and
// `export` do. Also the RFC 3339 times the record carries. And the fast reader
// (run_record_from_text_fast) against the DOM reader: whatever it returns is what
// the DOM reader returns for the same text, runner fields included.
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
  auto fast = run_record_from_text_fast(text, /*runner_fields=*/false);
  // Either reader may leave a text to the DOM (a repeated runner field counts as a
  // repeated key only with runner_fields); what either returns is the DOM's answer.
  auto fast_runner = run_record_from_text_fast(text, /*runner_fields=*/true);
  if (j.is_discarded()) {
    FUZZ_CHECK_MSG(!fast && !fast_runner, text);
    return 0;
  }
  auto r = run_record_from_json(j);
  if (fast) {
    FUZZ_CHECK_MSG(r.has_value(), text);
    FUZZ_CHECK_MSG(to_json(*fast) == to_json(*r), text);
    FUZZ_CHECK_MSG(fast->runner_pid == 0 && fast->boot_id.empty(), text);
  }
  if (fast_runner) {
    FUZZ_CHECK_MSG(r.has_value(), text);
    // The journal's runner fields, read as journal.cc's DOM path reads them.
    RunRecord want = *r;
    if (auto it = j.find("runner_pid"); it != j.end() && it->is_number_integer()) want.runner_pid = it->get<int64_t>();
    if (auto it = j.find("runner_start"); it != j.end() && it->is_number_unsigned())
      want.runner_start = it->get<uint64_t>();
    if (auto it = j.find("boot_id"); it != j.end() && it->is_string()) want.boot_id = it->get<std::string>();
    FUZZ_CHECK_MSG(to_json_text(*fast_runner, true) == to_json_text(want, true), text);
  }
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
