// The cgroup v1 backend, which on hybrid hosts also carries the unified (v2)
// half. libcgroup, the project's declared v1 dependency, creates each job's
// <parent>/<job> path in the hierarchies it needs (mkdir -p across hierarchies,
// below parents an admin may have defined in cgconfig.conf); <job> then stays.
// Everything per run goes through directory fds: the run's leaf (mkdirat under
// <job>), limits, reads, kills and removal.
//
// Why the split:
//  * Per run, libcgroup costs more than the kernel work it wraps: cgroup_init()
//    clears an 820 KiB static table (a page fault per 4 KiB) and every call
//    re-reads /proc/mounts; together 0.8 ms and 0.8 MiB of the runner's RSS a run
//    (bench/overhead.sh).
//  * libcgroup 2.0.2's cgroup_delete_cgroup() migrates leftover tasks into the
//    parent (<job>) before rmdir — a leftover would escape the kill and the
//    accounting. We rmdir ourselves and treat "busy" as "not empty yet".
//  * Each limit is its own write, so an error names the file (and the order is
//    fixed: memory.memsw.limit_in_bytes must never be below memory.limit_in_bytes,
//    so it is written after it).
//  * Placing the job is not libcgroup's cgroup_attach_task_pid(): writing another
//    task's pid takes the kernel's global threadgroup lock, an RCU grace period
//    (6-25 ms here) per run. The child writes "0" to each `tasks` file itself
//    instead (join_files(), spawn.h), which the kernel does without that lock.
// v1 rules: no cgroup.kill and no "populated" notification, so a kill freezes the
// freezer cgroup (no forks while we kill), SIGKILLs every task, thaws, and polls
// cgroup.procs until empty. On hybrid the unified leaf's cgroup.kill and
// cgroup.events do this properly and are preferred.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <libcgroup.h>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

namespace {

constexpr int kRemoveBusyRetries = 50;  // x 2 ms
constexpr int kCreateRaceRetries = 3;

struct CgroupFree {
  void operator()(struct cgroup* cg) const { cgroup_free(&cg); }
};
using CgroupPtr = std::unique_ptr<struct cgroup, CgroupFree>;

Error libcgroup_error(const std::string& op, const std::string& path, int rc) {
  // ECGOTHER carries the errno of the failed syscall; the others are libcgroup's own.
  if (rc == ECGOTHER) return Error::sys(op, path, cgroup_get_last_errno());
  return Error(op + " " + path + ": " + cgroup_strerror(rc));
}

Result<void> init_libcgroup() {
  // cgroup_init() reads the mount table once per process; repeat calls are cheap
  // but pointless.
  static int rc = cgroup_init();
  if (rc != 0) return std::unexpected(libcgroup_error("cgroup_init", "/proc/mounts", rc));
  return {};
}

bool is_ours(std::string_view controller) { return is_used_v1_controller(controller); }

bool carries(const Placement::V1Mount& m, std::string_view controller) {
  return std::find(m.controllers.begin(), m.controllers.end(), controller) != m.controllers.end();
}

std::optional<double> ns_to_s(std::optional<uint64_t> ns) {
  if (!ns) return std::nullopt;
  return static_cast<double>(*ns) / 1e9;
}

std::optional<uint64_t> get(const std::map<std::string, uint64_t>& kv, const std::string& key) {
  auto it = kv.find(key);
  if (it == kv.end()) return std::nullopt;
  return it->second;
}

Result<void> wait_v1_empty(const CgroupDir& dir, int64_t deadline, int timeout_ms) {
  int64_t last_kill = monotonic_ms();
  for (;;) {
    auto procs = dir.procs();
    // Removed (by an admin): the kernel removes only an empty cgroup.
    if (!procs && (procs.error().err() == ENOENT || procs.error().err() == ENODEV)) return {};
    if (!procs) return std::unexpected(procs.error());
    if (procs->empty()) return {};
    int64_t now = monotonic_ms();
    if (now >= deadline) return std::unexpected(not_empty_error(dir, timeout_ms));
    if (now - last_kill >= 50) {
      (void)signal_pids(*procs, SIGKILL, dir.path());
      last_kill = now;
    }
    sleep_ms(5);
  }
}

// One hierarchy's directories of this run.
struct V1Dirs {
  std::vector<std::string> controllers;
  std::string mount_point;
  CgroupDir job_dir;     // <parent>/<job>
  CgroupDir leaf;        // <parent>/<job>/<run-id>
};

class V1JobCgroup final : public JobCgroup {
 public:
  V1JobCgroup(std::string path, std::string job, std::string run_id)
      : path_(std::move(path)), job_(std::move(job)), run_id_(std::move(run_id)) {}

