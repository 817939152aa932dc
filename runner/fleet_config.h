// Fleet mode's configuration (DESIGN §10, docs/fleet-design.md): the fleet config
// file (fleet.json: where etcd is, the key prefix, the lease TTL, the central
// history, this host's name, what to do when etcd is away) and the groups
// (switchman's format, kept in etcd at PREFIX/config).
//
// A run is in fleet mode when it has --group or --fleet-config (command line or
// job config). parse_args loads the fleet config once, before anything is locked
// or created, into JobSpec::fleet; a bad file, a bad key or a grace that does not
// fit the lease is a usage error (exit 125) naming the file and the key.
//
// Parsing is pure (parse_fleet_config, parse_groups, check_grace); only
// load_fleet_config and fqdn() look at the host.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/etcd.h"
#include "common/job_options.h"
#include "common/job_paths.h"

namespace cronrun::fleet {

// etcd unavailable when a run starts (every endpoint failed): `skip` fails closed
// (the run is recorded skipped, exit 75); `run` goes ahead on the local lock alone
// and says so in the record's fleet.note.
enum class Unavailable { skip, run };
const char* to_string(Unavailable u);

// The shortest lease fleet.json may ask for: the keepalive renews every ttl/3,
// and below this one slow round trip is a lost lease.
inline constexpr std::chrono::seconds kMinLeaseTtl{3};
inline constexpr std::chrono::seconds kDefaultLeaseTtl{30};
// The runner's safety margin between its own KILL and the lease's expiry.
inline constexpr std::chrono::milliseconds kDeadlineMargin{1000};
// The largest fleet.json read.
inline constexpr size_t kMaxConfigBytes = 64 * 1024;
// The largest etcd_ca / etcd_cert / etcd_key file read (a CA bundle of a few
// hundred certificates fits).
inline constexpr size_t kMaxPemBytes = 1024 * 1024;

struct Config {
  std::string path;                    // the file read
  std::vector<std::string> etcd;       // endpoints, "http(s)://HOST:PORT", in the file's order
  std::string prefix = "/cronrun";     // every key under it; no trailing '/'
  std::chrono::seconds lease_ttl = kDefaultLeaseTtl;
  std::optional<std::string> history;  // postgresql:// URI of the central history
  Unavailable unavailable = Unavailable::skip;
  // TLS toward the endpoints (all https:// when any is given): the files as the
  // config names them, and (load_config) their PEM text for the etcd client.
  std::optional<std::string> etcd_ca, etcd_cert, etcd_key;
  etcd::Tls tls;
  // This host's name in the fleet: --host, else the file's "host", else the FQDN.
  std::string host;
  std::string host_from;               // "--host", "fleet.json", "FQDN", "hostname" (for --dry-run)
  std::optional<std::string> host_in_file;  // the file's "host", as written
  // Set when the host name is not the FQDN because none could be found (the
  // short hostname is used): logged once and recorded in fleet.note.
  std::optional<std::string> note;
};

// The file looked for without --fleet-config: /etc/cronrun/fleet.json (root),
// else $XDG_CONFIG_HOME/cronrun/fleet.json, else ~/.config/cronrun/fleet.json.
std::string default_config_path(const Invoker& who);

// Parses fleet.json's text (JSON, `//` and `/* */` comments allowed). Strict: an
// unknown key, a missing or empty "etcd", an endpoint that is not
// http(s)://HOST:PORT, a lease_ttl under 3s or not whole seconds, a bad prefix,
// history, host or unavailable value is an error "fleet config PATH: key 'K': ...";
// so are etcd_ca, etcd_cert or etcd_key that are not absolute paths, a cert without
// its key (or a key without its cert), and any of them with an http:// endpoint.
// `host` is left as the file gives it (empty when absent): load_config resolves it.
Result<Config> parse_config(std::string_view text, const std::string& path_for_errors);

// Finds and reads the fleet config: `explicit_path` (--fleet-config), else the
// default above (a missing default is an error naming it and --fleet-config).
// Opened safely: the directory through a checked fd (owner root or the caller, no
// group/other write unless sticky, symlinks on the way judged), the file with
// O_NOFOLLOW|O_NONBLOCK, regular files only, read bounded; when root reads it, the
// file must be owned by root (or the caller) and not writable by group or others
// (it says which cluster root's runs obey). Then parse_config, and the host:
// `host_override` (--host), else the file's, else fqdn(). The etcd_ca, etcd_cert
// and etcd_key files are read the same way (bounded by kMaxPemBytes), each owned
// by root or the caller and not writable by group or others (they say which
// servers are etcd and who this host is to them); the key not readable by others
// either.
Result<Config> load_config(const std::optional<std::string>& explicit_path,
                           const std::optional<std::string>& host_override, const Invoker& who);

// This host's fully qualified name: gethostname(), and when that has no dot, the
// canonical name getaddrinfo(AI_CANONNAME) gives for it. Falls back to the short
// name with a note (why) when no FQDN is found; fails only if gethostname fails.
struct HostName {
  std::string name;
  std::optional<std::string> note;
};
Result<HostName> fqdn();

// The deadline must leave room for the grace: the job gets SIGTERM at
// last_renewal + ttl - kill_after - margin, and that must come after the next
// renewal is due (last_renewal + ttl/3), or one slow renewal would stop every job.
// So: kill_after + margin + ttl/3 < ttl. The error names --kill-after and
// lease_ttl and the largest --kill-after that fits.
bool grace_fits(std::chrono::milliseconds kill_after, std::chrono::seconds lease_ttl);
Result<void> check_grace(std::chrono::milliseconds kill_after, std::chrono::seconds lease_ttl,
                         const std::string& config_path);

// The etcd keys of fleet mode, under `prefix` (docs/fleet-design.md).
std::string config_key(std::string_view prefix);                    // PREFIX/config
std::string lock_key(std::string_view prefix, std::string_view job);  // PREFIX/locks/JOB
std::string runs_prefix(std::string_view prefix, std::string_view job);  // PREFIX/runs/JOB/
std::string tick_key(std::string_view prefix, std::string_view job, std::string_view tick);  // PREFIX/runs/JOB/TICK

// The groups, switchman's format: {"groups": {"scripts1": "box1", "scripts3":
// ["box1", "box2"], "all": ["scripts1", "box3"]}}. A member that names a group
// stands for that group's members (nesting); any other member is a host.
class Groups {
 public:
  // Other top-level keys are ignored (the document may carry more than groups);
  // "groups" must be an object whose values are a string or an array of strings.
  // `where` names the source in errors ("etcd /cronrun/config").
  static Result<Groups> parse(std::string_view json_text, std::string_view where);

  bool has(std::string_view group) const { return members_.contains(std::string(group)); }
  const std::map<std::string, std::vector<std::string>, std::less<>>& members() const { return members_; }
  // Every host of `group`, nested groups expanded, sorted and unique. Errors:
  // "group G not in the fleet config (WHERE)", and a cycle on the way:
  // "groups form a cycle: all -> scripts1 -> all (WHERE)".
  Result<std::vector<std::string>> hosts(std::string_view group) const;
  // Whether `host` is in `group` (errors as hosts()).
  Result<bool> contains(std::string_view group, std::string_view host) const;
  // The first cycle among all groups, if any (for cronprof fleet, --dry-run).
  Result<void> check_cycles() const;

 private:
  std::string where_;
  std::map<std::string, std::vector<std::string>, std::less<>> members_;
};

}  // namespace cronrun::fleet

namespace cronrun {
using FleetConfig = fleet::Config;
}  // namespace cronrun
