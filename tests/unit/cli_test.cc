// The command line's edges: where options end, what an unknown option does, cron's
// `%` cut, the CPU count bound, zero sizes and huge durations, the job config's
// number limits and file kinds, and --dry-run's description.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/units.h"
#include "runner/cli.h"
#include "runner/dry_run.h"
#include "runner/job_spec.h"

using namespace cronrun;

namespace {

Result<ParsedArgs> parse_on(unsigned host_cpus, std::vector<std::string> args) {
  args.insert(args.begin(), "cronrun");
  std::vector<char*> ptrs;
  for (auto& s : args) ptrs.push_back(s.data());
  return parse_args(static_cast<int>(ptrs.size()), ptrs.data(), host_cpus);
}

Result<ParsedArgs> parse(std::vector<std::string> args) { return parse_on(8, std::move(args)); }

std::string error_of(const Result<ParsedArgs>& r) { return r ? std::string("(parsed)") : r.error().message(); }

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-cli-" + std::to_string(getpid()));
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

// ---- where options end ----

TEST(OptionsEnd, AnUnknownOptionIsAnErrorNamingItNeverTheCommand) {
  auto r = parse({"--memroy", "2G", "--", "true"});
  ASSERT_FALSE(r) << "COMMAND became: " << (r ? r->spec.command.front() : "");
  EXPECT_NE(error_of(r).find("unknown option '--memroy'"), std::string::npos) << error_of(r);
  EXPECT_NE(error_of(r).find("did you mean --memory?"), std::string::npos) << error_of(r);
  EXPECT_EQ(error_of(r).find('\n'), std::string::npos);

  // The same wherever it stands among the options, and for short options.
  EXPECT_FALSE(parse({"--memory", "2G", "--dryrun", "--", "true"}));
  EXPECT_NE(error_of(parse({"-x", "--", "true"})).find("unknown option '-x'"), std::string::npos);
  EXPECT_NE(error_of(parse({"-vz", "--", "true"})).find("unknown option '-z'"), std::string::npos);
  EXPECT_NE(error_of(parse({"--bogus=1", "true"})).find("unknown option '--bogus'"), std::string::npos);
}

TEST(OptionsEnd, TheFirstNonOptionStartsTheCommand) {
  auto r = parse({"--memory", "2G", "mycmd", "--foo", "--memory", "x"});
  ASSERT_TRUE(r) << error_of(r);
  EXPECT_EQ(r->spec.command, (std::vector<std::string>{"mycmd", "--foo", "--memory", "x"}));
  EXPECT_EQ(*r->spec.limits.memory_max_bytes, 2ull << 30);
  EXPECT_EQ(r->spec.name, "mycmd");
}

TEST(OptionsEnd, DoubleDashRunsACommandThatLooksLikeAnOption) {
  auto r = parse({"--no-lock", "--", "-weird", "--x"});
  ASSERT_TRUE(r) << error_of(r);
  EXPECT_EQ(r->spec.command, (std::vector<std::string>{"-weird", "--x"}));
  auto twice = parse({"--", "--", "x"});
  ASSERT_TRUE(twice) << error_of(twice);
  EXPECT_EQ(twice->spec.command, (std::vector<std::string>{"--", "x"}));
}

TEST(OptionsEnd, ValuesFlagsAndOptionalValues) {
  // A value is taken whatever it looks like; flags take none; --lock's PATH is
  // optional and taken only when the next argument is not an option.
  auto r = parse({"--nice", "-5", "-vq", "--keep-orphans", "--env", "A=1", "--env=B=2", "-nfoo", "--lock", "--",
                  "job"});
  ASSERT_TRUE(r) << error_of(r);
  EXPECT_EQ(*r->spec.nice, -5);
  EXPECT_TRUE(r->spec.keep_orphans);
  EXPECT_EQ(r->spec.env, (std::vector<std::string>{"A=1", "B=2"}));
  EXPECT_EQ(r->spec.name, "foo");
  EXPECT_TRUE(r->spec.lock);
  EXPECT_FALSE(r->spec.lock_path);
  EXPECT_EQ(r->spec.command, (std::vector<std::string>{"job"}));

  auto with_path = parse({"--lock", "/tmp/j.pid", "--dry-run", "job"});
  ASSERT_TRUE(with_path) << error_of(with_path);
  EXPECT_EQ(*with_path->spec.lock_path, "/tmp/j.pid");
  EXPECT_TRUE(with_path->spec.dry_run);
  auto bare = parse({"--dry-run", "--lock", "--", "job"});
  ASSERT_TRUE(bare) << error_of(bare);
  EXPECT_FALSE(bare->spec.lock_path);

  EXPECT_NE(error_of(parse({"--memory"})).find("--memory: expected a value"), std::string::npos);

  // --env takes the KEY=VALUE words after it, as crontab lines have long used;
  // the first other word is the COMMAND.
  auto env = parse({"--env", "A=1", "B_2=x=y", "--", "job"});
  ASSERT_TRUE(env) << error_of(env);
  EXPECT_EQ(env->spec.env, (std::vector<std::string>{"A=1", "B_2=x=y"}));
  EXPECT_EQ(env->spec.command, (std::vector<std::string>{"job"}));
  auto env_cmd = parse({"--env", "A=1", "job", "C=3"});
  ASSERT_TRUE(env_cmd) << error_of(env_cmd);
  EXPECT_EQ(env_cmd->spec.env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(env_cmd->spec.command, (std::vector<std::string>{"job", "C=3"}));
  EXPECT_NE(error_of(parse({"--lock", "", "--", "job"})).find("--lock: expected a path"), std::string::npos);
  EXPECT_NE(error_of(parse({"--lock=", "--", "job"})).find("--lock: expected a path"), std::string::npos);
}

// ---- cron's % and the CPU count ----

TEST(CronPercent, MissingCommandSaysCronCutsAtPercent) {
  // `cronrun --cpu 150% -- job` in a crontab reaches us as `cronrun --cpu 150`.
  auto r = parse({"--cpu", "150"});
  ASSERT_FALSE(r);
  EXPECT_NE(error_of(r).find("missing COMMAND"), std::string::npos) << error_of(r);
  EXPECT_NE(error_of(r).find("cron cuts the line at an unescaped %"), std::string::npos) << error_of(r);
  EXPECT_NE(error_of(r).find("\\%"), std::string::npos) << error_of(r);
  EXPECT_NE(error_of(r).find("--cpu 1.5"), std::string::npos) << error_of(r);
}

TEST(CronPercent, CoresAboveTheHostsCpusAskForPercent) {
  auto r = parse_on(4, {"--cpu", "150", "--", "job"});
  ASSERT_FALSE(r);
  EXPECT_EQ(error_of(r).rfind("--cpu: '150' means 150 CPUs, more than this host's 4; did you mean 150%?", 0), 0u)
      << error_of(r);
  auto pct = parse_on(4, {"--cpu", "500%", "--", "job"});
  ASSERT_FALSE(pct);
  EXPECT_NE(error_of(pct).find("more than this host's 4 (at most 400%)"), std::string::npos) << error_of(pct);
  // At or below the count is fine, in either form.
  EXPECT_TRUE(parse_on(4, {"--cpu", "4", "--", "job"}));
  EXPECT_TRUE(parse_on(4, {"--cpu", "150%", "--", "job"}));
  EXPECT_TRUE(parse_on(1, {"--cpu", "50%", "--", "job"}));
}

TEST_F(TempDir, ConfigCpuAboveTheHostNamesTheFileAndKey) {
  auto cfg = write("c.json", R"({"cpu": 150})");
  auto r = parse_on(2, {"-c", cfg, "--", "job"});
  ASSERT_FALSE(r);
  EXPECT_EQ(error_of(r).rfind("config " + cfg + ": key 'cpu': '150' means 150 CPUs", 0), 0u) << error_of(r);
  // A flag that fixes it wins over the file.
  EXPECT_TRUE(parse_on(2, {"-c", cfg, "--cpu", "150%", "--", "job"}));
}

TEST(CpuCount, PureCheckAndARealCount) {
  JobSpec s;
  EXPECT_TRUE(check_cpu_quota(s, 1));
  s.limits.cpu_quota_pct = 200;
  s.cpu_quota_as_given = "2";
  EXPECT_TRUE(check_cpu_quota(s, 2));
  EXPECT_FALSE(check_cpu_quota(s, 1));
  EXPECT_GE(host_cpu_count(), 1u);
}

// ---- values that must not pass ----

TEST(Values, ZeroSizesAndDirectoryNamesAreRefused) {
  EXPECT_EQ(error_of(parse({"--memory", "0", "--", "job"})),
            "--memory: expected a size above 0 like 512M or 2G, got '0'");
  EXPECT_EQ(error_of(parse({"--memory-high", "0B", "--", "job"})),
            "--memory-high: expected a size above 0 like 512M or 2G, got '0B'");
  EXPECT_EQ(error_of(parse({"--log-max", "0", "--", "job"})),
            "--log-max: expected a size above 0 like 512M or 2G, got '0'");
  EXPECT_TRUE(parse({"--memory", "1G", "--swap", "0", "--", "job"}));  // no swap: meaningful
  for (const char* name : {".", ".."}) {
    auto r = parse({"--name", name, "--", "job"});
    ASSERT_FALSE(r) << name;
    EXPECT_NE(error_of(r).find("--name: expected a job name"), std::string::npos);
  }
  EXPECT_FALSE(valid_job_name("."));
  EXPECT_FALSE(valid_job_name(".."));
  EXPECT_TRUE(valid_job_name("..."));
  EXPECT_TRUE(valid_job_name(".hidden"));
}

TEST(Values, HugeDurationsAreRefusedNotWrapped) {
  for (const char* flag : {"--lock-wait", "--timeout", "--kill-after"}) {
    auto r = parse({flag, "99999999999d", "--", "job"});
    ASSERT_FALSE(r) << flag;
    EXPECT_EQ(error_of(r), std::string(flag) + ": expected a duration of at most 36500d, got '99999999999d'");
  }
  // The largest accepted one still fits a steady_clock deadline.
  auto r = parse({"--lock-wait", "36500d", "--timeout", "36500d", "--", "job"});
  ASSERT_TRUE(r) << error_of(r);
  auto deadline = std::chrono::steady_clock::now() + r->spec.lock_wait;
  EXPECT_GT(deadline, std::chrono::steady_clock::now());
}

TEST(Values, JsonOnlyWithDryRun) {
  auto r = parse({"--json", "--", "job"});
  ASSERT_FALSE(r);
  EXPECT_NE(error_of(r).find("--json: only with --dry-run"), std::string::npos);
  auto ok = parse({"--dry-run", "--json", "--", "job"});
  ASSERT_TRUE(ok) << error_of(ok);
  EXPECT_TRUE(ok->json);
}

// ---- the job config ----

TEST(ConfigText, NumbersOutOfRangeAreErrorsNamingFileAndKey) {
  for (const char* text : {R"({"nice": 1e999})", R"({"memory": -1e999})", R"({"pids": 1e400, "nice": 1})",
                           R"({"env": {"A": 1e999}})"}) {
    JobSpec s;
    auto r = parse_job_config(text, "/etc/cronrun/jobs.d/x.json", s);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().message().rfind("config /etc/cronrun/jobs.d/x.json", 0), 0u) << r.error().message();
  }
  JobSpec s;
  auto r = parse_job_config(R"({"memory": "1G", "nice": 1e999})", "x.json", s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("key 'nice'"), std::string::npos) << r.error().message();
  // Big but finite numbers reach the setting's own check.
  JobSpec big;
  auto b = parse_job_config(R"({"nice": 18446744073709551616})", "x.json", big);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("key 'nice'"), std::string::npos) << b.error().message();
}

