// Discovery on fixture hosts: /proc/self/{mountinfo,cgroup} from v1, v2, hybrid
// and container (mapped mount root) hosts, with a fake directory tree standing in
// for /sys/fs/cgroup (DiscoverOptions.mount_prefix) so write access can be decided
// without root or real cgroups.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/fd.h"
#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {
namespace {

namespace fs = std::filesystem;

const std::string kScope = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-u5.scope";

std::string fixture(const std::string& name) {
  auto text = read_file(std::string(CRONRUN_FIXTURES) + "/cgroup/" + name);
  EXPECT_TRUE(text.has_value()) << name;
  return text.value_or("");
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Who owns the fake tree: the test user, or a made-up one when run as root.
uid_t tester() { return ::getuid() == 0 ? 4000 : ::getuid(); }
// Someone who owns nothing in the fake tree (mode 0755 dirs: not writable).
uid_t stranger() { return tester() + 4242; }

// A temporary host: proc/self/{mountinfo,cgroup} and a cgroupfs look-alike.
class FakeHost {
 public:
  explicit FakeHost(const std::string& fixture_case) {
    char tmpl[] = "/tmp/cronrun-cgroup-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    fs::create_directories(root_ + "/proc/self");
    write("proc/self/mountinfo", fixture(fixture_case + "/self/mountinfo"));
    write("proc/self/cgroup", fixture(fixture_case + "/self/cgroup"));
  }
  ~FakeHost() {
    // Some test directories are read-only on purpose: open them up to delete.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_directory(ec)) ::chmod(it->path().c_str(), 0755);
    }
    fs::remove_all(root_, ec);
  }

  void write(const std::string& rel, const std::string& text, mode_t mode = 0644) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << text;
    own(rel, mode);
  }
  // A cgroup directory with the files discovery looks at.
  void cgroup(const std::string& rel, const std::string& controllers, const std::string& enabled = "",
              mode_t mode = 0755) {
    fs::create_directories(root_ + "/" + rel);
    write(rel + "/cgroup.controllers", controllers + "\n", 0444);
    write(rel + "/cgroup.subtree_control", enabled + "\n", mode & 0666 & ~0111);
    write(rel + "/cgroup.procs", "", mode & 0666 & ~0111);
    own(rel, mode);
  }
  std::string read(const std::string& rel) const { return read_file(root_ + "/" + rel).value_or("<missing>"); }

  DiscoverOptions opts(bool is_root, uid_t euid) const {
    DiscoverOptions o;
    o.is_root = is_root;
    o.proc_root = root_ + "/proc";
    o.mount_prefix = root_;
    o.euid = euid;
    o.egid = 4242424;
    return o;
  }
  const std::string& root() const { return root_; }

 private:
  // Run as root, the test hands everything to tester(): root would pass any check.
  void own(const std::string& rel, mode_t mode) {
    std::string path = root_ + "/" + rel;
    if (::getuid() == 0) (void)!::chown(path.c_str(), tester(), static_cast<gid_t>(-1));
    ::chmod(path.c_str(), mode);
  }
  std::string root_;
};

TEST(CgroupHostView, V2) {
  FakeHost host("v2");
  auto view = read_host_view(host.root() + "/proc", host.root());
  ASSERT_TRUE(view) << view.error().message();
  ASSERT_TRUE(view->unified);
  EXPECT_EQ(view->unified->mount_point, host.root() + "/sys/fs/cgroup");
  EXPECT_EQ(view->unified->own_path, kScope);
  EXPECT_FALSE(view->unified->read_only);
  EXPECT_TRUE(view->v1.empty());
}