  ~V1JobCgroup() override {
    if (removed_ || released_) return;
    (void)kill_all(1000);
    (void)remove();
  }

  // Creates the run's cgroup: on hybrid the unified half first (what it offers
  // decides which v1 hierarchies are needed), then the leaves a run without limits
  // needs (apply_limits() adds the others). On failure the destructor removes
  // whatever was made.
  Result<void> create(const Placement& placement) {
    mounts_ = placement.v1_mounts;
    job_path_ = join_relative(placement.parent, job_);
    if (placement.layout == Layout::hybrid) {
      auto tree = create_v2_tree(placement.v2_mount, placement.parent, {}, job_, run_id_);
      if (!tree) return std::unexpected(std::move(tree.error()).context("creating the unified (v2) half"));
      unified_ = std::move(*tree);
      if (auto fd = unified_->leaf.open_file("cgroup.events", O_RDONLY); fd) events_ = std::move(*fd);
      unified_features_.kill = unified_->leaf.has("cgroup.kill");
      unified_features_.cpu_stat = unified_->leaf.has("cpu.stat");
    }
    if (auto made = make_leaves(needed_controllers(layout(), Limits{}, unified_features_)); !made) return made;
    if (dirs_.empty() && !unified_) {
      // Plain v1 without a memory, cpuacct or freezer hierarchy: membership still
      // needs a leaf somewhere, so take every hierarchy that is there.
      std::vector<std::string> any;
      for (const auto& m : mounts_)
        for (const auto& c : m.controllers)
          if (is_ours(c)) any.push_back(c);
      if (auto made = make_leaves(any); !made) return made;
    }
    if (dirs_.empty() && !unified_) return fail("no v1 hierarchy with a controller cronrun uses");
    return {};
  }

  Layout layout() const override { return unified_ ? Layout::hybrid : Layout::v1; }
  const std::string& path() const override { return path_; }

  Result<std::vector<LimitNotApplied>> apply_limits(const Limits& l) override {
    if (auto v = validate_limits(l); !v) return std::unexpected(v.error());
    // The leaves these limits need that the run does not have yet. One that cannot
    // be made costs the limits needing it, not the others.
    std::map<std::string, std::string> make_errors;  // controller -> why
    for (const auto& c : needed_controllers(layout(), l, unified_features_)) {
      if (dir_for(c) || std::none_of(mounts_.begin(), mounts_.end(), [&](const auto& m) { return carries(m, c); }))
        continue;
      if (auto made = make_leaves({c}); !made) make_errors[c] = made.error().message();
    }
    const V1Dirs* blkio = dir_for("blkio");
    auto has_file = [](const void* ctx, const std::string& file) {
      return ctx && static_cast<const V1Dirs*>(ctx)->leaf.has(file);
    };
    auto writes = v1_limit_writes(l, has_file, blkio);
    if (!writes) return std::unexpected(writes.error());
    std::vector<LimitNotApplied> missed;
    for (const auto& w : *writes) {
      std::string option = limit_option(w.what);
      // A limit of several writes (the CPU quota's period, then quota) stops at its
      // first failure; the other limits are still written.
      if (std::any_of(missed.begin(), missed.end(), [&](const LimitNotApplied& m) { return m.option == option; }))
        continue;
      if (auto r = set(w, make_errors)) missed.push_back(std::move(*r));
    }
    return missed;
  }

