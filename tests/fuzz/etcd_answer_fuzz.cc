// Answers of the etcd v3 JSON gateway as the fleet's etcd client reads them
// (common/etcd_answer.h): whatever answers on an endpoint's address (a member, a
// proxy, another host after a partition) and every key and value anyone with etcd
// access wrote. The first byte picks the HTTP status, the rest is the body, parsed
// and classified as Client::post does; an answer classified ok is then read as
// the answer to every call. Nothing may throw; errors are one printable line;
// keys and values read back from base64 are what b64_encode writes again.
#include <nlohmann/json.hpp>
#include <string>

#include "common/etcd_answer.h"
#include "tests/fuzz/fuzz.h"

namespace {

using cronrun::etcd::KeyValue;
namespace answer = cronrun::etcd::answer;

bool one_printable_line(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

void check_kvs(const std::vector<KeyValue>& kvs) {
  for (const auto& kv : kvs) {
    for (const std::string* s : {&kv.key, &kv.value}) {
      auto back = answer::b64_decode(answer::b64_encode(*s));
      FUZZ_CHECK(back.has_value() && *back == *s);
    }
  }
}

template <class T>
void check_error(const cronrun::Result<T>& r) {
  if (!r) FUZZ_CHECK_MSG(!r.error().message().empty() && one_printable_line(r.error().message()), r.error().message());
}

}  // namespace

int cronrun_fuzz_etcd_answer(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr long kStatus[] = {200, 200, 200, 200, 400, 404, 500, 503, 429, 401, 0, 302, 200, 200, 200, 200};
  const long status = data[0] < 0xf0 ? kStatus[data[0] & 15] : static_cast<long>(data[0]) * 3;
  std::string_view body = cronrun::fuzz::as_text(data + 1, size - 1);

  // base64 both ways on the raw bytes.
  auto again = answer::b64_decode(answer::b64_encode(body));
  FUZZ_CHECK(again.has_value() && *again == body);
  if (auto d = answer::b64_decode(body)) {
    auto twice = answer::b64_decode(answer::b64_encode(*d));
    FUZZ_CHECK(twice.has_value() && *twice == *d);
  }

  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  answer::Verdict v = answer::classify(status, doc);
  if (v.kind != answer::Verdict::Kind::ok) {
    FUZZ_CHECK(!v.why.empty());
    FUZZ_CHECK_MSG(one_printable_line(v.why), v.why);
    return 0;
  }
  FUZZ_CHECK(doc.is_object());

  auto grant = answer::lease_grant(doc);
  check_error(grant);
  auto keepalive = answer::lease_keepalive(doc, 42);
  check_error(keepalive);
  if (keepalive) FUZZ_CHECK(keepalive->id != 0);
  auto ttl = answer::lease_time_to_live(doc, 42);
  check_error(ttl);
  if (ttl) FUZZ_CHECK(ttl->id != 0);
  auto range = answer::range(doc);
  check_error(range);
  if (range) check_kvs(range->kvs);
  check_error(answer::put(doc));
  check_error(answer::delete_range(doc));
  auto txn = answer::txn(doc);
  check_error(txn);
  if (txn)
    for (const auto& r : txn->responses) check_kvs(r.kvs);
  return 0;
}
