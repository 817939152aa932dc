// Only the cgroups a run needs (issue 15 §4): which controllers a run gets a leaf
// in (v1, hybrid) or enables (v2) for its limits, which usage fields the others
// leave unmeasured, and, on a fake v2 tree, that creating a run's cgroup enables
// only those controllers while apply_limits() adds the ones its limits need.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/fd.h"
#include "runner/cgroup.h"
#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {
namespace {

namespace fs = std::filesystem;
using Names = std::vector<std::string>;

constexpr UnifiedLeafFeatures kModernUnified{.kill = true, .cpu_stat = true};

TEST(NeededControllers, HybridRunWithoutLimitsNeedsOnlyMemory) {
  // The unified leaf (not a controller) kills and counts CPU time; memory is the
  // core figure nothing else gives.
  EXPECT_EQ(needed_controllers(Layout::hybrid, {}, kModernUnified), Names{"memory"});
}

TEST(NeededControllers, HybridLimitsAddTheirControllers) {
  Limits l;
  l.pids_max = 10;
  EXPECT_EQ(needed_controllers(Layout::hybrid, l, kModernUnified), (Names{"memory", "pids"}));
  l = {};
  l.cpu_quota_pct = 50;
  EXPECT_EQ(needed_controllers(Layout::hybrid, l, kModernUnified), (Names{"memory", "cpu"}));
  l = {};
  l.cpu_weight = 200;
  EXPECT_EQ(needed_controllers(Layout::hybrid, l, kModernUnified), (Names{"memory", "cpu"}));
  l = {};
  l.io_weight = 200;
  EXPECT_EQ(needed_controllers(Layout::hybrid, l, kModernUnified), (Names{"memory", "blkio"}));
  // Memory limits use the memory leaf every run has anyway.
  l = {};
  l.memory_max_bytes = 1 << 26;
  l.memory_high_bytes = 1 << 25;
  l.swap_max_bytes = 1 << 20;
  EXPECT_EQ(needed_controllers(Layout::hybrid, l, kModernUnified), Names{"memory"});
}

TEST(NeededControllers, OldUnifiedLeafFallsBackToFreezerAndCpuacct) {
  EXPECT_EQ(needed_controllers(Layout::hybrid, {}, {.kill = false, .cpu_stat = true}), (Names{"memory", "freezer"}));
  EXPECT_EQ(needed_controllers(Layout::hybrid, {}, {.kill = true, .cpu_stat = false}), (Names{"memory", "cpuacct"}));
}

TEST(NeededControllers, PlainV1KeepsFreezerAndCpuacct) {
  // No unified leaf: the freezer kills without letting the job fork away, and
  // cpuacct is the only whole-tree CPU time. What the unified features say is moot.
  EXPECT_EQ(needed_controllers(Layout::v1, {}, kModernUnified), (Names{"memory", "cpuacct", "freezer"}));
  Limits l;
  l.pids_max = 10;
  l.cpu_quota_pct = 150;
  l.io_weight = 100;
  EXPECT_EQ(needed_controllers(Layout::v1, l, {}),
            (Names{"memory", "cpu", "cpuacct", "pids", "blkio", "freezer"}));
}

TEST(NeededControllers, V2EnablesMemoryAndIoPlusWhatLimitsNeed) {
  EXPECT_EQ(needed_controllers(Layout::v2, {}, {}), (Names{"io", "memory"}));
  Limits l;
  l.pids_max = 10;
  l.cpu_weight = 50;
  EXPECT_EQ(needed_controllers(Layout::v2, l, {}), (Names{"cpu", "io", "memory", "pids"}));
  EXPECT_TRUE(needed_controllers(Layout::none, l, {}).empty());
}

// --dry-run names the leaves a run makes, not every hierarchy the host has: on
// hybrid, freezer and cpuacct only when the unified hierarchy lacks cgroup.kill or
// cpu.stat, as found in the job parent's nearest existing ancestor.
TEST(RunControllers, HybridDryRunProbesTheUnifiedParentAndListsOnlyTheRunsLeaves) {
  char tmpl[] = "/tmp/cronrun-run-controllers-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  Placement p;
  p.layout = Layout::hybrid;
  p.parent = "/cronrun";
  p.v2_mount = root;
  p.controllers = {"pids", "blkio", "freezer", "memory", "cpuacct", "cpu"};
  Limits l;
  // Nothing below the unified root yet (its own files say nothing of a leaf's).
  std::ofstream(root + "/cpu.stat") << "";
  EXPECT_EQ(run_controllers(p, l).sure, Names{"memory"});
  EXPECT_EQ(run_controllers(p, l).maybe, (Names{"cpuacct", "freezer"}));
  fs::create_directory(root + "/cronrun");
  std::ofstream(root + "/cronrun/cpu.stat") << "";  // an old kernel: no cgroup.kill
  EXPECT_EQ(run_controllers(p, l).sure, (Names{"memory", "freezer"}));
  EXPECT_EQ(run_controllers(p, l).maybe, Names{});
  std::ofstream(root + "/cronrun/cgroup.kill") << "";
  EXPECT_EQ(run_controllers(p, l).sure, Names{"memory"});
  l.pids_max = 5;
  l.io_weight = 100;
  EXPECT_EQ(run_controllers(p, l).sure, (Names{"memory", "pids", "blkio"}));
  p.controllers = {"memory"};  // only what the host offers
  EXPECT_EQ(run_controllers(p, l).sure, Names{"memory"});
  fs::remove_all(root);
}

TEST(NotMeasured, NamesTheNullFieldsOfSkippedControllers) {
  Usage u;
  u.cpu_user_s = 1.0;  // from the unified cpu.stat, not cpuacct
  u.cpu_system_s = 0.5;
  EXPECT_EQ(not_measured_fields({"cpu", "cpuacct", "pids", "blkio", "freezer"}, u),
            (Names{"cpu_throttled_s", "cpu_nr_throttled", "pids_peak", "pids_max_events"}));
  // A figure some other way measured is not named (v2: pids enabled by an earlier
  // run of the job in <job>'s subtree_control).
  u.pids_peak = 3;
  u.pids_max_events = 0;
  EXPECT_EQ(not_measured_fields({"pids"}, u), Names{});
  EXPECT_EQ(not_measured_fields({}, Usage{}), Names{});
}

// A v2 hierarchy as plain files: each level lists the four controllers as
// available and starts with an empty subtree_control, so what the backend writes
// there can be read back.
class FakeV2Tree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronrun-cgroup-leaves-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    for (const auto& d : {root_, root_ + "/cronrun", root_ + "/cronrun/job"}) {
      fs::create_directories(d);
      std::ofstream(d + "/cgroup.controllers") << "cpu io memory pids\n";
      std::ofstream(d + "/cgroup.subtree_control") << "";
    }
    placement_.layout = Layout::v2;
    placement_.v2_mount = root_;
    placement_.parent = "/cronrun";
    placement_.controllers = {"cpu", "io", "memory", "pids"};
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string subtree(const std::string& rel) {
    auto text = read_file(root_ + rel + "/cgroup.subtree_control");
    EXPECT_TRUE(text);
    return text.value_or("");
  }
  void clear_subtree(const std::string& rel) { std::ofstream(root_ + rel + "/cgroup.subtree_control") << ""; }

