#include "common/units.h"

#include <gtest/gtest.h>

using namespace cronrun::units;
using namespace std::chrono_literals;

TEST(ParseSize, AcceptsTheDocumentedForms) {
  EXPECT_EQ(parse_size("512M").value(), 512ull << 20);
  EXPECT_EQ(parse_size("2G").value(), 2ull << 30);
  EXPECT_EQ(parse_size("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(parse_size("1048576").value(), 1048576u);
  EXPECT_EQ(parse_size("64k").value(), 65536u);
  EXPECT_EQ(parse_size("1T").value(), 1ull << 40);
  EXPECT_EQ(parse_size("10MB").value(), 10ull << 20);
  EXPECT_EQ(parse_size(" 3 G ").value(), 3ull << 30);
}

TEST(ParseSize, RejectsWithTheExpectedForm) {
  for (const char* bad : {"banana", "", "G", "12Q", "-1G", "1.5", "1..5G", "2 GB extra", "1.G", "99999999999T"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message(), std::string("expected a size like 512M or 2G, got '") + bad + "'");
  }
}

TEST(ParseDuration, AcceptsUnitsAndCompounds) {
  EXPECT_EQ(parse_duration("90s").value(), 90s);
  EXPECT_EQ(parse_duration("15m").value(), 15min);
  EXPECT_EQ(parse_duration("2h").value(), 2h);
  EXPECT_EQ(parse_duration("1h30m").value(), 90min);
  EXPECT_EQ(parse_duration("250ms").value(), 250ms);
  EXPECT_EQ(parse_duration("1.5s").value(), 1500ms);
  EXPECT_EQ(parse_duration("45").value(), 45s);
  EXPECT_EQ(parse_duration("1d").value(), 24h);
}

TEST(ParseDuration, Rejects) {
  for (const char* bad : {"", "s", "10x", "1h 30", "-5s", "5 5", "h1"}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("expected a duration"), std::string::npos);
  }
}

TEST(ParseDuration, CapsAtACenturySoClocksCannotOverflow) {
  EXPECT_EQ(parse_duration("36500d").value(), std::chrono::hours(24 * 36500));
  for (const char* huge : {"36501d", "99999999999d", "1e30s", "9223372036854775807ms"}) {
    auto r = parse_duration(huge);
    ASSERT_FALSE(r) << huge;
    EXPECT_NE(r.error().message().find("expected a duration"), std::string::npos) << huge;
  }
  // Anything accepted can be added to a steady_clock time point without wrapping.
  auto d = parse_duration("36500d").value();
  EXPECT_GT(std::chrono::steady_clock::now() + d, std::chrono::steady_clock::now());
}

TEST(ParseCpu, PercentAndCores) {
  EXPECT_DOUBLE_EQ(parse_cpu_percent("50%").value(), 50.0);
  EXPECT_DOUBLE_EQ(parse_cpu_percent("250%").value(), 250.0);
  EXPECT_DOUBLE_EQ(parse_cpu_percent("1.5").value(), 150.0);
  EXPECT_DOUBLE_EQ(parse_cpu_percent("2").value(), 200.0);
  for (const char* bad : {"", "%", "0%", "fast", "50%%", "0.001"}) EXPECT_FALSE(parse_cpu_percent(bad)) << bad;
}

TEST(Format, SizesAndDurations) {
  EXPECT_EQ(format_size(900), "900 B");
  EXPECT_EQ(format_size(3ull << 29), "1.50 GiB");
  EXPECT_EQ(format_size(512ull << 20), "512 MiB");
  EXPECT_EQ(format_duration_s(812.4), "13m32s");
  EXPECT_EQ(format_duration_s(4.25), "4.25s");
  EXPECT_EQ(format_duration_s(7500), "2h05m");
}
