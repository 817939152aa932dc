// Job spec resolution: defaults < config file < command line, and the one-line
// errors that name the flag or file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runner/cli.h"
#include "runner/job_spec.h"

using namespace cronrun;

namespace {

struct Argv {
  explicit Argv(std::initializer_list<std::string> a) : args(a) {
    for (auto& s : args) ptrs.push_back(s.data());
  }
  int argc() { return static_cast<int>(ptrs.size()); }
  char** argv() { return ptrs.data(); }
  std::vector<std::string> args;
  std::vector<char*> ptrs;
};

Result<ParsedArgs> parse(std::initializer_list<std::string> a) {
  Argv av(a);
  return parse_args(av.argc(), av.argv(), /*host_cpus=*/8);  // --cpu 150% below must not depend on the host
}

class ConfigDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-spec-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

}  // namespace

TEST(Cli, DefaultsAndCommand) {
  auto r = parse({"cronrun", "--config", "/dev/null/none", "--", "/bin/echo", "-n", "hi"});
  ASSERT_FALSE(r);  // an explicit config that does not exist is an error
  auto ok = parse({"cronrun", "--no-lock", "--", "/usr/local/bin/report", "--full"});
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->spec.name, "report");
  EXPECT_EQ(ok->spec.command, (std::vector<std::string>{"/usr/local/bin/report", "--full"}));
  EXPECT_FALSE(ok->spec.lock);
  EXPECT_EQ(ok->spec.kill_after, std::chrono::seconds(10));
  EXPECT_EQ(ok->spec.cgroup_mode, CgroupMode::automatic);
}

