// Reading a v2 job cgroup's counters into the run record's Usage, on a directory
// of fixture files laid out like a v2 leaf (the v2 backend cannot run on the
// hybrid test host with its controllers, so this is where its reading is pinned).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/fd.h"
#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {
namespace {

namespace fs = std::filesystem;

class FakeLeaf : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronrun-cgroup-usage-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void copy(const std::string& fixture, const std::string& as) {
    fs::copy_file(std::string(CRONRUN_FIXTURES) + "/cgroup/files/" + fixture, dir_ + "/" + as);
  }
  CgroupDir open() {
    auto d = CgroupDir::open(dir_);
    EXPECT_TRUE(d);
    return std::move(*d);
  }
  std::string dir_;
};

TEST_F(FakeLeaf, V2LeafWithControllers) {
  copy("v2_memory.peak", "memory.peak");
  copy("v2_memory.events", "memory.events");
  copy("v2_cpu.stat", "cpu.stat");
  copy("v2_io.stat", "io.stat");
  copy("v2_pids.peak", "pids.peak");
  copy("v2_pids.events", "pids.events");
  copy("cpu.pressure", "cpu.pressure");
  copy("memory.pressure", "memory.pressure");
  copy("io.pressure", "io.pressure");
  CgroupDir leaf = open();
  Usage u;
  ASSERT_TRUE(read_v2_usage(leaf, u));
  ASSERT_TRUE(read_pressure(leaf, u.pressure_some_s));
  EXPECT_EQ(u.memory_peak_bytes, 157392896u);
  EXPECT_EQ(u.oom_kills, 1u);
  EXPECT_EQ(u.memory_max_events, 37u);
  EXPECT_EQ(u.memory_high_events, 12u);
  EXPECT_DOUBLE_EQ(u.cpu_user_s.value(), 1.402114);
  EXPECT_DOUBLE_EQ(u.cpu_system_s.value(), 0.1011);
  EXPECT_EQ(u.cpu_nr_throttled, 29u);
  EXPECT_DOUBLE_EQ(u.cpu_throttled_s.value(), 1.480324);
  EXPECT_EQ(u.io_read_bytes, 1459200u + 4096u);
  EXPECT_EQ(u.io_write_bytes, 314773504u + 8192u);
  EXPECT_EQ(u.pids_peak, 9u);
  EXPECT_EQ(u.pids_max_events, 4u);
  EXPECT_DOUBLE_EQ(u.pressure_some_s.cpu.value(), 24.922231);
  EXPECT_DOUBLE_EQ(u.pressure_some_s.memory.value(), 1.25);
  EXPECT_DOUBLE_EQ(u.pressure_some_s.io.value(), 0.3);
  // Filled by the runner from wait4(), never here.
  EXPECT_FALSE(u.max_rss_bytes);
}

TEST_F(FakeLeaf, MissingFilesStayUnknownNeverZero) {
  // The unified half of a hybrid host: cpu.stat without the cpu controller, no
  // memory/io/pids files, PSI off.
  copy("hybrid_unified_cpu.stat", "cpu.stat");
  CgroupDir leaf = open();
  Usage u;
  ASSERT_TRUE(read_v2_usage(leaf, u));
  ASSERT_TRUE(read_pressure(leaf, u.pressure_some_s));
  EXPECT_TRUE(u.cpu_user_s);
  EXPECT_TRUE(u.cpu_system_s);
  EXPECT_FALSE(u.cpu_nr_throttled);
  EXPECT_FALSE(u.cpu_throttled_s);
  EXPECT_FALSE(u.memory_peak_bytes);
  EXPECT_FALSE(u.oom_kills);
  EXPECT_FALSE(u.memory_max_events);
  EXPECT_FALSE(u.io_read_bytes);
  EXPECT_FALSE(u.pids_peak);
  EXPECT_FALSE(u.pids_max_events);
  EXPECT_FALSE(u.pressure_some_s.cpu);
}

TEST_F(FakeLeaf, GarbageIsAnErrorNamingTheFile) {
  std::ofstream(dir_ + "/memory.peak") << "lots\n";
  CgroupDir leaf = open();
  Usage u;
  auto r = read_v2_usage(leaf, u);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(dir_ + "/memory.peak"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace cronrun::cgroup
