// Finding the cronrun call in crontab shell text and naming its job the way the
// runner does (DESIGN §2), so crontab entries join their history.
#include <gtest/gtest.h>

#include "profiler/crontab.h"
#include "profiler/crontab_cronrun.h"

namespace cronrun::crontab {
namespace {

CronrunCall must_find(std::string_view cmd) {
  auto r = find_cronrun(cmd);
  EXPECT_TRUE(r.has_value()) << cmd << ": " << (r ? "" : r.error().message());
  if (!r || !*r) {
    ADD_FAILURE() << "no cronrun call found in: " << cmd;
    return {};
  }
  return **r;
}

bool none(std::string_view cmd) {
  auto r = find_cronrun(cmd);
  return r.has_value() && !r->has_value();
}

TEST(ShellSplit, QuotesEscapesOperatorsRedirections) {
  auto t = shell_split(R"(a 'b c' "d \"e\"" f\ g >/dev/null 2>&1 && h;i|j)");
  std::vector<std::string> words;
  for (const auto& x : t)
    if (x.type == ShellToken::Type::word) words.push_back(x.text);
  EXPECT_EQ(words, (std::vector<std::string>{"a", "b c", "d \"e\"", "f g", "/dev/null", "1", "h", "i", "j"}));
  size_t ops = 0, redirects = 0;
  for (const auto& x : t) {
    ops += x.type == ShellToken::Type::op;
    redirects += x.type == ShellToken::Type::redirect;
  }
  EXPECT_EQ(ops, 3u);
  EXPECT_EQ(redirects, 2u);
}

TEST(FindCronrun, NameFromFlagOrBasename) {
  auto c = must_find("cronrun --name nightly-report --memory 2G --cpu 150% --timeout 50m -- /usr/local/bin/report --full");
  EXPECT_EQ(c.job, "nightly-report");
  EXPECT_TRUE(c.name_given);
  EXPECT_EQ(c.command, (std::vector<std::string>{"/usr/local/bin/report", "--full"}));
  EXPECT_EQ(c.memory_max_bytes, 2ull << 30);
  EXPECT_TRUE(c.lock);

  c = must_find("/usr/bin/cronrun -- /usr/local/bin/backup.sh --all >/dev/null 2>&1");
  EXPECT_EQ(c.job, "backup.sh");
  EXPECT_FALSE(c.name_given);
  EXPECT_EQ(c.command, (std::vector<std::string>{"/usr/local/bin/backup.sh", "--all"}));

  EXPECT_EQ(must_find("cronrun -n x1 -- a").job, "x1");
  EXPECT_EQ(must_find("cronrun -nx2 -- a").job, "x2");
  EXPECT_EQ(must_find("cronrun --name=x3 -- a").job, "x3");
  EXPECT_EQ(must_find("cronrun -q -v --report -- ./tools/sync").job, "sync");
  // Characters outside the name alphabet map to '_', as runner/job_spec.cc does.
  EXPECT_EQ(must_find("cronrun -- '/opt/my job'").job, "my_job");
}

TEST(FindCronrun, OptionsWithValuesAreNotTheCommand) {
  auto c = must_find(
      "cronrun --config /etc/cronrun/jobs.d/x.json --env A=1 B=2 --lock-wait 5m --on-locked fail "
      "--history /srv/h.db --log-dir /var/log/cronrun --output on-failure -- php artisan schedule:run");
  EXPECT_EQ(c.job, "php");
  EXPECT_EQ(c.config, "/etc/cronrun/jobs.d/x.json");
  EXPECT_EQ(c.history, "/srv/h.db");
  EXPECT_EQ(c.command.front(), "php");
  // Without "--" the first word that is no option (nor an option's value) is COMMAND.
  c = must_find("cronrun --memory 512M /usr/bin/reindex");
  EXPECT_EQ(c.job, "reindex");
}

TEST(FindCronrun, LockOptions) {
  EXPECT_FALSE(must_find("cronrun --no-lock -- a").lock);
  auto c = must_find("cronrun --lock /run/lock/shared.pid -- a");
  EXPECT_TRUE(c.lock);
  EXPECT_EQ(c.lock_path, "/run/lock/shared.pid");
  EXPECT_EQ(must_find("cronrun --lock=/x.pid -- a").lock_path, "/x.pid");
  c = must_find("cronrun --lock -- a");
  EXPECT_FALSE(c.lock_path);
  EXPECT_EQ(c.job, "a");
}

TEST(FindCronrun, CommandPosition) {
  EXPECT_EQ(must_find("test -x /usr/bin/cronrun && cronrun -n a -- x").job, "a");
  EXPECT_EQ(must_find("cd /srv && FOO=1 BAR='x y' /usr/local/bin/cronrun -n b -- ./x.sh").job, "b");
  EXPECT_EQ(must_find("nice -n 10 ionice -c 3 cronrun -n c -- x").job, "c");
  EXPECT_EQ(must_find("exec chronic cronrun -n d -- x").job, "d");
  EXPECT_EQ(must_find("timeout 1h cronrun -n e -- x").job, "e");
  EXPECT_EQ(must_find("test -x /usr/sbin/anacron || { cronrun -n f -- x; }").job, "f");
  EXPECT_EQ(must_find("command -v cronrun >/dev/null && cronrun -n g -- x").job, "g");
  EXPECT_TRUE(none("echo cronrun -- x"));
  EXPECT_TRUE(none("/usr/local/bin/not-cronrun -- x"));
  EXPECT_TRUE(none("cd / && run-parts --report /etc/cron.hourly"));
  EXPECT_TRUE(none("grep cronrun /var/log/syslog"));
  EXPECT_TRUE(none("true # cronrun -- x"));
}

TEST(FindCronrun, UnusableCallsAreErrors) {
  // The runner's own messages (common/job_options.h).
  auto r = find_cronrun("cronrun --memory 1G --");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("missing COMMAND"), std::string::npos);
  r = find_cronrun("cronrun --name 'bad name' -- x");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("--name: expected a job name"), std::string::npos);
  r = find_cronrun("cronrun --memory lots -- x");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("--memory"), std::string::npos);
}

