// How the runner places a run in a cgroup, end to end as root on this host (hybrid
// here, whose blkio has no weight file): one unavailable limit does not cost the
// others, IO is measured where the cgroup cannot count it, the no-cgroup warning is
// one short line, and a run whose runner was SIGKILLed neither outlives it nor runs
// beside the next one. Each test asserts kernel-visible state.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kCronrun = CRONRUN_BIN;
const std::string kPayload = CRONRUN_PAYLOAD;
constexpr double kMiB = 1024.0 * 1024.0;

// Whether the host's v1 blkio hierarchy has a weight file an IO weight could use.
bool host_has_io_weight() {
  for (const auto& m : cgroup_mounts())
    for (const char* f : {"blkio.weight", "blkio.bfq.weight"})
      if (fs::exists(fs::path(m) / f)) return true;
  return false;
}

// A pid that is gone, or a zombie nobody reaped yet (it runs nothing either way).
bool dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
}

// The pid in `file` once a whole line is there (the shell creates the file before
// it writes to it); -1 if none comes within the harness's generous bound.
pid_t read_pid(const fs::path& file) {
  pid_t pid = -1;
  wait_until([&] {
    std::string text = read_text(file.string());
    if (!text.ends_with("\n")) return false;
    pid = std::atoi(text.c_str());
    return pid > 0;
  });
  return pid;
}

class Placement : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
    static int seq = 0;
    tag_ = "pl" + std::to_string(getpid()) + "-" + std::to_string(++seq);
    dir_ = fs::temp_directory_path() / ("cronrun-" + tag_);
    fs::create_directories(dir_);
    parent_ = "/cronrun-test-" + tag_;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    for (pid_t p : kill_at_end_)
      if (p > 0) ::kill(p, SIGKILL);
    if (!kill_at_end_.empty()) std::this_thread::sleep_for(100ms);
    auto left = expect_leftover_ ? std::vector<std::string>{} : leftover_cgroups(parent_);
    remove_cgroup_parent(parent_);
    for (const auto& m : cgroup_mounts()) EXPECT_FALSE(fs::exists(fs::path(m) / parent_.substr(1))) << m;
    EXPECT_TRUE(left.empty()) << "job cgroup left behind: " << left.front();
    fs::remove_all(dir_);
  }

  std::vector<std::string> cmd(std::vector<std::string> opts, std::vector<std::string> job,
                               const std::string& summary_name = "summary.json") {
    std::vector<std::string> v = {kCronrun, "--no-history", "--cgroup-parent", parent_,
                                  "--lock", (dir_ / "job.pid").string(), "--summary", (dir_ / summary_name).string()};
    v.insert(v.end(), opts.begin(), opts.end());
    v.push_back("--");
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }
  std::vector<std::string> payload(std::vector<std::string> args) {
    args.insert(args.begin(), kPayload);
    return args;
  }
  json result(const std::string& name = "summary.json") const { return read_json((dir_ / name).string()); }

  std::string tag_;
  fs::path dir_;
  std::string parent_;
  bool expect_leftover_ = false;
  std::vector<pid_t> kill_at_end_;
};

