// What an etcd endpoint answers, read into values (pure: no I/O). The client
// (common/etcd.cc) posts a request and hands the answer here; so do the fuzzer
// (tests/fuzz/etcd_answer_fuzz.cc) and the unit tests: an answer is input this
// host does not control (any proxy or host on the endpoint's address, and the
// keys and values anyone with etcd access wrote).
//
// Nothing here throws: a field of the wrong type or a value that is not base64 is
// an Error naming the field (the client reports it as `rejected`, "unexpected
// answer").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/etcd.h"

namespace cronrun::etcd::answer {

std::string b64_encode(std::string_view in);
// Standard alphabet, '=' padding only at the end; nullopt on anything else.
std::optional<std::string> b64_decode(std::string_view in);

// What one HTTP answer means for the call, from its status and its body parsed
// without exceptions (`doc` discarded when the body is not JSON).
struct Verdict {
  enum class Kind {
    ok,             // the call's answer: read it with the functions below
    next_endpoint,  // this member cannot serve now (5xx, 429, a retryable gRPC code, not JSON)
    rejected,       // the server refused this request
  };
  Kind kind = Kind::ok;
  std::string why;  // not ok: "MESSAGE (HTTP S, code C)"
};
Verdict classify(long http_status, const nlohmann::json& doc);

// An answer classified ok, read as the answer to each call.
Result<Lease> lease_grant(const nlohmann::json& d);
Result<Lease> lease_keepalive(const nlohmann::json& d, int64_t id);
Result<Lease> lease_time_to_live(const nlohmann::json& d, int64_t id);
Result<RangeResult> range(const nlohmann::json& d);
Result<Header> put(const nlohmann::json& d);
Result<int64_t> delete_range(const nlohmann::json& d);
Result<TxnResult> txn(const nlohmann::json& d);

}  // namespace cronrun::etcd::answer
