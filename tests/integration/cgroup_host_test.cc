// The cgroup backends against the real kernel: each test creates a job cgroup
// under a parent of its own (/cronrun-test-<pid>, via --cgroup-parent), starts the
// payload helper in it the way the runner does on v1/hybrid (clone3 into the
// unified half when there is one, then the child joins the v1 hierarchies itself
// through join_files() before it execs), and checks what the kernel did. TearDown removes everything under the parent and the parent in every
// hierarchy, also when a test fails, and checks that nothing is left.
//
// The same tests run on the host's layout (hybrid here) and with the unified half
// dropped (plain v1: freezer kill, cpuacct). The v2 backend runs on the host's
// controller-less unified hierarchy: no limits there, but creation, clone3 into
// the leaf, cgroup.kill, cgroup.events, cpu.stat, pressure, and the non-root
// delegated flow (runner leaf, job cgroups beside it) are real.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/fd.h"
#include "runner/cgroup.h"
#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// Removes `dir` and every cgroup below it, deepest first (cgroupfs rmdir takes a
// directory that only holds control files).
void rmdir_tree(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && !e.is_symlink()) rmdir_tree(e.path());
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) ADD_FAILURE() << "rmdir " << dir << ": " << std::strerror(errno);
}

enum class Mode { host, v1_only };

