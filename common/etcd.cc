// The etcd v3 JSON gateway over one reused libcurl easy handle (keep-alive: the
// connection to the endpoint that answered last stays open between calls).
//
// Gateway conventions this file relies on (etcd 3.4, grpc-gateway): requests and
// answers use the proto field names; int64 fields are JSON strings; fields at their
// zero value are left out of answers (a false `succeeded`, a zero `count`); an
// error answer is a non-200 status with {"error", "message", "code": gRPC code}.
// LeaseKeepAlive is a bidirectional stream: one JSON request as the whole body,
// then EOF, gets one {"result": {...}} (or {"error": {...}}) line and the end of
// the stream.
#include "common/etcd.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "common/etcd_answer.h"
#include "common/libcurl.h"

namespace cronrun::etcd {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

// An answer larger than this is not an etcd answer we asked for (a range over a
// prefix holding more than fleet mode ever stores): the transfer is cut.
constexpr size_t kMaxAnswer = 64u << 20;

}  // namespace

// ---- answers (common/etcd_answer.h): pure, fuzzed ----
namespace answer {
namespace {
constexpr std::string_view kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string b64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> b64_decode(std::string_view in) {
  std::array<int, 256> val{};
  val.fill(-1);
  for (size_t i = 0; i < kB64.size(); ++i) val[uint8_t(kB64[i])] = int(i);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return std::nullopt;  // data after padding
    int v = val[uint8_t(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if (pad > 2) return std::nullopt;
  return out;
}

namespace {

// An int64 field: a JSON string (the gateway's way) or a number; absent: 0.
template <class T>
T number(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<T>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    T v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  throw std::runtime_error(fmt::format("field {} is not an integer", key));
}

std::string bytes(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return {};
  if (!it->is_string()) throw std::runtime_error(fmt::format("field {} is not a string", key));
  auto d = b64_decode(it->get_ref<const std::string&>());
  if (!d) throw std::runtime_error(fmt::format("field {} is not base64", key));
  return *d;
}

const json& object(const json& o, const char* key) {
  static const json empty = json::object();
  auto it = o.find(key);
  if (it == o.end() || !it->is_object()) return empty;
  return *it;
}

Header parse_header(const json& o) {
  const json& h = object(o, "header");
  return Header{number<int64_t>(h, "revision"), number<uint64_t>(h, "member_id"), number<uint64_t>(h, "raft_term")};
}

std::vector<KeyValue> parse_kvs(const json& o) {
  std::vector<KeyValue> out;
  auto it = o.find("kvs");
  if (it == o.end() || !it->is_array()) return out;
  for (const json& kv : *it) {
    out.push_back(KeyValue{bytes(kv, "key"), bytes(kv, "value"), number<int64_t>(kv, "create_revision"),
                           number<int64_t>(kv, "mod_revision"), number<int64_t>(kv, "version"),
                           number<int64_t>(kv, "lease")});
  }
  return out;
}

// gRPC codes that mean "this member cannot serve now" (not "this request is
// wrong"): cancelled, unknown, deadline exceeded, resource exhausted, aborted,
// internal, unavailable.
bool retryable_code(int64_t code) {
  switch (code) {
    case 1: case 2: case 4: case 8: case 10: case 13: case 14:
      return true;
    default:
      return false;
  }
}

// An error answer's field: an integer, else `otherwise`.
int64_t integer_or(const json& o, const char* key, int64_t otherwise) {
  auto it = o.find(key);
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : otherwise;
}

// An error answer's field: a string, else `otherwise`.
std::string text_or(const json& o, const char* key, std::string otherwise) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : otherwise;
}

// The server's message as one line of an error (stderr, the run record): control
// characters become '?', and a long one is cut.
std::string one_line(std::string_view m) {
  constexpr size_t kMax = 512;
  std::string out(m.substr(0, kMax));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (m.size() > kMax) out += "...";
  return out;
}

// Runs `f`, a reader of an answer that throws on a field it cannot use, into a
// Result: the message names the field.
template <class F>
auto guarded(F f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace

Verdict classify(long status, const json& doc) {
  if (doc.is_discarded() || !doc.is_object())
    // Not the gateway (a proxy's page, a cut answer): another endpoint may do.
    return {Verdict::Kind::next_endpoint, fmt::format("HTTP {} with an answer that is not a JSON object", status)};
  // The error of a unary call, or of a stream (keepalive): {"error": {...}}. Its
  // fields are read without trusting their types (whatever answers on the
  // endpoint's address wrote them): one of another type is left at its default.
  int64_t code = 0;
  std::string message;
  if (status != 200) {
    code = integer_or(doc, "code", 0);
    message = text_or(doc, "message", text_or(doc, "error", "no message"));
  } else if (auto it = doc.find("error"); it != doc.end() && it->is_object()) {
    code = integer_or(*it, "grpc_code", 0);
    status = static_cast<long>(integer_or(*it, "http_code", 500));
    message = text_or(*it, "message", "no message");
  }
  if (status == 200) return {};
  std::string why = fmt::format("{} (HTTP {}, code {})", one_line(message), status, code);
  if (status >= 500 || status == 429 || retryable_code(code)) return {Verdict::Kind::next_endpoint, std::move(why)};
  return {Verdict::Kind::rejected, std::move(why)};
}

Result<Lease> lease_grant(const json& d) {
  return guarded([&] {
    if (auto e = d.value("error", std::string()); !e.empty()) throw std::runtime_error(one_line(e));
    return Lease{number<int64_t>(d, "ID"), number<int64_t>(d, "TTL"), parse_header(d)};
  });
}

Result<Lease> lease_keepalive(const json& d, int64_t id) {
  return guarded([&] {
    auto it = d.find("result");
    if (it == d.end() || !it->is_object()) throw std::runtime_error("no result in the keepalive stream");
    Lease l{number<int64_t>(*it, "ID"), number<int64_t>(*it, "TTL"), parse_header(*it)};
    if (l.id == 0) l.id = id;
    return l;
  });
}

Result<Lease> lease_time_to_live(const json& d, int64_t id) {
  return guarded([&] {
    Lease l{number<int64_t>(d, "ID"), number<int64_t>(d, "TTL"), parse_header(d)};
    if (l.id == 0) l.id = id;
    return l;
  });
}

Result<RangeResult> range(const json& d) {
  return guarded([&] { return RangeResult{parse_header(d), parse_kvs(d), number<int64_t>(d, "count")}; });
}

Result<Header> put(const json& d) {
  return guarded([&] { return parse_header(d); });
}

Result<int64_t> delete_range(const json& d) {
  return guarded([&] { return number<int64_t>(d, "deleted"); });
}

Result<TxnResult> txn(const json& d) {
  return guarded([&] {
    TxnResult r;
    r.header = parse_header(d);
    r.succeeded = d.value("succeeded", false);
    if (auto it = d.find("responses"); it != d.end() && it->is_array()) {
      for (const json& resp : *it) {
        TxnResult::OpResult o;
        if (auto rr = resp.find("response_range"); rr != resp.end()) o.kvs = parse_kvs(*rr);
        if (auto rd = resp.find("response_delete_range"); rd != resp.end()) o.deleted = number<int64_t>(*rd, "deleted");
        r.responses.push_back(std::move(o));
      }
    }
    return r;
  });
}

}  // namespace answer

namespace {

using answer::b64_encode;

json op_json(const Op& op) {
  json r = {{"key", b64_encode(op.key)}};
  if (!op.range_end.empty()) r["range_end"] = b64_encode(op.range_end);
  switch (op.kind) {
    case Op::Kind::range:
      if (op.limit > 0) r["limit"] = std::to_string(op.limit);
      return {{"request_range", r}};
    case Op::Kind::put:
      r.erase("range_end");
      r["value"] = b64_encode(op.value);
      if (op.lease != 0) r["lease"] = std::to_string(op.lease);
      return {{"request_put", r}};
    case Op::Kind::delete_range:
      return {{"request_delete_range", r}};
  }
  return {};
}

json compare_json(const Compare& c) {
  static constexpr const char* kResult[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json r = {{"key", b64_encode(c.key)}, {"result", kResult[static_cast<int>(c.op)]}};
  switch (c.target) {
    case Compare::Target::create_revision:
      r["target"] = "CREATE";
      r["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::mod_revision:
      r["target"] = "MOD";
      r["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::version:
      r["target"] = "VERSION";
      r["version"] = std::to_string(c.number);
      break;
    case Compare::Target::value:
      r["target"] = "VALUE";
      r["value"] = b64_encode(c.value);
      break;
    case Compare::Target::lease:
      r["target"] = "LEASE";
      r["lease"] = std::to_string(c.number);
      break;
  }
  return r;
}

size_t append_answer(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > kMaxAnswer) return 0;  // libcurl fails the transfer
  s->append(data, size * n);
  return size * n;
}

bool valid_endpoint(std::string_view e) {
  std::string_view rest;
  if (e.starts_with("http://"))
    rest = e.substr(7);
  else if (e.starts_with("https://"))
    rest = e.substr(8);
  else
    return false;
  if (rest.empty() || rest.front() == ':') return false;
  return rest.find_first_of("/?#@ \t") == std::string_view::npos;
}

}  // namespace

std::string prefix_end(std::string_view p) {
  std::string end(p);
  while (!end.empty()) {
    if (uint8_t(end.back()) < 0xff) {
      end.back() = char(uint8_t(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  // Empty prefix or only 0xff bytes: every key from `p` on ("\0" to etcd).
  return std::string(1, '\0');
}

struct Client::Impl {
  Options opts;
  const libcurl::Api* api = nullptr;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  size_t current = 0;
  std::optional<Steady::time_point> deadline;
  std::string answer;
  // libcurl's own words for the last failure (a TLS verification names the
  // certificate problem; curl_easy_strerror only its class).
  char error_text[CURL_ERROR_SIZE] = {};

  ~Impl() {
    if (easy) api->easy_cleanup(easy);
    if (headers) api->slist_free_all(headers);
  }

  // An etcd with --client-cert-auth closes a TLS connection that offers no
  // certificate, and libcurl words that as a socket error ("getpeername() failed
  // with errno 107"): say what is likely missing.
  std::string unoffered_certificate_hint(CURLcode rc, const std::string& endpoint) const {
    const bool closed = rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_SSL_CONNECT_ERROR ||
                        rc == CURLE_GOT_NOTHING;
    if (!closed || !opts.tls.cert_pem.empty() || !endpoint.starts_with("https://")) return "";
    return " (the server closed the TLS connection, and no client certificate was offered: an etcd run with "
           "--client-cert-auth wants one, fleet.json's etcd_cert and etcd_key)";
  }

  // POSTs `body` to `path` of each endpoint in turn (from the one that answered
  // last) until one answers; returns its JSON. `call` names the call in errors.
  CallResult<json> post(const char* call, const char* path, const json& body) {
    const std::string payload = body.dump();
    std::string tried;
    const size_t n = opts.endpoints.size();
    for (size_t k = 0; k < n; ++k) {
      const size_t idx = (current + k) % n;
      const std::string& ep = opts.endpoints[idx];
      auto timeout = opts.request_timeout;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Steady::now());
        if (left.count() <= 0) {
          tried += fmt::format("{}{}: not tried, the caller's deadline passed", tried.empty() ? "" : "; ", ep);
          break;
        }
        timeout = std::min(timeout, left);
      }
      auto connect_timeout = std::min(opts.connect_timeout, timeout);
      const std::string url = ep + path;
      answer.clear();
      error_text[0] = '\0';
      // At least a millisecond: a timeout of 0 means none to libcurl.
      api->easy_setopt(easy, CURLOPT_URL, url.c_str());
      api->easy_setopt(easy, CURLOPT_POSTFIELDS, payload.c_str());
      api->easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
      api->easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(timeout.count(), 1)));
      api->easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<int64_t>(connect_timeout.count(), 1)));
      CURLcode rc = api->easy_perform(easy);
      auto note = [&](std::string why) { tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", ep, why); };
      if (rc != CURLE_OK) {
        if (rc == CURLE_OPERATION_TIMEDOUT)
          note(fmt::format("no answer within {} ms", timeout.count()));
        else
          note((error_text[0] ? std::string(error_text) : std::string(api->easy_strerror(rc))) +
               unoffered_certificate_hint(rc, ep));
        continue;
      }
      long status = 0;
      api->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      json doc = json::parse(answer, nullptr, false);
      auto verdict = answer::classify(status, doc);
      if (verdict.kind == answer::Verdict::Kind::next_endpoint) {
        note(std::move(verdict.why));
        continue;
      }
      current = idx;
      if (verdict.kind == answer::Verdict::Kind::rejected)
        return std::unexpected(
            CallError{Failure::rejected, Error(fmt::format("etcd {} at {}: {}", call, ep, verdict.why))});
      return doc;
    }
    return std::unexpected(
        CallError{Failure::unavailable, Error(fmt::format("etcd {}: no endpoint answered: {}", call, tried))});
  }

  // post() then `parse` of the answer (common/etcd_answer.h); an answer that does
  // not parse is `rejected` (the endpoint answered, with something this client
  // cannot use).
  template <class T, class F>
  CallResult<T> call(const char* name, const char* path, const json& body, F parse) {
    auto doc = post(name, path, body);
    if (!doc) return std::unexpected(std::move(doc.error()));
    Result<T> r = parse(*doc);
    if (!r)
      return std::unexpected(CallError{
          Failure::rejected, Error(fmt::format("etcd {} at {}: unexpected answer: {}", name, opts.endpoints[current],
                                               r.error().message()))});
    if constexpr (std::is_void_v<T>) return {};
    else return std::move(*r);
  }
};

namespace {

// The PEM blobs of `tls` on the handle (libcurl copies them). A libcurl whose TLS
// backend cannot take them from memory says so here, once, not at every request.
Result<void> set_tls(const libcurl::Api& a, CURL* c, const Tls& tls) {
  auto blob = [&](CURLoption option, const std::string& pem, const char* what) -> Result<void> {
    if (pem.empty()) return {};
    curl_blob b{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
    CURLcode rc = a.easy_setopt(c, option, &b);
    if (rc != CURLE_OK)
      return fail(fmt::format("etcd client: this libcurl cannot take the {} from memory ({})", what,
                              a.easy_strerror(rc)),
                  ErrorKind::config);
    return {};
  };
  if (auto r = blob(CURLOPT_CAINFO_BLOB, tls.ca_pem, "etcd_ca certificates"); !r) return r;
  if (auto r = blob(CURLOPT_SSLCERT_BLOB, tls.cert_pem, "etcd_cert certificate"); !r) return r;
  if (!tls.cert_pem.empty()) a.easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
  if (auto r = blob(CURLOPT_SSLKEY_BLOB, tls.key_pem, "etcd_key private key"); !r) return r;
  if (!tls.key_pem.empty()) a.easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  return {};
}

}  // namespace

Result<Client> Client::open(Options opts) {
  if (opts.endpoints.empty()) return fail("etcd: no endpoints given", ErrorKind::config);
  for (auto& e : opts.endpoints) {
    std::string trimmed = e;
    while (trimmed.ends_with('/') && !trimmed.ends_with("://")) trimmed.pop_back();  // "http://h:1/"
    if (!valid_endpoint(trimmed))
      return fail(fmt::format("etcd endpoint '{}': expected http(s)://host[:port] without a path", e),
                  ErrorKind::config);
    e = std::move(trimmed);
  }
  if (opts.request_timeout.count() <= 0 || opts.connect_timeout.count() <= 0)
    return fail("etcd: request and connect timeouts must be positive", ErrorKind::config);
  auto api = libcurl::load();
  if (!api) return std::unexpected(std::move(api.error()).context("etcd client"));
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(opts);
  impl->api = *api;
  impl->easy = impl->api->easy_init();
  if (!impl->easy) return fail("etcd client: curl_easy_init failed");
  const auto& a = *impl->api;
  CURL* c = impl->easy;
  a.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  a.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  a.easy_setopt(c, CURLOPT_WRITEFUNCTION, &append_answer);
  a.easy_setopt(c, CURLOPT_WRITEDATA, &impl->answer);
  a.easy_setopt(c, CURLOPT_ERRORBUFFER, impl->error_text);
  if (auto t = set_tls(a, c, impl->opts.tls); !t) return std::unexpected(t.error());
  // "Expect:" off: for a larger body (a transaction can be one) libcurl would
  // first wait for the server's 100-continue, a round trip per call; without it
  // the body goes out with the headers.
  for (const char* h : {"Content-Type: application/json", "Expect:"}) {
    curl_slist* l = a.slist_append(impl->headers, h);
    if (!l) return fail("etcd client: curl_slist_append failed");
    impl->headers = l;
  }
  a.easy_setopt(c, CURLOPT_HTTPHEADER, impl->headers);
  return Client(std::move(impl));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

void Client::set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
  impl_->deadline = deadline;
}

const std::string& Client::current_endpoint() const { return impl_->opts.endpoints[impl_->current]; }

CallResult<Lease> Client::lease_grant(int64_t ttl_s) {
  return impl_->call<Lease>("lease_grant", "/v3/lease/grant", json{{"TTL", std::to_string(ttl_s)}},
                            [](const json& d) { return answer::lease_grant(d); });
}

CallResult<Lease> Client::lease_keepalive(int64_t id) {
  return impl_->call<Lease>("lease_keepalive", "/v3/lease/keepalive", json{{"ID", std::to_string(id)}},
                            [id](const json& d) { return answer::lease_keepalive(d, id); });
}

CallResult<Lease> Client::lease_time_to_live(int64_t id) {
  return impl_->call<Lease>("lease_time_to_live", "/v3/lease/timetolive", json{{"ID", std::to_string(id)}},
                            [id](const json& d) { return answer::lease_time_to_live(d, id); });
}

CallResult<void> Client::lease_revoke(int64_t id) {
  return impl_->call<void>("lease_revoke", "/v3/lease/revoke", json{{"ID", std::to_string(id)}},
                           [](const json&) -> Result<void> { return {}; });
}

CallResult<RangeResult> Client::range(const std::string& key, const std::string& range_end, int64_t limit) {
  json body = {{"key", b64_encode(key)}};
  if (!range_end.empty()) body["range_end"] = b64_encode(range_end);
  if (limit > 0) body["limit"] = std::to_string(limit);
  return impl_->call<RangeResult>("range", "/v3/kv/range", body, [](const json& d) { return answer::range(d); });
}

CallResult<Header> Client::put(const std::string& key, const std::string& value, int64_t lease) {
  json body = {{"key", b64_encode(key)}, {"value", b64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  return impl_->call<Header>("put", "/v3/kv/put", body, [](const json& d) { return answer::put(d); });
}

CallResult<int64_t> Client::delete_range(const std::string& key, const std::string& range_end) {
  json body = {{"key", b64_encode(key)}};
  if (!range_end.empty()) body["range_end"] = b64_encode(range_end);
  return impl_->call<int64_t>("delete_range", "/v3/kv/deleterange", body,
                              [](const json& d) { return answer::delete_range(d); });
}

CallResult<TxnResult> Client::txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
                                  const std::vector<Op>& failure) {
  json body = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compare) body["compare"].push_back(compare_json(c));
  for (const auto& o : success) body["success"].push_back(op_json(o));
  for (const auto& o : failure) body["failure"].push_back(op_json(o));
  return impl_->call<TxnResult>("txn", "/v3/kv/txn", body, [](const json& d) { return answer::txn(d); });
}

}  // namespace cronrun::etcd
