// Parsers of kernel cgroup files, fed text captured from v1, v2 and hybrid hosts,
// and the formatting of limit values.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/fd.h"
#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {
namespace {

std::string fixture(const std::string& name) {
  auto text = read_file(std::string(CRONRUN_FIXTURES) + "/cgroup/" + name);
  EXPECT_TRUE(text.has_value()) << name;
  return text.value_or("");
}

TEST(CgroupParse, MountinfoV2) {
  auto mounts = parse_mountinfo(fixture("v2/self/mountinfo"));
  ASSERT_TRUE(mounts) << mounts.error().message();
  ASSERT_EQ(mounts->size(), 8u);
  const auto& cg = (*mounts)[4];
  EXPECT_EQ(cg.mount_id, 30);
  EXPECT_EQ(cg.parent_id, 23);
  EXPECT_EQ(cg.root, "/");
  EXPECT_EQ(cg.mount_point, "/sys/fs/cgroup");
  EXPECT_EQ(cg.fs_type, "cgroup2");
  EXPECT_EQ(cg.source, "cgroup2");
  EXPECT_EQ(cg.mount_options.front(), "rw");
  EXPECT_EQ(cg.super_options, (std::vector<std::string>{"rw", "nsdelegate", "memory_recursiveprot"}));
  // Optional fields (shared:N) are skipped; octal escapes are decoded.
  EXPECT_EQ((*mounts)[7].mount_point, "/mnt/with space");
}

TEST(CgroupParse, MountinfoV1SuperOptionsCarryControllers) {
  auto mounts = parse_mountinfo(fixture("v1/self/mountinfo"));
  ASSERT_TRUE(mounts) << mounts.error().message();
  const MountEntry* cpu = nullptr;
  for (const auto& m : *mounts)
    if (m.mount_point == "/sys/fs/cgroup/cpu,cpuacct") cpu = &m;
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->fs_type, "cgroup");
  EXPECT_EQ(cpu->super_options, (std::vector<std::string>{"rw", "seclabel", "cpuacct", "cpu"}));
}

TEST(CgroupParse, MountinfoCgroupOnlyKeepsCgroupMountsAndStillChecksEveryLine) {
  for (const char* host : {"v1", "v2"}) {
    auto all = parse_mountinfo(fixture(std::string(host) + "/self/mountinfo"));
    auto cg = parse_mountinfo(fixture(std::string(host) + "/self/mountinfo"), true);
    ASSERT_TRUE(all && cg) << host;
    std::vector<std::string> want, got;
    for (const auto& m : *all)
      if (m.fs_type == "cgroup" || m.fs_type == "cgroup2") want.push_back(m.mount_point + " " + m.fs_type);
    for (const auto& m : *cg) got.push_back(m.mount_point + " " + m.fs_type);
    EXPECT_FALSE(got.empty()) << host;
    EXPECT_LT(got.size(), all->size()) << host;
    EXPECT_EQ(got, want) << host;
  }
  EXPECT_FALSE(parse_mountinfo("x 35 98:0 / /a rw - ext4 /dev/a rw\n", true));
}

TEST(CgroupParse, MountinfoFieldsAreSplitAtRunsOfSpacesAndTabs) {
  // The kernel writes single spaces; the parser takes any run of spaces and tabs
  // (a line without a tab is cut another way: both must agree).
  for (const char* text : {"36 35 98:0 / /sys/fs/cgroup/memory rw,nosuid master:1 - cgroup cgroup rw,memory\n",
                           "36  35 98:0 /   /sys/fs/cgroup/memory rw,nosuid master:1 -  cgroup cgroup rw,memory  \n",
                           " 36\t35 98:0\t/ /sys/fs/cgroup/memory\t\trw,nosuid master:1 - cgroup\tcgroup rw,memory\r\n",
                           "\n36 35 98:0 / /sys/fs/cgroup/memory rw,nosuid master:1 - cgroup cgroup rw,memory"}) {
    auto m = parse_mountinfo(text, true);
    ASSERT_TRUE(m) << text << ": " << m.error().message();
    ASSERT_EQ(m->size(), 1u) << text;
    const MountEntry& e = m->front();
    EXPECT_EQ(e.mount_id, 36) << text;
    EXPECT_EQ(e.parent_id, 35) << text;
    EXPECT_EQ(e.root, "/") << text;
    EXPECT_EQ(e.mount_point, "/sys/fs/cgroup/memory") << text;
    EXPECT_EQ(e.mount_options, (std::vector<std::string>{"rw", "nosuid"})) << text;
    EXPECT_EQ(e.fs_type, "cgroup") << text;
    EXPECT_EQ(e.source, "cgroup") << text;
    EXPECT_EQ(e.super_options, (std::vector<std::string>{"rw", "memory"})) << text;
  }
  // A field is never empty: "- " followed by a space is not an empty FSTYPE.
  EXPECT_FALSE(parse_mountinfo("36 35 98:0 / /a rw -  \n"));
}

