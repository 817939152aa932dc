#include "runner/counters.h"

#include <gtest/gtest.h>

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
  for (int i = 0; i < 2000; ++i) big += "n" + std::to_string(i) + " 1\n";
  auto c = parse_counters(big);
  EXPECT_EQ(c.values.size(), 1000u);
  EXPECT_EQ(c.invalid_lines, 1000u);
  std::string huge(5u << 20, 'a');
  EXPECT_TRUE(parse_counters(huge).truncated);
}
