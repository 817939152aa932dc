// `cronprof fleet [status]`: the fleet at a glance (DESIGN.md section 10) — the
// groups (etcd `<prefix>/config`), who holds which job's lock (etcd
// `<prefix>/locks/`), runs in progress across hosts (the central history's
// `running` rows, each checked against its lock), the dead letters the forwarder
// set aside, and hosts the central history has not heard from lately.
//
// Split in two: gather() reads etcd and PostgreSQL into a FleetView of plain
// values (fleet_gather.cc); everything after that — which run is lost, what
// alerts, the table and the JSON — is pure and tested without servers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/etcd.h"

namespace cronrun::prof::fleet {

inline constexpr const char* kSchema = "cronrun.fleet/1";
inline constexpr double kDefaultQuietAfterS = 3600;
inline constexpr size_t kNewestDeadLetters = 5;
// Runs the central history already holds as `lost` are listed while they started
// less than this long ago.
inline constexpr double kRecentLostS = 3600;

struct Group {
  std::string name{};
  std::vector<std::string> members{};  // as configured (hosts and group names)
  std::vector<std::string> hosts{};    // expanded, sorted
  std::optional<std::string> error{};  // a cycle, a member that is neither
};

// One `<prefix>/locks/<job>` key.
struct Holder {
  std::string job{};
  std::string host{};
  std::string run_id{};
  std::string tick{};
  std::optional<std::string> started_at{};
  std::optional<int64_t> pid{};
  int64_t fence = 0;                   // the key's create_revision
  std::optional<int64_t> ttl_left_s{};   // of its lease; nullopt: not asked / no lease
  std::optional<std::string> problem{};  // a value that is not the lock's JSON
};

// A central `running` (or forwarder-marked `lost`) row.
struct InProgress {
  std::string run_id{};
  std::string job{};
  std::string host{};
  std::optional<std::string> tick{};
  std::optional<int64_t> fence{};
  double started_at_s = 0;
  bool lost = false;       // set by mark_lost() or already `lost` in the history
  std::string lost_why{};    // why it reads as lost
};

struct DeadLetter {
  int64_t id = 0;
  std::string host{};
  std::string run_id{};  // "" when the payload had none
  std::string reason{};
  double received_at_s = 0;
};

struct HostSeen {
  std::string host{};
  double last_seen_s = 0;
};

struct FleetView {
  double now_s = 0;
  double quiet_after_s = kDefaultQuietAfterS;
  std::string config_path;             // the fleet.json read ("" when none)
  std::string prefix;
  std::vector<std::string> endpoints;
  std::string history;                 // the central history's URI, password hidden; "" when none

  // etcd: nullopt error = read.
  std::optional<std::string> etcd_error;
  std::optional<std::string> groups_error;  // the config key unreadable / not JSON
  bool groups_configured = false;           // `<prefix>/config` exists
  std::vector<Group> groups;
  std::vector<Holder> holders;

  // The central history: nullopt error = read.
  std::optional<std::string> history_error;
  std::vector<InProgress> running;
  uint64_t dead_letters_total = 0;
  std::vector<DeadLetter> dead_letters;  // newest first, at most kNewestDeadLetters
  std::vector<HostSeen> hosts;
};

// Runs in progress whose lock is gone: a `running` row of a fenced run is lost
// when etcd holds no lock of its job, or a lock with another fence (a newer run's).
// Only with the locks read (no etcd_error); rows the history already marks lost
// stay lost.
void mark_lost(FleetView& v);
// Hosts whose newest record is older than quiet_after_s, oldest first.
std::vector<HostSeen> quiet_hosts(const FleetView& v);
// Lost runs or quiet hosts: what `cronprof fleet` exits 8 for.
bool alerts(const FleetView& v);

// {"schema": "cronrun.fleet/1", ...}
nlohmann::json to_json(const FleetView& v);
// The human view, every table fitted to `width` (0: no limit).
std::string render(const FleetView& v, size_t width);

// Where gather() reads: the fleet config's etcd endpoints and prefix, and the
// central history (fleet.json "history", or --history postgresql://...).
struct Source {
  std::string config_path;
  std::vector<std::string> endpoints;
  etcd::Tls tls;            // the fleet config's etcd_ca / etcd_cert / etcd_key, read
  std::string prefix = "/cronrun";
  std::string history_uri;  // "" when the fleet has none
};
// Reads etcd (groups, locks and their leases' time left) and the central history
// (running rows, dead letters, hosts' last records) into a view, then marks lost
// runs. A source that cannot be read is noted in the view (etcd_error,
// history_error), never fatal: the rest is still shown.
FleetView gather(const Source& source, double now_s, double quiet_after_s);

// The switchman groups of a `<prefix>/config` value ({"groups": {"g": "box1" |
// ["box1", "g2"]}}, runner/fleet_config.h's reader) with nesting expanded. A value
// that is not that shape gives groups_error; a cycle is that group's error.
void parse_groups(const std::string& config_json, FleetView& v);

}  // namespace cronrun::prof::fleet
