// One job model (DESIGN §8): the option table in common/job_options.h is what the
// runner's command line, its job config loader, `cronprof plan`'s reading of
// crontab lines and `cronprof suggest --write` all use. These tests iterate the
// table, so an option added to it is checked everywhere without a new test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/job_options.h"
#include "common/job_paths.h"
#include "profiler/config_edit.h"
#include "profiler/crontab_cronrun.h"
#include "runner/cli.h"
#include "runner/dry_run.h"
#include "runner/job_spec.h"

using namespace cronrun;
namespace jo = cronrun::job_options;

namespace {

// A user with private, empty directories: no default job config is found, so
// parse_args sees only what a test gives it.
class JobModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-jobmodel-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::string d = dir_.string();
    who_ = Invoker::of(65534, (d + "/run").c_str(), (d + "/state").c_str(), (d + "/config").c_str(), d.c_str());
    config_ = (dir_ / "job.json").string();
    std::ofstream(config_) << "{}\n";
    // Fleet mode reads its fleet config at parse time; "host" spares an FQDN lookup.
    fleet_ = (dir_ / "fleet.json").string();
    std::ofstream(fleet_) << R"({"etcd": ["http://127.0.0.1:2379"], "host": "box1"})" << "\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<ParsedArgs> runner(std::vector<std::string> words) {
    words.insert(words.begin(), "cronrun");
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    return parse_args(static_cast<int>(argv.size()), argv.data(), /*host_cpus=*/8, who_);
  }

  static Result<std::optional<crontab::CronrunCall>> planner(const std::vector<std::string>& words) {
    std::string line = "cronrun";
    for (const auto& w : words) line += " '" + w + "'";
    return crontab::find_cronrun(line);
  }

  // The words of `o` with valid values: its example, or the test's config file.
  std::vector<std::string> words_for(const jo::Option& o, bool short_form) const {
    std::vector<std::string> w{short_form ? std::string("-") + o.short_name : o.flag()};
    if (o.id == jo::Id::swap) w.insert(w.begin(), {"--memory", "4G"});  // --swap needs --memory
    if (o.arity == jo::Arity::flag) {
      if (o.id == jo::Id::json) w.push_back("--dry-run");  // --json goes with --dry-run only
      return w;
    }
    w.push_back(o.id == jo::Id::config ? config_ : o.id == jo::Id::fleet_config ? fleet_ : std::string(o.example));
    if (o.arity == jo::Arity::many) w.push_back("SECOND=2");
    // The fleet options mean something only in fleet mode, which needs a fleet config.
    if (o.group == jo::get(jo::Id::group).group && o.id != jo::Id::fleet_config) w.insert(w.begin(), {"--fleet-config", fleet_});
    return w;
  }

  std::filesystem::path dir_;
  Invoker who_;
  std::string config_;
  std::string fleet_;
};

std::string message(const Error& e) { return e.message(); }

// `word` in `text`, not as the start of a longer option ("--lock" in "--lock-wait").
bool has_word(const std::string& text, const std::string& word) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    size_t end = at + word.size();
    bool longer = end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-' ||
                                        text.compare(end, 2, "\\-") == 0);  // roff's "\-\-lock\-wait"
    if (!longer) return true;
  }
  return false;
}

// Both readers of one cronrun call must see the same job (name and COMMAND), or
// the same refusal.
void expect_same_reading(const Result<ParsedArgs>& run, const Result<std::optional<crontab::CronrunCall>>& plan,
                         const std::string& what) {
  if (!run) {
    ASSERT_FALSE(plan) << what << ": the runner refuses (" << message(run.error()) << ") but the planner reads job "
                       << (plan && *plan ? (*plan)->job : "-");
    EXPECT_NE(message(plan.error()).find(message(run.error())), std::string::npos)
        << what << ": planner says " << message(plan.error()) << "; runner says " << message(run.error());
    return;
  }
  ASSERT_TRUE(plan) << what << ": " << message(plan.error());
  if (run->spec.flush || run->exit_now) {
    EXPECT_FALSE(*plan) << what << ": runs no job";
    return;
  }
  ASSERT_TRUE(*plan) << what;
  EXPECT_EQ((*plan)->job, run->spec.name) << what;
  EXPECT_EQ((*plan)->command, run->spec.command) << what;
}

}  // namespace

