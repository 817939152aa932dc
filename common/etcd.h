// A small etcd v3 client over the JSON gateway (etcd 3.4: POST /v3/<service>/<method>,
// keys and values base64 in the JSON), with libcurl loaded through common/libcurl.h
// and nlohmann/json. Fleet mode (DESIGN.md section 10) needs only these calls: lease
// grant / keepalive / revoke / time-to-live, range, put, delete range, and one
// transaction (compare + success/failure ops), which is what the lock-and-tick
// claim is.
//
// Endpoints: several (`http://127.0.0.1:2379`, ...); a request goes to the endpoint
// that answered last, and on a transport failure (connect refused, timeout, a
// gateway 5xx such as "etcdserver: leader changed" / "no leader") to the next one,
// until each has been tried once within the call's deadline. An error the server
// gives for the request itself (a compare on a bad key, a lease not found) is not
// retried elsewhere: it is returned, kind `EtcdError::rejected`.
//
// What counts as a transport failure (next endpoint): no connection, no answer
// within the request timeout, HTTP 5xx or 429, a gRPC code of cancelled / unknown /
// deadline exceeded / resource exhausted / aborted / internal / unavailable, an
// answer that is not a JSON object. Anything else the server says is `rejected`,
// as is a JSON answer this client cannot read.
//
// Retried calls: a request that timed out or met "leader changed" may still have
// been applied by the cluster, and the retry on the next endpoint then sees that
// write. For the claim transaction this means a failure branch that shows the
// caller's own run_id in the lock / tick key: the claim is the caller's. A retried
// lease_grant may leave an unused lease behind (it expires after its TTL); a
// retried lease_revoke may come back `rejected` "lease not found".
//
// Not thread-safe: one Client per thread or process, and not shared across fork()
// (the child would write on the parent's kept-alive connection): a forked process
// opens its own. Every call is bounded by the client's request timeout per
// endpoint tried (and never waits past the caller's deadline, set_deadline()).
//
// The gateway's LeaseKeepAlive is a stream: lease_keepalive() sends one request as
// the whole body and reads the one answer before the stream ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cronrun::etcd {

// TLS toward https:// endpoints (fleet.json's etcd_ca, etcd_cert, etcd_key): the
// PEM text itself, not paths. The caller reads the files through its own checked
// opens and libcurl takes them from memory, so no path is opened a second time by
// a library that would follow a symlink. Empty members: libcurl's defaults (the
// system's CA store, no client certificate).
struct Tls {
  std::string ca_pem{};    // the CAs that sign the servers' certificates
  std::string cert_pem{};  // this client's certificate (etcd --client-cert-auth)
  std::string key_pem{};   // its private key
  bool empty() const { return ca_pem.empty() && cert_pem.empty() && key_pem.empty(); }
};

// The string members have initializers so that designated initializers may leave
// them out under -Wmissing-field-initializers.
struct Options {
  std::vector<std::string> endpoints{};  // http(s)://host:port, no path
  // One HTTP request's bound (connect + answer); a call tries each endpoint once.
  std::chrono::milliseconds request_timeout{2000};
  std::chrono::milliseconds connect_timeout{500};
  Tls tls{};
};

// The errno-free failure of a call: `unavailable` (no endpoint answered: cluster
// away, partitioned, no leader) vs `rejected` (the server answered with an error for
// this request). Carried in Error's message; the kind is here.
enum class Failure { unavailable, rejected };

struct CallError {
  Failure failure = Failure::unavailable;
  Error error;  // one line: what was asked, of which endpoint(s), and what happened
};
template <class T>
using CallResult = std::expected<T, CallError>;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct Header {
  int64_t revision = 0;  // the store's revision after this request
  uint64_t member_id = 0;
  uint64_t raft_term = 0;
};

struct Lease {
  int64_t id = 0;
  int64_t ttl_s = 0;  // as granted / as remaining (keepalive, time_to_live); <= 0: gone
  Header header;
};

// One compare of a transaction: `target` of `key` against a value.
struct Compare {
  enum class Target { create_revision, mod_revision, version, value, lease };
  enum class Op { equal, greater, less, not_equal };
  std::string key{};
  Target target = Target::create_revision;
  Op op = Op::equal;
  int64_t number = 0;   // for the revision / version / lease targets
  std::string value{};  // for Target::value
};

// One operation of a transaction.
struct Op {
  enum class Kind { range, put, delete_range };
  Kind kind = Kind::range;
  std::string key{};
  std::string range_end{};  // empty: just `key`; "\0" semantics as etcd: see prefix_end()
  std::string value{};      // put
  int64_t lease = 0;      // put
  int64_t limit = 0;      // range; 0 = no limit
};

struct RangeResult {
  Header header;
  std::vector<KeyValue> kvs;
  int64_t count = 0;
};

struct TxnResult {
  Header header;
  bool succeeded = false;
  // One entry per op of the branch that ran: kvs for a range, prev-less put and
  // delete report nothing but the number deleted.
  struct OpResult {
    std::vector<KeyValue> kvs;  // range
    int64_t deleted = 0;        // delete_range
  };
  std::vector<OpResult> responses;
};

// The key just past every key with prefix `p` (etcd's range_end for a prefix).
std::string prefix_end(std::string_view p);

class Client {
 public:
  // Loads libcurl (an error names it when missing) and checks the endpoint syntax;
  // does not contact the cluster.
  static Result<Client> open(Options opts);
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  CallResult<Lease> lease_grant(int64_t ttl_s);
  // One keepalive round trip; ttl_s <= 0 in the answer: the lease is gone.
  CallResult<Lease> lease_keepalive(int64_t id);
  CallResult<Lease> lease_time_to_live(int64_t id);
  CallResult<void> lease_revoke(int64_t id);

  CallResult<RangeResult> range(const std::string& key, const std::string& range_end = {}, int64_t limit = 0);
  CallResult<Header> put(const std::string& key, const std::string& value, int64_t lease = 0);
  CallResult<int64_t> delete_range(const std::string& key, const std::string& range_end = {});
  CallResult<TxnResult> txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
                            const std::vector<Op>& failure);

  // Calls after this never wait past `deadline` (each request's timeout is cut to
  // what is left; an endpoint not reached in time is reported as not tried);
  // nullopt: only the request timeout bounds a call. For the keepalive process,
  // whose renewal is worthless after the lease's own end.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline);

  // The endpoint the last successful call used.
  const std::string& current_endpoint() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cronrun::etcd
