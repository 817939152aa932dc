// The crontab parser against the corner cases of crontab(5) as Debian's cron reads
// them, and against real crontabs shipped by Debian packages (tests/fixtures/crontab).
#include <gtest/gtest.h>

#include <string>

#include "profiler/crontab.h"

namespace cronrun::crontab {
namespace {

const std::string kFixtures = std::string(CRONRUN_FIXTURES) + "/crontab";

Schedule must_parse(std::string_view text) {
  auto s = parse_schedule(text);
  EXPECT_TRUE(s.has_value()) << text << ": " << (s ? "" : s.error().message());
  return s.value_or(Schedule{});
}

std::string reason(std::string_view text) {
  auto s = parse_schedule(text);
  EXPECT_FALSE(s.has_value()) << text << " should be rejected";
  return s ? "" : s.error().message();
}

TEST(CrontabSchedule, StarAndSingleValues) {
  Schedule s = must_parse("* * * * *");
  EXPECT_EQ(s.minutes.count(), 60u);
  EXPECT_EQ(s.hours.count(), 24u);
  EXPECT_EQ(s.days_of_month.count(), 31u);
  EXPECT_FALSE(s.days_of_month[0]);
  EXPECT_EQ(s.months.count(), 12u);
  EXPECT_EQ(s.days_of_week.count(), 7u);
  s = must_parse("5 4 3 2 1");
  EXPECT_TRUE(s.minutes[5] && s.hours[4] && s.days_of_month[3] && s.months[2] && s.days_of_week[1]);
  EXPECT_EQ(s.minutes.count() + s.hours.count() + s.days_of_month.count() + s.months.count(), 4u);
}

TEST(CrontabSchedule, ListsRangesSteps) {
  Schedule s = must_parse("0-4,8-12 * * * *");
  EXPECT_EQ(s.minutes.count(), 10u);
  EXPECT_TRUE(s.minutes[4] && s.minutes[8] && !s.minutes[5]);
  s = must_parse("5-55/10 0-23/2 * * *");  // sysstat, crontab(5) example
  EXPECT_EQ(s.minutes.count(), 6u);
  EXPECT_TRUE(s.minutes[5] && s.minutes[55] && !s.minutes[0]);
  EXPECT_EQ(s.hours.count(), 12u);
  EXPECT_TRUE(s.hours[22] && !s.hours[23]);
  s = must_parse("*/7 * * * *");
  EXPECT_EQ(s.minutes.count(), 9u);  // 0,7,...,56
  EXPECT_TRUE(s.minutes[56]);
  s = must_parse("1-9/2 * * * *");
  EXPECT_EQ(s.minutes.to_ullong(), (1u << 1) | (1u << 3) | (1u << 5) | (1u << 7) | (1u << 9));
  s = must_parse("*/100 * * * *");  // a step past the range fires at its start only
  EXPECT_EQ(s.minutes.count(), 1u);
  s = must_parse("09,39 * * * *");  // php-common: leading zero
  EXPECT_TRUE(s.minutes[9] && s.minutes[39]);
}

TEST(CrontabSchedule, NamesAnyCaseAlsoInRanges) {
  Schedule s = must_parse("0 0 * JAN,jul Sun");
  EXPECT_TRUE(s.months[1] && s.months[7]);
  EXPECT_EQ(s.months.count(), 2u);
  EXPECT_TRUE(s.days_of_week[0]);
  s = must_parse("0 0 * * mon-fri");
  EXPECT_EQ(s.days_of_week.count(), 5u);
  EXPECT_FALSE(s.days_of_week[0] || s.days_of_week[6]);
  s = must_parse("0 0 * jan-mar/2 *");
  EXPECT_TRUE(s.months[1] && s.months[3] && !s.months[2]);
  EXPECT_NE(reason("0 0 * * monday").find("3-letter"), std::string::npos);
  EXPECT_NE(reason("0 jan * * *").find("not a number"), std::string::npos);  // names only for month/dow
}

TEST(CrontabSchedule, SevenIsSunday) {
  EXPECT_TRUE(must_parse("0 0 * * 7").days_of_week[0]);
  Schedule s = must_parse("0 0 * * 5-7");
  EXPECT_TRUE(s.days_of_week[5] && s.days_of_week[6] && s.days_of_week[0]);
  EXPECT_EQ(s.days_of_week.count(), 3u);
  s = must_parse("47 6 * * 7");  // /etc/crontab's weekly line
  EXPECT_TRUE(s.matches(47, 6, 15, 11, 0));
}

TEST(CrontabSchedule, DayOfMonthOrDayOfWeek) {
  // crontab(5): "30 4 1,15 * 5" runs on the 1st and 15th, plus every Friday.
  Schedule s = must_parse("30 4 1,15 * 5");
  EXPECT_FALSE(s.dom_star || s.dow_star);
  EXPECT_TRUE(s.matches_day(1, 6, 2));    // the 1st, a Tuesday
  EXPECT_TRUE(s.matches_day(20, 6, 5));   // a Friday
  EXPECT_FALSE(s.matches_day(20, 6, 4));  // neither
  // One day field '*': both must match, i.e. only the other one matters.
  s = must_parse("0 0 * * 5");
  EXPECT_FALSE(s.matches_day(1, 6, 2));
  EXPECT_TRUE(s.matches_day(20, 6, 5));
  // Vixie cron: a field beginning with '*' is "star" even with a step, so
  // "*/2" in day of month AND-s with day of week: odd days that are Mondays.
  s = must_parse("0 0 */2 * 1");
  EXPECT_TRUE(s.dom_star);
  EXPECT_TRUE(s.matches_day(3, 6, 1));
  EXPECT_FALSE(s.matches_day(4, 6, 1));
  EXPECT_FALSE(s.matches_day(3, 6, 2));
  // Month restricts both.
  s = must_parse("0 0 1 jan 1");
  EXPECT_TRUE(s.matches_day(5, 1, 1));
  EXPECT_FALSE(s.matches_day(5, 2, 1));
}

TEST(CrontabSchedule, AtWords) {
  struct {
    const char* at;
    const char* fields;
  } cases[] = {{"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"},
               {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
               {"@annually", "0 0 1 1 *"}};
  for (const auto& c : cases) {
    Schedule a = must_parse(c.at), b = must_parse(c.fields);
    EXPECT_EQ(a.minutes, b.minutes) << c.at;
    EXPECT_EQ(a.hours, b.hours) << c.at;
    EXPECT_EQ(a.days_of_month, b.days_of_month) << c.at;
    EXPECT_EQ(a.months, b.months) << c.at;
    EXPECT_EQ(a.days_of_week, b.days_of_week) << c.at;
    EXPECT_EQ(a.dom_star, b.dom_star) << c.at;
    EXPECT_EQ(a.dow_star, b.dow_star) << c.at;
  }
  // @weekly: Sundays only (day of month '*' makes it AND).
  EXPECT_TRUE(must_parse("@weekly").matches(0, 0, 15, 3, 0));
  EXPECT_FALSE(must_parse("@weekly").matches(0, 0, 16, 3, 1));
  EXPECT_TRUE(must_parse("@reboot").reboot);
  EXPECT_FALSE(must_parse("@reboot").matches(0, 0, 1, 1, 0));
  EXPECT_NE(reason("@Daily").find("unknown special"), std::string::npos);  // case sensitive, as cron
  EXPECT_NE(reason("@fortnightly").find("unknown special"), std::string::npos);
}

TEST(CrontabSchedule, RejectsWhatDebianCronRejects) {
  EXPECT_NE(reason("60 * * * *").find("minute: 60 is out of range 0-59"), std::string::npos);
  EXPECT_NE(reason("0 24 * * *").find("hour"), std::string::npos);
  EXPECT_NE(reason("0 0 0 * *").find("day of month: 0 is out of range 1-31"), std::string::npos);
  EXPECT_NE(reason("0 0 32 * *").find("day of month"), std::string::npos);
  EXPECT_NE(reason("0 0 * 0 *").find("month: 0 is out of range 1-12"), std::string::npos);
  EXPECT_NE(reason("0 0 * 13 *").find("month"), std::string::npos);
  EXPECT_NE(reason("0 0 * * 8").find("day of week: 8 is out of range 0-7"), std::string::npos);
  EXPECT_NE(reason("0 19-7 * * *").find("runs backwards"), std::string::npos);
  EXPECT_NE(reason("*/0 * * * *").find("step 0"), std::string::npos);
  EXPECT_NE(reason("5/10 * * * *").find("step after a single value"), std::string::npos);
  EXPECT_NE(reason("*/x * * * *").find("not a number"), std::string::npos);
  EXPECT_NE(reason("1,,2 * * * *").find("empty element"), std::string::npos);
  EXPECT_NE(reason("* * * *").find("day of week: missing"), std::string::npos);
  EXPECT_NE(reason("-5 * * * *").find("minute"), std::string::npos);
  EXPECT_NE(reason("*-5 * * * *").find("minute"), std::string::npos);
}

TEST(CrontabSchedule, FormatsCompactly) {
  EXPECT_EQ(format_minutes(must_parse("*/10 * * * *").minutes), "*/10");
  EXPECT_EQ(format_minutes(must_parse("5-55/10 * * * *").minutes), "5-55/10");
  EXPECT_EQ(format_minutes(must_parse("7 * * * *").minutes), "7");
  EXPECT_EQ(format_minutes(must_parse("1,2,3,9 * * * *").minutes), "1-3,9");
  EXPECT_EQ(format_minutes(must_parse("1,2,9 * * * *").minutes), "1,2,9");
  EXPECT_EQ(format_hours(must_parse("0 * * * *").hours), "*");
  EXPECT_EQ(format_hours(must_parse("0 1,13 * * *").hours), "1,13");
  // Whatever it prints parses back to the same set.
  for (const char* f : {"3-58/5", "0,30", "1-3,9,11-20/3", "*/7", "59"}) {
    auto s = must_parse(std::string(f) + " * * * *");
    EXPECT_EQ(must_parse(format_minutes(s.minutes) + " * * * *").minutes, s.minutes) << f;
  }
}

TEST(CrontabFile, UserCrontabEnvironmentCommentsPercent) {
  const char* text =
      "# comment\n"
      "   # indented comment\n"
      "\n"
      "SHELL=/bin/sh\n"
      "MAILTO=\"\"\n"
      "  PATH = /usr/bin:/bin  \n"
      "GREETING = ' hello '\n"
      "5 0 * * *       $HOME/bin/daily.job >> $HOME/tmp/out 2>&1\n"
      "0 22 * * 1-5   mail -s \"It's 10pm\" joe%Joe,%%Where are your kids?%\n"
      "0 1 * * * date +\\%Y-\\%m-\\%d > /tmp/today # not a comment\n"
      "@reboot /usr/local/bin/on-boot\n";
  Crontab c = parse_crontab(text, "u", Kind::user);
  ASSERT_TRUE(c.rejected.empty()) << c.rejected.front().reason;
  ASSERT_EQ(c.env.size(), 4u);
  EXPECT_EQ(c.env[0].name, "SHELL");
  EXPECT_EQ(c.env[1].name, "MAILTO");
  EXPECT_EQ(c.env[1].value, "");
  EXPECT_EQ(c.env[2].name, "PATH");
  EXPECT_EQ(c.env[2].value, "/usr/bin:/bin");
  EXPECT_EQ(c.env[3].value, " hello ");
  ASSERT_EQ(c.entries.size(), 4u);
  EXPECT_EQ(c.entries[0].line, 8);
  EXPECT_EQ(c.entries[0].command, "$HOME/bin/daily.job >> $HOME/tmp/out 2>&1");
  EXPECT_FALSE(c.entries[0].user);
  EXPECT_EQ(c.entries[1].command, "mail -s \"It's 10pm\" joe");
  EXPECT_EQ(c.entries[1].stdin_text, "Joe,\n\nWhere are your kids?\n");
  EXPECT_EQ(c.entries[2].command, "date +%Y-%m-%d > /tmp/today # not a comment");
  EXPECT_FALSE(c.entries[2].stdin_text);
  EXPECT_TRUE(c.entries[3].schedule.reboot);
  EXPECT_EQ(c.entries[3].time_text, "@reboot");
}

TEST(CrontabFile, SystemCrontabUserField) {
  Crontab c = parse_crontab(
      "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
      "@daily www-data /usr/bin/cronrun -n php-gc -- /usr/lib/php/sessionclean\n",
      "/etc/crontab", Kind::system);
  ASSERT_TRUE(c.rejected.empty());
  ASSERT_EQ(c.entries.size(), 2u);
  EXPECT_EQ(c.entries[0].user, "root");
  EXPECT_EQ(c.entries[0].command, "cd / && run-parts --report /etc/cron.hourly");
  EXPECT_EQ(c.entries[0].time_text, "17 *\t* * *");
  EXPECT_EQ(c.entries[1].user, "www-data");
  EXPECT_EQ(c.entries[1].fields, (std::vector<std::string>{"0", "0", "*", "*", "*"}));
}

// Debian's load_user() stops at the first line load_entry() refuses and drops the
// whole file ("Syntax error, this crontab file will be ignored"): the good lines
// around a bad one are not run, so they are not entries either.
TEST(CrontabFile, OneBadLineIgnoresTheWholeFile) {
  Crontab c = parse_crontab(
      "MAILTO=ops\n"
      "61 * * * * /bin/a\n"
      "* * * /bin/b\n"
      "@often /bin/c\n"
      "0 0 * * * %only stdin\n"
      "0 0 * * * /bin/ok\n",
      "/var/spool/cron/crontabs/alice", Kind::user);
  EXPECT_TRUE(c.entries.empty());
  EXPECT_TRUE(c.env.empty());
  ASSERT_EQ(c.rejected.size(), 5u);
  int lines[] = {2, 3, 4, 5};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.rejected[i].file, "/var/spool/cron/crontabs/alice");
    EXPECT_EQ(c.rejected[i].line, lines[i]);
    EXPECT_FALSE(c.rejected[i].reason.empty());
    EXPECT_FALSE(c.rejected[i].text.empty());
  }
  EXPECT_NE(c.rejected[1].reason.find("month: '/bin/b'"), std::string::npos);  // 4 fields: the command is read as month
  EXPECT_EQ(c.rejected[4].line, 0);
  EXPECT_NE(c.rejected[4].reason.find("cron ignores the whole file"), std::string::npos);
  EXPECT_NE(c.rejected[4].reason.find("line 2 and 3 other lines"), std::string::npos);

