// The etcd client (common/etcd.h) against the fleet tier's real 3-member cluster
// (tests/fleet/cluster.sh): what it writes is read back with etcdctl, claims race
// in separate processes, leases really expire, and members really die (kill -9).
// EtcdFailover.* kill members and run alone (RUN_SERIAL); each puts the member
// back before it ends.
#include "common/etcd.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <thread>
#include <vector>

namespace cronrun::etcd {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<std::string> cluster_endpoints() {
  const char* e = std::getenv("CRONRUN_FLEET_ETCD");
  return e ? split(e, ',') : std::vector<std::string>{};
}

// Runs `cmd` through the shell; returns its stdout (trailing newline cut) and
// fails the test on a non-zero exit.
std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "popen " << cmd;
    return out;
  }
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << cmd << " -> " << st << ": " << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string cluster(const std::string& args) {
  return shell(std::string(std::getenv("CRONRUN_FLEET_CLUSTER")) + " " + args);
}

// etcdctl's view of `key`: its value, or "<none>". Independent of the client under test.
std::string etcdctl_get(const std::string& key) {
  std::string out = shell("ETCDCTL_API=3 etcdctl --endpoints=" + std::string(std::getenv("CRONRUN_FLEET_ETCD")) +
                          " get --print-value-only '" + key + "'; true");
  return out.empty() ? "<none>" : out;
}

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoints_ = cluster_endpoints();
    if (endpoints_.size() != 3 || !std::getenv("CRONRUN_FLEET_CLUSTER"))
      GTEST_SKIP() << "needs the fleet tier's cluster (CRONRUN_FLEET_ETCD, CRONRUN_FLEET_CLUSTER)";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = "/t/" + std::string(info->test_suite_name()) + "." + info->name() + "-" + std::to_string(::getpid()) + "/";
  }
  void TearDown() override {
    if (prefix_.empty()) return;
    // The cluster may be missing a member a failing test killed: any endpoint does.
    auto c = Client::open(Options{.endpoints = endpoints_, .request_timeout = 3000ms});
    auto d = c ? c->delete_range(prefix_, prefix_end(prefix_)) : CallResult<int64_t>(0);
    if (!d) std::fprintf(stderr, "cleaning %s: %s\n", prefix_.c_str(), d.error().error.message().c_str());
  }

  Client open(std::vector<std::string> eps = {}, std::chrono::milliseconds timeout = 2000ms) {
    auto c = Client::open(Options{.endpoints = eps.empty() ? endpoints_ : std::move(eps), .request_timeout = timeout});
    EXPECT_TRUE(c) << c.error().message();
    return std::move(*c);
  }

  std::vector<std::string> endpoints_;
  std::string prefix_;
};

#define ASSERT_CALL(r) ASSERT_TRUE(r) << (r).error().error.message()

TEST(EtcdPrefixEnd, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(prefix_end("/a/"), "/a0");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

TEST(EtcdOpen, RefusesEndpointsItCannotUse) {
  for (const char* bad : {"127.0.0.1:2379", "http://", "http://h:1/v3", "ftp://h:1", "http://u@h:1"}) {
    auto c = Client::open(Options{.endpoints = {bad}});
    ASSERT_FALSE(c) << bad;
    EXPECT_NE(c.error().message().find(bad), std::string::npos) << c.error().message();
  }
  EXPECT_FALSE(Client::open(Options{}));
  EXPECT_TRUE(Client::open(Options{.endpoints = {"http://127.0.0.1:1/"}}));
}

TEST_F(EtcdTest, PutRangeDeleteBinarySafe) {
  Client c = open();
  const std::string key = prefix_ + "k";
  const std::string value = std::string("v\0\xff\x01 \"x\"", 8);
  auto p = c.put(key, value);
  ASSERT_CALL(p);
  EXPECT_GT(p->revision, 0);
  auto r = c.range(key);
  ASSERT_CALL(r);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->count, 1);
  EXPECT_EQ(r->kvs[0].key, key);
  EXPECT_EQ(r->kvs[0].value, value);
  EXPECT_EQ(r->kvs[0].create_revision, p->revision);
  EXPECT_EQ(r->kvs[0].mod_revision, p->revision);
  EXPECT_EQ(r->kvs[0].version, 1);
  EXPECT_EQ(r->kvs[0].lease, 0);

  ASSERT_CALL(c.put(key, "second"));
  EXPECT_EQ(etcdctl_get(key), "second");
  r = c.range(key);
  ASSERT_CALL(r);
  EXPECT_EQ(r->kvs.at(0).version, 2);
  EXPECT_EQ(r->kvs.at(0).create_revision, p->revision);
  EXPECT_GT(r->kvs.at(0).mod_revision, p->revision);

  auto d = c.delete_range(key);
  ASSERT_CALL(d);
  EXPECT_EQ(*d, 1);
  EXPECT_EQ(etcdctl_get(key), "<none>");
  r = c.range(key);
  ASSERT_CALL(r);
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 0);
  d = c.delete_range(key);
  ASSERT_CALL(d);
  EXPECT_EQ(*d, 0);
}

