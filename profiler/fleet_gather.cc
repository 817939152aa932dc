// The reading half of `cronprof fleet` (fleet.h): etcd through common/etcd.h —
// `<prefix>/config` for the groups, a range over `<prefix>/locks/` for the holders
// (the fence is each key's create_revision) and each lock's lease time-to-live —
// and the central history through common/pg_history.h. Reads only: cronprof never
// writes to etcd or to the central history.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/etcd.h"
#include "profiler/fleet.h"

namespace cronrun::prof::fleet {

void gather_history(const Source& source, FleetView& v);  // fleet_gather_pg.cc

namespace {

// The lock's value: {"run_id","host","pid","tick","started_at"} (docs/fleet-design.md).
void parse_lock_value(const std::string& value, Holder& h) {
  nlohmann::json j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    h.problem = "the lock's value is not a JSON object";
    return;
  }
  auto str = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  h.run_id = str("run_id");
  h.host = str("host");
  h.tick = str("tick");
  if (auto s = str("started_at"); !s.empty()) h.started_at = s;
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer()) h.pid = it->get<int64_t>();
  if (h.host.empty()) h.problem = "the lock's value names no host";
}

void gather_etcd(const Source& source, FleetView& v) {
  if (source.endpoints.empty()) {
    v.etcd_error = "the fleet config names no etcd endpoint";
    return;
  }
  etcd::Options o;
  o.endpoints = source.endpoints;
  o.tls = source.tls;
  auto client = etcd::Client::open(o);
  if (!client) {
    v.etcd_error = client.error().message();
    return;
  }
  auto config = client->range(source.prefix + "/config");
  if (!config) {
    v.etcd_error = config.error().error.message();
    return;
  }
  if (!config->kvs.empty()) {
    v.groups_configured = true;
    parse_groups(config->kvs.front().value, v);
  }
  const std::string locks = source.prefix + "/locks/";
  auto held = client->range(locks, etcd::prefix_end(locks));
  if (!held) {
    v.etcd_error = held.error().error.message();
    return;
  }
  for (const etcd::KeyValue& kv : held->kvs) {
    Holder h;
    h.job = kv.key.substr(locks.size());
    h.fence = kv.create_revision;
    parse_lock_value(kv.value, h);
    if (kv.lease != 0) {
      // The lease's time left; a lease gone meanwhile reads as expired (<= 0).
      if (auto ttl = client->lease_time_to_live(kv.lease)) h.ttl_left_s = ttl->ttl_s;
    }
    v.holders.push_back(std::move(h));
  }
  std::sort(v.holders.begin(), v.holders.end(), [](const Holder& a, const Holder& b) { return a.job < b.job; });
}

}  // namespace

FleetView gather(const Source& source, double now_s, double quiet_after_s) {
  FleetView v;
  v.now_s = now_s;
  v.quiet_after_s = quiet_after_s;
  v.config_path = source.config_path;
  v.prefix = source.prefix;
  v.endpoints = source.endpoints;
  gather_etcd(source, v);
  gather_history(source, v);
  mark_lost(v);
  return v;
}

}  // namespace cronrun::prof::fleet
