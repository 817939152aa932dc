// parse_args hands CLI11 only the rows of the options a command line gives (every
// row for --help): adding the whole table to CLI11 cost each run about a third of
// the runner's own instructions. These guard that cut: each option is still read
// in each of its spellings, --help still lists every option, and the one CLI11
// rule between two rows (--lock excludes --no-lock) still holds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/job_options.h"
#include "runner/cli.h"

namespace cronrun {
namespace {

namespace jo = job_options;

Result<ParsedArgs> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "cronrun");
  std::vector<char*> ptrs;
  for (auto& s : args) ptrs.push_back(s.data());
  return parse_args(static_cast<int>(ptrs.size()), ptrs.data(), 8);
}

// CLI11's own words for an option it has no row for.
bool cli11_did_not_know(const Result<ParsedArgs>& r) {
  return !r && (r.error().message().find("not expected") != std::string::npos ||
                r.error().message().find("xtras") != std::string::npos);
}

std::vector<std::vector<std::string>> spellings(const jo::Option& o) {
  std::vector<std::vector<std::string>> out;
  const std::string ex(o.example);
  if (o.arity == jo::Arity::flag) {
    out.push_back({o.flag()});
    if (o.short_name) out.push_back({std::string("-") + o.short_name});
  } else {
    out.push_back({o.flag(), ex});
    out.push_back({o.flag() + "=" + ex});
    if (o.short_name) {
      out.push_back({std::string("-") + o.short_name, ex});
      out.push_back({std::string("-") + o.short_name + ex});
    }
  }
  return out;
}

TEST(CliRows, EveryOptionIsReadInEachSpelling) {
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable() || o.id == jo::Id::help || o.id == jo::Id::version) continue;
    for (auto words : spellings(o)) {
      std::string line;
      for (const auto& w : words) line += w + " ";
      words.insert(words.begin(), "-q");  // a second row beside it
      words.insert(words.end(), {"--", "/bin/true"});
      auto r = parse(words);
      EXPECT_FALSE(cli11_did_not_know(r)) << line << ": " << r.error().message();
    }
  }
}

TEST(CliRows, AValueReachesTheSpecWhateverElseIsGiven) {
  auto alone = parse({"--memory", "2G", "--", "/bin/true"});
  ASSERT_TRUE(alone) << alone.error().message();
  auto clustered = parse({"-qn", "nightly", "--memory=2G", "--", "/bin/true"});
  ASSERT_TRUE(clustered) << clustered.error().message();
  EXPECT_EQ(clustered->spec.name, "nightly");
  EXPECT_EQ(clustered->spec.verbosity, -1);
  EXPECT_EQ(alone->spec.limits.memory_max_bytes, 2ull << 30);
  EXPECT_EQ(clustered->spec.limits.memory_max_bytes, 2ull << 30);
}

TEST(CliRows, HelpListsEveryOptionEvenBesideOthers) {
  // A bad value beside --help does not stand in its way (it did: exit 125).
  for (std::vector<std::string> line : {std::vector<std::string>{"--help"},
                                        {"-q", "--memory", "1G", "-h"},
                                        {"--memory", "12Q", "--help", "--", "/bin/true"}}) {
    testing::internal::CaptureStdout();
    auto r = parse(line);
    std::string help = testing::internal::GetCapturedStdout();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->exit_now);
    for (const jo::Option& o : jo::all()) {
      if (o.command_line_settable()) {
        EXPECT_NE(help.find(o.flag()), std::string::npos) << o.flag() << " missing:\n" << help;
      }
    }
  }
}

TEST(CliRows, VersionAnswersWhateverTheOtherValues) {
  testing::internal::CaptureStdout();
  auto r = parse({"--cpu", "lots", "--version"});
  std::string out = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->exit_now);
  EXPECT_NE(out.find("cronrun "), std::string::npos) << out;
  EXPECT_FALSE(parse({"--cpu", "lots", "--", "/bin/true"})) << "without --version the value is still checked";
}

TEST(CliRows, LockStillExcludesNoLock) {
  auto r = parse({"--lock", "--no-lock", "--", "/bin/true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("excludes"), std::string::npos) << r.error().message();
  EXPECT_TRUE(parse({"--no-lock", "--", "/bin/true"})) << "--no-lock alone";
  EXPECT_TRUE(parse({"--lock", "--", "/bin/true"})) << "--lock alone";
}

// --no-history with a --history on the same line is a contradiction, not a silent choice.
TEST(CliRows, HistoryExcludesNoHistory) {
  auto r = parse({"--no-history", "--history", "/tmp/h.db", "--", "/bin/true"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("excludes"), std::string::npos) << r.error().message();
  EXPECT_TRUE(parse({"--no-history", "--", "/bin/true"})) << "--no-history alone";
  EXPECT_TRUE(parse({"--history", "/tmp/h.db", "--", "/bin/true"})) << "--history alone";
}

}  // namespace
}  // namespace cronrun