TEST_F(EtcdTest, PrefixRangeLimitAndDelete) {
  Client c = open();
  for (const char* k : {"b", "a", "c"}) ASSERT_CALL(c.put(prefix_ + "p/" + k, k));
  ASSERT_CALL(c.put(prefix_ + "p0", "outside"));  // '0' is '/' + 1: just past the prefix
  auto r = c.range(prefix_ + "p/", prefix_end(prefix_ + "p/"));
  ASSERT_CALL(r);
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].value, "a");
  EXPECT_EQ(r->kvs[1].value, "b");
  EXPECT_EQ(r->kvs[2].value, "c");
  r = c.range(prefix_ + "p/", prefix_end(prefix_ + "p/"), 2);
  ASSERT_CALL(r);
  EXPECT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->count, 3);
  auto d = c.delete_range(prefix_ + "p/", prefix_end(prefix_ + "p/"));
  ASSERT_CALL(d);
  EXPECT_EQ(*d, 3);
  EXPECT_EQ(etcdctl_get(prefix_ + "p/a"), "<none>");
  EXPECT_EQ(etcdctl_get(prefix_ + "p0"), "outside");
}

// The claim: create_revision == 0 compare; N processes race, exactly one wins and
// every loser's failure branch sees the winner's value.
TEST_F(EtcdTest, TxnCreateRevisionClaimSucceedsOnceOfConcurrent) {
  const std::string key = prefix_ + "lock";
  constexpr int kN = 8;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < kN; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      auto c = Client::open(Options{.endpoints = endpoints_});
      if (!c) ::_exit(3);
      char b;
      if (::read(go[0], &b, 1) != 0) ::_exit(3);  // released together: EOF
      Compare cmp{.key = key, .target = Compare::Target::create_revision, .op = Compare::Op::equal, .number = 0};
      Op put{.kind = Op::Kind::put, .key = key, .value = std::to_string(i)};
      Op get{.kind = Op::Kind::range, .key = key};
      auto t = c->txn({cmp}, {put}, {get});
      if (!t) ::_exit(4);
      if (t->succeeded) ::_exit(t->responses.size() == 1 ? 0 : 5);
      // Lost: the failure branch's range shows a holder (someone else's value).
      if (t->responses.size() != 1 || t->responses[0].kvs.size() != 1) ::_exit(6);
      const auto& kv = t->responses[0].kvs[0];
      ::_exit(kv.create_revision > 0 && kv.value != std::to_string(i) ? 1 : 7);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);
  int winners = 0, losers = 0, winner = -1;
  for (int i = 0; i < kN; ++i) {
    int st = 0;
    ASSERT_EQ(::waitpid(kids[i], &st, 0), kids[i]);
    ASSERT_TRUE(WIFEXITED(st));
    if (WEXITSTATUS(st) == 0) {
      ++winners;
      winner = i;
    } else if (WEXITSTATUS(st) == 1) {
      ++losers;
    } else {
      ADD_FAILURE() << "child " << i << " exit " << WEXITSTATUS(st);
    }
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(losers, kN - 1);
  EXPECT_EQ(etcdctl_get(key), std::to_string(winner));
}

