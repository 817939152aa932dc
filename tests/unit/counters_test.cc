#include "runner/counters.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace cronrun;

TEST(Counters, SumsPlainAndStatsdLines) {
  auto c = parse_counters("rows_exported 1200\nrows_exported 300\nfiles:3|c\nfiles:2|c\n\n# comment\nbytes\t1.5e3\n");
  EXPECT_DOUBLE_EQ(c.values.at("rows_exported"), 1500);
  EXPECT_DOUBLE_EQ(c.values.at("files"), 5);
  EXPECT_DOUBLE_EQ(c.values.at("bytes"), 1500);
  EXPECT_EQ(c.invalid_lines, 0u);
}

TEST(Counters, UntrustedContentIsCountedNotBelieved) {
  auto c = parse_counters("ok 1\nno_value\nbad name 2\nx nan\ny inf\ngauge:5|g\ndb.queries 99\nz 12abc\n");
  EXPECT_EQ(c.values.size(), 1u);
  EXPECT_EQ(c.invalid_lines, 7u);
  EXPECT_FALSE(c.values.contains("db.queries"));  // reserved for the DB counter
}

TEST(Counters, CapsSizeAndNames) {
  std::string big;
  for (int i = 0; i < 2000; ++i) {
    big += 'n';  // (appended piecewise: g++ 12 -O3 warns falsely on "n" + to_string(i), -Wrestrict)
    big += std::to_string(i);
    big += " 1\n";
  }
  auto c = parse_counters(big);
  EXPECT_EQ(c.values.size(), 1000u);
  EXPECT_EQ(c.over_cap, 1000u);  // not "malformed": counted on their own
  EXPECT_EQ(c.invalid_lines, 0u);
  big += "bad line-without-a-number\nn5 2\n";
  c = parse_counters(big);
  EXPECT_EQ(c.over_cap, 1000u);
  EXPECT_EQ(c.invalid_lines, 1u);
  EXPECT_EQ(c.values.at("n5"), 3);  // a name within the cap still sums
  std::string huge(5u << 20, 'a');
  EXPECT_TRUE(parse_counters(huge).truncated);
}

// The job owns its counters file and may replace it by anything; the runner reads
// it after the job ended, with the lock held, and must not wait on it.
TEST(CountersFileTest, ReplacedByAFifoIsRefusedWithoutBlocking) {
  auto dir = std::filesystem::temp_directory_path() / ("cronrun-counters-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  {
    auto f = CountersFile::create((dir / "runs").string(), "run1");
    ASSERT_TRUE(f) << f.error().message();
    ASSERT_EQ(unlink(f->path().c_str()), 0);
    ASSERT_EQ(mkfifo(f->path().c_str(), 0600), 0);
    alarm(20);  // the old blocking open waited here for a writer forever
    auto r = f->read();
    alarm(0);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find(f->path() + ": is a FIFO"), std::string::npos) << r.error().message();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir / "runs"));  // the FIFO went with the file
  std::filesystem::remove_all(dir);
}

TEST(CountersFileTest, ReadIsBounded) {
  auto dir = std::filesystem::temp_directory_path() / ("cronrun-counters-b-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  {
    auto f = CountersFile::create((dir / "runs").string(), "run1");
    ASSERT_TRUE(f) << f.error().message();
    {
      std::ofstream out(f->path());
      for (int i = 0; i < 600000; i++) out << "rows 1\n";  // more than the cap
    }
    auto r = f->read();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->truncated);
    EXPECT_LT(r->values.at("rows"), 600000);
  }
  std::filesystem::remove_all(dir);
}