TEST(ConfigText, PureParserAppliesSettings) {
  JobSpec s;
  auto r = parse_job_config("// c\n{\"memory\": \"1G\", \"nice\": 5, \"env\": [\"A=1\"]}", "p.json", s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*s.limits.memory_max_bytes, 1ull << 30);
  EXPECT_EQ(*s.nice, 5);
  EXPECT_EQ(*s.config_path, "p.json");
  for (std::string_view bad : {std::string_view(""), std::string_view("\xff"), std::string_view("{\"a\0\":1}", 9),
                               std::string_view("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[")}) {
    JobSpec t;
    EXPECT_FALSE(parse_job_config(bad, "p.json", t));
  }
}

TEST_F(TempDir, ConfigIsARegularFileReadBoundedAndWithoutBlocking) {
  auto r = parse({"-c", "/dev/zero", "--", "job"});
  ASSERT_FALSE(r);
  EXPECT_NE(error_of(r).find("/dev/zero: is a character device, expected a regular file"), std::string::npos)
      << error_of(r);

  // A FIFO with no writer: open must not block (the test would hang here).
  std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = parse({"-c", fifo, "--", "job"});
  ASSERT_FALSE(f);
  EXPECT_NE(error_of(f).find(fifo + ": is a FIFO, expected a regular file"), std::string::npos) << error_of(f);

  std::string big = write("big.json", "{\"nice\": 1" + std::string(2u << 20, ' ') + "}");
  auto b = parse({"-c", big, "--", "job"});
  ASSERT_FALSE(b);
  EXPECT_NE(error_of(b).find(big + ": larger than the"), std::string::npos) << error_of(b);

  // A symlink to a config is followed when root or the caller made it in a
  // directory only they can change: /etc configs are often links.
  std::string real = write("real.json", R"({"pids": 9})");
  std::filesystem::create_symlink(real, dir_ / "link.json");
  auto l = parse({"-c", (dir_ / "link.json").string(), "--", "job"});
  ASSERT_TRUE(l) << error_of(l);
  EXPECT_EQ(*l->spec.limits.pids_max, 9u);
}