TEST(CgroupParse, MountinfoRejectsGarbage) {
  EXPECT_FALSE(parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw,noatime\n"));
  EXPECT_FALSE(parse_mountinfo("x 35 98:0 / /a rw - ext4 /dev/a rw\n"));
}

TEST(CgroupParse, ProcCgroup) {
  auto lines = parse_proc_cgroup(fixture("hybrid/self/cgroup"));
  ASSERT_TRUE(lines) << lines.error().message();
  ASSERT_EQ(lines->size(), 9u);
  EXPECT_EQ((*lines)[6].hierarchy_id, 6);
  EXPECT_EQ((*lines)[6].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*lines)[6].path, "/system.slice/cron.service");
  EXPECT_EQ((*lines)[7].controllers, (std::vector<std::string>{"name=systemd"}));
  EXPECT_EQ(lines->back().hierarchy_id, 0);
  EXPECT_TRUE(lines->back().controllers.empty());
  // A ':' inside the path stays in the path.
  auto odd = parse_proc_cgroup("0::/a:b/c\n");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->front().path, "/a:b/c");
  EXPECT_FALSE(parse_proc_cgroup("0:/x\n"));
  EXPECT_FALSE(parse_proc_cgroup("0::relative\n"));
}

TEST(CgroupParse, MemoryStatAndEvents) {
  auto stat = parse_flat_keyed(fixture("files/v2_memory.stat"));
  ASSERT_TRUE(stat) << stat.error().message();
  EXPECT_EQ(stat->at("anon"), 157286400u);
  EXPECT_EQ(stat->at("pgfault"), 38728u);
  auto events = parse_flat_keyed(fixture("files/v2_memory.events"));
  ASSERT_TRUE(events);
  EXPECT_EQ(events->at("oom_kill"), 1u);
  EXPECT_EQ(events->at("max"), 37u);
  EXPECT_EQ(events->at("high"), 12u);
  auto oom = parse_flat_keyed(fixture("files/v1_memory.oom_control"));
  ASSERT_TRUE(oom);
  EXPECT_EQ(oom->at("oom_kill"), 2u);
  auto bad = parse_flat_keyed("anon many\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("anon"), std::string::npos);
}

TEST(CgroupParse, CpuStat) {
  auto v2 = parse_flat_keyed(fixture("files/v2_cpu.stat"));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->at("user_usec"), 1402114u);
  EXPECT_EQ(v2->at("system_usec"), 101100u);
  EXPECT_EQ(v2->at("nr_throttled"), 29u);
  EXPECT_EQ(v2->at("throttled_usec"), 1480324u);
  // Without the cpu controller (hybrid's unified half) there are no throttle keys.
  auto unified = parse_flat_keyed(fixture("files/hybrid_unified_cpu.stat"));
  ASSERT_TRUE(unified);
  EXPECT_EQ(unified->count("nr_throttled"), 0u);
  auto v1 = parse_flat_keyed(fixture("files/v1_cpu.stat"));
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->at("throttled_time"), 1498000000u);
}

