// The cgroup v2 backend, and the v2 pieces hybrid hosts reuse for their
// controller-less unified hierarchy. Everything goes through directory fds; the
// job's leaf fd is what the runner passes to clone3(CLONE_INTO_CGROUP).
//
// Kernel rules (Documentation/admin-guide/cgroup-v2.rst):
//  * No internal processes: a non-root cgroup can only enable controllers in its
//    cgroup.subtree_control while it has no processes of its own. Intermediate
//    directories (<parent>, <parent>/<job>) only ever hold child cgroups; a
//    non-root runner first leaves its delegated cgroup for a leaf of its own.
//  * A controller is available to a child only if enabled in every ancestor's
//    subtree_control; we enable top-down, only what is missing, so a host (or a
//    delegating systemd) that already enabled it sees no write at all.
//  * cgroup.kill (5.14+) kills the whole subtree atomically, including tasks that
//    fork meanwhile; without it we freeze (cgroup.freeze, 5.2+), kill, thaw.
//  * "populated 0" in cgroup.events means no live task is left (zombies do not
//    count); the file raises POLLPRI when it changes.
//  * Races: another run of the same job may rmdir <job> between our mkdir of it and
//    of the run's leaf; creation retries on ENOENT.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <dirent.h>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

namespace {

constexpr int kRemoveBusyRetries = 50;  // x 2 ms
constexpr int kCreateRaceRetries = 3;

std::vector<std::string> components(std::string_view relative) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < relative.size()) {
    while (i < relative.size() && relative[i] == '/') ++i;
    size_t start = i;
    while (i < relative.size() && relative[i] != '/') ++i;
    if (i > start) out.emplace_back(relative.substr(start, i - start));
  }
  return out;
}

// Enables in `dir`'s subtree_control whichever of `wanted` it has but does not
// pass down yet. One write per controller: one that cannot be enabled must not
// keep the others from their children. Failures are collected, not fatal: a
// limit needing a missing controller reports them.
void enable_controllers(const CgroupDir& dir, const std::vector<std::string>& wanted,
                        std::map<std::string, std::string>& errors) {
  if (wanted.empty()) return;
  auto have = dir.read("cgroup.controllers");
  auto enabled = dir.read("cgroup.subtree_control");
  if (!have || !enabled) {
    for (const auto& c : wanted) errors[c] = (!have ? have.error() : enabled.error()).message();
    return;
  }
  auto have_list = split_words(*have);
  auto enabled_list = split_words(*enabled);
  for (const auto& c : wanted) {
    if (!contains(have_list, c) || contains(enabled_list, c)) continue;
    auto w = dir.write("cgroup.subtree_control", "+" + c);
    if (!w) {
      Error e = w.error();
      if (e.err() == EBUSY) e.context("the cgroup has processes of its own (no-internal-processes rule)");
      errors[c] = e.message();
    }
  }
}

// Child `name` of `dir`, made first when it is missing. Opening first keeps the
// common case (it exists: <parent> and <job> outlive runs) to one syscall.
Result<CgroupDir> open_or_make(const CgroupDir& dir, const std::string& name) {
  auto child = dir.open_child(name);
  if (child || child.error().err() != ENOENT) return child;
  if (auto made = dir.make_child(name, true); !made) return std::unexpected(made.error());
  return dir.open_child(name);
}

