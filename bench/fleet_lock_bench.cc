// Fleet lock latency over the etcd client (bench/fleet_lock.sh): per sample, the
// acquire of fleet mode's claim (lease_grant + the claim txn: lock and tick keys
// compared at create_revision 0, both put) and the release (lease_revoke), on the
// endpoints given. Prints p50 / p99 / max in milliseconds. Figures for people,
// not a test.
//
//   fleet_lock_bench ENDPOINTS(comma-separated) [SAMPLES] [PREFIX]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include "common/etcd.h"

using namespace cronrun::etcd;
using Steady = std::chrono::steady_clock;

namespace {

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size())))]; };
  std::printf("%-28s %8.2f %8.2f %8.2f %8.2f\n", what, at(0.50), at(0.99), v.back(), v.front());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fleet_lock_bench ENDPOINTS [SAMPLES] [PREFIX]\n");
    return 2;
  }
  Options opts;
  for (std::string s = argv[1]; !s.empty();) {
    size_t c = s.find(',');
    opts.endpoints.push_back(s.substr(0, c));
    s = c == std::string::npos ? "" : s.substr(c + 1);
  }
  const int samples = argc > 2 ? std::atoi(argv[2]) : 1000;
  const std::string prefix = argc > 3 ? argv[3] : "/bench/lock-" + std::to_string(::getpid()) + "/";
  auto client = Client::open(opts);
  if (!client) {
    std::fprintf(stderr, "fleet_lock_bench: %s\n", client.error().message().c_str());
    return 1;
  }
  const std::string lock = prefix + "locks/job";
  std::vector<double> grant, claim, acquire, release;
  for (int i = -20; i < samples; ++i) {  // 20 warm-up rounds, not counted
    const std::string tick = prefix + "runs/job/" + std::to_string(1000000 + i);
    auto t0 = Steady::now();
    auto lease = client->lease_grant(15);
    auto t1 = Steady::now();
    if (!lease) {
      std::fprintf(stderr, "fleet_lock_bench: %s\n", lease.error().error.message().c_str());
      return 1;
    }
    Compare free_lock{.key = lock};
    Compare free_tick{.key = tick};
    Op put_lock{.kind = Op::Kind::put, .key = lock, .value = R"({"run_id":"bench","host":"bench"})", .lease = lease->id};
    Op put_tick{.kind = Op::Kind::put, .key = tick, .value = R"({"run_id":"bench","host":"bench"})"};
    auto txn = client->txn({free_lock, free_tick}, {put_lock, put_tick},
                           {Op{.kind = Op::Kind::range, .key = lock}, Op{.kind = Op::Kind::range, .key = tick}});
    auto t2 = Steady::now();
    if (!txn || !txn->succeeded) {
      std::fprintf(stderr, "fleet_lock_bench: claim %d: %s\n", i,
                   txn ? "lost (the lock is held: another bench on this prefix?)" : txn.error().error.message().c_str());
      return 1;
    }
    auto rv = client->lease_revoke(lease->id);
    auto t3 = Steady::now();
    if (!rv) {
      std::fprintf(stderr, "fleet_lock_bench: %s\n", rv.error().error.message().c_str());
      return 1;
    }
    if (i < 0) continue;
    grant.push_back(ms(t1 - t0));
    claim.push_back(ms(t2 - t1));
    acquire.push_back(ms(t2 - t0));
    release.push_back(ms(t3 - t2));
  }
  if (auto d = client->delete_range(prefix, prefix_end(prefix)); !d)
    std::fprintf(stderr, "fleet_lock_bench: cleaning %s: %s\n", prefix.c_str(), d.error().error.message().c_str());
  std::printf("%d samples, endpoints %s\n", samples, argv[1]);
  std::printf("%-28s %8s %8s %8s %8s\n", "ms", "p50", "p99", "max", "min");
  report("lease_grant", grant);
  report("claim txn", claim);
  report("acquire (grant + txn)", acquire);
  report("release (lease_revoke)", release);
  return 0;
}