TEST(CgroupParse, IoStatSumsDevices) {
  auto io = parse_io_stat(fixture("files/v2_io.stat"));
  ASSERT_TRUE(io) << io.error().message();
  EXPECT_EQ(io->read_bytes, 1459200u + 4096u);
  EXPECT_EQ(io->write_bytes, 314773504u + 8192u);
  auto empty = parse_io_stat("");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->read_bytes, 0u);
  EXPECT_FALSE(parse_io_stat("8:0 rbytes=x wbytes=1\n"));
}

TEST(CgroupParse, BlkioServiceBytesSkipsGrandTotal) {
  auto io = parse_blkio_service_bytes(fixture("files/v1_blkio.throttle.io_service_bytes_recursive"));
  ASSERT_TRUE(io) << io.error().message();
  EXPECT_EQ(io->read_bytes, 1052672u + 4096u);
  EXPECT_EQ(io->write_bytes, 4194304u + 8192u);
  auto root = parse_blkio_service_bytes("Total 0\n");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->read_bytes, 0u);
}

TEST(CgroupParse, Pressure) {
  auto cpu = parse_pressure(fixture("files/cpu.pressure"));
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_EQ(cpu->some_total_usec, 24922231u);
  EXPECT_EQ(cpu->full_total_usec, 0u);
  auto mem = parse_pressure(fixture("files/memory.pressure"));
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->some_total_usec, 1250000u);
  EXPECT_EQ(mem->full_total_usec, 1000000u);
  auto old = parse_pressure(fixture("files/cpu.pressure_5.10"));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->some_total_usec, 312u);
  EXPECT_FALSE(old->full_total_usec);
  EXPECT_FALSE(parse_pressure("full avg10=0.00 total=1\n"));
}

TEST(CgroupParse, NumbersPidsWords) {
  EXPECT_EQ(parse_u64("157286400\n").value(), 157286400u);
  EXPECT_FALSE(parse_u64("max\n"));
  EXPECT_FALSE(parse_u64(""));
  EXPECT_EQ(parse_pid_list("12\n345\n").value(), (std::vector<pid_t>{12, 345}));
  EXPECT_TRUE(parse_pid_list("").value().empty());
  EXPECT_FALSE(parse_pid_list("12\nabc\n"));
  EXPECT_EQ(split_words("cpuset cpu io memory pids\n"),
            (std::vector<std::string>{"cpuset", "cpu", "io", "memory", "pids"}));
  EXPECT_TRUE(split_words("\n").empty());
}

TEST(CgroupLimits, CpuMax) {
  EXPECT_EQ(format_cpu_max(150), "150000 100000");
  EXPECT_EQ(format_cpu_max(50), "50000 100000");
  EXPECT_EQ(format_cpu_max(250), "250000 100000");
  EXPECT_EQ(format_cpu_max(12.345), "12345 100000");
  // The kernel's minimum quota is 1 ms.
  EXPECT_EQ(format_cpu_max(0.1), "1000 100000");
  EXPECT_EQ(cpu_quota_usec(50), 50000u);
}

TEST(CgroupLimits, WeightMappings) {
  // cpu.weight -> cpu.shares: default 100 <-> 1024, 1..10000 -> 10..102400.
  EXPECT_EQ(weight_to_cpu_shares(100), 1024u);
  EXPECT_EQ(weight_to_cpu_shares(1), 10u);
  EXPECT_EQ(weight_to_cpu_shares(10000), 102400u);
  EXPECT_EQ(weight_to_cpu_shares(50), 512u);
  // io weight -> blkio.weight: default 100 <-> 500, clamped to 10..1000.
  EXPECT_EQ(weight_to_blkio_weight(100), 500u);
  EXPECT_EQ(weight_to_blkio_weight(1), 10u);
  EXPECT_EQ(weight_to_blkio_weight(10000), 1000u);
  // io weight -> BFQ weight 1..1000.
  EXPECT_EQ(weight_to_bfq_weight(1), 1u);
  EXPECT_EQ(weight_to_bfq_weight(100), 100u);
  EXPECT_EQ(weight_to_bfq_weight(10000), 1000u);
  EXPECT_EQ(weight_to_bfq_weight(5050), 550u);
}