  int clone_into_fd() const override { return unified_ ? unified_->leaf.fd() : -1; }

  Result<std::vector<JoinFile>> join_files(bool cloned_into) override {
    if (join_.empty() || join_dirs_ != dirs_.size()) {
      join_.clear();
      join_dirs_ = dirs_.size();
      // Unified first: if the child cannot join it, it has moved nowhere yet.
      if (unified_) {
        auto fd = unified_->leaf.open_file("cgroup.procs", O_WRONLY);
        if (!fd) return std::unexpected(fd.error());
        join_.push_back({std::move(*fd), unified_->leaf.file_path("cgroup.procs")});
      }
      for (const auto& d : dirs_) {
        auto fd = d.leaf.open_file("tasks", O_WRONLY);
        if (!fd) return std::unexpected(fd.error());
        join_.push_back({std::move(*fd), d.leaf.file_path("tasks")});
      }
    }
    std::vector<JoinFile> out;
    for (size_t i = (unified_ && cloned_into) ? 1 : 0; i < join_.size(); ++i)
      out.push_back({join_[i].fd.get(), join_[i].path});
    return out;
  }

  // After remove() the cgroup is gone and, by construction, was empty.
  Result<std::vector<pid_t>> pids() const override {
    if (removed_ || nothing_made()) return std::vector<pid_t>{};
    return tracking().procs();
  }

  Result<void> signal_all(int sig) override {
    if (removed_ || nothing_made()) return {};
    auto procs = tracking().procs();
    if (!procs) return std::unexpected(procs.error());
    return signal_pids(*procs, sig, tracking().path());
  }

  Result<void> kill_all(int timeout_ms) override {
    if (removed_ || nothing_made()) return {};
    const int64_t deadline = monotonic_ms() + timeout_ms;
    if (unified_features_.kill) {
      if (auto k = v2_kill_and_wait(unified_->leaf, timeout_ms); !k) return k;
      if (dirs_.empty()) return {};  // creation failed before any v1 directory
      // Exited tasks leave every hierarchy at once; this normally returns at once.
      return wait_v1_empty(v1_tracking(), deadline, timeout_ms);
    }
    if (const V1Dirs* f = dir_for("freezer")) {
      if (auto k = freeze_kill_thaw(f->leaf, deadline); !k) return k;
    } else {
      auto procs = tracking().procs();
      if (!procs) return std::unexpected(procs.error());
      if (auto k = signal_pids(*procs, SIGKILL, tracking().path()); !k) return k;
    }
    return wait_v1_empty(tracking(), deadline, timeout_ms);
  }

  int events_fd() const override { return events_.get(); }