TEST_F(EtcdTest, TxnComparesAndBranches) {
  Client c = open();
  const std::string a = prefix_ + "a", b = prefix_ + "b";
  ASSERT_CALL(c.put(a, "one"));
  auto ra = c.range(a);
  ASSERT_CALL(ra);
  const int64_t rev = ra->kvs.at(0).mod_revision;
  using T = Compare::Target;
  using O = Compare::Op;
  struct Case {
    Compare cmp;
    bool want;
  } cases[] = {
      {{.key = a, .target = T::value, .op = O::equal, .value = "one"}, true},
      {{.key = a, .target = T::value, .op = O::not_equal, .value = "one"}, false},
      {{.key = a, .target = T::mod_revision, .op = O::equal, .number = rev}, true},
      {{.key = a, .target = T::mod_revision, .op = O::greater, .number = rev}, false},
      {{.key = a, .target = T::mod_revision, .op = O::less, .number = rev + 1}, true},
      {{.key = a, .target = T::version, .op = O::equal, .number = 1}, true},
      {{.key = a, .target = T::create_revision, .op = O::equal, .number = 0}, false},
      {{.key = b, .target = T::create_revision, .op = O::equal, .number = 0}, true},
      {{.key = a, .target = T::lease, .op = O::equal, .number = 0}, true},
  };
  for (const auto& k : cases) {
    auto t = c.txn({k.cmp}, {Op{.kind = Op::Kind::range, .key = a}}, {});
    ASSERT_CALL(t);
    EXPECT_EQ(t->succeeded, k.want) << "compare on " << k.cmp.key << " target " << int(k.cmp.target) << " op "
                                    << int(k.cmp.op);
    EXPECT_EQ(t->responses.size(), k.want ? 1u : 0u);
  }
  // Both compares must hold; the success branch puts b and deletes a.
  auto t = c.txn({{.key = a, .target = T::value, .value = "one"}, {.key = b, .target = T::create_revision}},
                 {Op{.kind = Op::Kind::put, .key = b, .value = "two"}, Op{.kind = Op::Kind::delete_range, .key = a}},
                 {Op{.kind = Op::Kind::range, .key = a}});
  ASSERT_CALL(t);
  EXPECT_TRUE(t->succeeded);
  ASSERT_EQ(t->responses.size(), 2u);
  EXPECT_EQ(t->responses[1].deleted, 1);
  EXPECT_EQ(etcdctl_get(a), "<none>");
  EXPECT_EQ(etcdctl_get(b), "two");
  EXPECT_GT(t->header.revision, rev);
}