TEST(CgroupHostView, V1) {
  FakeHost host("v1");
  auto view = read_host_view(host.root() + "/proc", "");
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_FALSE(view->unified);
  // freezer, pids, blkio, memory, cpuacct+cpu (co-mounted): cpuset and devices are not ours.
  ASSERT_EQ(view->v1.size(), 5u);
  const Hierarchy* cpu = nullptr;
  for (const auto& h : view->v1)
    if (has(h.controllers, "cpu")) cpu = &h;
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_TRUE(has(cpu->controllers, "cpuacct"));
  EXPECT_EQ(cpu->own_path, "/system.slice/crond.service");
  // The read-only tmpfs at /sys/fs/cgroup does not make the cgroup mounts read-only.
  EXPECT_FALSE(cpu->read_only);
}

TEST(CgroupHostView, Hybrid) {
  FakeHost host("hybrid");
  auto view = read_host_view(host.root() + "/proc", "");
  ASSERT_TRUE(view) << view.error().message();
  ASSERT_TRUE(view->unified);
  EXPECT_EQ(view->unified->mount_point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(view->unified->own_path, "/system.slice/cron.service");
  EXPECT_EQ(view->v1.size(), 5u);
}

TEST(CgroupHostView, NamespaceMapsMountRoot) {
  FakeHost host("ns");
  auto view = read_host_view(host.root() + "/proc", "");
  ASSERT_TRUE(view) << view.error().message();
  ASSERT_TRUE(view->unified);
  // Mount root /system.slice/docker-abc123.scope, our cgroup below it.
  EXPECT_EQ(view->unified->mount_point, "/sys/fs/cgroup");
  EXPECT_EQ(view->unified->own_path, "/cron");
}

TEST(CgroupHostView, CgroupOutsideMountIsNotVisible) {
  FakeHost host("ns");
  host.write("proc/self/cgroup", "0::/system.slice/other.service\n");
  auto view = read_host_view(host.root() + "/proc", "");
  ASSERT_TRUE(view);
  ASSERT_TRUE(view->unified);
  EXPECT_FALSE(view->unified->own_path);
}

TEST(CgroupPlacement, V2RootUsesCronrunUnderHierarchyRoot) {
  FakeHost host("v2");
  host.cgroup("sys/fs/cgroup", "cpuset cpu io memory hugetlb pids rdma misc", "cpu io memory pids");
  auto p = discover(host.opts(true, 0));
  EXPECT_EQ(p.layout, Layout::v2) << p.reason;
  EXPECT_EQ(p.parent, "/cronrun");
  EXPECT_TRUE(p.runner_leaf.empty());
  EXPECT_EQ(p.controllers, (std::vector<std::string>{"cpu", "io", "memory", "pids"}));
  EXPECT_EQ(p.v2_mount, host.root() + "/sys/fs/cgroup");
  EXPECT_TRUE(p.v1_mounts.empty());
  EXPECT_NE(p.reason.find("/cronrun"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, V2ParentOverride) {
  FakeHost host("v2");
  host.cgroup("sys/fs/cgroup", "cpu memory pids");
  auto o = host.opts(true, 0);
  o.parent_override = "batch//nightly/";
  auto p = discover(o);
  EXPECT_EQ(p.layout, Layout::v2) << p.reason;
  EXPECT_EQ(p.parent, "/batch/nightly");
  EXPECT_EQ(p.controllers, (std::vector<std::string>{"cpu", "memory", "pids"}));

  o.parent_override = "/a/../etc";
  auto bad = discover(o);
  EXPECT_EQ(bad.layout, Layout::none);
  EXPECT_NE(bad.reason.find("--cgroup-parent"), std::string::npos) << bad.reason;
}

TEST(CgroupPlacement, V2NonRootDelegatedMovesIntoLeaf) {
  FakeHost host("v2");
  host.cgroup("sys/fs/cgroup", "cpuset cpu io memory pids", "cpu io memory pids");
  host.cgroup("sys/fs/cgroup" + kScope, "cpu memory pids");
  auto p = discover(host.opts(false, tester()));
  ASSERT_EQ(p.layout, Layout::v2) << p.reason;
  EXPECT_EQ(p.parent, kScope);
  EXPECT_EQ(p.runner_leaf, kScope + "/runner@" + std::to_string(::getpid()));
  // io is not delegated to the scope: only what the scope has.
  EXPECT_EQ(p.controllers, (std::vector<std::string>{"cpu", "memory", "pids"}));
  EXPECT_NE(p.reason.find("moves itself"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, V2NonRootWithoutDelegationSaysWhatToDo) {
  FakeHost host("v2");
  host.cgroup("sys/fs/cgroup", "cpu io memory pids", "cpu io memory pids");
  host.cgroup("sys/fs/cgroup" + kScope, "cpu memory pids");
  auto p = discover(host.opts(false, stranger()));
  EXPECT_EQ(p.layout, Layout::none);
  EXPECT_NE(p.reason.find("not delegated"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find(kScope), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("Delegate=yes"), std::string::npos) << p.reason;
  // cronrun makes its own delegated scope on systemd hosts (DESIGN §9): the advice
  // names the missing user manager, not a systemd-run wrapper.
  EXPECT_EQ(p.reason.find("systemd-run"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("loginctl enable-linger"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, V2NonRootOverrideOutsideOwnCgroupIsRefused) {
  FakeHost host("v2");
  host.cgroup("sys/fs/cgroup", "cpu memory pids");
  host.cgroup("sys/fs/cgroup/mine", "cpu memory pids");
  auto o = host.opts(false, tester());
  o.parent_override = "/mine";
  auto p = discover(o);
  EXPECT_EQ(p.layout, Layout::none);
  EXPECT_NE(p.reason.find("lives outside"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, ReadOnlyCgroupfsInContainer) {
  FakeHost host("ns");
  auto text = fixture("ns/self/mountinfo");
  auto at = text.find("/sys/fs/cgroup rw,");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 18, "/sys/fs/cgroup ro,");
  host.write("proc/self/mountinfo", text);
  host.cgroup("sys/fs/cgroup", "cpu memory pids");
  auto p = discover(host.opts(true, 0));
  EXPECT_EQ(p.layout, Layout::none);
  EXPECT_NE(p.reason.find("read-only"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("container"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, NamespaceRootAndDelegated) {
  FakeHost host("ns");
  host.cgroup("sys/fs/cgroup", "cpu memory pids", "cpu memory pids");
  host.cgroup("sys/fs/cgroup/cron", "cpu memory pids");
  auto root = discover(host.opts(true, 0));
  EXPECT_EQ(root.layout, Layout::v2) << root.reason;
  EXPECT_EQ(root.parent, "/cronrun");
  EXPECT_EQ(root.v2_mount, host.root() + "/sys/fs/cgroup");
  auto user = discover(host.opts(false, tester()));
  EXPECT_EQ(user.layout, Layout::v2) << user.reason;
  EXPECT_EQ(user.parent, "/cron");
  EXPECT_EQ(user.runner_leaf, "/cron/runner@" + std::to_string(::getpid()));
}

// `unshare -C` without a new cgroup mount (or a container with the host's
// /sys/fs/cgroup bound in and a private cgroup namespace): the inherited mount's
// root reads "/..", and our cgroup reads "/".
TEST(CgroupPlacement, V2MountFromOutsideTheNamespaceIsNotUsed) {
  FakeHost host("v2");
  host.write("proc/self/mountinfo",
             "30 23 0:26 /.. /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n");
  host.write("proc/self/cgroup", "0::/\n");
  host.cgroup("sys/fs/cgroup", "cpu memory pids", "cpu memory pids");
  for (bool root : {true, false}) {
    auto p = discover(host.opts(root, root ? 0 : tester()));
    EXPECT_EQ(p.layout, Layout::none) << p.reason;
    EXPECT_NE(p.reason.find("outside this process's cgroup namespace"), std::string::npos) << p.reason;
    EXPECT_NE(p.reason.find("mount -t cgroup2"), std::string::npos) << p.reason;
  }
}

TEST(CgroupPlacement, V2MountMadeInsideTheNamespaceWinsOverAnInheritedOne) {
  FakeHost host("v2");
  host.write("proc/self/mountinfo",
             "30 23 0:26 /.. /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
             "40 23 0:26 / /run/cg rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n");
  host.write("proc/self/cgroup", "0::/init\n");
  host.cgroup("run/cg", "cpu memory pids", "cpu memory pids");
  auto p = discover(host.opts(true, 0));
  ASSERT_EQ(p.layout, Layout::v2) << p.reason;
  EXPECT_EQ(p.v2_mount, host.root() + "/run/cg");
  EXPECT_EQ(p.parent, "/cronrun");
}

TEST(CgroupPlacement, HybridMountsFromOutsideTheNamespaceAreNotUsed) {
  FakeHost host("hybrid");
  auto text = fixture("hybrid/self/mountinfo");
  // Every cgroup mount inherited from outside the namespace.
  for (size_t at = 0; (at = text.find(" / /sys/fs/cgroup/", at)) != std::string::npos; at += 4)
    text.replace(at, 3, " /.. ");
  host.write("proc/self/mountinfo", text);
  std::string self;
  for (const char* line : {"12:cpuset:/", "10:freezer:/", "9:blkio:/", "8:pids:/", "7:memory:/", "6:cpu,cpuacct:/",
                           "1:name=systemd:/", "0::/"})
    self += std::string(line) + "\n";
  host.write("proc/self/cgroup", self);
  host.cgroup("sys/fs/cgroup/unified", "");
  auto p = discover(host.opts(true, 0));
  EXPECT_EQ(p.layout, Layout::none) << p.reason;
  EXPECT_NE(p.reason.find("memory (mounted outside this cgroup namespace)"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("mount -t cgroup2"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, HybridRoot) {
  FakeHost host("hybrid");
  host.cgroup("sys/fs/cgroup/unified", "");
  auto p = discover(host.opts(true, 0));
  ASSERT_EQ(p.layout, Layout::hybrid) << p.reason;
  EXPECT_EQ(p.parent, "/cronrun");
  EXPECT_EQ(p.v2_mount, host.root() + "/sys/fs/cgroup/unified");
  EXPECT_EQ(p.v1_mounts.size(), 5u);
  for (const char* c : {"memory", "cpu", "cpuacct", "pids", "blkio", "freezer"})
    EXPECT_TRUE(has(p.controllers, c)) << c;
  EXPECT_TRUE(p.runner_leaf.empty());
}

TEST(CgroupPlacement, V1Root) {
  FakeHost host("v1");
  auto p = discover(host.opts(true, 0));
  ASSERT_EQ(p.layout, Layout::v1) << p.reason;
  EXPECT_EQ(p.parent, "/cronrun");
  EXPECT_EQ(p.v1_mounts.size(), 5u);
  EXPECT_TRUE(p.v2_mount.empty());
}

TEST(CgroupPlacement, V1NonRootNeedsAdminMadeParent) {
  FakeHost host("v1");
  auto p = discover(host.opts(false, stranger()));
  EXPECT_EQ(p.layout, Layout::none);
  EXPECT_NE(p.reason.find("cgconfig.conf"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("/cronrun"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, V1NonRootUsesWritableCgconfigParent) {
  FakeHost host("v1");
  // An admin's cgconfig.conf made /cronrun ours in memory and cpu,cpuacct only.
  host.cgroup("sys/fs/cgroup/memory/cronrun", "");
  host.cgroup("sys/fs/cgroup/cpu,cpuacct/cronrun", "");
  host.cgroup("sys/fs/cgroup/pids/cronrun", "", "", 0555);
  auto p = discover(host.opts(false, tester()));
  ASSERT_EQ(p.layout, Layout::v1) << p.reason;
  EXPECT_EQ(p.parent, "/cronrun");
  EXPECT_EQ(p.v1_mounts.size(), 2u);
  EXPECT_TRUE(has(p.controllers, "memory"));
  EXPECT_TRUE(has(p.controllers, "cpuacct"));
  EXPECT_FALSE(has(p.controllers, "pids"));
  EXPECT_NE(p.reason.find("not used"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, HybridNonRootFallsBackToV1WhenUnifiedIsNotOurs) {
  FakeHost host("hybrid");
  host.cgroup("sys/fs/cgroup/memory/cronrun", "");
  host.cgroup("sys/fs/cgroup/unified", "");
  auto p = discover(host.opts(false, tester()));
  ASSERT_EQ(p.layout, Layout::v1) << p.reason;
  EXPECT_NE(p.reason.find("unified hierarchy"), std::string::npos) << p.reason;
}

TEST(CgroupPlacement, NothingMountedOrUnreadable) {
  FakeHost host("v2");
  host.write("proc/self/mountinfo", "28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n");
  auto p = discover(host.opts(true, 0));
  EXPECT_EQ(p.layout, Layout::none);
  EXPECT_NE(p.reason.find("no cgroup filesystem"), std::string::npos) << p.reason;

  DiscoverOptions o;
  o.proc_root = host.root() + "/nonexistent";
  auto q = discover(o);
  EXPECT_EQ(q.layout, Layout::none);
  EXPECT_NE(q.reason.find("cannot tell"), std::string::npos) << q.reason;
}

// The v2 tree builder on a look-alike tree: controllers are enabled top-down only
// where missing, and nothing above a delegated parent is written.
TEST(CgroupV2Tree, EnablesOnlyMissingControllersBelowParent) {
  FakeHost host("v2");
  const std::string base = "sys/fs/cgroup";
  host.cgroup(base, "cpu io memory pids", "cpu io memory pids");
  std::string walk = base;
  for (const char* part : {"/user.slice", "/user-1000.slice", "/user@1000.service", "/app.slice"}) {
    walk += part;
    host.cgroup(walk, "cpu io memory pids", "cpu memory pids");
  }
  host.cgroup(base + kScope, "cpu memory pids", "");
  // <job> as the kernel shows it below a parent that passes nothing down yet: it
  // cannot pass anything down itself (a controller enabled in a cgroup is enabled
  // in all its ancestors, which the runner relies on to skip the walk later).
  host.cgroup(base + kScope + "/nightly", "cpu memory pids", "");
  auto tree = create_v2_tree(host.root() + "/" + base, kScope, {"cpu", "memory", "pids"}, "nightly", "run-1");
  ASSERT_TRUE(tree) << tree.error().message();
  EXPECT_TRUE(tree->leaf.valid());
  EXPECT_EQ(tree->leaf.path(), host.root() + "/" + base + kScope + "/nightly/run-1");
  // Ancestors already pass the controllers down: untouched.
  EXPECT_EQ(host.read(base + "/cgroup.subtree_control"), "cpu io memory pids\n");
  EXPECT_EQ(host.read(base + "/user.slice/cgroup.subtree_control"), "cpu memory pids\n");
  // The delegated parent and <job> had none enabled: written ("+x" per controller).
  EXPECT_EQ(host.read(base + kScope + "/cgroup.subtree_control").substr(0, 1), "+");
  EXPECT_EQ(host.read(base + kScope + "/nightly/cgroup.subtree_control").substr(0, 1), "+");
  for (const auto& [controller, why] : tree->enable_errors) ADD_FAILURE() << controller << ": " << why;
  // A second run with the same id is refused: run ids are unique.
  auto again = create_v2_tree(host.root() + "/" + base, kScope, {"cpu"}, "nightly", "run-1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().err(), EEXIST);
}

}  // namespace
}  // namespace cronrun::cgroup