  Result<Usage> read_usage() const override {
    Usage u;
    if (const V1Dirs* d = dir_for("memory")) {
      auto peak = d->leaf.read_u64("memory.max_usage_in_bytes");
      if (!peak) return std::unexpected(peak.error());
      u.memory_peak_bytes = *peak;
      auto oom = d->leaf.read_keyed("memory.oom_control");
      if (!oom) return std::unexpected(oom.error());
      if (*oom) u.oom_kills = get(**oom, "oom_kill");  // 4.13+
      auto failcnt = d->leaf.read_u64("memory.failcnt");
      if (!failcnt) return std::unexpected(failcnt.error());
      u.memory_max_events = *failcnt;
      // v1 has no memory.high events: memory_high_events stays unknown.
    }
    if (const V1Dirs* d = dir_for("cpuacct")) {
      auto user = d->leaf.read_u64("cpuacct.usage_user");
      if (!user) return std::unexpected(user.error());
      auto sys = d->leaf.read_u64("cpuacct.usage_sys");
      if (!sys) return std::unexpected(sys.error());
      u.cpu_user_s = ns_to_s(*user);
      u.cpu_system_s = ns_to_s(*sys);
    }
    if (const V1Dirs* d = dir_for("cpu")) {
      auto stat = d->leaf.read_keyed("cpu.stat");
      if (!stat) return std::unexpected(stat.error());
      if (*stat) {
        u.cpu_nr_throttled = get(**stat, "nr_throttled");
        u.cpu_throttled_s = ns_to_s(get(**stat, "throttled_time"));
      }
    }
    // IO stays unknown here: blkio.throttle.io_service_bytes counts only IO that
    // passes a throttle rule (none is set), and blkio.io_service_bytes was CFQ's, gone
    // with the legacy block layer; both read 0 during heavy direct IO. The runner
    // fills IO from the rusage block counts instead (usage.io_source "rusage").
    if (const V1Dirs* d = dir_for("pids")) {
      auto peak = d->leaf.read_u64("pids.peak");  // v1 pids.peak: 6.x kernels only
      if (!peak) return std::unexpected(peak.error());
      u.pids_peak = *peak;
      auto events = d->leaf.read_keyed("pids.events");
      if (!events) return std::unexpected(events.error());
      if (*events) u.pids_max_events = get(**events, "max");
    }
    if (unified_) {
      // The unified cpu.stat exists without any controller (rstat); prefer it, as
      // v2 hosts report the same figure. Only it: the unified leaf never has the
      // memory, io or pids files (no controllers on hybrid), so those are not tried.
      auto cpu = unified_->leaf.read_keyed("cpu.stat");
      if (!cpu) return std::unexpected(cpu.error());
      if (*cpu) {
        if (auto v = get(**cpu, "user_usec")) u.cpu_user_s = static_cast<double>(*v) / 1e6;
        if (auto v = get(**cpu, "system_usec")) u.cpu_system_s = static_cast<double>(*v) / 1e6;
      }
      if (auto r = read_pressure(unified_->leaf, u.pressure_some_s); !r) return std::unexpected(r.error());
    }
    std::vector<std::string> skipped;
    for (const auto& m : mounts_)
      for (const auto& c : m.controllers)
        if (is_ours(c) && !dir_for(c)) skipped.push_back(c);
    u.not_measured = not_measured_fields(skipped, u);
    return u;
  }

  Result<void> release() override {
    if (released_ || removed_) return {};
    released_ = true;
    events_.reset();
    join_.clear();
    // The mark is an empty sibling <run-id>.kept (cgroup2 refuses renames, and one
    // scheme serves every hierarchy find_live_runs may look in).
    const std::string kept = run_id_ + std::string(kKeptSuffix);
    Result<void> first;
    for (const auto& d : dirs_)
      if (auto r = d.job_dir.make_child(kept, true); !r && first) first = std::move(r);
    if (unified_)
      if (auto r = unified_->job_dir.make_child(kept, true); !r && first) first = std::move(r);
    return first;
  }

  Result<void> remove() override {
    if (removed_) return {};
    events_.reset();
    join_.clear();
    Result<void> first;
    auto note = [&](Result<void> r) {
      if (!r && first) first = std::move(r);
    };
    // The run's leaf only: <job> stays as the parent of the job's next runs (see
    // cgroup.h), which spares a mkdir and an rmdir per hierarchy and run.
    auto remove_leaf = [&](const CgroupDir& job_dir) -> Result<void> {
      if (!job_dir.valid()) return {};
      auto leaf = job_dir.remove_child(run_id_, kRemoveBusyRetries);
      if (!leaf && leaf.error().err() != ENOENT) return leaf;
      return {};
    };
    for (const auto& d : dirs_) note(remove_leaf(d.job_dir));
    if (unified_) note(remove_leaf(unified_->job_dir));
    if (first) removed_ = true;
    return first;
  }

