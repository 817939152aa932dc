// --ping's pure parts: the option's URL check, which signal a run's end sends,
// the URL of each signal, the body, and what is kept of the URL's secret.
#include "runner/ping.h"

#include <gtest/gtest.h>

#include "common/job_options.h"

namespace cronrun {
namespace {

using job_options::get;
using job_options::Id;

Result<job_options::Value> parse_ping(std::string_view v) { return get(Id::ping).parse(v); }

TEST(PingOption, AcceptsHttpAndHttpsUrls) {
  for (const char* ok : {"https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278", "http://127.0.0.1:8000/ping/x",
                         "HTTPS://hc-ping.com/key/slug?create=1", "http://[::1]:8000/p", "https://user:pw@host/p",
                         "https://host"}) {
    auto v = parse_ping(ok);
    ASSERT_TRUE(v) << ok << ": " << v.error().message();
    EXPECT_EQ(std::get<std::string>(*v), ok);
  }
}

TEST(PingOption, RefusesWhatCanNeverBeAPingUrlWithoutEchoingIt) {
  for (const char* bad : {"", "ftp://host/secret", "hc-ping.com/secret", "https:///secret", "https://:80/secret",
                          "https://host:0/secret", "https://host:99999/secret", "https://host:/secret",
                          "https://ho st/secret", "https://host/sec\tret", "https://host/secret#frag",
                          "https://[::1/secret", "file:///etc/secret"}) {
    auto v = parse_ping(bad);
    ASSERT_FALSE(v) << bad;
    EXPECT_EQ(v.error().message().rfind("expected an http:// or https:// URL", 0), 0u) << v.error().message();
    EXPECT_EQ(v.error().message().find("secret"), std::string::npos) << v.error().message();
  }
  EXPECT_FALSE(parse_ping("https://host/" + std::string(3000, 'a')));
}

TEST(PingOption, IsAConfigKey) { EXPECT_NE(job_options::find_config_key("ping"), nullptr); }

TEST(PingSignal, EndFollowsHealthchecksSemantics) {
  EXPECT_EQ(ping::end_signal(false, 0).endpoint, "");
  EXPECT_EQ(ping::end_signal(false, 0).kind, "success");
  EXPECT_EQ(ping::end_signal(false, 3).endpoint, "/3");
  EXPECT_EQ(ping::end_signal(false, 124).endpoint, "/124");
  EXPECT_EQ(ping::end_signal(false, 137).kind, "failure");
  // Skipped with exit 0 (lock busy, draining): logged, the check's state unchanged.
  EXPECT_EQ(ping::end_signal(true, 0).endpoint, "/log");
  // --on-locked fail exits 75: a failure the check hears.
  EXPECT_EQ(ping::end_signal(true, 75).endpoint, "/75");
  EXPECT_EQ(ping::start_signal().endpoint, "/start");
}

TEST(PingTarget, SignalUrlsKeepPathAndQueryAndAddTheRunId) {
  auto t = ping::Target::parse("https://hc-ping.com/ping-key/my-job/?create=1");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->host(), "hc-ping.com");
  EXPECT_EQ(*t->url(ping::start_signal(), "0193f1c2-aaaa"), "https://hc-ping.com/ping-key/my-job/start?create=1&rid=0193f1c2-aaaa");
  EXPECT_EQ(*t->url(ping::end_signal(false, 0), "r"), "https://hc-ping.com/ping-key/my-job?create=1&rid=r");
  EXPECT_EQ(*t->url(ping::end_signal(false, 2), ""), "https://hc-ping.com/ping-key/my-job/2?create=1");
  auto root = ping::Target::parse("http://127.0.0.1:8000");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->host(), "127.0.0.1:8000");
  EXPECT_EQ(*root->url(ping::end_signal(false, 0), "r"), "http://127.0.0.1:8000/?rid=r");
}

TEST(PingTarget, ScrubRemovesPathQueryAndUser) {
  auto t = ping::Target::parse("https://me:pw@hc-ping.com/5bf66975-uuid?k=v");
  ASSERT_TRUE(t);
  std::string s = t->scrub("failed for https://me:pw@hc-ping.com/5bf66975-uuid?k=v and /5bf66975-uuid");
  EXPECT_EQ(s.find("5bf66975"), std::string::npos) << s;
  EXPECT_EQ(s.find("k=v"), std::string::npos) << s;
  EXPECT_NE(s.find("hc-ping.com"), std::string::npos) << s;
}

TEST(PingTarget, HostOfNeedsNoLibcurlAndKeepsNoSecret) {
  EXPECT_EQ(ping::host_of("https://hc-ping.com/5bf66975-uuid"), "hc-ping.com");
  EXPECT_EQ(ping::host_of("http://me:pw@127.0.0.1:8000?k=v"), "127.0.0.1:8000");
  EXPECT_EQ(ping::host_of("https://[::1]:8000/key/slug"), "[::1]:8000");
}

TEST(PingTarget, RefusesOtherSchemes) { EXPECT_FALSE(ping::Target::parse("ftp://host/x")); }

TEST(PingBody, FinishLineThenTheOutputsEndBoundedAndValidUtf8) {
  std::string out = std::string(ping::kBodyMax * 3, 'x') + "\xe2\x82\xac" + "the end\n";
  std::string body = ping::finish_body("FINISH job=x status=ok", out);
  EXPECT_LE(body.size(), ping::kBodyMax);
  EXPECT_EQ(body.rfind("FINISH job=x status=ok\n", 0), 0u);
  EXPECT_TRUE(body.ends_with("\xe2\x82\xac" "the end\n"));
  EXPECT_TRUE(is_valid_utf8(body));
  // A cut through a multi-byte character at the front leaves no broken bytes.
  std::string euros;
  for (int i = 0; i < 5000; ++i) euros += "\xe2\x82\xac";
  body = ping::finish_body("F", euros);
  EXPECT_LE(body.size(), ping::kBodyMax);
  EXPECT_TRUE(is_valid_utf8(body));
  EXPECT_EQ(body.find("\xef\xbf\xbd"), std::string::npos);  // nothing replaced
  // Invalid bytes (binary output) are replaced, and the result still fits.
  body = ping::finish_body("F", std::string(ping::kBodyMax * 2, '\xff'));
  EXPECT_LE(body.size(), ping::kBodyMax);
  EXPECT_TRUE(is_valid_utf8(body));
  EXPECT_EQ(ping::finish_body("F", ""), "F");
}

}  // namespace
}  // namespace cronrun