// A job cgroup's files for the plan functions: `files` lists what exists.
bool has_in(const void* ctx, const std::string& file) {
  const auto* files = static_cast<const std::vector<std::string>*>(ctx);
  return std::find(files->begin(), files->end(), file) != files->end();
}

TEST(CgroupLimits, V2Writes) {
  Limits l;
  l.memory_max_bytes = 2147483648;
  l.memory_high_bytes = 1073741824;
  l.swap_max_bytes = 0;
  l.cpu_quota_pct = 150;
  l.cpu_weight = 200;
  l.pids_max = 64;
  l.io_weight = 300;
  std::vector<std::string> files = {"io.weight"};
  auto w = v2_limit_writes(l, has_in, &files);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<LimitWrite> expected = {
      {"memory", "memory limit", "memory.max", "2147483648"},
      {"memory", "memory-high limit", "memory.high", "1073741824"},
      {"memory", "swap limit", "memory.swap.max", "0"},
      {"cpu", "CPU quota", "cpu.max", "150000 100000"},
      {"cpu", "CPU weight", "cpu.weight", "200"},
      {"pids", "pids limit", "pids.max", "64"},
      {"io", "IO weight", "io.weight", "default 300"},
  };
  EXPECT_EQ(*w, expected);
  // BFQ without iocost: io.bfq.weight, mapped into 1..1000.
  files = {"io.bfq.weight"};
  Limits io;
  io.io_weight = 10000;
  auto bfq = v2_limit_writes(io, has_in, &files);
  ASSERT_TRUE(bfq);
  EXPECT_EQ(bfq->front(), (LimitWrite{"io", "IO weight", "io.bfq.weight", "default 1000"}));
  EXPECT_TRUE(v2_limit_writes(Limits{}, has_in, &files)->empty());
}

TEST(CgroupLimits, V1WritesInKernelOrder) {
  Limits l;
  l.memory_max_bytes = 64 << 20;
  l.swap_max_bytes = 16 << 20;
  l.memory_high_bytes = 48 << 20;
  l.cpu_quota_pct = 50;
  l.cpu_weight = 100;
  l.pids_max = 10;
  l.io_weight = 100;
  std::vector<std::string> files = {"blkio.bfq.weight"};
  auto w = v1_limit_writes(l, has_in, &files);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<LimitWrite> expected = {
      {"memory", "memory limit", "memory.limit_in_bytes", "67108864"},
      {"memory", "memory-high limit", "memory.soft_limit_in_bytes", "50331648"},
      // memory + swap, and after limit_in_bytes (memsw may never be below it).
      {"memory", "swap limit", "memory.memsw.limit_in_bytes", "83886080"},
      // The period before the quota.
      {"cpu", "CPU quota", "cpu.cfs_period_us", "100000"},
      {"cpu", "CPU quota", "cpu.cfs_quota_us", "50000"},
      {"cpu", "CPU weight", "cpu.shares", "1024"},
      {"pids", "pids limit", "pids.max", "10"},
      {"blkio", "IO weight", "blkio.bfq.weight", "100"},
  };
  EXPECT_EQ(*w, expected);
  // CFQ's blkio.weight when present.
  files = {"blkio.weight", "blkio.bfq.weight"};
  Limits io;
  io.io_weight = 100;
  EXPECT_EQ(v1_limit_writes(io, has_in, &files)->front(), (LimitWrite{"blkio", "IO weight", "blkio.weight", "500"}));
  // Swap alone has no v1 meaning.
  Limits swap;
  swap.swap_max_bytes = 1;
  auto bad = v1_limit_writes(swap, has_in, &files);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("memsw"), std::string::npos);
}

TEST(CgroupLimits, Validation) {
  EXPECT_TRUE(validate_limits(Limits{}));
  Limits l;
  l.cpu_weight = 0;
  auto r = validate_limits(l);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("CPU weight"), std::string::npos);
  l = {};
  l.io_weight = 10001;
  EXPECT_FALSE(validate_limits(l));
  l = {};
  l.cpu_quota_pct = -5;
  EXPECT_FALSE(validate_limits(l));
  l = {};
  l.pids_max = 0;
  EXPECT_FALSE(validate_limits(l));
}