TEST_F(JobModel, ThePlannerReadsEveryOptionTheRunnerAccepts) {
  size_t accepted = 0;
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable()) continue;
    for (bool short_form : {false, true}) {
      if (short_form && o.short_name == '\0') continue;
      for (bool named : {false, true}) {
        std::vector<std::string> words = named ? std::vector<std::string>{"-n", "given-name"} : std::vector<std::string>{};
        auto mine = words_for(o, short_form);
        words.insert(words.end(), mine.begin(), mine.end());
        words.insert(words.end(), {"--", "/bin/cmd", "arg"});
        std::string what;
        for (const auto& w : words) what += w + " ";
        testing::internal::CaptureStdout();  // --help, --version
        auto run = runner(words);
        testing::internal::GetCapturedStdout();
        accepted += run.has_value();
        expect_same_reading(run, planner(words), what);
        if (run && !run->spec.flush && !run->exit_now) {
          EXPECT_EQ(run->spec.name, named && o.id != jo::Id::name ? "given-name"
                                    : o.id == jo::Id::name    ? std::string(o.example)
                                                              : "cmd")
              << what;
          EXPECT_EQ(run->spec.command, (std::vector<std::string>{"/bin/cmd", "arg"})) << what;
        }
      }
    }
  }
  // Every option but --flush (which takes no COMMAND) was accepted with its example.
  EXPECT_GE(accepted, 2 * (jo::all().size() - 1));
}

TEST_F(JobModel, OptionsWithoutDoubleDashEndAtTheFirstWordThatIsNoOption) {
  for (const jo::Option& o : jo::all()) {
    if (o.id == jo::Id::flush || o.id == jo::Id::json || o.id == jo::Id::help || o.id == jo::Id::version) continue;
    auto words = words_for(o, false);
    words.insert(words.end(), {"/bin/cmd", "--arg"});
    auto run = runner(words);
    ASSERT_TRUE(run) << o.flag() << ": " << message(run.error());
    expect_same_reading(run, planner(words), o.flag());
  }
}

TEST_F(JobModel, AMisspelledOptionIsRefusedByBothNeverAJobNamedAfterItsValue) {
  std::vector<std::string> words{"--memroy", "2G", "--", "x"};
  auto run = runner(words);
  ASSERT_FALSE(run);
  EXPECT_NE(message(run.error()).find("unknown option '--memroy'"), std::string::npos) << message(run.error());
  auto plan = planner(words);
  ASSERT_FALSE(plan) << "the planner invented job " << (*plan ? (*plan)->job : "-");
  EXPECT_NE(message(plan.error()).find("unknown option '--memroy'"), std::string::npos) << message(plan.error());

  // The runner's other refusals are the planner's too: a bad value, a bad name,
  // no COMMAND, --flush with a COMMAND.
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--memory", "lots", "--", "x"}, {"--name", "..", "--", "x"},
        {"--name", "a b", "--", "x"}, {"--cpu", "150"}, {"--flush", "--", "x"}, {"--lock=", "--", "x"},
        {"--nice", "99", "--", "x"}, {"-z", "--", "x"}}) {
    auto r = runner(bad);
    ASSERT_FALSE(r) << bad.front();
    expect_same_reading(r, planner(bad), bad.front());
  }
}