 private:
  // One write per file on the leaf's fd, so that a failure names the file. Returns
  // what went wrong, or nullopt when the limit is in place.
  std::optional<LimitNotApplied> set(const LimitWrite& w, const std::map<std::string, std::string>& make_errors) {
    std::string option = limit_option(w.what);
    const V1Dirs* d = dir_for(w.controller);
    if (!d) {
      if (auto it = make_errors.find(w.controller); it != make_errors.end()) {
        return LimitNotApplied{option, "making its " + w.controller + " cgroup failed",
                               w.what + " needs a leaf in the v1 " + w.controller + " hierarchy: " + it->second};
      }
      std::string in_use;
      for (const auto& x : dirs_)
        for (const auto& c : x.controllers) in_use += (in_use.empty() ? "" : " ") + c;
      return LimitNotApplied{option, "no " + w.controller + " controller",
                             w.what + " needs the v1 " + w.controller +
                                 " controller, which is not mounted or not usable here (in use: " + in_use + ")"};
    }
    if (!d->leaf.has(w.file)) {
      return LimitNotApplied{option, "no " + w.file,
                             w.what + " needs " + d->leaf.file_path(w.file) + ", which this kernel does not have"};
    }
    if (auto r = d->leaf.write(w.file, w.value); !r) {
      return LimitNotApplied{option, "writing " + w.file + " failed",
                             std::move(r.error()).context("setting " + w.what + " to " + w.value).message()};
    }
    return std::nullopt;
  }

  // Makes the run's leaf in every hierarchy carrying one of `controllers` that has
  // none yet. The common case: <job> exists (it outlives its runs) and the leaf is
  // one mkdirat below it. Only when a <job> directory is missing (the job's first
  // run, the first after a reboot) does libcgroup make the path (see the top of the
  // file for why it stays off the common path).
  Result<void> make_leaves(const std::vector<std::string>& controllers) {
    std::vector<const Placement::V1Mount*> mounts;
    for (const auto& m : mounts_) {
      bool wanted = std::any_of(controllers.begin(), controllers.end(), [&](const auto& c) { return carries(m, c); });
      if (wanted && !has_leaf_in(m)) mounts.push_back(&m);
    }
    for (int attempt = 0;; ++attempt) {
      auto made = create_leaves(mounts);
      if (made) return {};
      // ENOENT: a <job> directory is missing, or was removed under us.
      if (made.error().err() != ENOENT || attempt + 1 >= kCreateRaceRetries) return made;
      if (auto created = create_job_dirs(mounts, job_path_); !created) return created;
    }
  }

  bool has_leaf_in(const Placement::V1Mount& m) const {
    return std::any_of(dirs_.begin(), dirs_.end(), [&](const V1Dirs& d) { return d.mount_point == m.mount_point; });
  }

  // Opens <job> in each of `mounts` still without a leaf and makes the run's leaf
  // below it. On failure the leaves made so far stay in dirs_, for remove().
  Result<void> create_leaves(const std::vector<const Placement::V1Mount*>& mounts) {
    for (const auto* m : mounts) {
      if (has_leaf_in(*m)) continue;
      auto job_dir = CgroupDir::open(cgroup_fs_path(m->mount_point, job_path_));
      if (!job_dir) return std::unexpected(job_dir.error());
      // The run's leaf must be new: run ids are unique, an existing one is a bug.
      if (auto made = job_dir->make_child(run_id_, false); !made) return std::unexpected(made.error());
      V1Dirs d;
      d.controllers = m->controllers;
      d.mount_point = m->mount_point;
      d.job_dir = std::move(*job_dir);
      auto leaf = d.job_dir.open_child(run_id_);
      if (!leaf) {
        (void)d.job_dir.remove_child(run_id_, 0);
        return std::unexpected(leaf.error());
      }
      d.leaf = std::move(*leaf);
      dirs_.push_back(std::move(d));
    }
    return {};
  }

