// Placement on a host whose PID 1 is systemd (DESIGN §9): systemd is the only
// writer of the cgroup tree outside the subtrees it delegated, so cronrun asks
// it over D-Bus for a transient scope `cronrun-<job>-<run-id>.scope` with
// Delegate=yes and itself as the scope's one process — in cronrun.slice of the
// system manager as root, of the user's own manager as an ordinary user — then
// lives in a supervisor leaf of that scope and starts the job in a leaf beside
// it, with the limits written there by cronrun (the scope itself has none).
//
// The decision (decide()) and the unit's properties (scope_properties()) are
// pure, for the unit tests; the bus is behind ManagerBus, which the tests fake.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"
#include "runner/containment.h"

namespace cronrun::systemd {

// What the decision reads of the host (read_host_facts(); tests make them up).
struct HostFacts {
  bool booted = false;           // /run/systemd/system exists: PID 1 is systemd (sd_booted)
  bool pure_v2 = false;          // /sys/fs/cgroup is cgroup2, nothing on v1
  bool is_root = false;
  uid_t uid = 0;
  std::string user;              // the user's name, for the lingering advice
  bool parent_override = false;  // --cgroup-parent: the admin chose the place
  // Non-root: the runner already lives in a cgroup delegated to it (a unit with
  // Delegate=yes, `systemd-run --user --scope -p Delegate=yes`): direct placement
  // there works and leaving it for a scope would take cronrun out of its unit.
  bool own_cgroup_delegated = false;
  // Non-root: a socket of the user's manager exists (/run/user/UID/bus or
  // /run/user/UID/systemd/private): the manager runs (logged in, or lingering).
  bool user_manager = false;
};

enum class Path {
  direct,           // not a systemd host, or --cgroup-parent, or already delegated: cgroup.h as before
  system_scope,     // root: a scope in cronrun.slice of the system manager
  user_scope,       // ordinary user: a scope in cronrun.slice of the user's manager
  no_user_manager,  // ordinary user without a running user manager: the fallback
};
const char* to_string(Path p);

struct Decision {
  Path path = Path::direct;
  std::string reason;  // for --dry-run, -v and the record's note when degraded
};
Decision decide(const HostFacts& facts);

// The short cause for the fallback's one warning line: names the fix.
std::string no_user_manager_cause(const std::string& user);

// "cronrun-<job>-<run-id>.scope"; job names and run ids only hold characters a
// unit name allows.
std::string scope_unit_name(const std::string& job, const std::string& run_id);
inline constexpr const char* kSlice = "cronrun.slice";

// One (sv) of StartTransientUnit's property array.
struct Property {
  using Value = std::variant<bool, std::string, std::vector<uint32_t>>;
  std::string name;
  Value value;
  bool operator==(const Property&) const = default;
};
// The scope's properties. `oom_policy`: include OOMPolicy=continue, which managers
// before systemd 253 do not know for scopes (they never stop a scope on an OOM
// kill either); from 253 on the default would stop the scope, cronrun with it,
// when the kernel kills the job for its own --memory.
std::vector<Property> scope_properties(pid_t pid, const std::string& job, const std::string& run_id,
                                       bool oom_policy);

// The manager's side of one request. The sd-bus implementation subscribes to
// JobRemoved before it calls StartTransientUnit (as systemd-run does), so the
// signal for the job cannot be missed, and waits for that job's removal.
class ManagerBus {
 public:
  virtual ~ManagerBus() = default;
  // The job's result ("done", "failed", "timeout", ...). A D-Bus error from the
  // call is an Error whose message holds the D-Bus error name.
  virtual Result<std::string> start_transient_scope(const std::string& unit, const std::vector<Property>& props,
                                                    std::chrono::milliseconds timeout) = 0;
};

// Connects to the system manager (root: the system bus, else /run/systemd/private)
// or the user manager of `uid` (/run/user/UID/bus, else /run/user/UID/systemd/private;
// found without XDG_RUNTIME_DIR).
Result<std::unique_ptr<ManagerBus>> connect_manager(Path path, uid_t uid);

// Asks for the run's scope and waits until it is started: an error unless the
// job's result is "done". A manager that does not know OOMPolicy for scopes is
// asked again without it.
Result<void> start_run_scope(ManagerBus& bus, pid_t pid, const std::string& job, const std::string& run_id,
                             std::chrono::milliseconds timeout);

// The relative cgroup path of cronrun.slice in the manager `path` uses:
// "/cronrun.slice", or "/user.slice/user-UID.slice/user@UID.service/cronrun.slice".
std::string slice_cgroup(Path path, uid_t uid);
// The run id in a scope directory name of `job`, or nullopt when `name` is not
// one of that job's scopes ("cronrun-a-b-<id>.scope" is job "a-b"'s, not "a"'s).
std::optional<std::string> run_id_of_scope(const std::string& name, const std::string& job);

HostFacts read_host_facts(const cgroup::DiscoverOptions& opts, bool own_cgroup_delegated);

// The CgroupBackend for every host: on systemd hosts it places runs in scopes
// as above; elsewhere (and where decide() says direct) it is SystemCgroups.
class SystemdCgroups final : public CgroupBackend {
 public:
  cgroup::Placement discover(const cgroup::DiscoverOptions& opts) override;
  Result<std::vector<cgroup::LiveRun>> find_live_runs(const cgroup::Placement& placement,
                                                      const std::string& job) override;
  Result<std::unique_ptr<cgroup::JobCgroup>> create(const cgroup::Placement& placement, const std::string& job,
                                                    const std::string& run_id) override;
  std::optional<std::string> unit_of(const cgroup::JobCgroup& cg) const override;
  std::optional<std::string> fallback_cause() const override;
  // After discover(): the job cgroup a run of `job` would get in its scope
  // ("<slice>/cronrun-<job>-<run-id>.scope/job"), nullopt for direct placement.
  std::optional<std::string> planned_job_cgroup(const std::string& job) const;

 private:
  SystemCgroups direct_;
  Decision decision_;
  uid_t uid_ = 0;
  std::string user_;
  bool is_root_ = false;
  std::string unit_;        // the scope of the last create()
  std::string unit_path_;   // its cgroup, relative to the cgroup root
};

}  // namespace cronrun::systemd