TEST_F(JobModel, FlushTakesNoCommandAndRunsNoJob) {
  auto run = runner({"--flush"});
  ASSERT_TRUE(run) << message(run.error());
  EXPECT_TRUE(run->spec.flush);
  EXPECT_TRUE(run->spec.command.empty());
  // The history (and its journal) are resolved as for any run.
  EXPECT_EQ(run->spec.paths.history, dir_.string() + "/state/cronrun/history.db");
  EXPECT_EQ(run->spec.paths.journal, dir_.string() + "/state/cronrun/history.db.journal");
  auto explicit_history = runner({"--flush", "--history", "/srv/h.db"});
  ASSERT_TRUE(explicit_history) << message(explicit_history.error());
  EXPECT_EQ(explicit_history->spec.paths.journal, "/srv/h.db.journal");
  auto plan = crontab::find_cronrun("cronrun --flush");
  ASSERT_TRUE(plan) << message(plan.error());
  EXPECT_FALSE(*plan);
}

TEST_F(JobModel, ConfigKeysAreTheTableKeysOfEveryConfigSettableOption) {
  for (const jo::Option& o : jo::all()) {
    EXPECT_EQ(is_config_key(o.name), o.config_settable()) << o.name;
    // Appended, not `"\"" + std::string(...)`: g++ 12's Release build warns
    // (-Wrestrict) on that form's inlined memcpy, wrongly.
    std::string value = "true";
    if (o.arity != jo::Arity::flag) {
      value = "\"";
      value.append(o.example).append("\"");
    }
    JobSpec spec;
    auto r = parse_job_config("{\"" + std::string(o.name) + "\": " + value + "}", "k.json", spec);
    if (o.config_settable()) {
      EXPECT_TRUE(r) << o.name << ": " << message(r.error());
    } else {
      ASSERT_FALSE(r) << o.name << " is command-line only";
      EXPECT_NE(message(r.error()).find("unknown key '" + std::string(o.name) + "'"), std::string::npos);
    }
  }
  EXPECT_FALSE(is_config_key("--memory"));
  EXPECT_FALSE(is_config_key("memroy"));
}

TEST_F(JobModel, SuggestWriteOutputLoadsThroughTheRunnersConfigLoader) {
  std::vector<std::pair<std::string, std::string>> all_keys;
  JobSpec expected;
  for (const jo::Option& o : jo::all()) {
    if (!o.config_settable() || o.id == jo::Id::name) continue;
    std::string v = o.arity == jo::Arity::flag ? "true" : std::string(o.example);
    all_keys.emplace_back(std::string(o.name), v);
    ASSERT_TRUE(apply_setting(expected, o, v)) << o.name;
  }
  auto fresh = prof::set_config_keys("", all_keys);
  ASSERT_TRUE(fresh) << message(fresh.error());
  JobSpec loaded;
  auto r = parse_job_config(*fresh, "new.json", loaded);
  ASSERT_TRUE(r) << message(r.error()) << "\n" << *fresh;
  loaded.config_path.reset();
  EXPECT_EQ(describe_dry_run(loaded, {}).dump(), describe_dry_run(expected, {}).dump()) << *fresh;

  // Into a file a person wrote: comments and other keys stay, the keys are set.
  std::string text = "// nightly\n{\n  \"nice\": 5, // be kind\n  \"memory\": \"1G\"\n}\n";
  auto edited = prof::set_config_keys(text, {{"memory", "2G"}, {"cpu", "150%"}, {"report", "true"}});
  ASSERT_TRUE(edited) << message(edited.error());
  EXPECT_NE(edited->find("// be kind"), std::string::npos) << *edited;
  EXPECT_NE(edited->find("\"report\": true"), std::string::npos) << *edited;
  JobSpec s;
  ASSERT_TRUE(parse_job_config(*edited, "x.json", s)) << *edited;
  EXPECT_EQ(*s.nice, 5);
  EXPECT_EQ(*s.limits.memory_max_bytes, 2ull << 30);
  EXPECT_EQ(*s.limits.cpu_quota_pct, 150.0);
  EXPECT_TRUE(s.report);

  // What the runner would refuse is never written.
  auto not_a_key = prof::set_config_keys(text, {{"dry-run", "true"}});
  ASSERT_FALSE(not_a_key);
  EXPECT_NE(message(not_a_key.error()).find("'dry-run' is not a job config key"), std::string::npos);
  auto bad_value = prof::set_config_keys(text, {{"memory", "lots"}});
  ASSERT_FALSE(bad_value);
  EXPECT_NE(message(bad_value.error()).find("key 'memory'"), std::string::npos);
}