// ---- --dry-run ----

TEST(DryRun, DescribesEveryFieldResolved) {
  auto r = parse({"--name", "nightly", "--memory", "1G", "--memory-high", "512M", "--cpu", "50%", "--pids", "9",
                  "--nice", "7", "--ionice", "best-effort:3", "--env", "MODE=full", "--log-dir", "/var/log/j",
                  "--log-max", "2M", "--count-db-queries", "--keep-orphans", "--lock-wait", "30s", "--on-locked",
                  "fail", "--report", "--io-weight", "100", "--timeout", "5m", "--dry-run", "--", "/bin/job"});
  ASSERT_TRUE(r) << error_of(r);
  // Paths as parse_args resolves them for root.
  resolve_job(r->spec, Invoker::of(0, nullptr, nullptr, nullptr, "/root"));
  DryRunFacts facts;
  facts.db_library = "/usr/lib/cronrun/libcronrun-db.so";
  facts.host_cpus = 4;
  cgroup::Placement p;
  p.layout = cgroup::Layout::v2;
  p.parent = "/cronrun";
  p.controllers = {"memory", "cpu", "pids"};
  p.reason = "cgroup v2, running as root";
  facts.placement = p;

  auto j = describe_dry_run(r->spec, facts);
  EXPECT_EQ(j["nice"], 7);
  EXPECT_EQ(j["ionice"]["class"], "best-effort");
  EXPECT_EQ(j["ionice"]["level"], 3);
  EXPECT_EQ(j["env"], nlohmann::json::array({"MODE=full"}));
  EXPECT_EQ(j["log"]["file"], "/var/log/j/nightly/<run-id>.log");
  EXPECT_EQ(j["log"]["max_bytes"], 2u << 20);
  EXPECT_EQ(j["count_db_queries"]["enabled"], true);
  EXPECT_EQ(j["count_db_queries"]["library"], "/usr/lib/cronrun/libcronrun-db.so");
  EXPECT_EQ(j["keep_orphans"], true);
  EXPECT_EQ(j["lock"]["path"], "/run/cronrun/locks/nightly.pid");
  EXPECT_EQ(j["lock"]["wait_s"], 30.0);
  EXPECT_EQ(j["lock"]["on_locked"], "fail");
  EXPECT_EQ(j["report"], true);
  EXPECT_EQ(j["history"]["path"], "/var/lib/cronrun/history.db");
  EXPECT_EQ(j["history"]["journal"], "/var/lib/cronrun/history.db.journal");
  EXPECT_EQ(j["is_root"], true);
  EXPECT_EQ(j["drain"]["file"], "/etc/cronrun/drain");
  EXPECT_EQ(j["limits"]["memory_high_bytes"], 512u << 20);
  EXPECT_EQ(j["timeout_s"], 300.0);
  EXPECT_EQ(j["kill_after_s"], 10.0);
  EXPECT_EQ(j["cgroup"]["layout"], "v2");
  EXPECT_EQ(j["cgroup"]["job_cgroup"], "/cronrun/nightly/<run-id>");
  EXPECT_EQ(j["cgroup"]["limits_without_controller"], nlohmann::json::array({"--io-weight (needs io)"}));
  // The run's own (io is needed but not offered), then what the host offers.
  EXPECT_EQ(j["cgroup"]["run_controllers"], nlohmann::json::array({"cpu", "memory", "pids"}));
  EXPECT_EQ(j["cgroup"]["why"], "cgroup v2, running as root");

  std::string text = format_dry_run_text(j);
  for (const char* want : {"nice:             7", "ionice:           best-effort:3", "MODE=full",
                           "/var/log/j/nightly/<run-id>.log (capped at 2.00 MiB)", "count-db-queries: yes",
                           "keep-orphans:     yes", "lock-wait:        30.0s", "on-locked:        fail",
                           "report:           yes", "history:          /var/lib/cronrun/history.db",
                           "  not enforceable: --io-weight (needs io)", "  why: cgroup v2, running as root",
                           "  controllers: cpu memory pids (this run's; the host offers memory cpu pids)",
                           "config:           none (/etc/cronrun/jobs.d/nightly.json not found)"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  EXPECT_EQ(text.find('{'), std::string::npos) << "text only, no JSON:\n" << text;
}

TEST(DryRun, SaysWhatTheRunWouldRefuseAndMakesNothing) {
  char tmpl[] = "/tmp/cronrun-dry-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto r = parse({"--summary", dir + "/gone/s.json", "--log-dir", dir + "/logs", "--lock", dir + "/locks/j.pid",
                  "--history", dir + "/hist/h.db", "--cgroup", "off", "--dry-run", "--", "/bin/true"});
  ASSERT_TRUE(r) << error_of(r);
  DryRunFacts facts = gather_dry_run_facts(r->spec);
  ASSERT_EQ(facts.would_refuse.size(), 4u) << nlohmann::json(facts.would_refuse).dump();
  EXPECT_EQ(facts.would_refuse[0].rfind("--summary: ", 0), 0u) << facts.would_refuse[0];
  EXPECT_NE(facts.would_refuse[1].find("--log-dir: "), std::string::npos) << facts.would_refuse[1];
  EXPECT_NE(facts.would_refuse[1].find("it is not created"), std::string::npos) << facts.would_refuse[1];
  EXPECT_NE(facts.would_refuse[2].find("--lock " + dir + "/locks/j.pid: the lock directory"), std::string::npos)
      << facts.would_refuse[2];
  EXPECT_NE(facts.would_refuse[3].find("--history " + dir + "/hist/h.db: its directory must exist"),
            std::string::npos)
      << facts.would_refuse[3];
  auto j = describe_dry_run(r->spec, facts);
  EXPECT_EQ(j["would_refuse"].size(), 4u);
  std::string text = format_dry_run_text(j);
  EXPECT_NE(text.find("\nwould refuse:     --summary: "), std::string::npos) << text;
  EXPECT_NE(text.find("No such file or directory (exit 125)\n"), std::string::npos) << text;
  // It only looked: nothing was made.
  EXPECT_TRUE(std::filesystem::is_empty(dir));

  // The same directories present: nothing to refuse.
  for (const char* d : {"/gone", "/logs", "/locks", "/hist"}) std::filesystem::create_directory(dir + d);
  EXPECT_TRUE(gather_dry_run_facts(r->spec).would_refuse.empty());
  std::filesystem::remove_all(dir);
}

TEST(DryRun, FallbackAndOffAreSaid) {
  auto r = parse({"--memory", "1G", "--pids", "4", "--cgroup", "required", "--dry-run", "job"});
  ASSERT_TRUE(r) << error_of(r);
  DryRunFacts facts;
  facts.host_cpus = 2;
  cgroup::Placement none;
  none.reason = "no cgroup2 mount";
  facts.placement = none;
  auto j = describe_dry_run(r->spec, facts);
  EXPECT_EQ(j["cgroup"]["would_exit"], 125);
  EXPECT_NE(format_dry_run_text(j).find("the run would exit 125"), std::string::npos);

  r->spec.cgroup_mode = CgroupMode::automatic;
  j = describe_dry_run(r->spec, facts);
  EXPECT_EQ(j["cgroup"]["fallback"]["not_enforced"], nlohmann::json::array({"--pids"}));

  r->spec.cgroup_mode = CgroupMode::off;
  facts.placement.reset();
  j = describe_dry_run(r->spec, facts);
  EXPECT_TRUE(j["cgroup"]["layout"].is_null());
  EXPECT_NE(format_dry_run_text(j).find("\ncgroup: off (--cgroup off)\n"), std::string::npos);
}