  Crontab one = parse_crontab("0 0 * * * /bin/ok\n0 0 * * *\n", "u", Kind::user);
  EXPECT_TRUE(one.entries.empty());
  ASSERT_EQ(one.rejected.size(), 2u);
  EXPECT_NE(one.rejected[1].reason.find("line 2 is refused"), std::string::npos);
}

// In /etc/crontab and /etc/cron.d the sixth word is the user: a line written the
// user-crontab way has its command's first word looked up as a user, cron logs
// "bad username" and the file is ignored.
TEST(CrontabFile, SystemLineWithoutUserRejectsTheFile) {
  const char* good = "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n";
  for (const char* bad : {"*/5 * * * * /usr/bin/cronrun --name x -- /bin/true\n",  // a path as the user
                          "*/5 * * * * cronrun --name x -- /bin/true\n",           // the command's options follow
                          "0 0 * * *\n", "0 0 * * * root\n"}) {
    Crontab c = parse_crontab(std::string(good) + bad, "/etc/cron.d/app", Kind::system);
    EXPECT_TRUE(c.entries.empty()) << bad;
    ASSERT_EQ(c.rejected.size(), 2u) << bad;
    EXPECT_EQ(c.rejected[0].line, 2);
    EXPECT_EQ(c.rejected[1].line, 0);
    EXPECT_NE(c.rejected[1].reason.find("cron ignores the whole file"), std::string::npos);
  }
  Crontab c = parse_crontab("*/5 * * * * cronrun --name x -- /bin/true\n", "/etc/cron.d/app", Kind::system);
  ASSERT_FALSE(c.rejected.empty());
  EXPECT_NE(c.rejected[0].reason.find("bad username 'cronrun'"), std::string::npos) << c.rejected[0].reason;
  // With the passwd lookup cron does, any name that is not an account is refused.
  auto users = [](const std::string& u) { return u == "root" || u == "www-data"; };
  EXPECT_TRUE(parse_crontab("0 0 * * * backup /bin/true\n", "/etc/crontab", Kind::system, users).entries.empty());
  EXPECT_EQ(parse_crontab("0 0 * * * www-data /bin/true\n", "/etc/crontab", Kind::system, users).entries.size(), 1u);
}

TEST(CrontabFile, MoreThanTenThousandLinesIgnoresTheFile) {
  std::string text;
  for (int i = 0; i < kMaxCrontabLines; ++i) text += "0 0 * * * /bin/true\n";
  EXPECT_EQ(parse_crontab(text, "u", Kind::user).entries.size(), static_cast<size_t>(kMaxCrontabLines));
  text += "0 1 * * * /bin/true\n";
  Crontab c = parse_crontab(text, "u", Kind::user);
  EXPECT_TRUE(c.entries.empty());
  ASSERT_EQ(c.rejected.size(), 1u);
  EXPECT_NE(c.rejected[0].reason.find("more than 10000"), std::string::npos);
}

TEST(CrontabFile, MissingFinalNewlineIgnoresTheFile) {
  Crontab c = parse_crontab("0 0 * * * /bin/a\n0 1 * * * /bin/b", "f", Kind::user);
  EXPECT_TRUE(c.entries.empty());
  ASSERT_EQ(c.rejected.size(), 1u);
  EXPECT_EQ(c.rejected[0].line, 0);
  EXPECT_NE(c.rejected[0].reason.find("no newline"), std::string::npos);
  EXPECT_TRUE(parse_crontab("", "f", Kind::user).rejected.empty());
}

TEST(CrontabFile, CronTzIsRememberedForFollowingEntries) {
  Crontab c = parse_crontab("0 1 * * * /bin/a\nCRON_TZ=Europe/Berlin\n0 2 * * * /bin/b\n", "f", Kind::user);
  ASSERT_EQ(c.entries.size(), 2u);
  EXPECT_FALSE(c.entries[0].cron_tz);
  EXPECT_EQ(c.entries[1].cron_tz, "Europe/Berlin");
}

TEST(CrontabFile, KindFromPath) {
  EXPECT_EQ(kind_for_path("/etc/crontab"), Kind::system);
  EXPECT_EQ(kind_for_path("/etc/cron.d/sysstat"), Kind::system);
  EXPECT_EQ(kind_for_path("/var/spool/cron/crontabs/root"), Kind::user);
  EXPECT_EQ(kind_for_path("my.crontab"), Kind::user);
  EXPECT_TRUE(valid_cron_d_name("popularity-contest"));
  EXPECT_TRUE(valid_cron_d_name("e2scrub_all"));
  EXPECT_FALSE(valid_cron_d_name("php.dpkg-old"));
  EXPECT_FALSE(valid_cron_d_name("backup.cron"));
  EXPECT_FALSE(valid_cron_d_name("x~"));
}

// Real crontabs from Debian packages.
TEST(CrontabDebian, EtcCrontab) {
  auto c = load_crontab(kFixtures + "/debian/etc/crontab");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->rejected.empty());
  ASSERT_EQ(c->entries.size(), 4u);
  EXPECT_EQ(c->env.size(), 2u);
  for (const auto& e : c->entries) EXPECT_EQ(e.user, "root");
  EXPECT_EQ(c->entries[0].schedule.minutes.count(), 1u);
  EXPECT_TRUE(c->entries[2].schedule.days_of_week[0]);  // "47 6 * * 7": Sunday
  EXPECT_TRUE(c->entries[3].schedule.matches(52, 6, 1, 4, 3));
  EXPECT_FALSE(c->entries[3].schedule.matches(52, 6, 2, 4, 3));
  EXPECT_EQ(c->entries[1].command, "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }");
}