Result<V2Created> create_v2_tree_once(const std::string& mount_point, const std::string& parent,
                                      const std::vector<std::string>& controllers, const std::string& job,
                                      const std::string& run_id) {
  V2Created out;
  // The common case: <job> exists (it outlives its runs) and already passes every
  // wanted controller down. A controller in <job>'s subtree_control is enabled in
  // every ancestor too (the kernel only enables what the parent passes down), so
  // nothing above needs a look. Checked each run: nothing is cached.
  std::optional<CgroupDir> job_dir;
  if (auto direct = CgroupDir::open(cgroup_fs_path(mount_point, join_relative(parent, job)))) {
    bool ready = true;
    if (!controllers.empty()) {
      auto enabled = direct->read("cgroup.subtree_control");
      auto words = enabled ? split_words(*enabled) : std::vector<std::string>{};
      ready = enabled && std::all_of(controllers.begin(), controllers.end(),
                                     [&](const std::string& c) { return contains(words, c); });
    }
    if (ready) job_dir = std::move(*direct);
  } else if (direct.error().err() != ENOENT) {
    return std::unexpected(direct.error());
  }
  if (!job_dir) {
    auto dir = CgroupDir::open(mount_point);
    if (!dir) return std::unexpected(dir.error());
    for (const auto& name : components(parent)) {
      enable_controllers(*dir, controllers, out.enable_errors);
      auto child = open_or_make(*dir, name);
      if (!child) return std::unexpected(child.error());
      dir = std::move(child);
    }
    enable_controllers(*dir, controllers, out.enable_errors);
    auto made_job = open_or_make(*dir, job);
    if (!made_job) return std::unexpected(made_job.error());
    enable_controllers(*made_job, controllers, out.enable_errors);
    job_dir = std::move(*made_job);
  }
  // The run's leaf must be new: run ids are unique, an existing one is a bug.
  if (auto made = job_dir->make_child(run_id, false); !made) return std::unexpected(made.error());
  auto leaf = job_dir->open_child(run_id);
  if (!leaf) return std::unexpected(leaf.error());
  out.job_dir = std::move(*job_dir);
  out.leaf = std::move(*leaf);
  return out;
}

// Enables `controllers` on the way from the mount down to <job> (held as
// `job_dir`), as create_v2_tree does, for a run whose limits need more than it was
// created with. Nothing is made: every directory exists already.
Result<void> enable_v2_path(const std::string& mount_point, const std::string& parent, const CgroupDir& job_dir,
                            const std::vector<std::string>& controllers, std::map<std::string, std::string>& errors) {
  auto dir = CgroupDir::open(mount_point);
  if (!dir) return std::unexpected(dir.error());
  for (const auto& name : components(parent)) {
    enable_controllers(*dir, controllers, errors);
    auto child = dir->open_child(name);
    if (!child) return std::unexpected(child.error());
    dir = std::move(child);
  }
  enable_controllers(*dir, controllers, errors);
  enable_controllers(job_dir, controllers, errors);
  return {};
}

template <class T>
std::optional<T> get(const std::map<std::string, uint64_t>& kv, const std::string& key) {
  auto it = kv.find(key);
  if (it == kv.end()) return std::nullopt;
  return static_cast<T>(it->second);
}

