// Fleet runs of the real cronrun binary against the real 3-member etcd cluster
// (tests/fleet/CMakeLists.txt's fixture): hosts are distinct --host names with
// their own local lock. Every case asserts what etcd and the kernel show: the lock
// key and its revision, a job process really gone while the lock key is still
// there, the record's skip reason naming the holder.
//
// Short leases (4s: renewals every 1.33s, TERM 2s and KILL 3s after the last
// renewal with --kill-after 1s) keep the whole program well under a minute and a
// half.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/etcd.h"
#include "tests/integration/harness.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds step = 20ms) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class FleetRun : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = env_or_empty("CRONRUN_BIN");
    endpoints_ = split(env_or_empty("CRONRUN_FLEET_ETCD"), ',');
    if (bin_.empty() || endpoints_.empty()) GTEST_SKIP() << "needs the fleet tier's environment (ctest -L fleet)";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    tag_ = std::string(info->name()) + "-" + std::to_string(getpid());
    prefix_ = "/t/fleetrun-" + tag_;
    job_ = "fr-" + std::to_string(getpid());
    dir_ = fs::temp_directory_path() / ("cronrun-fleetrun-" + tag_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    config_ = write_config("fleet.json", endpoints_, "");
    cronrun::etcd::Options o;
    o.endpoints = endpoints_;
    auto c = cronrun::etcd::Client::open(o);
    ASSERT_TRUE(c) << c.error().message();
    etcd_ = std::make_unique<cronrun::etcd::Client>(std::move(*c));
  }

  void TearDown() override {
    for (pid_t p : background_)
      if (p > 0 && ::kill(p, 0) == 0) {
        ::kill(p, SIGKILL);
        wait_exit(p);
      }
    if (etcd_) {
      // Nothing of this test may outlive it in the shared cluster.
      auto r = etcd_->delete_range(prefix_ + "/", cronrun::etcd::prefix_end(prefix_ + "/"));
      EXPECT_TRUE(r) << r.error().error.message();
    }
    if (!cgroup_parent_.empty()) {
      auto left = leftover_cgroups(cgroup_parent_);
      remove_cgroup_parent(cgroup_parent_);
      EXPECT_TRUE(left.empty()) << "job cgroup left behind: " << left.front();
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // The runs of this test get a cgroup of their own, under a parent teardown removes.
  bool use_cgroups() {
    if (geteuid() != 0) return false;
    cgroup_parent_ = "/cronrun-test-fleetrun-" + tag_;
    return true;
  }

  void runner_killed_takes_the_tree_along();

  std::string write_config(const std::string& name, const std::vector<std::string>& endpoints,
                           const std::string& extra) {
    json eps = endpoints;
    std::string text = "{\"etcd\": " + eps.dump() + ", \"prefix\": \"" + prefix_ + "\", \"lease_ttl\": \"4s\"" +
                       extra + "}";
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                           fs::perms::others_read);
    return p.string();
  }

  // cronrun as host `host`, with its own local lock (two hosts share this machine).
  std::vector<std::string> cmd(const std::string& host, const std::string& summary, std::vector<std::string> opts,
                               std::vector<std::string> job, const std::string& config = {}) {
    std::vector<std::string> v = {bin_, "--fleet-config", config.empty() ? config_ : config, "--host", host,
                                  "--name", job_, "--no-history", "--kill-after", "1s",
                                  "--lock", (dir_ / (host + ".pid")).string(), "--summary", path(summary)};
    if (cgroup_parent_.empty()) {
      v.insert(v.end(), {"--cgroup", "off"});
    } else {
      v.insert(v.end(), {"--cgroup", "required", "--cgroup-parent", cgroup_parent_});
    }
    v.insert(v.end(), opts.begin(), opts.end());
    v.push_back("--");
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }
  std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  json record(const std::string& name) const { return read_json(path(name)); }
  pid_t background(const std::vector<std::string>& argv, const std::string& log) {
    pid_t p = start(argv, path(log));
    background_.push_back(p);
    return p;
  }
  int reap(pid_t p) {
    int code = wait_exit(p);
    for (auto& b : background_)
      if (b == p) b = -1;
    return code;
  }

  std::string lock_key() const { return prefix_ + "/locks/" + job_; }
  std::optional<cronrun::etcd::KeyValue> get(const std::string& key) {
    auto r = etcd_->range(key);
    EXPECT_TRUE(r) << r.error().error.message();
    if (!r || r->kvs.empty()) return std::nullopt;
    return r->kvs.front();
  }
  void put(const std::string& key, const std::string& value) {
    auto r = etcd_->put(key, value);
    ASSERT_TRUE(r) << r.error().error.message();
  }
  // The job's first line in `file`, once it is there.
  std::string wait_file(const std::string& name, std::chrono::milliseconds limit = 5000ms) {
    std::string text;
    wait_until([&] {
      std::ifstream f(path(name));
      std::string line;
      if (!std::getline(f, line) || line.empty()) return false;
      text = line;
      return true;
    }, limit);
    return text;
  }

  // The keepalive of this test's runner: its name, and the runner's command line
  // (it is a fork of the runner) naming this test's fleet config.
  pid_t find_keepalive() {
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      // PR_SET_NAME keeps 15 bytes: "cronrun-keepalive" reads as "cronrun-keepali".
      if (trim(read_text(e.path() / "comm")) != std::string("cronrun-keepalive").substr(0, 15)) continue;
      std::string cmdline = read_text(e.path() / "cmdline");
      if (cmdline.find(config_) != std::string::npos) return std::stoi(name);
    }
    return -1;
  }

  std::string bin_;
  std::vector<std::string> endpoints_;
  std::string tag_, prefix_, job_, config_;
  fs::path dir_;
  std::unique_ptr<cronrun::etcd::Client> etcd_;
  std::vector<pid_t> background_;
  std::string cgroup_parent_;  // empty: --cgroup off
};