TEST(CrontabDebian, CronD) {
  auto c = load_crontab(kFixtures + "/debian/etc/cron.d");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->rejected.empty()) << c->rejected.front().file << ": " << c->rejected.front().reason;
  // anacron 1, certbot 1, e2scrub_all 2, mdadm 1, php 1, popularity-contest 1, sysstat 2
  ASSERT_EQ(c->entries.size(), 9u);
  const Entry* sysstat = nullptr;
  const Entry* php = nullptr;
  const Entry* anacron = nullptr;
  for (const auto& e : c->entries) {
    EXPECT_EQ(e.user, "root") << e.file;
    if (e.file.ends_with("sysstat") && !sysstat) sysstat = &e;
    if (e.file.ends_with("php")) php = &e;
    if (e.file.ends_with("anacron")) anacron = &e;
  }
  ASSERT_TRUE(sysstat && php && anacron);
  EXPECT_EQ(sysstat->schedule.minutes.count(), 6u);
  EXPECT_EQ(sysstat->command, "command -v debian-sa1 > /dev/null && debian-sa1 1 1");
  EXPECT_EQ(php->schedule.minutes.count(), 2u);
  EXPECT_EQ(anacron->schedule.hours.count(), 17u);  // 7-23
  // mdadm's "if [ $(date +\%d) -le 7 ]" keeps its '%' via the escape.
  for (const auto& e : c->entries) {
    if (e.file.ends_with("mdadm")) {
      EXPECT_NE(e.command.find("date +%d"), std::string::npos);
    }
  }
}