// Issue 14 #13: --io-weight on a host without a weight file used to throw the
// whole cgroup away (memory became RLIMIT_DATA, pids nothing).
TEST_F(Placement, UnavailableIoWeightLeavesMemoryAndPidsEnforced) {
  if (host_has_io_weight()) GTEST_SKIP() << "this host can apply an IO weight";
  const std::vector<std::string> limits = {"--name", "partial", "--memory", "64M", "--pids", "10", "--io-weight", "100"};

  auto mem = run(cmd(limits, payload({"mem", "200"})));
  EXPECT_EQ(mem.exit_code, 137) << mem.err;
  json s = result();
  EXPECT_EQ(s["status"], "oom");
  EXPECT_NE(s["isolation"]["cgroup"], "none");
  EXPECT_EQ(s["isolation"]["accounting"], "cgroup");
  EXPECT_GE(s["usage"]["oom_kills"].get<int>(), 1);
  std::string note = s["isolation"]["note"].is_string() ? s["isolation"]["note"].get<std::string>() : "";
  EXPECT_NE(note.find("--io-weight not applied"), std::string::npos) << note;
  EXPECT_NE(note.find("blkio.weight"), std::string::npos) << note;
  // One short warning naming it.
  EXPECT_NE(mem.err.find("--io-weight"), std::string::npos) << mem.err;
  std::istringstream lines(mem.err);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 160u) << line;

  auto forks = run(cmd(limits, payload({"forkburst", "30", "500"})));
  ASSERT_EQ(forks.exit_code, 0) << forks.err;
  int forked = -1;
  ASSERT_EQ(std::sscanf(forks.out.c_str(), "forked %d", &forked), 1) << forks.out;
  EXPECT_LT(forked, 10) << "the pids limit let " << forked << " forks through";
  EXPECT_GT(forked, 0);
}