class CgroupTest : public ::testing::Test {
 protected:
  // Placement for the host's layout under our own parent; `v1_only` drops the
  // unified half of a hybrid host.
  void place(bool v1_only) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (real cgroups)";
    // Orphans of the payload (the daemon mode) come back to us, so the test can
    // reap them and see them gone.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    parent_ = "/cronrun-test-" + std::to_string(::getpid());
    DiscoverOptions o;
    o.is_root = true;
    o.parent_override = parent_;
    placement_ = discover(o);
    ASSERT_NE(placement_.layout, Layout::none) << placement_.reason;
    if (v1_only) {
      if (placement_.layout != Layout::hybrid) GTEST_SKIP() << "host is not hybrid";
      placement_.layout = Layout::v1;
      placement_.v2_mount.clear();
    }
    std::cout << "placement: " << to_string(placement_.layout) << ": " << placement_.reason << "\n";
  }

  void TearDown() override {
    // Whatever a failed test left running in our subtree dies with it.
    if (!parent_.empty()) {
      std::ofstream(cgroup_fs_path("/sys/fs/cgroup/unified", parent_) + "/cgroup.kill") << "1";
      if (!placement_.v2_mount.empty())
        std::ofstream(cgroup_fs_path(placement_.v2_mount, parent_) + "/cgroup.kill") << "1";
    }
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (cg_) {
      EXPECT_TRUE(cg_->kill_all(2000));
      auto removed = cg_->remove();
      EXPECT_TRUE(removed) << removed.error().message();
      cg_.reset();
    }
    // Reap what the kills left (we are a subreaper), briefly.
    for (int i = 0; i < 50 && ::waitpid(-1, nullptr, WNOHANG) >= 0; ++i) sleep_ms(2);
    // The parent is ours (parent_override): remove it everywhere and check. The
    // unified hierarchy is cleaned even when a test dropped it from the placement.
    if (parent_.empty()) return;
    std::vector<std::string> dirs;
    for (const auto& m : placement_.v1_mounts) dirs.push_back(cgroup_fs_path(m.mount_point, parent_));
    dirs.push_back(cgroup_fs_path("/sys/fs/cgroup/unified", parent_));
    if (!placement_.v2_mount.empty()) dirs.push_back(cgroup_fs_path(placement_.v2_mount, parent_));
    for (const auto& d : dirs) {
      if (::access(d.c_str(), F_OK) == 0) rmdir_tree(d);
      EXPECT_NE(::access(d.c_str(), F_OK), 0) << d << " is left behind";
    }
  }

  void create(const Limits& limits, const std::string& job = "job") {
    limits_ = limits;
    auto made = create_job_cgroup(placement_, job, "run-" + std::to_string(::getpid()));
    ASSERT_TRUE(made) << made.error().message();
    cg_ = std::move(*made);
    apply(limits);
  }
  // Later limits (apply_limits() makes the leaves they need).
  void apply(const Limits& limits) {
    auto applied = cg_->apply_limits(limits);
    ASSERT_TRUE(applied) << applied.error().message();
    ASSERT_TRUE(applied->empty()) << applied->front().option << ": " << applied->front().detail;
    if (limits.cpu_quota_pct) limits_.cpu_quota_pct = limits.cpu_quota_pct;
    if (limits.cpu_weight) limits_.cpu_weight = limits.cpu_weight;
    if (limits.pids_max) limits_.pids_max = limits.pids_max;
    if (limits.io_weight) limits_.io_weight = limits.io_weight;
  }

  // Whether the run has its leaf in the v1 hierarchy carrying `controller`
  // (nullopt: no such hierarchy here).
  std::optional<bool> v1_leaf(const char* controller) const {
    for (const auto& m : placement_.v1_mounts)
      if (std::ranges::find(m.controllers, controller) != m.controllers.end())
        return ::access(cgroup_fs_path(m.mount_point, cg_->path()).c_str(), F_OK) == 0;
    return std::nullopt;
  }
  // The v1 hierarchy carrying memory: every run has a leaf there.
  std::string memory_mount() const {
    for (const auto& m : placement_.v1_mounts)
      if (std::ranges::find(m.controllers, "memory") != m.controllers.end()) return m.mount_point;
    ADD_FAILURE() << "no v1 memory hierarchy";
    return placement_.v1_mounts.front().mount_point;
  }

  // Starts the payload in the job cgroup as the runner does: clone3 into
  // clone_into_fd() when there is one, then the child writes "0" to every
  // join_files() file before it execs (`use_clone3` false: plain fork, joining
  // everything, as on kernels without clone3). stdout goes to a pipe when `out`
  // is given.
  pid_t start(std::vector<std::string> args, UniqueFd* out = nullptr, bool use_clone3 = true) {
    args.insert(args.begin(), CRONRUN_PAYLOAD);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int pipe_out[2] = {-1, -1};
    if (out) {
      EXPECT_EQ(::pipe2(pipe_out, O_CLOEXEC), 0);
    }
    EXPECT_EQ(cg_->clone_into_fd() >= 0, placement_.layout != Layout::v1);
    const bool clone3 = use_clone3 && cg_->clone_into_fd() >= 0;
    auto files = cg_->join_files(clone3);
    EXPECT_TRUE(files) << files.error().message();
    std::vector<int> join;
    if (files)
      for (const auto& f : *files) join.push_back(f.fd);
    // Like the runner, return only once the child has exec'd (EOF on a CLOEXEC
    // pipe), so it has joined every hierarchy by then.
    int execd[2];
    EXPECT_EQ(::pipe2(execd, O_CLOEXEC), 0);
    pid_t pid;
    if (clone3) {
      struct clone_args ca;
      std::memset(&ca, 0, sizeof ca);
      ca.flags = CLONE_INTO_CGROUP;
      ca.exit_signal = SIGCHLD;
      ca.cgroup = static_cast<uint64_t>(cg_->clone_into_fd());
      pid = static_cast<pid_t>(::syscall(SYS_clone3, &ca, sizeof ca));
    } else {
      pid = ::fork();
    }
    if (pid == 0) {
      for (int fd : join)
        if (::write(fd, "0", 1) != 1) ::_exit(99);
      if (out) ::dup2(pipe_out[1], 1);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    EXPECT_GT(pid, 0) << std::strerror(errno);
    if (pid > 0) children_.push_back(pid);
    ::close(execd[1]);
    char c;
    while (::read(execd[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::close(execd[0]);
    if (out) {
      ::close(pipe_out[1]);
      *out = UniqueFd(pipe_out[0]);
    }
    return pid;
  }

  // `pid` (a payload `sleep` that outlives the checks) is in the job cgroup in
  // every hierarchy; then ends it with SIGTERM and reaps it.
  void check_placed(pid_t pid);

  // The v1 hierarchies a run uses (issue 15 §4): memory always; cpu, pids, blkio
  // only for their limits; freezer and cpuacct on plain v1, and on hybrid only when
  // the unified leaf lacks cgroup.kill / cpu.stat (it kills and counts CPU itself).
  size_t used_v1_hierarchies() const {
    std::string unified_leaf = placement_.v2_mount.empty() ? "" : cgroup_fs_path(placement_.v2_mount, cg_->path());
    auto unified_has = [&](const char* f) {
      return !unified_leaf.empty() && ::access((unified_leaf + "/" + f).c_str(), F_OK) == 0;
    };
    size_t n = 0;
    for (const auto& m : placement_.v1_mounts) {
      bool needed = false;
      for (const auto& c : m.controllers) {
        if (c == "freezer" && unified_has("cgroup.kill")) continue;
        if (c == "cpuacct" && unified_has("cpu.stat")) continue;
        if (c == "cpu" && !limits_.cpu_quota_pct && !limits_.cpu_weight) continue;
        if (c == "pids" && !limits_.pids_max) continue;
        if (c == "blkio" && !limits_.io_weight) continue;
        if (c == "memory" || c == "cpu" || c == "cpuacct" || c == "pids" || c == "blkio" || c == "freezer")
          needed = true;
      }
      n += needed;
    }
    return n;
  }

  int wait_child(pid_t pid) {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    std::erase(children_, pid);
    return status;
  }

  Usage usage() {
    auto u = cg_->read_usage();
    EXPECT_TRUE(u) << u.error().message();
    return u.value_or(Usage{});
  }

  std::string parent_;
  Placement placement_;
  Limits limits_;  // of the last create() and apply()
  std::unique_ptr<JobCgroup> cg_;
  std::vector<pid_t> children_;
};

class CgroupHost : public CgroupTest, public ::testing::WithParamInterface<Mode> {
 protected:
  void SetUp() override { place(GetParam() == Mode::v1_only); }
};

INSTANTIATE_TEST_SUITE_P(Layouts, CgroupHost, ::testing::Values(Mode::host, Mode::v1_only),
                         [](const auto& p) { return p.param == Mode::host ? "host" : "v1_only"; });

TEST_P(CgroupHost, ChildJoinsEveryHierarchyAfterClone3) {
  create({});
  EXPECT_EQ(cg_->layout(), placement_.layout);
  EXPECT_EQ(cg_->path(), parent_ + "/job/run-" + std::to_string(::getpid()));
  EXPECT_EQ(cg_->events_fd() >= 0, placement_.layout != Layout::v1);
  // clone3 places it in the unified half only: the v1 ones are joined.
  auto files = cg_->join_files(true);
  ASSERT_TRUE(files) << files.error().message();
  EXPECT_EQ(files->size(), used_v1_hierarchies());
  for (const auto& f : *files) EXPECT_TRUE(f.path.ends_with("/tasks")) << f.path;
  check_placed(start({"sleep", "60"}));
}

TEST_P(CgroupHost, ChildJoinsEveryHierarchyAfterPlainFork) {
  create({});
  auto files = cg_->join_files(false);
  ASSERT_TRUE(files) << files.error().message();
  EXPECT_EQ(files->size(), used_v1_hierarchies() + (placement_.v2_mount.empty() ? 0 : 1));
  check_placed(start({"sleep", "60"}, nullptr, false));
}

TEST_P(CgroupHost, JoiningARemovedCgroupFails) {
  create({});
  auto files = cg_->join_files(false);
  ASSERT_TRUE(files);
  ASSERT_FALSE(files->empty());
  // A task cannot join a cgroup that is gone: the child's write fails (the errno
  // spawn() reports, see spawn_test), rather than leaving it outside unnoticed.
  std::string leaf = files->back().path.substr(0, files->back().path.rfind('/'));
  ASSERT_EQ(::rmdir(leaf.c_str()), 0) << leaf << ": " << std::strerror(errno);
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(::write(files->back().fd, "0", 1) == 1 ? 0 : 1);
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
}

void CgroupTest::check_placed(pid_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  ASSERT_TRUE(text);
  auto lines = parse_proc_cgroup(*text);
  ASSERT_TRUE(lines);
  size_t inside = 0;
  for (const auto& l : *lines)
    if (l.path == cg_->path()) ++inside;
  // Every hierarchy in use, plus the unified one on hybrid.
  size_t expected = used_v1_hierarchies() + (placement_.v2_mount.empty() ? 0 : 1);
  EXPECT_EQ(inside, expected) << *text;
  auto pids = cg_->pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{pid});
  auto live = read_live(placement_.layout, cg_->path());
  ASSERT_TRUE(live) << live.error().message();
  EXPECT_TRUE(live->memory_current_bytes);
  EXPECT_TRUE(live->memory_peak_bytes);
  EXPECT_TRUE(live->cpu_s);
  // Tasks only where the run has a pids leaf (--pids); otherwise unknown, not 0.
  if (v1_leaf("pids").value_or(false)) {
    EXPECT_EQ(live->pids_current, 1u);
  } else {
    EXPECT_FALSE(live->pids_current);
  }
  // It lived through the checks (a short sleep could end before them on a loaded
  // machine, and a gone process is in no cgroup): end it now.
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = wait_child(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

// Issue 15 §4: a run without limits makes its leaf only where a core figure needs
// it (hybrid: the unified hierarchy and memory; plain v1 adds cpuacct for CPU time
// and freezer for the kill); a limit adds its controller's leaf, which the child
// then joins, and its figures are measured.
TEST_P(CgroupHost, OnlyTheLeavesTheRunNeedsAreMade) {
  create({});
  const bool hybrid = placement_.layout == Layout::hybrid;
  if (!placement_.v2_mount.empty()) {
    EXPECT_EQ(::access(cgroup_fs_path(placement_.v2_mount, cg_->path()).c_str(), F_OK), 0) << "unified leaf";
  }
  EXPECT_EQ(v1_leaf("memory"), std::optional(true));
  for (const char* c : {"cpu", "pids", "blkio"})
    if (auto has = v1_leaf(c)) {
      EXPECT_FALSE(*has) << c << " leaf made without a limit needing it";
    }
  for (const char* c : {"cpuacct", "freezer"})
    if (auto has = v1_leaf(c)) {
      EXPECT_EQ(*has, !hybrid) << c;
    }
  auto u0 = cg_->read_usage();
  ASSERT_TRUE(u0) << u0.error().message();
  if (v1_leaf("pids") && v1_leaf("cpu")) {
    EXPECT_FALSE(u0->pids_peak);
    EXPECT_EQ(u0->not_measured, (std::vector<std::string>{"cpu_throttled_s", "cpu_nr_throttled", "pids_peak", "pids_max_events"}));
  }

  Limits l;
  l.pids_max = 50;
  l.cpu_quota_pct = 100;
  apply(l);
  for (const char* c : {"cpu", "pids"})
    if (auto has = v1_leaf(c)) {
      EXPECT_TRUE(*has) << c << " leaf missing with its limit";
    }
  if (auto has = v1_leaf("blkio")) {
    EXPECT_FALSE(*has);
  }
  check_placed(start({"sleep", "60"}));  // the child joins the new leaves too
  auto u = cg_->read_usage();
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_TRUE(u->pids_peak);
  EXPECT_TRUE(u->cpu_nr_throttled);
  EXPECT_TRUE(u->not_measured.empty()) << u->not_measured.front();
}

TEST_P(CgroupHost, MemoryLimitOomKills) {
  Limits l;
  l.memory_max_bytes = 64 * kMiB;
  create(l);
  int status = wait_child(start({"mem", "200"}));
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  Usage u = usage();
  ASSERT_TRUE(u.oom_kills);
  EXPECT_GE(*u.oom_kills, 1u);
  ASSERT_TRUE(u.memory_max_events);
  EXPECT_GT(*u.memory_max_events, 0u);
  ASSERT_TRUE(u.memory_peak_bytes);
  EXPECT_LE(*u.memory_peak_bytes, 64 * kMiB);
  std::cout << "oom: oom_kills=" << *u.oom_kills << " max_events=" << *u.memory_max_events
            << " peak=" << *u.memory_peak_bytes << "\n";
}

TEST_P(CgroupHost, MemoryPeakIsAccurate) {
  create({});
  int status = wait_child(start({"mem", "150", "1000"}));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Usage u = usage();
  ASSERT_TRUE(u.memory_peak_bytes);
  double mib = static_cast<double>(*u.memory_peak_bytes) / kMiB;
  std::cout << "peak of 'mem 150': " << mib << " MiB\n";
  EXPECT_NEAR(mib, 150.0, 15.0);
  EXPECT_EQ(u.oom_kills, 0u);
  // Measurable here, so never null; what the host lacks stays null, and what the
  // run did not make a leaf for (pids, cpu: no limit asked) is null and named.
  EXPECT_TRUE(u.cpu_user_s && u.cpu_system_s);
  EXPECT_FALSE(u.pids_peak);
  EXPECT_FALSE(u.cpu_nr_throttled);
  EXPECT_EQ(u.not_measured, (std::vector<std::string>{"cpu_throttled_s", "cpu_nr_throttled", "pids_peak", "pids_max_events"}));
  EXPECT_FALSE(u.max_rss_bytes);
  // v1 blkio counts only throttled IO (it read 0 during 200 MiB of direct IO): the
  // cgroup reports IO as unknown and the runner takes the rusage block counts.
  EXPECT_FALSE(u.io_read_bytes || u.io_write_bytes || u.io_source);
  if (placement_.layout == Layout::v1) {
    EXPECT_FALSE(u.memory_high_events);
  }
  if (placement_.layout == Layout::hybrid) {
    EXPECT_TRUE(u.pressure_some_s.memory && u.pressure_some_s.cpu);
  } else {
    EXPECT_FALSE(u.pressure_some_s.memory);  // v1 has no per-cgroup pressure
  }
}

TEST_P(CgroupHost, PeakCountsAllProcesses) {
  Limits l;
  l.pids_max = 100;  // pids_peak needs the pids leaf
  create(l);
  int status = wait_child(start({"multi", "3", "60", "1500"}));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Usage u = usage();
  ASSERT_TRUE(u.memory_peak_bytes);
  std::cout << "peak of 'multi 3 60': " << static_cast<double>(*u.memory_peak_bytes) / kMiB << " MiB\n";
  EXPECT_GE(*u.memory_peak_bytes, 180 * kMiB);
  ASSERT_TRUE(u.pids_peak);
  EXPECT_GE(*u.pids_peak, 4u);
  EXPECT_EQ(u.pids_max_events, 0u) << "nothing was refused under pids.max 100";
}

TEST_P(CgroupHost, PidsLimitStopsForkBurst) {
  Limits l;
  l.pids_max = 10;
  create(l);
  UniqueFd out;
  pid_t pid = start({"forkburst", "50"}, &out);
  int status = wait_child(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto text = read_file("/proc/self/fd/" + std::to_string(out.get()));
  ASSERT_TRUE(text);
  int forked = -1;
  ASSERT_EQ(std::sscanf(text->c_str(), "forked %d", &forked), 1) << *text;
  std::cout << "forkburst 50 under pids.max 10: forked " << forked << "\n";
  EXPECT_LT(forked, 10);
  Usage u = usage();
  ASSERT_TRUE(u.pids_peak);
  EXPECT_LE(*u.pids_peak, 10u);
  // forkburst stops at its first failed fork: the limit refused exactly one.
  EXPECT_EQ(u.pids_max_events, 1u);
}

TEST_P(CgroupHost, KillAllGetsDaemonizedProcess) {
  create({});
  std::string pidfile = "/tmp/cronrun-cgroup-daemon-" + std::to_string(::getpid());
  ::unlink(pidfile.c_str());
  int status = wait_child(start({"daemon", "60", pidfile}));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto text = read_file(pidfile);
  ::unlink(pidfile.c_str());
  ASSERT_TRUE(text);
  pid_t daemon = std::atoi(text->c_str());
  ASSERT_GT(daemon, 0);
  auto before = cg_->pids();
  ASSERT_TRUE(before);
  EXPECT_EQ(*before, std::vector<pid_t>{daemon});

  int64_t t0 = monotonic_ms();
  auto killed = cg_->kill_all(2000);
  ASSERT_TRUE(killed) << killed.error().message();
  std::cout << "kill_all took " << monotonic_ms() - t0 << " ms\n";
  auto after = cg_->pids();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
  // We are its subreaper: reap it, then it is gone.
  int dstatus = 0;
  ASSERT_EQ(::waitpid(daemon, &dstatus, 0), daemon);
  EXPECT_TRUE(WIFSIGNALED(dstatus) && WTERMSIG(dstatus) == SIGKILL);
  EXPECT_EQ(::kill(daemon, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_P(CgroupHost, SignalAllDeliversTerm) {
  create({});
  pid_t pid = start({"sleep", "30"});
  sleep_ms(50);
  ASSERT_TRUE(cg_->signal_all(SIGTERM));
  int status = wait_child(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

TEST_P(CgroupHost, CpuQuotaThrottles) {
  Limits l;
  l.cpu_quota_pct = 50;
  l.cpu_weight = 10000;
  create(l);
  // The quota is under test, not the host's load: parallel builds on a small box
  // would otherwise starve the spinner below 50% and it would never be throttled.
  // Lift the shares of the subtree this test owns (parent and <job>) too.
  for (const auto& m : placement_.v1_mounts) {
    if (std::find(m.controllers.begin(), m.controllers.end(), "cpu") == m.controllers.end()) continue;
    for (const auto& rel : {parent_, parent_ + "/job"}) {
      std::ofstream(cgroup_fs_path(m.mount_point, rel) + "/cpu.shares") << "262144";
    }
  }
  int status = wait_child(start({"spin", "3"}));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Usage u = usage();
  ASSERT_TRUE(u.cpu_user_s && u.cpu_system_s);
  double cpu = *u.cpu_user_s + *u.cpu_system_s;
  std::cout << "spin 3 at 50%: cpu " << cpu << " s, throttled " << u.cpu_nr_throttled.value_or(0) << " times, "
            << u.cpu_throttled_s.value_or(0) << " s\n";
  EXPECT_GT(cpu, 1.1);
  EXPECT_LT(cpu, 1.9);
  ASSERT_TRUE(u.cpu_nr_throttled);
  EXPECT_GT(*u.cpu_nr_throttled, 0u);
  EXPECT_TRUE(u.cpu_throttled_s);
}

TEST_P(CgroupHost, RemoveTakesTheRunAndKeepsTheJobDir) {
  create({});
  auto other = create_job_cgroup(placement_, "job", "other-" + std::to_string(::getpid()));
  ASSERT_TRUE(other) << other.error().message();
  std::vector<std::string> leaves;
  for (const auto& m : placement_.v1_mounts) leaves.push_back(cgroup_fs_path(m.mount_point, cg_->path()));
  if (!placement_.v2_mount.empty()) leaves.push_back(cgroup_fs_path(placement_.v2_mount, cg_->path()));
  ASSERT_TRUE(cg_->remove());
  ASSERT_TRUE(cg_->remove());  // idempotent
  for (const auto& l : leaves) EXPECT_NE(::access(l.c_str(), F_OK), 0) << l << " is left behind";
  // <job> stays, as the parent of the job's next runs, also once it is empty.
  std::string job_dir = cgroup_fs_path(memory_mount(), parent_ + "/job");
  EXPECT_EQ(::access(job_dir.c_str(), F_OK), 0);
  std::string other_leaf = cgroup_fs_path(memory_mount(), (*other)->path());
  ASSERT_EQ(::access(other_leaf.c_str(), F_OK), 0) << other_leaf;
  auto removed = (*other)->remove();
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_NE(::access(other_leaf.c_str(), F_OK), 0);
  EXPECT_EQ(::access(job_dir.c_str(), F_OK), 0);
}

// <job> is made (through libcgroup) when a run finds it missing, in whichever
// hierarchy lacks it: the job's first run, or the first after a reboot or after an
// admin removed it. Later runs only make their leaf below it.
TEST_P(CgroupHost, MissingJobDirIsMadeAgain) {
  create({});
  std::vector<std::string> job_dirs;
  for (const auto& m : placement_.v1_mounts) {
    std::string d = cgroup_fs_path(m.mount_point, parent_ + "/job");
    if (::access(d.c_str(), F_OK) == 0) job_dirs.push_back(d);
  }
  ASSERT_EQ(job_dirs.size(), used_v1_hierarchies());
  ASSERT_TRUE(cg_->remove());
  cg_.reset();
  // Gone from one hierarchy only: the next run makes it there and reuses the rest.
  ASSERT_EQ(::rmdir(job_dirs.back().c_str()), 0) << std::strerror(errno);
  Limits l;
  l.memory_max_bytes = 64 * kMiB;
  l.pids_max = 10;
  create(l);
  for (const auto& d : job_dirs) EXPECT_EQ(::access(d.c_str(), F_OK), 0) << d << " was not made again";
  for (const auto& m : placement_.v1_mounts) {
    std::string leaf = cgroup_fs_path(m.mount_point, cg_->path());
    if (std::find(job_dirs.begin(), job_dirs.end(), cgroup_fs_path(m.mount_point, parent_ + "/job")) != job_dirs.end()) {
      EXPECT_EQ(::access(leaf.c_str(), F_OK), 0) << leaf;
    }
  }
  auto memory = std::find_if(placement_.v1_mounts.begin(), placement_.v1_mounts.end(), [](const auto& m) {
    return std::find(m.controllers.begin(), m.controllers.end(), "memory") != m.controllers.end();
  });
  ASSERT_NE(memory, placement_.v1_mounts.end());
  auto limit = read_file(cgroup_fs_path(memory->mount_point, cg_->path()) + "/memory.limit_in_bytes");
  ASSERT_TRUE(limit);
  EXPECT_EQ(*limit, std::to_string(64 * kMiB) + "\n");
  // The leaf goes, <job> stays.
  ASSERT_TRUE(cg_->remove());
  for (const auto& d : job_dirs) EXPECT_EQ(::access(d.c_str(), F_OK), 0) << d;
}

TEST_P(CgroupHost, DestructorKillsAndRemovesUnlessReleased) {
  create({});
  std::string leaf = cgroup_fs_path(memory_mount(), cg_->path());
  ASSERT_EQ(::access(leaf.c_str(), F_OK), 0) << leaf;
  pid_t pid = start({"sleep", "30"});
  cg_.reset();  // the owner's safety net: kill, then remove
  int status = wait_child(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_NE(::access(leaf.c_str(), F_OK), 0);

  create({});
  leaf = cgroup_fs_path(memory_mount(), cg_->path());
  pid = start({"sleep", "30"});
  auto released = cg_->release();  // --keep-orphans: left alone, marked <run-id>.kept
  ASSERT_TRUE(released) << released.error().message();
  cg_.reset();
  EXPECT_EQ(::kill(pid, 0), 0);
  EXPECT_EQ(::access(leaf.c_str(), F_OK), 0);
  EXPECT_EQ(::access((leaf + ".kept").c_str(), F_OK), 0) << leaf << ".kept";
  // A kept cgroup is not a run whose runner died...
  auto live = find_live_runs(placement_, "job");
  ASSERT_TRUE(live) << live.error().message();
  EXPECT_TRUE(live->empty()) << live->front().path;
  // ... and once its processes are gone the next look removes it with its mark.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  wait_child(pid);
  for (int i = 0; i < 100 && ::access(leaf.c_str(), F_OK) == 0; ++i) {
    live = find_live_runs(placement_, "job");
    ASSERT_TRUE(live) << live.error().message();
    if (::access(leaf.c_str(), F_OK) == 0) ::usleep(10000);
  }
  EXPECT_NE(::access(leaf.c_str(), F_OK), 0) << leaf;
  EXPECT_NE(::access((leaf + ".kept").c_str(), F_OK), 0) << leaf << ".kept";
  // TearDown kills it and removes the tree.
}

TEST_P(CgroupHost, MissingControllerIsNamed) {
  create({});
  Limits l;
  l.cpu_weight = 20000;
  auto bad = cg_->apply_limits(l);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("CPU weight"), std::string::npos);
  l = {};
  l.cpu_weight = 200;
  auto ok = cg_->apply_limits(l);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_TRUE(ok->empty());
  // An IO weight applies only where the host has a weight file (this kernel's
  // blkio may have neither blkio.weight nor blkio.bfq.weight): check first.
  bool host_has_io_weight = false;
  for (const auto& m : placement_.v1_mounts)
    if (std::ranges::find(m.controllers, "blkio") != m.controllers.end())
      for (const char* f : {"blkio.weight", "blkio.bfq.weight"})
        host_has_io_weight |= ::access((m.mount_point + "/" + f).c_str(), F_OK) == 0;
  l = {};
  l.io_weight = 300;
  auto io = cg_->apply_limits(l);
  ASSERT_TRUE(io) << io.error().message();
  if (host_has_io_weight) {
    EXPECT_TRUE(io->empty()) << io->front().detail;
  } else {
    ASSERT_EQ(io->size(), 1u) << "an IO weight applied on a host without a weight file";
    EXPECT_EQ(io->front().option, "--io-weight");
    EXPECT_NE(io->front().detail.find("blkio.weight"), std::string::npos) << io->front().detail;
    EXPECT_NE(io->front().cause.find("blkio.weight"), std::string::npos) << io->front().cause;
  }
}

// One limit the host cannot take does not cost the others: with the IO weight
// missing, the memory and pids limits are still in the kernel's files.
TEST_P(CgroupHost, UnavailableLimitLeavesTheOthersApplied) {
  create({});
  Limits l;
  l.memory_max_bytes = 64 * kMiB;
  l.pids_max = 10;
  l.io_weight = 100;
  auto applied = cg_->apply_limits(l);
  ASSERT_TRUE(applied) << applied.error().message();
  auto file_of = [&](const char* controller, const char* file) -> std::string {
    for (const auto& m : placement_.v1_mounts)
      if (std::ranges::find(m.controllers, controller) != m.controllers.end())
        return cgroup_fs_path(m.mount_point, cg_->path()) + "/" + file;
    return "";
  };
  std::string mem = file_of("memory", "memory.limit_in_bytes");
  std::string pids = file_of("pids", "pids.max");
  if (mem.empty() || pids.empty()) GTEST_SKIP() << "needs the v1 memory and pids controllers";
  auto mem_text = read_file(mem);
  ASSERT_TRUE(mem_text) << mem_text.error().message();
  EXPECT_EQ(std::stoull(*mem_text), 64 * kMiB);
  auto pids_text = read_file(pids);
  ASSERT_TRUE(pids_text) << pids_text.error().message();
  EXPECT_EQ(std::stoull(*pids_text), 10u);
  for (const auto& m : *applied) EXPECT_EQ(m.option, "--io-weight") << m.detail;
}

// ---------------------------------------------------------------------------
// The v2 backend on the host's unified hierarchy (no controllers there).

class CgroupV2OnUnified : public CgroupTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (real cgroups)";
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    auto view = read_host_view("/proc", "");
    ASSERT_TRUE(view) << view.error().message();
    if (!view->unified) GTEST_SKIP() << "no cgroup2 mount";
    parent_ = "/cronrun-test-" + std::to_string(::getpid());
    placement_.layout = Layout::v2;
    placement_.v2_mount = view->unified->mount_point;
    placement_.parent = parent_;
    auto have = read_file(cgroup_fs_path(placement_.v2_mount, "cgroup.controllers"));
    ASSERT_TRUE(have);
    // Whatever this hierarchy offers (nothing on a hybrid host).
    for (const auto& c : split_words(*have))
      if (c == "cpu" || c == "memory" || c == "pids" || c == "io") placement_.controllers.push_back(c);
  }

  // clone3(CLONE_INTO_CGROUP): the child starts inside the job cgroup.
  pid_t clone_into(std::vector<std::string> args) {
    args.insert(args.begin(), CRONRUN_PAYLOAD);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    struct clone_args ca;
    std::memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = static_cast<uint64_t>(cg_->clone_into_fd());
    long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) {
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    EXPECT_GT(pid, 0) << std::strerror(errno);
    if (pid > 0) children_.push_back(static_cast<pid_t>(pid));
    return static_cast<pid_t>(pid);
  }
};

TEST_F(CgroupV2OnUnified, CloneIntoKillAndEvents) {
  create({});
  ASSERT_EQ(cg_->layout(), Layout::v2);
  ASSERT_GE(cg_->clone_into_fd(), 0);
  ASSERT_GE(cg_->events_fd(), 0);
  std::string pidfile = "/tmp/cronrun-cgroup-v2daemon-" + std::to_string(::getpid());
  ::unlink(pidfile.c_str());
  pid_t pid = clone_into({"daemon", "60", pidfile});
  ASSERT_GT(pid, 0);
  int status = wait_child(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto text = read_file(pidfile);
  ::unlink(pidfile.c_str());
  ASSERT_TRUE(text);
  pid_t daemon = std::atoi(text->c_str());
  auto before = cg_->pids();
  ASSERT_TRUE(before);
  EXPECT_EQ(*before, std::vector<pid_t>{daemon});

  // The fd the runner polls: read it once, then POLLPRI fires on "populated 0".
  char buf[128];
  ASSERT_GT(::pread(cg_->events_fd(), buf, sizeof buf, 0), 0);
  auto killed = cg_->kill_all(2000);
  ASSERT_TRUE(killed) << killed.error().message();
  struct pollfd pfd = {cg_->events_fd(), POLLPRI, 0};
  EXPECT_EQ(::poll(&pfd, 1, 10000), 1);  // prompt; the bound is for a loaded machine
  ssize_t n = ::pread(cg_->events_fd(), buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<size_t>(n)).find("populated 0"), std::string::npos);
  int dstatus = 0;
  ASSERT_EQ(::waitpid(daemon, &dstatus, 0), daemon);
  EXPECT_TRUE(WIFSIGNALED(dstatus) && WTERMSIG(dstatus) == SIGKILL);
  EXPECT_EQ(::kill(daemon, 0), -1);
}

TEST_F(CgroupV2OnUnified, UsageAndMissingControllers) {
  create({});
  // A known amount of CPU (spin 0.3 s of wall time got 0.016 s of CPU on a busy host).
  pid_t pid = clone_into({"burn", "0.1"});
  ASSERT_GT(pid, 0);
  int status = wait_child(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Usage u = usage();
  ASSERT_TRUE(u.cpu_user_s && u.cpu_system_s);
  EXPECT_GT(*u.cpu_user_s + *u.cpu_system_s, 0.09);  // the CPU the job had, counted
  EXPECT_TRUE(u.pressure_some_s.cpu && u.pressure_some_s.memory && u.pressure_some_s.io);
  if (placement_.controllers.empty()) {
    // No controllers: nothing of theirs is invented.
    EXPECT_FALSE(u.memory_peak_bytes);
    EXPECT_FALSE(u.oom_kills);
    EXPECT_FALSE(u.pids_peak);
    EXPECT_FALSE(u.cpu_nr_throttled);
    EXPECT_FALSE(u.io_read_bytes);
    Limits l;
    l.memory_max_bytes = 64 * kMiB;
    l.cpu_quota_pct = 50;
    auto missed = cg_->apply_limits(l);
    ASSERT_TRUE(missed) << missed.error().message();
    ASSERT_EQ(missed->size(), 2u);
    EXPECT_EQ((*missed)[0].option, "--memory");
    EXPECT_NE((*missed)[0].detail.find("memory controller"), std::string::npos) << (*missed)[0].detail;
    EXPECT_EQ((*missed)[1].option, "--cpu");
    EXPECT_NE((*missed)[1].detail.find("cpu controller"), std::string::npos) << (*missed)[1].detail;
  }
}

// A non-root runner in a delegated v2 cgroup: discovery finds the delegation, the
// runner moves itself into runner@<pid>, clears a dead runner's empty leaf, and
// runs a job beside it; nothing above the delegated cgroup is written.
TEST_F(CgroupV2OnUnified, NonRootDelegatedRunner) {
  const uid_t nobody = 65534;
  const gid_t nogroup = 65534;
  std::string deleg = parent_ + "/deleg";
  std::string deleg_dir = cgroup_fs_path(placement_.v2_mount, deleg);
  ASSERT_EQ(::mkdir(cgroup_fs_path(placement_.v2_mount, parent_).c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(deleg_dir.c_str(), 0755), 0);
  // What systemd's Delegate=yes does: chown the directory and the three files.
  for (const char* f : {"", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"})
    ASSERT_EQ(::chown((deleg_dir + f).c_str(), nobody, nogroup), 0) << f;
  // A leaf left by a runner that is gone.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string stale = deleg_dir + "/" + runner_leaf_name(dead);
  ASSERT_EQ(::mkdir(stale.c_str(), 0755), 0);
  ASSERT_EQ(::chown(stale.c_str(), nobody, nogroup), 0);

  // A fake proc: the host's mounts, but only our unified line (the v1 hierarchies
  // are root's here and would make discovery fall back to "none").
  char tmpl[] = "/tmp/cronrun-deleg-XXXXXX";
  std::string proc = ::mkdtemp(tmpl);
  std::filesystem::create_directories(proc + "/self");
  auto mountinfo = read_file("/proc/self/mountinfo");
  ASSERT_TRUE(mountinfo);
  std::ofstream(proc + "/self/mountinfo") << *mountinfo;
  std::ofstream(proc + "/self/cgroup") << "0::" << deleg << "\n";
  ::chmod(proc.c_str(), 0755);

  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  pid_t runner = ::fork();
  if (runner == 0) {
    // The "runner": waits until placed in the delegated cgroup, drops to nobody.
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(90);
    if (::setgroups(0, nullptr) != 0 || ::setgid(nogroup) != 0 || ::setuid(nobody) != 0) ::_exit(91);
    std::string msg;
    int code = 0;
    [&] {
      DiscoverOptions o;
      o.is_root = false;
      o.proc_root = proc;
      Placement p = discover(o);
      msg += "layout=" + std::string(to_string(p.layout)) + " parent=" + p.parent + " leaf=" + p.runner_leaf + "\n";
      if (p.layout != Layout::v2) {
        msg += p.reason + "\n";
        code = 1;
        return;
      }
      auto made = create_job_cgroup(p, "job", "run-1");
      if (!made) {
        msg += made.error().message() + "\n";
        code = 2;
        return;
      }
      auto own = read_file("/proc/self/cgroup");
      msg += "self=" + own.value_or("?");
      auto join = (*made)->join_files(false);
      if (!join || join->size() != 1) {
        msg += (join ? "join files: " + std::to_string(join->size()) : join.error().message()) + "\n";
        code = 3;
        return;
      }
      int joined[2];
      if (::pipe(joined) != 0) {
        code = 3;
        return;
      }
      pid_t child = ::fork();
      if (child == 0) {
        char ok = ::write(join->front().fd, "0", 1) == 1 ? 'y' : 'n';
        (void)!::write(joined[1], &ok, 1);
        ::sleep(30);
        ::_exit(0);
      }
      ::close(joined[1]);
      char ok = 0;
      (void)!::read(joined[0], &ok, 1);
      ::close(joined[0]);
      if (ok != 'y') {
        msg += "the child could not join " + join->front().path + "\n";
        code = 3;
      }
      auto pids = (*made)->pids();
      msg += "pids=" + std::to_string(pids ? pids->size() : 999) + "\n";
      auto killed = (*made)->kill_all(2000);
      if (!killed) msg += killed.error().message() + "\n", code = 4;
      ::waitpid(child, nullptr, 0);
      auto removed = (*made)->remove();
      if (!removed) msg += removed.error().message() + "\n", code = 5;
    }();
    (void)!::write(report[1], msg.data(), msg.size());
    ::_exit(code);
  }
  ASSERT_GT(runner, 0);
  children_.push_back(runner);
  ::close(go[0]);
  ::close(report[1]);
  // Root places the runner in the delegated cgroup (as a login would).
  {
    std::ofstream procs(deleg_dir + "/cgroup.procs");
    procs << runner;
  }
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  ::close(report[0]);
  int status = wait_child(runner);
  std::filesystem::remove_all(proc);
  std::cout << msg;
  ASSERT_TRUE(WIFEXITED(status)) << msg;
  EXPECT_EQ(WEXITSTATUS(status), 0) << msg;
  std::string leaf = deleg + "/" + runner_leaf_name(runner);
  EXPECT_NE(msg.find("parent=" + deleg + " leaf=" + leaf), std::string::npos) << msg;
  EXPECT_NE(msg.find("\n0::" + leaf + "\n"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pids=1"), std::string::npos) << msg;
  // The dead runner's leaf is gone, ours stays (the runner cannot remove the
  // cgroup it lives in), the run's cgroup is removed and <job> stays.
  EXPECT_NE(::access(stale.c_str(), F_OK), 0);
  EXPECT_EQ(::access(cgroup_fs_path(placement_.v2_mount, leaf).c_str(), F_OK), 0);
  EXPECT_NE(::access((deleg_dir + "/job/run-1").c_str(), F_OK), 0);
  EXPECT_EQ(::access((deleg_dir + "/job").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace cronrun::cgroup
