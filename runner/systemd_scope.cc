// Transient scopes over sd-bus (systemd_scope.h), modelled on what systemd-run
// --scope, crun and runc do, and on systemd's rules for delegation
// (systemd.io/CGROUP_DELEGATION):
//  * Only systemd writes outside a delegated subtree. The scope is delegated
//    (Delegate=yes): systemd enables every controller on the way down to it and
//    keeps out of what is below. Inside, the no-internal-processes rule still
//    holds, so cronrun first moves itself into <scope>/supervisor and only then
//    enables controllers for <scope>/job, where the job is cloned into.
//  * PIDs=[cronrun] makes the manager move cronrun into the scope before the
//    start job completes. A user manager may not move a process out of
//    cron.service itself; it asks PID 1 (AttachProcessesToUnit), which allows it
//    for the user's own processes.
//  * The start job's end is the JobRemoved signal. The match is added before
//    StartTransientUnit is sent on the same connection, so the signal cannot
//    pass unseen; a direct connection (the managers' private sockets) carries no
//    sender, so the match then names none.
//  * The scope ends by itself when its last process, cronrun, exits: systemd
//    then removes its cgroup with the leaves below, and CollectMode=
//    inactive-or-failed collects it even if it failed, so no unit of ours stays
//    loaded or listed by `systemctl --failed`. Processes kept by --keep-orphans
//    keep the scope alive, and visible, until they exit.
#include "runner/libsystemd.h"
#include "runner/systemd_scope.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/job_paths.h"

namespace cronrun::systemd {
namespace {

constexpr const char* kCgroupMount = "/sys/fs/cgroup";
constexpr const char* kSupervisorLeaf = "supervisor";
constexpr const char* kJobLeaf = "job";
constexpr auto kStartTimeout = std::chrono::seconds(30);

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string user_dir(uid_t uid) { return fmt::format("/run/user/{}", uid); }

// This process's cgroup v2 path ("0::/a/b" in /proc/self/cgroup).
Result<std::string> own_cgroup() {
  auto text = read_file("/proc/self/cgroup");
  if (!text) return std::unexpected(text.error());
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + pos, end - pos);
    if (line.starts_with("0::")) return std::string(line.substr(3));
    pos = end + 1;
  }
  return fail("/proc/self/cgroup has no cgroup v2 line");
}

std::string parent_of(const std::string& relative) {
  auto slash = relative.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : relative.substr(0, slash);
}

bool is_run_id_text(std::string_view s) {
  return s.size() == 36 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
         });
}

// ---- sd-bus ----

// libsystemd's functions. connect_manager loads them before any bus exists, so
// every later call (callbacks included) finds the table loaded.
const sd::Api& sdl() { return **sd::api(); }

struct JobWatch {
  std::vector<std::pair<std::string, std::string>> removed;  // job path, result
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  uint32_t id = 0;
  const char* path = nullptr;
  const char* unit = nullptr;
  const char* result = nullptr;
  if (sdl().bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) return 0;
  static_cast<JobWatch*>(userdata)->removed.emplace_back(path, result);
  return 0;
}

Error bus_error(const std::string& what, int r) { return Error(fmt::format("{}: {}", what, std::strerror(-r))); }

int append_property(sd_bus_message* m, const Property& p) {
  int r = sdl().bus_message_open_container(m, 'r', "sv");
  if (r < 0) return r;
  if ((r = sdl().bus_message_append(m, "s", p.name.c_str())) < 0) return r;
  if (const bool* b = std::get_if<bool>(&p.value)) {
    r = sdl().bus_message_append(m, "v", "b", static_cast<int>(*b));
  } else if (const std::string* s = std::get_if<std::string>(&p.value)) {
    r = sdl().bus_message_append(m, "v", "s", s->c_str());
  } else {
    const auto& v = std::get<std::vector<uint32_t>>(p.value);
    if ((r = sdl().bus_message_open_container(m, 'v', "au")) < 0) return r;
    if ((r = sdl().bus_message_append_array(m, 'u', v.data(), v.size() * sizeof(uint32_t))) < 0) return r;
    r = sdl().bus_message_close_container(m);
  }
  if (r < 0) return r;
  return sdl().bus_message_close_container(m);
}