TEST_F(JobModel, TableDefaultsAreTheJobSpecsDefaults) {
  JobSpec fresh;
  JobSpec with_defaults;
  size_t defaults = 0;
  for (const jo::Option& o : jo::all()) {
    if (o.default_text.empty()) continue;
    ++defaults;
    ASSERT_TRUE(apply_setting(with_defaults, o, o.default_text)) << o.name;
  }
  EXPECT_GE(defaults, 6u);
  EXPECT_EQ(describe_dry_run(with_defaults, {}).dump(), describe_dry_run(fresh, {}).dump());
}

TEST_F(JobModel, EveryOptionIsInHelpTheManPageAndTheBashCompletion) {
  std::filesystem::path root = std::filesystem::path(CRONRUN_FIXTURES).parent_path().parent_path();
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  std::string man = slurp(root / "man/cronrun.1");
  std::string completion = slurp(root / "contrib/completions/cronrun");
  ASSERT_FALSE(man.empty());
  ASSERT_FALSE(completion.empty());

  testing::internal::CaptureStdout();
  auto help = runner({"--help"});
  std::string help_text = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(help && help->exit_now);
  for (const jo::Option& o : jo::all()) {
    std::string roff;  // "--kill-after" is written \-\-kill\-after in roff
    for (char c : o.flag()) roff += c == '-' ? std::string("\\-") : std::string(1, c);
    EXPECT_TRUE(has_word(man, roff)) << o.flag() << " (as " << roff << ") is not in man/cronrun.1";
    EXPECT_TRUE(has_word(completion, o.flag())) << o.flag() << " is not in contrib/completions/cronrun";
    EXPECT_NE(help_text.find(o.flag()), std::string::npos) << o.flag() << " is not in --help";
    EXPECT_NE(help_text.find(std::string(o.help).substr(0, 30)), std::string::npos) << o.flag();
  }
}

TEST(JobNames, OneRuleForRunnerAndPlanner) {
  EXPECT_EQ(default_job_name("/usr/local/bin/report"), "report");
  EXPECT_EQ(default_job_name("/opt/my job"), "my_job");
  EXPECT_EQ(default_job_name("/"), "job");
  EXPECT_EQ(default_job_name(".."), "job");
  EXPECT_EQ(default_job_name(std::string(70, 'x')), std::string(64, 'x'));
  EXPECT_FALSE(valid_job_name(".."));
  // The planner used its own copy of the rule, which took "." and ".." as names.
  auto plan = crontab::find_cronrun("cronrun --name .. -- x");
  ASSERT_FALSE(plan) << (*plan)->job;
  EXPECT_NE(plan.error().message().find("--name: expected a job name"), std::string::npos) << plan.error().message();
}

TEST_F(JobModel, CommandLineBeatsTheConfigFileForEveryKeyTheNameToo) {
  std::ofstream(config_) << R"({"name": "from-file", "memory": "1G", "nice": 3})";
  auto r = runner({"-c", config_, "--name", "from-flag", "--memory", "2G", "--", "job"});
  ASSERT_TRUE(r) << message(r.error());
  EXPECT_EQ(r->spec.name, "from-flag");
  EXPECT_EQ(*r->spec.limits.memory_max_bytes, 2ull << 30);
  EXPECT_EQ(*r->spec.nice, 3);
  // The lock follows the name the run uses.
  EXPECT_EQ(r->spec.paths.lock, dir_.string() + "/run/cronrun/from-flag.pid");
}