Result<bool> v2_populated(int events_fd, const std::string& path) {
  char buf[256];
  ssize_t n;
  do {
    n = ::pread(events_fd, buf, sizeof buf - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_sys("read", path);
  auto kv = parse_flat_keyed(std::string_view(buf, static_cast<size_t>(n)));
  if (!kv) return std::unexpected(std::move(kv.error()).context("parsing " + path));
  auto it = kv->find("populated");
  if (it == kv->end()) return fail("no 'populated' key in " + path);
  return it->second != 0;
}

}  // namespace

Result<V2Created> create_v2_tree(const std::string& mount_point, const std::string& parent,
                                 const std::vector<std::string>& controllers, const std::string& job,
                                 const std::string& run_id) {
  for (int attempt = 0;; ++attempt) {
    auto made = create_v2_tree_once(mount_point, parent, controllers, job, run_id);
    if (made || attempt + 1 >= kCreateRaceRetries) return made;
    // ENOENT/ENODEV: a directory on the way was removed under us (another run of
    // the same job finishing); start over from the mount.
    if (made.error().err() != ENOENT && made.error().err() != ENODEV) return made;
  }
}

Result<void> enter_runner_leaf(const std::string& mount_point, const std::string& leaf_relative) {
  std::string parent = leaf_relative.substr(0, leaf_relative.rfind('/'));
  std::string name = leaf_relative.substr(leaf_relative.rfind('/') + 1);
  auto parent_dir = CgroupDir::open(cgroup_fs_path(mount_point, parent.empty() ? "/" : parent));
  if (!parent_dir) return std::unexpected(parent_dir.error());
  if (auto made = parent_dir->make_child(name, true); !made) return std::unexpected(made.error());
  auto leaf = parent_dir->open_child(name);
  if (!leaf) return std::unexpected(leaf.error());
  if (auto moved = leaf->write("cgroup.procs", std::to_string(::getpid())); !moved) {
    return std::unexpected(std::move(moved.error()).context("moving the runner into its own leaf cgroup"));
  }

  // Housekeeping: a runner cannot remove the leaf it lives in, so leaves of
  // finished runners stay behind. Remove those that are empty and whose runner is
  // gone (both, so a runner that just made its leaf is never raced). Failures only
  // leave an empty directory behind; they are ignored.
  int dup_fd = ::fcntl(parent_dir->fd(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return {};
  DIR* d = ::fdopendir(dup_fd);
  if (!d) {
    ::close(dup_fd);
    return {};
  }
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    auto pid = parse_runner_leaf_name(e->d_name);
    if (!pid || *pid == ::getpid()) continue;
    if (::kill(*pid, 0) == 0 || errno != ESRCH) continue;
    stale.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& s : stale) {
    auto dir = parent_dir->open_child(s);
    if (!dir) continue;
    auto procs = dir->procs();
    if (procs && procs->empty()) (void)parent_dir->remove_child(s, 0);
  }
  return {};
}

Result<void> wait_v2_empty(const CgroupDir& dir, int timeout_ms) {
  const int64_t deadline = monotonic_ms() + timeout_ms;
  auto events = dir.open_file("cgroup.events", O_RDONLY);
  int64_t last_kill = monotonic_ms();
  for (;;) {
    bool populated;
    if (events) {
      auto p = v2_populated(events->get(), dir.file_path("cgroup.events"));
      if (!p) return std::unexpected(p.error());
      populated = *p;
    } else {
      auto procs = dir.procs();
      if (!procs) return std::unexpected(procs.error());
      populated = !procs->empty();
    }
    if (!populated) return {};
    int64_t now = monotonic_ms();
    if (now >= deadline) return std::unexpected(not_empty_error(dir, timeout_ms));
    // Tasks forked while a kill loop ran would survive it: repeat SIGKILL now and
    // then (harmless when cgroup.kill already did the job).
    if (now - last_kill >= 50) {
      if (auto procs = dir.procs(); procs) (void)signal_pids(*procs, SIGKILL, dir.path());
      last_kill = now;
    }
    int wait = static_cast<int>(std::min<int64_t>(deadline - now, 20));
    if (events) {
      struct pollfd pfd = {events->get(), POLLPRI, 0};
      (void)::poll(&pfd, 1, wait);
    } else {
      sleep_ms(wait);
    }
  }
}

Result<void> v2_kill_and_wait(const CgroupDir& dir, int timeout_ms) {
  if (dir.has("cgroup.kill")) {
    if (auto k = dir.write("cgroup.kill", "1"); !k) return k;
  } else if (dir.has("cgroup.freeze")) {
    // Frozen tasks cannot fork, so one pass of SIGKILL gets them all (v2 lets a
    // fatal signal through the freeze; thawing is only tidiness).
    if (auto f = dir.write("cgroup.freeze", "1"); !f) return f;
    const int64_t deadline = monotonic_ms() + std::min(timeout_ms, 1000);
    while (monotonic_ms() < deadline) {
      auto kv = dir.read_keyed("cgroup.events");
      if (!kv || !*kv || get<uint64_t>(**kv, "frozen").value_or(0) == 1) break;
      sleep_ms(2);
    }
    auto procs = dir.procs();
    Result<void> killed =
        procs ? signal_pids(*procs, SIGKILL, dir.path()) : Result<void>(std::unexpected(procs.error()));
    auto thawed = dir.write("cgroup.freeze", "0");
    if (!killed) return killed;
    if (!thawed) return thawed;
  } else {
    auto procs = dir.procs();
    if (!procs) return std::unexpected(procs.error());
    if (auto k = signal_pids(*procs, SIGKILL, dir.path()); !k) return k;
  }
  return wait_v2_empty(dir, timeout_ms);
}

// ---------------------------------------------------------------------------

namespace {

class V2JobCgroup final : public JobCgroup {
 public:
  // `available`: the controllers the placement offers; `enabled`: those the run
  // was created with (needed_controllers() without limits).
  V2JobCgroup(std::string path, std::string run_id, V2Created tree, const Placement& placement,
              std::vector<std::string> enabled)
      : path_(std::move(path)),
        run_id_(std::move(run_id)),
        tree_(std::move(tree)),
        mount_(placement.v2_mount),
        parent_(placement.parent),
        available_(placement.controllers),
        enabled_(std::move(enabled)) {
    if (auto fd = tree_.leaf.open_file("cgroup.events", O_RDONLY); fd) events_ = std::move(*fd);
  }
  ~V2JobCgroup() override {
    if (removed_ || released_) return;
    (void)kill_all(1000);
    (void)remove();
  }

  Layout layout() const override { return Layout::v2; }
  const std::string& path() const override { return path_; }

  Result<std::vector<LimitNotApplied>> apply_limits(const Limits& l) override {
    if (auto v = validate_limits(l); !v) return std::unexpected(v.error());
    // Controllers these limits need that the run was not created with. One that
    // cannot be enabled is reported by the limits needing it, below.
    std::vector<std::string> more;
    for (const auto& c : needed_controllers(Layout::v2, l, {}))
      if (contains(available_, c) && !contains(enabled_, c)) more.push_back(c);
    if (!more.empty()) {
      if (auto r = enable_v2_path(mount_, parent_, tree_.job_dir, more, tree_.enable_errors); !r)
        for (const auto& c : more) tree_.enable_errors[c] = r.error().message();
      enabled_.insert(enabled_.end(), more.begin(), more.end());
    }
    auto has_file = [](const void* ctx, const std::string& file) {
      return static_cast<const CgroupDir*>(ctx)->has(file);
    };
    auto writes = v2_limit_writes(l, has_file, &tree_.leaf);
    if (!writes) return std::unexpected(writes.error());
    std::vector<LimitNotApplied> missed;
    if (writes->empty()) return missed;
    auto have_text = tree_.leaf.read("cgroup.controllers");
    if (!have_text) return std::unexpected(have_text.error());
    auto have = split_words(*have_text);
    for (const auto& w : *writes) {
      std::string option = limit_option(w.what);
      // A limit of several writes stops at its first failure; the others go on.
      if (std::any_of(missed.begin(), missed.end(), [&](const LimitNotApplied& m) { return m.option == option; }))
        continue;
      if (!contains(have, w.controller)) {
        std::string msg = w.what + " needs the " + w.controller + " controller, which is not available in " +
                          tree_.leaf.path() + " (cgroup.controllers: '" + join_words(have) + "')";
        if (auto it = tree_.enable_errors.find(w.controller); it != tree_.enable_errors.end())
          msg += "; enabling it failed: " + it->second;
        missed.push_back({option, "no " + w.controller + " controller", msg});
      } else if (!tree_.leaf.has(w.file)) {
        missed.push_back({option, "no " + w.file,
                          w.what + " needs " + tree_.leaf.file_path(w.file) + ", which this kernel does not have"});
      } else if (auto r = tree_.leaf.write(w.file, w.value); !r) {
        missed.push_back({option, "writing " + w.file + " failed",
                          std::move(r.error()).context("setting " + w.what + " to " + w.value).message()});
      }
    }
    return missed;
  }

  int clone_into_fd() const override { return tree_.leaf.fd(); }

  // Only when clone3 could not place the child (kernels before 5.7, or the test
  // hook): "0" in cgroup.procs moves the writer's whole process.
  Result<std::vector<JoinFile>> join_files(bool cloned_into) override {
    if (cloned_into) return std::vector<JoinFile>{};
    if (!procs_) {
      auto fd = tree_.leaf.open_file("cgroup.procs", O_WRONLY);
      if (!fd) return std::unexpected(fd.error());
      procs_ = std::move(*fd);
    }
    return std::vector<JoinFile>{{procs_.get(), tree_.leaf.file_path("cgroup.procs")}};
  }

  // After remove() the cgroup is gone and, by construction, was empty.
  Result<std::vector<pid_t>> pids() const override {
    if (removed_) return std::vector<pid_t>{};
    return tree_.leaf.procs();
  }

  Result<void> signal_all(int sig) override {
    if (removed_) return {};
    auto procs = tree_.leaf.procs();
    if (!procs) return std::unexpected(procs.error());
    return signal_pids(*procs, sig, tree_.leaf.path());
  }

  Result<void> kill_all(int timeout_ms) override {
    if (removed_) return {};
    return v2_kill_and_wait(tree_.leaf, timeout_ms);
  }

  int events_fd() const override { return events_.get(); }

  Result<Usage> read_usage() const override {
    Usage u;
    if (auto r = read_v2_usage(tree_.leaf, u); !r) return std::unexpected(r.error());
    if (auto r = read_pressure(tree_.leaf, u.pressure_some_s); !r) return std::unexpected(r.error());
    std::vector<std::string> skipped;
    for (const auto& c : available_)
      if (!contains(enabled_, c)) skipped.push_back(c);
    u.not_measured = not_measured_fields(skipped, u);
    return u;
  }

  Result<void> release() override {
    if (released_ || removed_) return {};
    released_ = true;
    events_.reset();
    // cgroup2 refuses to rename a cgroup (EPERM): the mark is an empty sibling.
    return tree_.job_dir.make_child(run_id_ + std::string(kKeptSuffix), true);
  }

  Result<void> remove() override {
    if (removed_) return {};
    events_.reset();
    procs_.reset();
    auto leaf = tree_.job_dir.remove_child(run_id_, kRemoveBusyRetries);
    if (!leaf && leaf.error().err() != ENOENT) return leaf;
    removed_ = true;
    // <job> stays as the parent of the job's next runs (see cgroup.h).
    return {};
  }

 private:
  std::string path_;
  std::string run_id_;
  V2Created tree_;
  std::string mount_;                   // the cgroup2 mount
  std::string parent_;                  // <parent>, relative to it
  std::vector<std::string> available_;  // controllers the placement offers
  std::vector<std::string> enabled_;    // ... and those this run enabled
  UniqueFd events_;
  UniqueFd procs_;  // cgroup.procs, for join_files()
  bool removed_ = false;
  bool released_ = false;
};

}  // namespace

Result<std::unique_ptr<JobCgroup>> create_v2_job(const Placement& placement, const std::string& job,
                                                 const std::string& run_id) {
  if (!placement.runner_leaf.empty()) {
    if (auto entered = enter_runner_leaf(placement.v2_mount, placement.runner_leaf); !entered)
      return std::unexpected(entered.error());
  }
  // Only what a run without limits needs; apply_limits() enables the rest.
  std::vector<std::string> enabled;
  for (const auto& c : needed_controllers(Layout::v2, Limits{}, {}))
    if (contains(placement.controllers, c)) enabled.push_back(c);
  auto tree = create_v2_tree(placement.v2_mount, placement.parent, enabled, job, run_id);
  if (!tree) return std::unexpected(tree.error());
  std::string path = join_relative(join_relative(placement.parent, job), run_id);
  return std::make_unique<V2JobCgroup>(std::move(path), run_id, std::move(*tree), placement, std::move(enabled));
}

}  // namespace cronrun::cgroup