TEST(FindCronrun, SystemCrontabFixture) {
  auto c = load_crontab(std::string(CRONRUN_FIXTURES) + "/crontab/cronrun/etc/cron.d/reports");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_TRUE(c->rejected.empty()) << c->rejected.front().reason;
  ASSERT_EQ(c->entries.size(), 5u);
  std::vector<std::string> jobs;
  for (const auto& e : c->entries) {
    auto call = find_cronrun(e.command);
    ASSERT_TRUE(call) << call.error().message();
    jobs.push_back(*call ? (*call)->job : "-");
  }
  EXPECT_EQ(jobs, (std::vector<std::string>{"nightly-report", "db-backup", "run", "php", "-"}));
  EXPECT_EQ(c->entries[1].user, "backup");
  auto etl = find_cronrun(c->entries[2].command);
  EXPECT_EQ((*etl)->lock_path, "/run/lock/etl.pid");
  EXPECT_EQ((*etl)->command, (std::vector<std::string>{"/opt/etl/run"}));
  EXPECT_FALSE((*find_cronrun(c->entries[3].command))->lock);
}

// An unescaped '%' ends a crontab command (crontab(5)): "--cpu 150%" must be
// written "--cpu 150\%", or cronrun gets no COMMAND. The plan reports such a line.
TEST(FindCronrun, UnescapedPercentCutsTheCall) {
  auto c = parse_crontab("*/10 * * * * cronrun --name r --cpu 150% --timeout 50m -- /usr/local/bin/report\n", "u",
                         Kind::user);
  ASSERT_EQ(c.entries.size(), 1u);
  EXPECT_EQ(c.entries[0].command, "cronrun --name r --cpu 150");
  auto call = find_cronrun(c.entries[0].command);
  ASSERT_FALSE(call);
  EXPECT_NE(call.error().message().find("missing COMMAND"), std::string::npos);
  EXPECT_NE(call.error().message().find("cron cuts the line at an unescaped %"), std::string::npos);
}

}  // namespace
}  // namespace cronrun::crontab