TEST_F(EtcdTest, LeaseKeepaliveHoldsThenKeyExpires) {
  Client c = open();
  auto l = c.lease_grant(2);
  ASSERT_CALL(l);
  EXPECT_NE(l->id, 0);
  EXPECT_EQ(l->ttl_s, 2);
  const std::string key = prefix_ + "leased";
  ASSERT_CALL(c.put(key, "x", l->id));
  auto r = c.range(key);
  ASSERT_CALL(r);
  EXPECT_EQ(r->kvs.at(0).lease, l->id);

  // Renewed every 0.5 s for 3 s (past the TTL): the key stays.
  for (auto until = Steady::now() + 3s; Steady::now() < until;) {
    auto k = c.lease_keepalive(l->id);
    ASSERT_CALL(k);
    EXPECT_EQ(k->id, l->id);
    EXPECT_EQ(k->ttl_s, 2);
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(etcdctl_get(key), "x");
  auto ttl = c.lease_time_to_live(l->id);
  ASSERT_CALL(ttl);
  EXPECT_GT(ttl->ttl_s, 0);
  EXPECT_LE(ttl->ttl_s, 2);

  // Not renewed: gone once the TTL has passed (etcd's expiry check runs every 0.5 s).
  auto deadline = Steady::now() + 6s;
  while (etcdctl_get(key) != "<none>" && Steady::now() < deadline) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(etcdctl_get(key), "<none>");
  auto k = c.lease_keepalive(l->id);
  ASSERT_CALL(k);
  EXPECT_LE(k->ttl_s, 0);
  ttl = c.lease_time_to_live(l->id);
  ASSERT_CALL(ttl);
  EXPECT_LE(ttl->ttl_s, 0);
}

TEST_F(EtcdTest, RevokeDeletesAtOnceAndASecondRevokeIsRejected) {
  Client c = open();
  auto l = c.lease_grant(30);
  ASSERT_CALL(l);
  const std::string key = prefix_ + "leased";
  ASSERT_CALL(c.put(key, "x", l->id));
  EXPECT_EQ(etcdctl_get(key), "x");
  ASSERT_CALL(c.lease_revoke(l->id));
  EXPECT_EQ(etcdctl_get(key), "<none>");
  auto again = c.lease_revoke(l->id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().failure, Failure::rejected);
  const std::string msg = again.error().error.message();
  EXPECT_NE(msg.find("lease_revoke"), std::string::npos) << msg;
  EXPECT_NE(msg.find(c.current_endpoint()), std::string::npos) << msg;
  EXPECT_NE(msg.find("lease not found"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  auto k = c.lease_keepalive(l->id);
  ASSERT_CALL(k);
  EXPECT_LE(k->ttl_s, 0);
  // A put on a revoked lease is the request's own fault: rejected, not retried.
  auto p = c.put(key, "y", l->id);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().failure, Failure::rejected);
}

// A loopback port nobody listens on (connect refused).
std::string closed_endpoint() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

// A listening socket that never accepts nor answers: connections complete in the
// kernel's backlog and requests go unanswered (a black-holed member).
struct BlackHole {
  int fd = -1;
  std::string endpoint;
  BlackHole() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    endpoint = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  // How many connections were made to it so far (drains the backlog).
  int connections() {
    int n = 0;
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int c; (c = ::accept(fd, nullptr, nullptr)) >= 0; ++n) ::close(c);
    return n;
  }
  ~BlackHole() { ::close(fd); }
};

TEST_F(EtcdTest, UnavailableNamesEveryEndpointAndTheCall) {
  const std::string a = closed_endpoint(), b = closed_endpoint();
  Client c = open({a, b});
  auto r = c.range(prefix_ + "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().failure, Failure::unavailable);
  const std::string msg = r.error().error.message();
  EXPECT_NE(msg.find("etcd range"), std::string::npos) << msg;
  EXPECT_NE(msg.find(a), std::string::npos) << msg;
  EXPECT_NE(msg.find(b), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;

  // The request's own fault on a live cluster: rejected, one endpoint named.
  Client live = open();
  auto p = live.put("", "no key");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().failure, Failure::rejected);
  EXPECT_NE(p.error().error.message().find("etcd put at http://"), std::string::npos) << p.error().error.message();
}

TEST_F(EtcdTest, BlackHoledFirstEndpointIsBoundedByTheTimeoutAndTheNextAnswers) {
  BlackHole hole;
  constexpr auto kTimeout = 700ms;
  Client c = open({hole.endpoint, endpoints_[0], endpoints_[1]}, kTimeout);
  auto t0 = Steady::now();
  auto p = c.put(prefix_ + "k", "v");
  auto took = Steady::now() - t0;
  ASSERT_CALL(p);
  EXPECT_EQ(c.current_endpoint(), endpoints_[0]);
  EXPECT_GE(took, kTimeout - 50ms);  // it did wait on the hole...
  EXPECT_LT(took, kTimeout + 5s);    // ...but not unbounded
  EXPECT_EQ(hole.connections(), 1);
  // Later calls stay on the endpoint that answered: the hole gets no new connection.
  for (int i = 0; i < 5; ++i) ASSERT_CALL(c.range(prefix_ + "k"));
  EXPECT_EQ(hole.connections(), 0);
  EXPECT_EQ(etcdctl_get(prefix_ + "k"), "v");
}

TEST_F(EtcdTest, CallerDeadlineCutsTheCallShort) {
  BlackHole hole;
  Client c = open({hole.endpoint, endpoints_[0]}, 5000ms);
  c.set_deadline(Steady::now() + 400ms);
  auto t0 = Steady::now();
  auto r = c.range(prefix_ + "k");
  auto took = Steady::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().failure, Failure::unavailable);
  EXPECT_LT(took, 4s);  // far below the 5 s request timeout
  const std::string msg = r.error().error.message();
  EXPECT_NE(msg.find(endpoints_[0] + ": not tried"), std::string::npos) << msg;
  c.set_deadline(std::nullopt);
  c = open({endpoints_[0]});
  ASSERT_CALL(c.range(prefix_ + "k"));
}

// A TCP relay in front of one endpoint that counts the connections made through it.
class CountingProxy {
 public:
  explicit CountingProxy(const std::string& upstream) {
    auto colon = upstream.rfind(':');
    upstream_port_ = std::stoi(upstream.substr(colon + 1));
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    endpoint_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] { serve(); });
  }
  ~CountingProxy() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  const std::string& endpoint() const { return endpoint_; }
  int connections() const { return connections_; }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    return a;
  }
  // One thread relays every connection: poll over the listener and all pairs.
  void serve() {
    std::vector<std::pair<int, int>> pairs;
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (auto [c, u] : pairs) {
        fds.push_back({c, POLLIN, 0});
        fds.push_back({u, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      // The pairs polled (a pair accepted below is polled next round).
      for (size_t i = 0; i < pairs.size();) {
        bool closed = false;
        for (int dir = 0; dir < 2 && !closed; ++dir) {
          const pollfd& p = fds[1 + 2 * i + dir];
          if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
          char buf[16384];
          ssize_t n = ::read(p.fd, buf, sizeof buf);
          int to = dir == 0 ? pairs[i].second : pairs[i].first;
          if (n <= 0 || ::write(to, buf, size_t(n)) != n) closed = true;
        }
        if (closed) {
          ::close(pairs[i].first);
          ::close(pairs[i].second);
          pairs.erase(pairs.begin() + long(i));
          fds.erase(fds.begin() + long(1 + 2 * i), fds.begin() + long(3 + 2 * i));
        } else {
          ++i;
        }
      }
      if (fds[0].revents & POLLIN) {
        int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(upstream_port_);
        if (c >= 0 && ::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
          ++connections_;
          pairs.emplace_back(c, u);
        } else {
          if (c >= 0) ::close(c);
          ::close(u);
        }
      }
    }
    for (auto [c, u] : pairs) {
      ::close(c);
      ::close(u);
    }
  }
  int listen_fd_ = -1;
  int upstream_port_ = 0;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Every kind of call, one large body among them, over one kept-alive connection.
TEST_F(EtcdTest, CallsShareOneKeptAliveConnection) {
  CountingProxy proxy(endpoints_[0]);
  Client c = open({proxy.endpoint()});
  auto l = c.lease_grant(30);
  ASSERT_CALL(l);
  const std::string big(4096, 'x');  // past libcurl's "Expect: 100-continue" threshold
  for (int i = 0; i < 5; ++i) {
    ASSERT_CALL(c.put(prefix_ + "k" + std::to_string(i), big, l->id));
    ASSERT_CALL(c.range(prefix_, prefix_end(prefix_)));
    ASSERT_CALL(c.lease_keepalive(l->id));
    ASSERT_CALL(c.lease_time_to_live(l->id));
    ASSERT_CALL(c.txn({Compare{.key = prefix_ + "k0"}}, {}, {Op{.kind = Op::Kind::range, .key = prefix_ + "k0"}}));
  }
  ASSERT_CALL(c.delete_range(prefix_ + "k0"));
  ASSERT_CALL(c.lease_revoke(l->id));
  EXPECT_EQ(proxy.connections(), 1);
  EXPECT_EQ(etcdctl_get(prefix_ + "k1"), "<none>");  // went with the lease
}

// --- Failover: members killed for real (RUN_SERIAL).

class EtcdFailover : public EtcdTest {
 protected:
  void TearDown() override {
    for (int m : killed_) cluster("start-member " + std::to_string(m));
    EtcdTest::TearDown();
  }
  void kill_member(int m) {
    cluster("kill-member " + std::to_string(m));
    killed_.push_back(m);
  }
  int member_of(const std::string& endpoint) {
    for (size_t i = 0; i < endpoints_.size(); ++i)
      if (endpoints_[i] == endpoint) return int(i) + 1;
    ADD_FAILURE() << "not a cluster endpoint: " << endpoint;
    return 1;
  }
  std::vector<int> killed_;
};

TEST_F(EtcdFailover, KilledMemberTheClientUsedFailsOverToAnother) {
  Client c = open();
  ASSERT_CALL(c.put(prefix_ + "k", "1"));
  const std::string used = c.current_endpoint();
  kill_member(member_of(used));
  auto r = c.range(prefix_ + "k");
  ASSERT_CALL(r);
  EXPECT_EQ(r->kvs.at(0).value, "1");
  EXPECT_NE(c.current_endpoint(), used);
  ASSERT_CALL(c.put(prefix_ + "k", "2"));
  EXPECT_EQ(etcdctl_get(prefix_ + "k"), "2");
}

// The leader is killed in the middle of a sequence of puts and lease renewals: each
// call fails over (waiting out the election at worst), every acknowledged put is
// there afterwards, and the lease, renewed across the election, is still alive.
TEST_F(EtcdFailover, LeaderKilledMidSequence) {
  const int leader = std::stoi(cluster("leader"));
  std::vector<std::string> eps{endpoints_[leader - 1]};
  for (const auto& e : endpoints_)
    if (e != eps[0]) eps.push_back(e);
  Client c = open(eps, 1500ms);
  auto l = c.lease_grant(5);
  ASSERT_CALL(l);
  ASSERT_CALL(c.put(prefix_ + "leased", "x", l->id));
  int unavailable = 0;
  constexpr int kPuts = 40;
  for (int i = 0; i < kPuts; ++i) {
    if (i == 10) kill_member(leader);
    const std::string key = prefix_ + "seq/" + std::to_string(100 + i);
    // A call may come back unavailable while the survivors elect (no leader yet);
    // the caller's retry then succeeds. Bounded: the election takes about 1-2 s.
    auto until = Steady::now() + 10s;
    CallResult<Header> p = c.put(key, std::to_string(i));
    while (!p && p.error().failure == Failure::unavailable && Steady::now() < until) {
      ++unavailable;
      std::this_thread::sleep_for(100ms);
      p = c.put(key, std::to_string(i));
    }
    ASSERT_CALL(p) << " (put " << i << ")";
    if (i % 5 == 0) {
      auto k = c.lease_keepalive(l->id);
      while (!k && k.error().failure == Failure::unavailable && Steady::now() < until) {
        std::this_thread::sleep_for(100ms);
        k = c.lease_keepalive(l->id);
      }
      ASSERT_CALL(k) << " (keepalive at put " << i << ")";
      EXPECT_GT(k->ttl_s, 0);
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(c.current_endpoint(), eps[0]);
  auto r = c.range(prefix_ + "seq/", prefix_end(prefix_ + "seq/"));
  ASSERT_CALL(r);
  ASSERT_EQ(r->kvs.size(), size_t(kPuts));
  for (int i = 0; i < kPuts; ++i) EXPECT_EQ(r->kvs[i].value, std::to_string(i));
  EXPECT_EQ(etcdctl_get(prefix_ + "leased"), "x");
  RecordProperty("unavailable_retries", unavailable);
  std::printf("calls that came back unavailable during the election: %d\n", unavailable);
  const int new_leader = std::stoi(cluster("leader"));
  EXPECT_NE(new_leader, leader);
}

// Two of three members down: the survivor has no quorum, answers nothing (a
// linearizable read waits for a leader), and the client reports `unavailable`,
// bounded by the request timeout per endpoint, naming all three.
TEST_F(EtcdFailover, QuorumLostIsUnavailableAndBounded) {
  Client c = open({}, 800ms);
  ASSERT_CALL(c.put(prefix_ + "k", "v"));
  kill_member(1);
  kill_member(2);
  auto t0 = Steady::now();
  auto r = c.range(prefix_ + "k");
  auto took = Steady::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().failure, Failure::unavailable);
  EXPECT_LT(took, 3 * 800ms + 3s);
  const std::string msg = r.error().error.message();
  for (const auto& e : endpoints_) EXPECT_NE(msg.find(e), std::string::npos) << msg;
  auto l = c.lease_grant(5);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().failure, Failure::unavailable);
}

}  // namespace
}  // namespace cronrun::etcd