TEST(CrontabDebian, SysstatExampleIsAUserCrontab) {
  auto c = load_crontab(kFixtures + "/debian/sysstat-example.user");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->rejected.empty());
  ASSERT_EQ(c->entries.size(), 2u);
  EXPECT_FALSE(c->entries[0].user);
  EXPECT_EQ(c->entries[0].command, "/usr/lib/sysstat/sa1 600 6");
  // Its commented-out "0 19-7 * * 1-5" is a wrapping range Debian's cron refuses.
  EXPECT_FALSE(parse_schedule("0 19-7 * * 1-5"));
}

TEST(CrontabDirectory, FileNamesAndMissingNewlineAsCronReadsThem) {
  auto c = load_crontab(kFixtures + "/dir/cron.d");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->entries.size(), 1u);
  EXPECT_EQ(c->entries[0].line, 2);
  EXPECT_TRUE(c->entries[0].file.ends_with("/good"));
  ASSERT_EQ(c->rejected.size(), 2u);  // .placeholder is skipped silently
  EXPECT_TRUE(c->rejected[0].file.ends_with("backup.dpkg-old"));
  EXPECT_NE(c->rejected[0].reason.find("file name"), std::string::npos);
  EXPECT_TRUE(c->rejected[1].file.ends_with("no_newline"));
  EXPECT_NE(c->rejected[1].reason.find("no newline"), std::string::npos);
}

TEST(CrontabDirectory, UnreadablePathIsAnError) {
  auto c = load_crontab(kFixtures + "/does-not-exist");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("does-not-exist"), std::string::npos);
}

}  // namespace
}  // namespace cronrun::crontab