const std::string kTick = "2026-12-06T12:00:00Z";

TEST_F(FleetRun, OfTwoHostsOnOneTickOneRunsTheOtherIsSkippedNamingHolderAndRevision) {
  pid_t a = background(cmd("a", "a.json", {"--tick", kTick},
                           sh("echo \"$CRONRUN_FENCE $CRONRUN_TICK $CRONRUN_HOST\" > " + path("env") + "; sleep 2")),
                       "a.log");
  ASSERT_TRUE(wait_until([&] { return get(lock_key()).has_value(); }, 5000ms)) << read_text(path("a.log"));
  auto lock = get(lock_key());
  ASSERT_TRUE(lock);
  const int64_t fence = lock->create_revision;
  EXPECT_NE(lock->lease, 0) << "the lock goes with a lease";
  EXPECT_EQ(json::parse(lock->value)["host"], "a");

  auto b = run(cmd("b", "b1.json", {"--tick", kTick}, {"/bin/true"}));
  EXPECT_EQ(b.exit_code, 0) << b.err;
  json s = record("b1.json");
  EXPECT_EQ(s["status"], "skipped");
  EXPECT_EQ(s["skip_reason"], "fleet lock of " + job_ + " held by host a (revision " + std::to_string(fence) + ")");
  EXPECT_EQ(s["fleet"]["holder"]["host"], "a");
  EXPECT_EQ(s["fleet"]["holder"]["revision"], fence);
  EXPECT_TRUE(s["fleet"]["fence"].is_null());

  auto b2 = run(cmd("b", "b2.json", {"--tick", kTick, "--on-locked", "fail"}, {"/bin/true"}));
  EXPECT_EQ(b2.exit_code, 75) << b2.err;
  EXPECT_EQ(record("b2.json")["status"], "skipped");

  ASSERT_EQ(reap(a), 0) << read_text(path("a.log"));
  json sa = record("a.json");
  EXPECT_EQ(sa["status"], "ok");
  EXPECT_EQ(sa["fleet"]["fence"], fence);
  EXPECT_EQ(sa["fleet"]["tick"], kTick);
  EXPECT_EQ(sa["fleet"]["host"], "a");
  EXPECT_EQ(trim(read_text(path("env"))), std::to_string(fence) + " " + kTick + " a") << "CRONRUN_FENCE/TICK/HOST";
  EXPECT_FALSE(get(lock_key())) << "the lease is revoked at the end: the lock goes at once";

  // The tick stays claimed: it runs at most once, whoever asks later.
  auto b3 = run(cmd("b", "b3.json", {"--tick", kTick}, {"/bin/true"}));
  EXPECT_EQ(b3.exit_code, 0) << b3.err;
  EXPECT_EQ(record("b3.json")["skip_reason"], "tick " + kTick + " of " + job_ + " already claimed by host a (revision " +
                                                  std::to_string(fence) + ")");

  // The next tick runs, under a larger fence.
  auto b4 = run(cmd("b", "b4.json", {"--tick", "2026-12-06T12:01:00Z"},
                    sh("echo $CRONRUN_FENCE > " + path("fence4"))));
  ASSERT_EQ(b4.exit_code, 0) << b4.err;
  json s4 = record("b4.json");
  EXPECT_EQ(s4["status"], "ok");
  ASSERT_TRUE(s4["fleet"]["fence"].is_number());
  EXPECT_GT(s4["fleet"]["fence"].get<int64_t>(), fence);
  EXPECT_EQ(trim(read_text(path("fence4"))), std::to_string(s4["fleet"]["fence"].get<int64_t>()));
}