TEST(Cli, OptionsAfterCommandBelongToTheJob) {
  auto r = parse({"cronrun", "--memory", "2G", "--", "tool", "--memory", "banana"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r->spec.limits.memory_max_bytes, 2ull << 30);
  EXPECT_EQ(r->spec.command.size(), 3u);
}

TEST(Cli, BadValueNamesTheFlag) {
  auto r = parse({"cronrun", "--memory", "banana", "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "--memory: expected a size like 512M or 2G, got 'banana'");
  auto t = parse({"cronrun", "--timeout", "soon", "--", "true"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(), "--timeout: expected a duration like 90s, 15m, 2h or 7d, got 'soon'");
  auto o = parse({"cronrun", "--on-locked", "wait", "--", "true"});
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().message(), "--on-locked: expected skip|fail, got 'wait'");
  auto n = parse({"cronrun", "--name", "bad name", "--", "true"});
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message().find("--name: expected a job name"), std::string::npos);
  EXPECT_FALSE(parse({"cronrun", "--memory", "1G"}));  // no command
  EXPECT_FALSE(parse({"cronrun", "--lock", "/tmp/x", "--no-lock", "--", "true"}));
  EXPECT_FALSE(parse({"cronrun", "--memory", "1G", "--memory-high", "2G", "--", "true"}));
}

TEST(Cli, AllDocumentedOptionsParse) {
  auto r = parse({"cronrun", "-n", "nightly.report", "--memory", "2G", "--memory-high", "1.5G", "--swap", "0",
                  "--cpu", "150%", "--cpu-weight", "200", "--pids", "64", "--io-weight", "50", "--nice", "10",
                  "--ionice", "idle", "--timeout", "50m", "--kill-after", "5s", "--lock", "/tmp/x.pid",
                  "--lock-wait", "30s", "--on-locked", "fail", "--cgroup-parent", "batch", "--cgroup",
                  "required", "--history", "/tmp/h.db", "--summary", "-", "--output", "on-failure", "--log-dir",
                  "/tmp/logs", "--log-max", "1M", "--report", "--env", "A=1", "--env", "B=x=y", "--dry-run",
                  "-v", "--keep-orphans", "--", "/bin/true"});
  ASSERT_TRUE(r) << r.error().message();
  const JobSpec& s = r->spec;
  EXPECT_EQ(s.name, "nightly.report");
  EXPECT_EQ(*s.limits.memory_high_bytes, 3ull << 29);
  EXPECT_EQ(*s.limits.swap_max_bytes, 0u);
  EXPECT_DOUBLE_EQ(*s.limits.cpu_quota_pct, 150.0);
  EXPECT_EQ(*s.limits.cpu_weight, 200u);
  EXPECT_EQ(*s.limits.pids_max, 64u);
  EXPECT_EQ(*s.limits.io_weight, 50u);
  EXPECT_EQ(*s.nice, 10);
  EXPECT_EQ(s.ionice->io_class, 3);
  EXPECT_EQ(*s.timeout, std::chrono::minutes(50));
  EXPECT_EQ(s.kill_after, std::chrono::seconds(5));
  EXPECT_EQ(*s.lock_path, "/tmp/x.pid");
  EXPECT_EQ(s.lock_wait, std::chrono::seconds(30));
  EXPECT_EQ(s.on_locked, OnLocked::fail);
  EXPECT_EQ(*s.cgroup_parent, "/batch");
  EXPECT_EQ(s.cgroup_mode, CgroupMode::required);
  EXPECT_EQ(*s.history_path, "/tmp/h.db");
  EXPECT_EQ(*s.summary_path, "-");
  EXPECT_EQ(s.output, OutputMode::on_failure);
  EXPECT_EQ(*s.log_dir, "/tmp/logs");
  EXPECT_EQ(s.log_max_bytes, 1u << 20);
  EXPECT_TRUE(s.report && s.dry_run && s.keep_orphans);
  EXPECT_EQ(s.env, (std::vector<std::string>{"A=1", "B=x=y"}));
  EXPECT_EQ(s.verbosity, 1);
}

TEST_F(ConfigDir, CommandLineBeatsConfigBeatsDefaults) {
  std::string cfg = write("job.json", R"({
    // nightly report: comments are allowed
    "memory": "1G", "cpu": "50%", "timeout": "10m", "lock": false,
    "env": {"MODE": "full"}, "report": true
  })");
  auto r = parse({"cronrun", "-c", cfg, "--memory", "2G", "--", "/bin/true"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r->spec.limits.memory_max_bytes, 2ull << 30);  // flag wins
  EXPECT_DOUBLE_EQ(*r->spec.limits.cpu_quota_pct, 50.0);     // from the file
  EXPECT_EQ(*r->spec.timeout, std::chrono::minutes(10));
  EXPECT_FALSE(r->spec.lock);
  EXPECT_TRUE(r->spec.report);
  EXPECT_EQ(r->spec.env, (std::vector<std::string>{"MODE=full"}));
  EXPECT_EQ(r->spec.output, OutputMode::passthrough);  // default kept
  EXPECT_EQ(*r->spec.config_path, cfg);
}

TEST_F(ConfigDir, DefaultLookupByJobName) {
  // root reads /etc/cronrun/jobs.d, others $XDG_CONFIG_HOME/cronrun/jobs.d.
  std::string name = "cronrun-spec-test-" + std::to_string(getpid());
  std::filesystem::path jobs = geteuid() == 0 ? std::filesystem::path("/etc/cronrun/jobs.d") : dir_ / "cronrun/jobs.d";
  bool made_etc = geteuid() == 0 && !std::filesystem::exists(jobs);
  std::filesystem::create_directories(jobs);
  std::ofstream(jobs / (name + ".json")) << R"({"pids": 7})";
  setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
  auto r = parse({"cronrun", "-n", name, "--", "/bin/true"});
  std::filesystem::remove(jobs / (name + ".json"));
  if (made_etc) std::filesystem::remove_all("/etc/cronrun");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r->spec.limits.pids_max, 7u);
  EXPECT_EQ(*r->spec.config_path, (jobs / (name + ".json")).string());
}

TEST_F(ConfigDir, ConfigErrorsNameFileAndKey) {
  auto bad_value = write("a.json", R"({"memory": "lots"})");
  auto r = parse({"cronrun", "-c", bad_value, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "config " + bad_value + ": key 'memory': expected a size like 512M or 2G, got 'lots'");

  auto unknown = write("b.json", R"({"memroy": "1G"})");
  r = parse({"cronrun", "-c", unknown, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("unknown key 'memroy'"), std::string::npos);

  auto broken = write("c.json", "{\n  \"memory\": \"1G\",\n  oops\n}");
  r = parse({"cronrun", "-c", broken, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(broken + ": line 3: invalid JSON"), std::string::npos) << r.error().message();

  auto not_object = write("d.json", "[1,2]");
  r = parse({"cronrun", "-c", not_object, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("expected a JSON object"), std::string::npos);

  auto wrong_type = write("e.json", R"({"memory": ["1G"]})");
  r = parse({"cronrun", "-c", wrong_type, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("key 'memory': expected a string, number or boolean"), std::string::npos);

  // A number is a size or a count, never a path: {"lock": 5} made a lock file named "5".
  auto number_path = write("f.json", R"({"lock": 5})");
  r = parse({"cronrun", "-c", number_path, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "config " + number_path + ": key 'lock': expected a path as a string, or true / false, got 5");
  auto number_dir = write("g.json", R"({"log-dir": 7})");
  r = parse({"cronrun", "-c", number_dir, "--", "true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("key 'log-dir': expected a path as a string, got 7"), std::string::npos);
}

TEST(JobName, DefaultsFromCommandBasename) {
  EXPECT_EQ(default_job_name("/usr/local/bin/report"), "report");
  EXPECT_EQ(default_job_name("run me.sh"), "run_me.sh");
  EXPECT_EQ(default_job_name("/"), "job");
  EXPECT_TRUE(valid_job_name("a-b_c.1"));
  EXPECT_FALSE(valid_job_name(std::string(65, 'a')));
  EXPECT_FALSE(valid_job_name("a/b"));
}