class SdBusManager final : public ManagerBus {
 public:
  SdBusManager(sd_bus* bus, bool bus_client, std::string socket)
      : bus_(bus), bus_client_(bus_client), socket_(std::move(socket)) {}
  ~SdBusManager() override { sdl().bus_flush_close_unref(bus_); }
  SdBusManager(const SdBusManager&) = delete;
  SdBusManager& operator=(const SdBusManager&) = delete;

  Result<std::string> start_transient_scope(const std::string& unit, const std::vector<Property>& props,
                                            std::chrono::milliseconds timeout) override {
    const std::string where = fmt::format("asking systemd ({}) for {}", socket_, unit);
    JobWatch watch;
    sd_bus_slot* slot = nullptr;
    int r = sdl().bus_match_signal_async(bus_, &slot, bus_client_ ? "org.freedesktop.systemd1" : nullptr,
                                      "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved",
                                      on_job_removed, nullptr, &watch);
    if (r < 0) return std::unexpected(bus_error(where + ": subscribing to JobRemoved", r));
    std::unique_ptr<sd_bus_slot, sd_bus_slot* (*)(sd_bus_slot*)> slot_owner(slot, sdl().bus_slot_unref);

    sd_bus_message* raw = nullptr;
    r = sdl().bus_message_new_method_call(bus_, &raw, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "StartTransientUnit");
    if (r < 0) return std::unexpected(bus_error(where + ": building StartTransientUnit", r));
    std::unique_ptr<sd_bus_message, sd_bus_message* (*)(sd_bus_message*)> m(raw, sdl().bus_message_unref);
    r = sdl().bus_message_append(m.get(), "ss", unit.c_str(), "fail");
    if (r >= 0) r = sdl().bus_message_open_container(m.get(), 'a', "(sv)");
    for (const auto& p : props)
      if (r >= 0) r = append_property(m.get(), p);
    if (r >= 0) r = sdl().bus_message_close_container(m.get());
    if (r >= 0) r = sdl().bus_message_append(m.get(), "a(sa(sv))", 0);
    if (r < 0) return std::unexpected(bus_error(where + ": building StartTransientUnit", r));

    const auto deadline = std::chrono::steady_clock::now() + timeout;
    sd_bus_error err = SD_BUS_ERROR_NULL;
    sd_bus_message* reply_raw = nullptr;
    r = sdl().bus_call(bus_, m.get(), static_cast<uint64_t>(timeout.count()) * 1000, &err, &reply_raw);
    std::unique_ptr<sd_bus_message, sd_bus_message* (*)(sd_bus_message*)> reply(reply_raw, sdl().bus_message_unref);
    if (r < 0) {
      Error e = err.name ? Error(fmt::format("{}: StartTransientUnit: {}: {}", where, err.name,
                                             err.message ? err.message : ""))
                         : bus_error(where + ": StartTransientUnit", r);
      sdl().bus_error_free(&err);
      return std::unexpected(std::move(e));
    }
    const char* job_path = nullptr;
    if ((r = sdl().bus_message_read(reply.get(), "o", &job_path)) < 0)
      return std::unexpected(bus_error(where + ": reading the job path", r));
    const std::string job = job_path;

    for (;;) {
      for (const auto& [path, result] : watch.removed)
        if (path == job) return result;
      r = sdl().bus_process(bus_, nullptr);
      if (r < 0) return std::unexpected(bus_error(where + ": waiting for job " + job, r));
      if (r > 0) continue;
      auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return fail(fmt::format("{}: job {} not finished after {} s", where, job,
                                std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
      r = sdl().bus_wait(bus_, static_cast<uint64_t>(left.count()));
      if (r < 0 && r != -EINTR) return std::unexpected(bus_error(where + ": waiting for job " + job, r));
    }
  }

 private:
  sd_bus* bus_;
  bool bus_client_;
  std::string socket_;
};

}  // namespace

const char* to_string(Path p) {
  switch (p) {
    case Path::direct: return "direct";
    case Path::system_scope: return "system-scope";
    case Path::user_scope: return "user-scope";
    case Path::no_user_manager: return "no-user-manager";
  }
  return "?";
}

std::string no_user_manager_cause(const std::string& user) {
  return fmt::format("no systemd user manager for {} (loginctl enable-linger {})", user, user);
}

Decision decide(const HostFacts& f) {
  if (!f.booted) return {Path::direct, "PID 1 is not systemd (no /run/systemd/system)"};
  if (f.parent_override) return {Path::direct, "--cgroup-parent given: placed there, not in a systemd scope"};
  if (!f.pure_v2) return {Path::direct, "systemd host without pure cgroup v2: placed directly, not in a systemd scope"};
  const std::string scope = "a transient scope cronrun-<job>-<run-id>.scope with Delegate=yes";
  if (f.is_root)
    return {Path::system_scope, fmt::format("systemd host, running as root: {} in {} of the system manager", scope, kSlice)};
  if (f.own_cgroup_delegated)
    return {Path::direct, fmt::format("systemd host: uid {} already lives in a cgroup delegated to it", f.uid)};
  if (f.user_manager)
    return {Path::user_scope, fmt::format("systemd host, running as {}: {} in {} of {}'s user manager ({}/bus)", f.user,
                                          scope, kSlice, f.user, user_dir(f.uid))};
  return {Path::no_user_manager,
          fmt::format("systemd host, running as {}: no user manager runs for {} (neither {}/bus nor {}/systemd/private "
                      "exists), so no delegated scope; `loginctl enable-linger {}` starts one at boot (with "
                      "dbus-user-session for its bus)",
                      f.user, f.user, user_dir(f.uid), user_dir(f.uid), f.user)};
}

std::string scope_unit_name(const std::string& job, const std::string& run_id) {
  return fmt::format("cronrun-{}-{}.scope", job, run_id);
}

std::vector<Property> scope_properties(pid_t pid, const std::string& job, const std::string& run_id,
                                       bool oom_policy) {
  std::vector<Property> p;
  p.push_back({"Description", fmt::format("cronrun job {} run {}", job, run_id)});
  p.push_back({"Slice", std::string(kSlice)});
  p.push_back({"Delegate", true});
  p.push_back({"PIDs", std::vector<uint32_t>{static_cast<uint32_t>(pid)}});
  p.push_back({"CollectMode", std::string("inactive-or-failed")});
  if (oom_policy) p.push_back({"OOMPolicy", std::string("continue")});
  return p;
}

Result<void> start_run_scope(ManagerBus& bus, pid_t pid, const std::string& job, const std::string& run_id,
                             std::chrono::milliseconds timeout) {
  const std::string unit = scope_unit_name(job, run_id);
  auto result = bus.start_transient_scope(unit, scope_properties(pid, job, run_id, true), timeout);
  if (!result && result.error().message().find("OOMPolicy") != std::string::npos &&
      result.error().message().find("org.freedesktop.DBus.Error.PropertyReadOnly") != std::string::npos)
    result = bus.start_transient_scope(unit, scope_properties(pid, job, run_id, false), timeout);
  if (!result) return std::unexpected(result.error());
  if (*result != "done") return fail(fmt::format("systemd's job starting {} ended with result '{}'", unit, *result));
  return {};
}

Result<std::unique_ptr<ManagerBus>> connect_manager(Path path, uid_t uid) {
  struct Candidate {
    std::string socket;
    bool bus_client;
  };
  std::vector<Candidate> candidates;
  if (path == Path::system_scope)
    candidates = {{"/run/dbus/system_bus_socket", true}, {"/run/systemd/private", false}};
  else
    candidates = {{user_dir(uid) + "/bus", true}, {user_dir(uid) + "/systemd/private", false}};
  if (auto loaded = sd::api(); !loaded)
    return std::unexpected(Error("connecting to the systemd manager: " + loaded.error().message()));
  std::vector<std::string> failures;
  for (const auto& c : candidates) {
    if (!exists(c.socket)) {
      failures.push_back(c.socket + ": missing");
      continue;
    }
    sd_bus* bus = nullptr;
    int r = sdl().bus_new(&bus);
    if (r < 0) return std::unexpected(bus_error("sd_bus_new", r));
    std::string address = "unix:path=" + c.socket;
    if ((r = sdl().bus_set_address(bus, address.c_str())) >= 0 && (r = sdl().bus_set_bus_client(bus, c.bus_client)) >= 0)
      r = sdl().bus_start(bus);
    if (r < 0) {
      failures.push_back(fmt::format("{}: {}", c.socket, std::strerror(-r)));
      sdl().bus_unref(bus);
      continue;
    }
    return std::make_unique<SdBusManager>(bus, c.bus_client, c.socket);
  }
  std::string joined;
  for (const auto& f : failures) joined += (joined.empty() ? "" : "; ") + f;
  return fail("connecting to the systemd manager: " + joined);
}

std::string slice_cgroup(Path path, uid_t uid) {
  if (path == Path::system_scope) return fmt::format("/{}", kSlice);
  return fmt::format("/user.slice/user-{}.slice/user@{}.service/{}", uid, uid, kSlice);
}

std::optional<std::string> run_id_of_scope(const std::string& name, const std::string& job) {
  const std::string prefix = "cronrun-" + job + "-";
  if (!name.starts_with(prefix) || !name.ends_with(".scope")) return std::nullopt;
  std::string id = name.substr(prefix.size(), name.size() - prefix.size() - 6);
  if (!is_run_id_text(id)) return std::nullopt;
  return id;
}

HostFacts read_host_facts(const cgroup::DiscoverOptions& opts, bool own_cgroup_delegated) {
  HostFacts f;
  // sd_booted(3): systemd is PID 1 when this directory exists.
  struct stat booted_st {};
  f.booted = ::lstat("/run/systemd/system/", &booted_st) == 0 && S_ISDIR(booted_st.st_mode);
  struct statfs sfs;
  f.pure_v2 = ::statfs(kCgroupMount, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
  f.is_root = opts.is_root;
  f.uid = opts.euid.value_or(::geteuid());
  f.user = user_entry(f.uid).name;  // the run record's lookup, not a second one
  f.parent_override = opts.parent_override.has_value();
  f.own_cgroup_delegated = own_cgroup_delegated;
  f.user_manager = !f.is_root && (exists(user_dir(f.uid) + "/bus") || exists(user_dir(f.uid) + "/systemd/private"));
  return f;
}

// ---- the backend ----

cgroup::Placement SystemdCgroups::discover(const cgroup::DiscoverOptions& opts) {
  HostFacts facts = read_host_facts(opts, false);
  is_root_ = facts.is_root;
  uid_ = facts.uid;
  user_ = facts.user;
  std::optional<cgroup::Placement> direct;
  if (facts.booted && facts.pure_v2 && !facts.parent_override && !facts.is_root) {
    // Where the runner already has a delegated cgroup, it stays in it.
    direct = direct_.discover(opts);
    facts.own_cgroup_delegated = direct->layout != cgroup::Layout::none;
  }
  decision_ = decide(facts);
  if (decision_.path == Path::direct || decision_.path == Path::no_user_manager) {
    cgroup::Placement p = direct ? std::move(*direct) : direct_.discover(opts);
    if (facts.booted) p.reason = decision_.reason + "; " + p.reason;
    return p;
  }
  cgroup::Placement p;
  p.layout = cgroup::Layout::v2;
  p.v2_mount = kCgroupMount;
  p.parent = slice_cgroup(decision_.path, uid_);
  p.reason = decision_.reason;
  // What the scope will be given: the controllers of the manager's own cgroup
  // (for --dry-run; the run reads the scope's own list once it exists).
  const std::string manager_cgroup =
      decision_.path == Path::system_scope ? "" : parent_of(slice_cgroup(decision_.path, uid_));
  if (auto text = read_file(std::string(kCgroupMount) + manager_cgroup + "/cgroup.controllers")) {
    std::string words = " " + *text + " ";
    std::replace(words.begin(), words.end(), '\n', ' ');
    for (const char* c : {"cpu", "io", "memory", "pids"})
      if (words.find(fmt::format(" {} ", c)) != std::string::npos) p.controllers.emplace_back(c);
  }
  return p;
}

std::optional<std::string> SystemdCgroups::fallback_cause() const {
  if (decision_.path != Path::no_user_manager) return std::nullopt;
  return no_user_manager_cause(user_);
}

std::optional<std::string> SystemdCgroups::planned_job_cgroup(const std::string& job) const {
  if (decision_.path != Path::system_scope && decision_.path != Path::user_scope) return std::nullopt;
  return fmt::format("{}/{}/{}", slice_cgroup(decision_.path, uid_), scope_unit_name(job, "<run-id>"), kJobLeaf);
}

std::optional<std::string> SystemdCgroups::unit_of(const cgroup::JobCgroup& cg) const {
  if (unit_.empty() || !cg.path().starts_with(unit_path_ + "/")) return std::nullopt;
  return unit_;
}

// Under the job's lock, a populated scope of this job is a run whose runner is
// gone (the scope outlives it while the job's processes live).
Result<std::vector<cgroup::LiveRun>> SystemdCgroups::find_live_runs(const cgroup::Placement& placement,
                                                                    const std::string& job) {
  if (decision_.path != Path::system_scope && decision_.path != Path::user_scope)
    return direct_.find_live_runs(placement, job);
  std::vector<cgroup::LiveRun> out;
  const std::string slice_dir = std::string(kCgroupMount) + placement.parent;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(slice_dir.c_str()), ::closedir);
  if (!dir) {
    if (errno == ENOENT) return out;  // no run in the slice yet
    return fail_sys("opendir", slice_dir);
  }
  errno = 0;
  while (struct dirent* e = ::readdir(dir.get())) {
    auto id = run_id_of_scope(e->d_name, job);
    if (!id) continue;
    const std::string scope_dir = slice_dir + "/" + e->d_name;
    auto events = read_file(scope_dir + "/cgroup.events");
    if (!events || events->find("populated 1") == std::string::npos) continue;
    size_t n = 0;
    if (auto procs = read_file(scope_dir + "/" + kJobLeaf + "/cgroup.procs"))
      n = static_cast<size_t>(std::count(procs->begin(), procs->end(), '\n'));
    out.push_back({*id, placement.parent + "/" + e->d_name, std::max<size_t>(n, 1)});
  }
  return out;
}

Result<std::unique_ptr<cgroup::JobCgroup>> SystemdCgroups::create(const cgroup::Placement& placement,
                                                                  const std::string& job, const std::string& run_id) {
  if (decision_.path != Path::system_scope && decision_.path != Path::user_scope)
    return direct_.create(placement, job, run_id);
  const std::string unit = scope_unit_name(job, run_id);
  auto context = [&](Error e) { return std::unexpected(std::move(e).context("placing job '" + job + "' in " + unit)); };
  auto bus = connect_manager(decision_.path, uid_);
  if (!bus) return context(std::move(bus.error()));
  if (auto started = start_run_scope(**bus, ::getpid(), job, run_id, kStartTimeout); !started)
    return context(std::move(started.error()));
  bus->reset();  // nothing more to ask: the scope ends with cronrun

  auto own = own_cgroup();
  if (!own) return context(std::move(own.error()));
  if (!own->ends_with("/" + unit))
    return context(Error(fmt::format("systemd reported {} started, but this process is in cgroup {}", unit, *own)));

  // The scope is delegated: discovery with it as the parent checks that and finds
  // its controllers. cronrun moves into <scope>/supervisor, the job gets <scope>/job.
  cgroup::DiscoverOptions opts;
  opts.parent_override = *own;
  opts.is_root = is_root_;
  cgroup::Placement inside = direct_.discover(opts);
  if (inside.layout != cgroup::Layout::v2) return context(Error("scope " + *own + " not usable: " + inside.reason));
  inside.parent = parent_of(*own);
  inside.runner_leaf = *own + "/" + kSupervisorLeaf;
  auto cg = direct_.create(inside, unit, kJobLeaf);
  if (!cg) return context(std::move(cg.error()));
  unit_ = unit;
  unit_path_ = *own;
  return cg;
}

}  // namespace cronrun::systemd