TEST(CgroupPaths, NormalizeJoinAndBuild) {
  EXPECT_EQ(normalize_relative("cronrun//x/").value(), "/cronrun/x");
  EXPECT_EQ(normalize_relative("/").value(), "/");
  EXPECT_FALSE(normalize_relative("/a/../b"));
  EXPECT_FALSE(normalize_relative(""));
  EXPECT_EQ(join_relative("/cronrun", "job"), "/cronrun/job");
  EXPECT_EQ(join_relative("/", "job"), "/job");
  EXPECT_EQ(cgroup_fs_path("/sys/fs/cgroup", "/cronrun/j/r"), "/sys/fs/cgroup/cronrun/j/r");
  EXPECT_EQ(cgroup_fs_path("/sys/fs/cgroup/", "/"), "/sys/fs/cgroup");
  EXPECT_EQ(cgroup_fs_path("/", "/a"), "/a");
}

TEST(CgroupPaths, MapIntoMount) {
  EXPECT_EQ(map_into_mount("/", "/user.slice").value(), "/user.slice");
  EXPECT_EQ(map_into_mount("/docker/abc", "/docker/abc").value(), "/");
  EXPECT_EQ(map_into_mount("/docker/abc", "/docker/abc/cron").value(), "/cron");
  EXPECT_EQ(map_into_mount("/docker/abc/", "/docker/abc/cron").value(), "/cron");
  EXPECT_FALSE(map_into_mount("/docker/abc", "/docker/abcdef"));
  EXPECT_FALSE(map_into_mount("/docker/abc", "/"));
  // A mount made outside our cgroup namespace shows its root as "/..".
  EXPECT_FALSE(map_into_mount("/..", "/"));
}

TEST(CgroupPaths, RunnerLeafNames) {
  EXPECT_EQ(runner_leaf_name(4242), "runner@4242");
  EXPECT_EQ(parse_runner_leaf_name("runner@4242").value(), 4242);
  EXPECT_FALSE(parse_runner_leaf_name("runner@"));
  EXPECT_FALSE(parse_runner_leaf_name("runner@12x"));
  EXPECT_FALSE(parse_runner_leaf_name("nightly-report"));
}

TEST(CgroupCreate, RefusesWhatCannotBeACgroup) {
  Placement none;
  none.reason = "no cgroup filesystem is mounted";
  auto r = create_job_cgroup(none, "job", "run");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("no cgroup filesystem"), std::string::npos) << r.error().message();

  Placement p;
  p.layout = Layout::v2;
  p.parent = "/cronrun";
  p.v2_mount = "/nonexistent-cgroup-mount";
  for (const char* bad : {"", "..", "a/b", "runner@12"}) {
    auto made = create_job_cgroup(p, bad, "run");
    ASSERT_FALSE(made) << bad;
    EXPECT_NE(made.error().message().find("bad job name"), std::string::npos) << made.error().message();
  }
  EXPECT_FALSE(create_job_cgroup(p, "job", "../x"));
  p.parent = "/a/../b";
  EXPECT_FALSE(create_job_cgroup(p, "job", "run"));
  // A syscall failure names the path and carries errno.
  p.parent = "/cronrun";
  auto missing = create_job_cgroup(p, "job", "run");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err(), ENOENT);
  EXPECT_EQ(missing.error().path(), "/nonexistent-cgroup-mount");
  EXPECT_NE(missing.error().message().find("creating cgroup for job 'job'"), std::string::npos);
}

TEST(CgroupLayout, Names) {
  for (Layout l : {Layout::v2, Layout::v1, Layout::hybrid, Layout::none})
    EXPECT_EQ(parse_layout(to_string(l)).value(), l);
  EXPECT_FALSE(parse_layout("v3"));
}

}  // namespace
}  // namespace cronrun::cgroup