  std::string root_;
  Placement placement_;
};

TEST_F(FakeV2Tree, CreationEnablesOnlyWhatARunWithoutLimitsNeeds) {
  auto cg = create_job_cgroup(placement_, "job", "run-1");
  ASSERT_TRUE(cg) << cg.error().message();
  // One write per controller, each over the last (a plain file keeps the longest
  // tail): io then memory, never cpu or pids.
  for (const std::string rel : {"", "/cronrun", "/cronrun/job"}) {
    std::string text = subtree(rel);
    EXPECT_EQ(text, "+memory") << "level '" << rel << "'";
    EXPECT_EQ(text.find("pids"), std::string::npos) << rel;
    EXPECT_EQ(text.find("cpu"), std::string::npos) << rel;
  }
  // Nothing of pids or cpu measured: said so (the leaf's files are missing here,
  // so memory and io are null as well, but those are "cannot measure", unnamed).
  auto u = (*cg)->read_usage();
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->not_measured, (Names{"cpu_throttled_s", "cpu_nr_throttled", "pids_peak", "pids_max_events"}));
  EXPECT_FALSE(u->pids_peak);
}

// A later run of the job: <job> already passes memory and io down, so the run
// checks that (one read) and writes nothing above it; a <job> missing them is
// walked again (nothing cached between runs).
TEST_F(FakeV2Tree, ALaterRunChecksJobAndLeavesAncestorsAlone) {
  std::ofstream(root_ + "/cronrun/job/cgroup.subtree_control") << "io memory\n";
  auto cg = create_job_cgroup(placement_, "job", "run-1");
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_EQ(subtree(""), "");
  EXPECT_EQ(subtree("/cronrun"), "");
  EXPECT_EQ(subtree("/cronrun/job"), "io memory\n");
  std::ofstream(root_ + "/cronrun/job/cgroup.subtree_control") << "io\n";
  auto again = create_job_cgroup(placement_, "job", "run-2");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(subtree(""), "+memory");
}

TEST_F(FakeV2Tree, APidsLimitEnablesPidsOnTheWayDown) {
  auto cg = create_job_cgroup(placement_, "job", "run-1");
  ASSERT_TRUE(cg) << cg.error().message();
  for (const std::string rel : {"", "/cronrun", "/cronrun/job"}) clear_subtree(rel);
  // The leaf as the kernel would show it once pids is enabled above it.
  std::string leaf = root_ + "/cronrun/job/run-1";
  std::ofstream(leaf + "/cgroup.controllers") << "io memory pids\n";
  std::ofstream(leaf + "/pids.max") << "";
  Limits l;
  l.pids_max = 10;
  auto missed = (*cg)->apply_limits(l);
  ASSERT_TRUE(missed) << missed.error().message();
  EXPECT_TRUE(missed->empty()) << missed->front().detail;
  for (const std::string rel : {"", "/cronrun", "/cronrun/job"}) EXPECT_EQ(subtree(rel), "+pids") << rel;
  auto max = read_file(leaf + "/pids.max");
  ASSERT_TRUE(max);
  EXPECT_EQ(*max, "10");
  // Enabled once: a second apply writes no subtree_control again.
  for (const std::string rel : {"", "/cronrun", "/cronrun/job"}) clear_subtree(rel);
  ASSERT_TRUE((*cg)->apply_limits(l));
  for (const std::string rel : {"", "/cronrun", "/cronrun/job"}) EXPECT_EQ(subtree(rel), "") << rel;
  auto u = (*cg)->read_usage();
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->not_measured, (Names{"cpu_throttled_s", "cpu_nr_throttled"}));
  // The leaf holds our fixture files, which a cgroupfs rmdir would not see.
  fs::remove(leaf + "/cgroup.controllers");
  fs::remove(leaf + "/pids.max");
}

}  // namespace
}  // namespace cronrun::cgroup