TEST_F(FleetRun, AHostNotInTheGroupIsSkippedWithoutClaimingAndNestedGroupsCount) {
  put(prefix_ + "/config", R"({"groups": {"g": ["a"], "all": ["g", "c"]}})");
  auto b = run(cmd("b", "b.json", {"--group", "g", "--tick", kTick}, {"/bin/true"}));
  EXPECT_EQ(b.exit_code, 0) << b.err;
  json s = record("b.json");
  EXPECT_EQ(s["status"], "skipped");
  EXPECT_EQ(s["skip_reason"], "host b not in group g");
  EXPECT_FALSE(get(prefix_ + "/runs/" + job_ + "/" + kTick)) << "no claim for a host outside the group";

  auto c = run(cmd("c", "c.json", {"--group", "all", "--tick", kTick}, {"/bin/true"}));
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(record("c.json")["status"], "ok");
  EXPECT_EQ(record("c.json")["fleet"]["group"], "all");
}

// A group the config does not define is a typo more often than a choice: every
// host skips (exit 0, as a host outside a group does) but says so on stderr,
// and the record names the group and the key.
TEST_F(FleetRun, AGroupTheConfigDoesNotDefineIsSkippedAloudOnEveryHost) {
  auto none = run(cmd("a", "none.json", {"--group", "g", "--tick", kTick}, {"/bin/true"}));
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(record("none.json")["status"], "skipped");
  EXPECT_EQ(record("none.json")["skip_reason"],
            "group g is not defined: etcd key " + prefix_ + "/config does not exist");
  EXPECT_NE(none.err.find("no host runs it"), std::string::npos) << none.err;

  put(prefix_ + "/config", R"({"groups": {"nightly": ["a", "b"]}})");
  for (const char* host : {"a", "b"}) {
    std::string file = std::string(host) + "-typo.json";
    auto r = run(cmd(host, file, {"--group", "nigthly", "--tick", kTick}, {"/bin/true"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json s = record(file);
    EXPECT_EQ(s["status"], "skipped");
    EXPECT_EQ(s["skip_reason"], "group nigthly is not defined in etcd key " + prefix_ + "/config");
    EXPECT_NE(r.err.find("cronrun: warning: job '"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no host runs it"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(get(prefix_ + "/runs/" + job_ + "/" + kTick)) << "nothing claimed for an undefined group";

  // A host left out of a defined group stays quiet: that is the group working.
  auto c = run(cmd("c", "c.json", {"--group", "nightly", "--tick", kTick}, {"/bin/true"}));
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(record("c.json")["skip_reason"], "host c not in group nightly");
  EXPECT_EQ(c.err.find("no host runs it"), std::string::npos) << c.err;
}

// Whoever can write the prefix can write garbage as the groups: the run fails
// closed (125, recorded `error`), with one line naming the key, and claims nothing
// (no lease was granted, so none is revoked: no second, false line about one).
TEST_F(FleetRun, AGroupsConfigThatDoesNotParseFailsTheRunWithOneLineAndNoClaim) {
  put(prefix_ + "/config", "garbage{");
  auto r = run(cmd("a", "a.json", {"--group", "g", "--tick", kTick}, sh("touch " + path("ran"))));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_EQ(record("a.json")["status"], "error");
  EXPECT_FALSE(fs::exists(path("ran")));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_NE(r.err.find(prefix_ + "/config"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("lease"), std::string::npos) << r.err;
  EXPECT_FALSE(get(prefix_ + "/runs/" + job_ + "/" + kTick)) << "no claim";
}

TEST_F(FleetRun, AStoppedKeepaliveGetsTheJobTermedAndKilledBeforeTheLeaseExpires) {
  // The job ignores SIGTERM (its shell notes it), so only the KILL ends it.
  pid_t a = background(cmd("a", "a.json", {"--tick", kTick},
                           sh("trap 'echo term >> " + path("term") + "' TERM; echo $$ > " + path("pid") +
                              "; while :; do sleep 0.1; done")),
                       "a.log");
  std::string job_pid_text = wait_file("pid");
  ASSERT_FALSE(job_pid_text.empty()) << read_text(path("a.log"));
  pid_t job = std::stoi(job_pid_text);
  ASSERT_TRUE(wait_until([&] { return get(lock_key()).has_value(); }, 5000ms));
  const int64_t fence = get(lock_key())->create_revision;
  pid_t keepalive = -1;
  ASSERT_TRUE(wait_until([&] { return (keepalive = find_keepalive()) > 0; }, 2000ms));
  // Let one renewal pass, then cut the keepalive off.
  std::this_thread::sleep_for(1500ms);
  ASSERT_EQ(::kill(keepalive, SIGSTOP), 0);
  auto stopped_at = Clock::now();

  // While the job is alive, no other host gets the job.
  auto during = run(cmd("b", "b.json", {"--tick", "2026-12-06T13:00:00Z"}, {"/bin/true"}));
  EXPECT_EQ(during.exit_code, 0) << during.err;
  if (alive(job)) {
    EXPECT_EQ(record("b.json")["status"], "skipped") << "host b ran while host a's job was alive";
  }
  // Watched closely (nothing slow in between): the lock is looked at the moment
  // the job is seen dead, before the runner could release it.
  wait_until([&] { return !alive(job); }, 6000ms, 10ms);
  ASSERT_FALSE(alive(job)) << "the deadline did not stop the job";
  auto dead_after = Clock::now() - stopped_at;
  // The lease was still valid when the job died: its lock key is still there.
  auto still = get(lock_key());
  ASSERT_TRUE(still) << "the lock was gone before the job died";
  EXPECT_EQ(still->create_revision, fence);
  EXPECT_LT(dead_after, 4s) << "not before a whole TTL after the last renewal";

  EXPECT_EQ(reap(a), 128 + SIGKILL) << read_text(path("a.log"));
  json s = record("a.json");
  EXPECT_EQ(s["status"], "killed");
  EXPECT_EQ(s["signal"], SIGKILL);
  EXPECT_NE(s["fleet"]["note"].get<std::string>().find("fleet lease not renewed since"), std::string::npos) << s.dump();
  EXPECT_NE(read_text(path("term")).find("term"), std::string::npos) << "TERM came first";
  EXPECT_EQ(find_keepalive(), -1) << "the runner stops its keepalive";

  // Once the lock is gone (released or expired), another host takes the job.
  ASSERT_TRUE(wait_until([&] { return !get(lock_key()); }, 6000ms));
  auto b = run(cmd("b", "b-after.json", {"--tick", "2026-12-06T14:00:00Z"}, {"/bin/true"}));
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(record("b-after.json")["status"], "ok");
}

// The runner SIGKILLed mid-run: its keepalive kills the job's tree (the process
// group without a cgroup, the cgroup with one) and lets the lease expire.
void FleetRun::runner_killed_takes_the_tree_along() {
  pid_t a = background(cmd("a", "a.json", {"--tick", kTick},
                           sh("sleep 300 & echo $! > " + path("child") + "; echo $$ > " + path("pid") + "; wait")),
                       "a.log");
  std::string main_text = wait_file("pid"), child_text = wait_file("child");
  ASSERT_FALSE(main_text.empty() || child_text.empty()) << read_text(path("a.log"));
  pid_t job = std::stoi(main_text), child = std::stoi(child_text);
  ASSERT_TRUE(wait_until([&] { return get(lock_key()).has_value(); }, 5000ms));
  ASSERT_TRUE(wait_until([&] { return find_keepalive() > 0; }, 2000ms));

  ASSERT_EQ(::kill(a, SIGKILL), 0);
  auto killed_at = Clock::now();
  reap(a);
  EXPECT_TRUE(wait_until([&] { return !alive(job) && !alive(child); }, 1500ms, 10ms))
      << "the job's tree outlived its runner";
  auto tree_gone = Clock::now() - killed_at;
  EXPECT_TRUE(get(lock_key())) << "the lease is not revoked: the lock stays until it expires";
  auto b = run(cmd("b", "b.json", {"--tick", "2026-12-06T12:05:00Z"}, {"/bin/true"}));
  EXPECT_EQ(record("b.json")["status"], "skipped") << "no other host before the lease expires";

  ASSERT_TRUE(wait_until([&] { return !get(lock_key()); }, 7000ms, 50ms));
  auto expired_after = Clock::now() - killed_at;
  // The last renewal came at most a third of the TTL before the kill: the lease
  // cannot have expired sooner than two thirds of the TTL after it.
  EXPECT_GT(expired_after, 2500ms) << "the lock went before its lease could have expired";
  EXPECT_LT(tree_gone, expired_after);
  EXPECT_EQ(find_keepalive(), -1) << "the keepalive exits after killing the tree";
  auto b2 = run(cmd("b", "b2.json", {"--tick", "2026-12-06T12:06:00Z"}, {"/bin/true"}));
  EXPECT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_EQ(record("b2.json")["status"], "ok");
}

TEST_F(FleetRun, AKilledRunnerTakesItsJobTreeAlongAndTheLockStaysUntilTheLeaseExpires) {
  runner_killed_takes_the_tree_along();
}

TEST_F(FleetRun, AKilledRunnerTakesItsJobsCgroupAlong) {
  if (!use_cgroups()) GTEST_SKIP() << "job cgroups need root";
  runner_killed_takes_the_tree_along();
  // The keepalive removed the run's cgroup once it was empty (teardown checks).
}

TEST_F(FleetRun, LeavingTheGroupStopsTheJobWithOnRevokeTermAndLetsItFinishByDefault) {
  const std::string config_key = prefix_ + "/config";
  put(config_key, R"({"groups": {"g": ["a"]}})");
  pid_t a = background(cmd("a", "term.json", {"--group", "g", "--on-revoke", "term", "--tick", kTick},
                           sh("echo $$ > " + path("pid") + "; exec sleep 30")),
                       "term.log");
  ASSERT_FALSE(wait_file("pid").empty()) << read_text(path("term.log"));
  ASSERT_TRUE(wait_until([&] { return get(lock_key()).has_value(); }, 5000ms));
  put(config_key, R"({"groups": {"g": ["b"]}})");
  auto moved = Clock::now();
  EXPECT_EQ(reap(a), 128 + SIGTERM) << read_text(path("term.log"));
  EXPECT_LT(Clock::now() - moved, 4s);
  json s = record("term.json");
  EXPECT_EQ(s["status"], "killed");
  EXPECT_NE(s["fleet"]["note"].get<std::string>().find("host a not in group g"), std::string::npos) << s.dump();
  EXPECT_NE(s["fleet"]["note"].get<std::string>().find("--on-revoke term"), std::string::npos) << s.dump();

  put(config_key, R"({"groups": {"g": ["a"]}})");
  pid_t a2 = background(cmd("a", "finish.json", {"--group", "g", "--tick", "2026-12-06T12:01:00Z"},
                            sh("echo $$ > " + path("pid2") + "; sleep 3")),
                        "finish.log");
  ASSERT_FALSE(wait_file("pid2").empty()) << read_text(path("finish.log"));
  ASSERT_TRUE(wait_until([&] { return get(lock_key()).has_value(); }, 5000ms));
  put(config_key, R"({"groups": {"g": ["b"]}})");
  EXPECT_EQ(reap(a2), 0) << read_text(path("finish.log"));
  json f = record("finish.json");
  EXPECT_EQ(f["status"], "ok");
  EXPECT_GE(f["wall_s"].get<double>(), 2.9);
  EXPECT_NE(f["fleet"]["note"].get<std::string>().find("--on-revoke finish"), std::string::npos) << f.dump();
}

TEST_F(FleetRun, AnUnreachableEtcdFailsClosedUnlessTheConfigSaysRun) {
  // Loopback ports nothing listens on: every endpoint refuses at once.
  std::vector<std::string> dead = {"http://127.0.0.1:1", "http://127.0.0.1:9"};
  std::string closed = write_config("dead.json", dead, "");
  auto r = run(cmd("a", "skip.json", {"--tick", kTick}, sh("touch " + path("ran")), closed));
  EXPECT_EQ(r.exit_code, 75) << r.err;
  json s = record("skip.json");
  EXPECT_EQ(s["status"], "skipped");
  EXPECT_EQ(s["skip_reason"].get<std::string>().rfind("etcd unavailable: ", 0), 0u) << s.dump();
  EXPECT_FALSE(fs::exists(path("ran")));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one warning line: " << r.err;

  std::string open = write_config("run.json", dead, ", \"unavailable\": \"run\"");
  auto r2 = run(cmd("a", "run.json.out", {"--tick", kTick},
                    sh("echo \"fence=${CRONRUN_FENCE-unset} tick=$CRONRUN_TICK\" > " + path("ran")), open));
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  json s2 = record("run.json.out");
  EXPECT_EQ(s2["status"], "ok");
  EXPECT_TRUE(s2["fleet"]["fence"].is_null());
  EXPECT_NE(s2["fleet"]["note"].get<std::string>().find("etcd unavailable"), std::string::npos) << s2.dump();
  EXPECT_EQ(trim(read_text(path("ran"))), "fence=unset tick=" + kTick) << "no fence without a claim";
}


TEST_F(FleetRun, AfterAFleetRunTheForwarderSendsItsRecordsToTheCentralHistory) {
  std::string pg = env_or_empty("CRONRUN_FLEET_PG");
  const std::string psql = "/usr/lib/postgresql/15/bin/psql";
  if (pg.empty() || !fs::exists(psql)) GTEST_SKIP() << "needs the fleet tier's PostgreSQL and psql";
  std::string central = write_config("central.json", endpoints_, ", \"history\": \"" + pg + "\"");
  auto with_history = [&](const std::string& host, const std::string& summary) {
    auto v = cmd(host, summary, {"--tick", kTick}, {"/bin/true"}, central);
    auto at = std::find(v.begin(), v.end(), "--no-history");
    *at = "--history=" + path(host + ".db");
    return v;
  };
  auto a = run(with_history("a", "a.json"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run(with_history("b", "b.json"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const int64_t fence = record("a.json")["fleet"]["fence"].get<int64_t>();
  // Neither run waited for PostgreSQL: their detached forwarders deliver soon after.
  std::string rows;
  bool both = wait_until([&] {
    auto q = run({psql, pg, "-Atc", "select host, coalesce(fence::text, '-'), status from runs where job = '" + job_ +
                                        "' order by host"});
    rows = q.out;
    return rows == "a|" + std::to_string(fence) + "|ok\nb|-|skipped\n";
  }, 10000ms, 200ms);
  EXPECT_TRUE(both) << rows;
}

}  // namespace