  // <parent>/<job> in every hierarchy of `mounts`, through libcgroup (mkdir -p;
  // existing directories are fine).
  static Result<void> create_job_dirs(const std::vector<const Placement::V1Mount*>& mounts,
                                      const std::string& job_path) {
    if (mounts.empty()) return {};
    if (auto init = init_libcgroup(); !init) return init;
    CgroupPtr cg(cgroup_new_cgroup(job_path.substr(1).c_str()));
    if (!cg) return fail("cgroup_new_cgroup: out of memory");
    for (const auto* m : mounts) {
      // One controller names the hierarchy; co-mounted ones (cpu,cpuacct) come along.
      auto it = std::find_if(m->controllers.begin(), m->controllers.end(), [](const std::string& c) { return is_ours(c); });
      if (!cgroup_add_controller(cg.get(), it->c_str())) return fail("cgroup_add_controller " + *it + ": failed");
    }
    // ignore_ownership=1: the directories already belong to whoever creates them
    // (root, or the user an admin delegated the parent to); the default would chown
    // every control file of every hierarchy, ~100 syscalls for nothing.
    int rc = cgroup_create_cgroup(cg.get(), 1);
    if (rc != 0) {
      return std::unexpected(libcgroup_error("cgroup_create_cgroup", cgroup_fs_path(mounts.front()->mount_point, job_path), rc));
    }
    return {};
  }

  // Creation failed before any directory existed: nothing to list, kill or wait for.
  bool nothing_made() const { return !unified_ && dirs_.empty(); }

  const V1Dirs* dir_for(std::string_view controller) const {
    for (const auto& d : dirs_)
      if (std::find(d.controllers.begin(), d.controllers.end(), controller) != d.controllers.end()) return &d;
    return nullptr;
  }

  // Where to list and signal tasks: the unified leaf when there is one; else a v1
  // hierarchy, freezer first (it is the one a kill uses).
  const CgroupDir& tracking() const { return unified_ ? unified_->leaf : v1_tracking(); }
  const CgroupDir& v1_tracking() const {
    for (const char* c : {"freezer", "pids", "memory"})
      if (const V1Dirs* d = dir_for(c)) return d->leaf;
    return dirs_.front().leaf;
  }

  static Result<void> freeze_kill_thaw(const CgroupDir& leaf, int64_t deadline) {
    if (auto f = leaf.write("freezer.state", "FROZEN"); !f) return f;
    // FREEZING can last while a task sits in an uninterruptible sleep; kill anyway
    // after a while (the wait below repeats the kill).
    const int64_t freeze_deadline = std::min(deadline, monotonic_ms() + 1000);
    while (monotonic_ms() < freeze_deadline) {
      auto state = leaf.read("freezer.state");
      if (!state || state->starts_with("FROZEN")) break;
      sleep_ms(2);
    }
    auto procs = leaf.procs();
    Result<void> killed =
        procs ? signal_pids(*procs, SIGKILL, leaf.path()) : Result<void>(std::unexpected(procs.error()));
    auto thawed = leaf.write("freezer.state", "THAWED");
    if (!killed) return killed;
    return thawed;
  }

  std::string path_;
  std::string job_;
  std::string run_id_;
  std::vector<V1Dirs> dirs_;
  std::optional<V2Created> unified_;
  UnifiedLeafFeatures unified_features_;  // on hybrid: decides freezer and cpuacct
  std::vector<Placement::V1Mount> mounts_;  // the hierarchies the run may use
  std::string job_path_;                    // <parent>/<job>
  UniqueFd events_;
  struct OpenJoinFile {
    UniqueFd fd;
    std::string path;
  };
  std::vector<OpenJoinFile> join_;  // for join_files(): unified cgroup.procs, then v1 tasks
  size_t join_dirs_ = 0;            // dirs_.size() when join_ was opened
  bool removed_ = false;
  bool released_ = false;
};

}  // namespace

Result<std::unique_ptr<JobCgroup>> create_v1_job(const Placement& placement, const std::string& job,
                                                 const std::string& run_id) {
  if (placement.v1_mounts.empty()) return fail("no v1 hierarchy to create the job cgroup in");
  std::string path = join_relative(join_relative(placement.parent, job), run_id);
  // The owner exists before anything is made: an early return cleans up.
  auto job_cg = std::make_unique<V1JobCgroup>(path, job, run_id);
  if (auto made = job_cg->create(placement); !made) return std::unexpected(made.error());
  return job_cg;
}

}  // namespace cronrun::cgroup