// --cgroup required promises every limit: one that cannot be applied is exit 125,
// and the job does not start.
TEST_F(Placement, RequiredRefusesAMissingLimit) {
  if (host_has_io_weight()) GTEST_SKIP() << "this host can apply an IO weight";
  fs::path marker = dir_ / "ran";
  auto r = run(cmd({"--name", "req", "--cgroup", "required", "--memory", "64M", "--io-weight", "100"},
                   {"/bin/sh", "-c", "touch " + marker.string()}));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_NE(r.err.find("--io-weight not applied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("blkio.weight"), std::string::npos) << r.err;
}

// Issue 14 #6: on v1/hybrid blkio.throttle counted nothing (0 B during heavy direct
// IO); the record now takes the rusage block counts and says so.
TEST_F(Placement, DirectWritesAreCountedWhereBlkioCannot) {
  fs::path file = dir_ / "io.bin";
  auto r = run(cmd({"--name", "io"}, {"dd", "if=/dev/zero", "of=" + file.string(), "bs=1M", "count=24", "oflag=direct"}));
  if (r.exit_code != 0 && r.err.find("Invalid argument") != std::string::npos)
    GTEST_SKIP() << "the temp filesystem refuses O_DIRECT: " << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(fs::file_size(file), 24u << 20);
  json u = result()["usage"];
  ASSERT_TRUE(u["io_write_bytes"].is_number()) << u.dump();
  EXPECT_GE(u["io_write_bytes"].get<double>(), 24 * kMiB) << u.dump();
  std::string layout = result()["isolation"]["cgroup"];
  if (layout == "v1" || layout == "hybrid") {
    EXPECT_EQ(u["io_source"], "rusage") << u.dump();
  }
}

// Issue 14 #9: the fallback warning was 890 characters, mailed by cron every run.
TEST_F(Placement, NoCgroupWarningIsOneShortLine) {
  fs::path home = dir_ / "home";
  fs::create_directories(home);
  // An ordinary user without a delegated cgroup, with a home of its own: theirs
  // and private, as the lock's directory check wants it.
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  ASSERT_EQ(::chown(home.c_str(), 65534, 65534), 0);
  fs::permissions(home, fs::perms::owner_all);
  auto r = run({"/usr/bin/env", "HOME=" + home.string(), "XDG_RUNTIME_DIR=" + home.string(),
                "XDG_CONFIG_HOME=" + home.string(), "XDG_STATE_HOME=" + home.string(), "/usr/bin/setpriv",
                "--reuid=65534", "--regid=65534", "--clear-groups", kCronrun, "--name", "nocg", "--no-history",
                "--lock", (home / "l.pid").string(), "--memory", "64M", "--pids", "10", "--", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.err);
  int warnings = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 160u) << line;
    if (line.find("warning") == std::string::npos) continue;
    ++warnings;
    EXPECT_NE(line.find("--dry-run"), std::string::npos) << line;
    EXPECT_NE(line.find("65534"), std::string::npos) << line;  // the cause: nothing writable for this uid
    EXPECT_NE(line.find("--pids"), std::string::npos) << line;  // what is lost
  }
  EXPECT_EQ(warnings, 1) << r.err;
}

// Issue 14 #16: a SIGKILLed runner left its job running past any timeout, and the
// next run started beside it. Now the main process dies with the runner, and what
// it left in the cgroup keeps the next run from starting.
TEST_F(Placement, SigkilledRunnersJobDiesAndItsLeftoverBlocksTheNextRun) {
  expect_leftover_ = true;  // the leftover's cgroup: teardown kills it and removes the parent
  fs::path main_pid = dir_ / "main.pid", child_pid = dir_ / "child.pid", second = dir_ / "second";
  std::string job = "echo $$ > " + main_pid.string() +
                    "; sh -c 'trap \"\" HUP INT QUIT TERM USR1 USR2; echo $$ > " + child_pid.string() +
                    "; exec sleep 300' & wait";
  pid_t runner = start(cmd({"--name", "crash", "--timeout", "1h"}, {"/bin/sh", "-c", job}), (dir_ / "r.log").string());
  pid_t main = read_pid(main_pid), child = read_pid(child_pid);
  kill_at_end_ = {main, child};
  ASSERT_GT(main, 0) << read_text((dir_ / "r.log").string());
  ASSERT_GT(child, 0) << read_text((dir_ / "r.log").string());
  ASSERT_EQ(::kill(runner, SIGKILL), 0);
  wait_exit(runner);

  wait_until([&] { return dead(main); });
  EXPECT_TRUE(dead(main)) << "the job's main process " << main << " outlived its runner";
  ASSERT_FALSE(dead(child)) << "the leftover this test is about is gone already";

  // The same job again: it must not start a second copy while the leftover lives.
  fs::remove(second);
  auto r = run(cmd({"--name", "crash", "--timeout", "1h"}, {"/bin/sh", "-c", "touch " + second.string()},
                   "second.json"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(second)) << "a second copy ran beside the leftover";
  json s = result("second.json");
  EXPECT_EQ(s["status"], "skipped");
  std::string reason = s["skip_reason"].is_string() ? s["skip_reason"].get<std::string>() : "";
  // The first run never wrote its summary: its run id is the leftover's cgroup leaf.
  std::string cgroups = read_text("/proc/" + std::to_string(child) + "/cgroup");
  auto at = cgroups.find(parent_ + "/crash/");
  ASSERT_NE(at, std::string::npos) << cgroups;
  std::string old_run = cgroups.substr(at + parent_.size() + 7);
  old_run = old_run.substr(0, old_run.find('\n'));
  EXPECT_NE(reason.find("run " + old_run), std::string::npos) << reason << " / " << old_run;
  EXPECT_NE(reason.find("1 process"), std::string::npos) << reason;
  EXPECT_FALSE(dead(child));

  // With --on-locked fail it is exit 75 it is exit 75, like a held lock.
  auto f = run(cmd({"--name", "crash", "--on-locked", "fail"}, {"/bin/sh", "-c", "touch " + second.string()},
                   "third.json"));
  EXPECT_EQ(f.exit_code, 75) << f.err;
  EXPECT_FALSE(fs::exists(second));

  // Once the leftover is gone, the job runs again.
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  // Until the kernel has taken it out of the old run's cgroup in every hierarchy
  // (what the next run looks at), not a guessed moment after it died.
  ASSERT_TRUE(wait_until([&] {
    for (const auto& m : cgroup_mounts())
      if (!read_text(m + parent_ + "/crash/" + old_run + "/cgroup.procs").empty()) return false;
    return dead(child);
  })) << "the leftover " << child << " is still in run " << old_run;
  auto again = run(cmd({"--name", "crash"}, {"/bin/sh", "-c", "touch " + second.string()}, "fourth.json"));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(fs::exists(second)) << again.err;
}

// --keep-orphans leaves a populated cgroup on purpose: it must not block the next run.
TEST_F(Placement, KeptOrphansDoNotBlockTheNextRun) {
  expect_leftover_ = true;
  fs::path pidfile = dir_ / "daemon.pid", marker = dir_ / "next";
  auto r = run(cmd({"--name", "keep", "--keep-orphans"}, payload({"daemon", "300", pidfile.string()})));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  pid_t daemon = read_pid(pidfile);
  kill_at_end_ = {daemon};
  ASSERT_GT(daemon, 0);
  ASSERT_FALSE(dead(daemon));
  auto next = run(cmd({"--name", "keep"}, {"/bin/sh", "-c", "touch " + marker.string()}, "next.json"));
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_TRUE(fs::exists(marker)) << next.err;
  EXPECT_EQ(result("next.json")["status"], "ok");
  EXPECT_FALSE(dead(daemon));  // still left alone
}

// A job (root here) that makes a cgroup below its own leaf and moves a daemon
// there: the daemon is still the run's. It is counted and killed with the run, or
// kept by --keep-orphans; the cgroups the job made go with the leaf.
TEST_F(Placement, ProcessesInCgroupsTheJobMadeBelowItsLeafAreTheRunsToo) {
  // The leaf the job can see itself in: the unified one (hybrid, v2).
  const std::string script =
      "m=$(grep ' - cgroup2 ' /proc/self/mountinfo | head -1 | cut -d' ' -f5); "
      "u=$(sed -n 's/^0:://p' /proc/self/cgroup); "
      "[ -n \"$m\" ] && [ \"$u\" != / ] || exit 99; "
      "mkdir \"$m$u/sub\" \"$m$u/sub/deeper\" || exit 98; "
      "sleep 300 & p=$!; echo $p > \"$m$u/sub/deeper/cgroup.procs\" || exit 97; echo $p > PIDFILE; exit 0";
  auto with_pidfile = [&](const fs::path& pidfile) {
    std::string s = script;
    s.replace(s.find("PIDFILE"), 7, pidfile.string());
    return std::vector<std::string>{"/bin/sh", "-c", s};
  };
  fs::path killed_pid = dir_ / "killed.pid";
  auto r = run(cmd({"--name", "nest"}, with_pidfile(killed_pid)));
  if (r.exit_code == 99) GTEST_SKIP() << "no cgroup2 leaf for the job on this host";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  pid_t daemon = read_pid(killed_pid);
  kill_at_end_.push_back(daemon);
  ASSERT_GT(daemon, 0);
  EXPECT_TRUE(wait_until([&] { return dead(daemon); })) << "the daemon in the job's own sub-cgroup outlived the run";
  json s = result();
  EXPECT_EQ(s["usage"]["orphans_killed"], 1) << s.dump();
  EXPECT_EQ(r.err.find("removing cgroup"), std::string::npos) << r.err;
  // TearDown checks that no job cgroup, nested ones included, is left.

  fs::path kept_pid = dir_ / "kept.pid";
  auto k = run(cmd({"--name", "nestkeep", "--keep-orphans"}, with_pidfile(kept_pid), "kept.json"));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  pid_t kept = read_pid(kept_pid);
  kill_at_end_.push_back(kept);
  ASSERT_GT(kept, 0);
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(dead(kept)) << "--keep-orphans killed the daemon in the job's sub-cgroup";
  json ks = result("kept.json");
  ASSERT_TRUE(ks["isolation"]["note"].is_string()) << ks.dump();
  EXPECT_NE(ks["isolation"]["note"].get<std::string>().find("1 process(es) left running"), std::string::npos)
      << ks["isolation"]["note"];
  expect_leftover_ = true;  // the kept cgroup, by design
}

}  // namespace
