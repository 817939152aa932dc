// Replays every saved fuzzer input (tests/fixtures/fuzz/<harness>/*) through its
// harness (tests/fuzz/*_fuzz.cc) in the g++ sanitized build: the seeds, and each
// crash a fuzzer found, kept as a regression test. A harness aborts on a crash or
// a broken property, which fails the test of that file.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/etcd_answer.h"
#include "common/pg_history.h"
#include "runner/cli.h"
#include "runner/counters.h"
#include "runner/job_spec.h"
#include "tests/fuzz/fuzz.h"

namespace fs = std::filesystem;

namespace {

struct Harness {
  const char* name;
  int (*fn)(const uint8_t*, size_t);
};

constexpr Harness kHarnesses[] = {
    {"units", cronrun_fuzz_units},           {"job_config", cronrun_fuzz_job_config},
    {"counters", cronrun_fuzz_counters},     {"cgroup_host", cronrun_fuzz_cgroup_host},
    {"cgroup_files", cronrun_fuzz_cgroup_files}, {"crontab", cronrun_fuzz_crontab},
    {"cronrun_call", cronrun_fuzz_cronrun_call}, {"run_record", cronrun_fuzz_run_record},
    {"history_row", cronrun_fuzz_history_row}, {"journal", cronrun_fuzz_journal},
    {"seccomp_profile", cronrun_fuzz_seccomp_profile}, {"etcd_answer", cronrun_fuzz_etcd_answer},
    {"fleet_config", cronrun_fuzz_fleet_config}, {"central_row", cronrun_fuzz_central_row},
};

struct SavedInput {
  const Harness* harness;
  fs::path file;
};

std::vector<SavedInput> saved_inputs() {
  std::vector<SavedInput> out;
  for (const auto& h : kHarnesses) {
    fs::path dir = fs::path(CRONRUN_FIXTURES) / "fuzz" / h.name;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) out.push_back({&h, std::move(f)});
  }
  return out;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void PrintTo(const SavedInput& in, std::ostream* os) {
  *os << "tests/fixtures/fuzz/" << in.harness->name << "/" << in.file.filename().string();
}

class SavedFuzzInput : public ::testing::TestWithParam<SavedInput> {};

TEST_P(SavedFuzzInput, HarnessRunsClean) {
  const SavedInput& in = GetParam();
  std::string data = read_all(in.file);
  EXPECT_EQ(in.harness->fn(reinterpret_cast<const uint8_t*>(data.data()), data.size()), 0);
}

std::string test_name(const ::testing::TestParamInfo<SavedInput>& info) {
  std::string name = std::string(info.param.harness->name) + "_" + info.param.file.filename().string();
  for (auto& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SavedFuzzInput, ::testing::ValuesIn(saved_inputs()), test_name);

TEST(SavedFuzzInputs, EveryHarnessHasSeeds) {
  const auto inputs = saved_inputs();
  for (const auto& h : kHarnesses) {
    bool any = std::any_of(inputs.begin(), inputs.end(),
                           [&](const SavedInput& s) { return s.harness == &h; });
    EXPECT_TRUE(any) << "no saved inputs in tests/fixtures/fuzz/" << h.name;
  }
}

// Issue 14 #14: `{"nice": 1e999}` aborted cronrun (SIGABRT, exit 134): nlohmann
// reports a number it cannot hold as out_of_range, which load_job_config did not
// catch. A config the runner cannot read is a usage error naming the file (exit
// 125), never a crash. (tests/fixtures/fuzz/job_config/crash-nice-1e999.json
// replays the same input through the harness.)
TEST(JobConfigFuzzRegression, NumberOutOfRangeIsAnErrorNamingTheFile) {
  const std::string text = read_all(fs::path(CRONRUN_FIXTURES) / "fuzz/job_config/crash-nice-1e999.json");
  ASSERT_EQ(text, R"({"nice": 1e999})");
  char dir_template[] = "/tmp/cronrun-fuzz-regression.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/nice.json";
  std::ofstream(path) << text;
  cronrun::JobSpec spec;
  cronrun::Result<void> r;
  EXPECT_NO_THROW(r = cronrun::load_job_config(path, spec));
  EXPECT_FALSE(r.has_value());
  if (!r) {
    EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
  }
  EXPECT_FALSE(spec.nice.has_value());
  fs::remove_all(dir_template);
}

// fuzz_counters: two finite values of one name whose sum is beyond a double's
// range summed to inf, which the run record's JSON writes as null: the job's
// counter was silently lost. The line that would overflow is an invalid line.
TEST(CountersFuzzRegression, SumBeyondDoubleRangeIsAnInvalidLine) {
  const std::string text = read_all(fs::path(CRONRUN_FIXTURES) / "fuzz/counters/crash-sum-overflows-double");
  ASSERT_EQ(text, "a 1e308\na 1e308\n");
  cronrun::ParsedCounters parsed = cronrun::parse_counters(text);
  ASSERT_EQ(parsed.values.count("a"), 1u);
  EXPECT_EQ(parsed.values.at("a"), 1e308);
  EXPECT_EQ(parsed.invalid_lines, 1u);
}

// fuzz_etcd_answer: an error answer whose "code", "http_code" or "message" is not
// of the type the gateway uses made nlohmann's value() throw out of the client's
// post() (outside the try of call()): an uncaught exception ended the runner or
// the keepalive process on whatever answered on an endpoint's address. Fields of
// the wrong type are left at their defaults; the message is kept to one line.
TEST(EtcdAnswerFuzzRegression, ErrorFieldsOfAnotherTypeAreNoException) {
  namespace answer = cronrun::etcd::answer;
  using Kind = answer::Verdict::Kind;
  auto classify = [](long status, const char* body) {
    return answer::classify(status, nlohmann::json::parse(body, nullptr, false));
  };
  answer::Verdict v;
  EXPECT_NO_THROW(v = classify(404, R"({"code": "5", "message": 7})"));
  EXPECT_EQ(v.kind, Kind::rejected);
  EXPECT_EQ(v.why, "no message (HTTP 404, code 0)");
  EXPECT_NO_THROW(v = classify(400, R"({"code": 1e300, "error": {"x": 1}})"));
  EXPECT_EQ(v.kind, Kind::rejected);
  EXPECT_NO_THROW(v = classify(200, R"({"error": {"grpc_code": "14", "http_code": "503", "message": ["x"]}})"));
  EXPECT_EQ(v.kind, Kind::next_endpoint);  // http_code unreadable: the 500 assumed for a stream's error
  EXPECT_EQ(v.why, "no message (HTTP 500, code 0)");
  // A gateway error as etcd writes it still reads the same.
  v = classify(404, R"({"error": "etcdserver: requested lease not found", "message": "etcdserver: requested lease not found", "code": 5})");
  EXPECT_EQ(v.kind, Kind::rejected);
  EXPECT_EQ(v.why, "etcdserver: requested lease not found (HTTP 404, code 5)");
  v = classify(200, R"({"error": {"grpc_code": 14, "http_code": 503, "message": "etcdserver: no leader"}})");
  EXPECT_EQ(v.kind, Kind::next_endpoint);
  // What the server says goes into one line of stderr and the run record.
  v = classify(403, "{\"message\": \"no\\nFAKE LOG LINE\\u0007\"}");
  EXPECT_EQ(v.kind, Kind::rejected);
  EXPECT_EQ(v.why.find_first_of("\n\a"), std::string::npos) << v.why;
}

// fuzz_central_row (tests/fixtures/fuzz/central_row/crash-started-at-not-rfc3339):
// a central history row whose record has a started_at that is not RFC 3339 was
// read as a run, which the private SQLite copy then refused, and
// `cronprof --history postgresql://...` failed as a whole for every user because
// of one host's row. Such a row is unreadable (skipped and counted, as a damaged
// local row is); a good row still reads.
TEST(CentralRowFuzzRegression, ARecordNoHistoryCanHoldIsAnUnreadableRow) {
  const std::string text = read_all(fs::path(CRONRUN_FIXTURES) / "fuzz/central_row/crash-started-at-not-rfc3339");
  size_t a = text.find('\n'), b = text.find('\n', a + 1);
  ASSERT_NE(b, std::string::npos);
  auto r = cronrun::pg::run_from_row(text.substr(0, a), text.substr(a + 1, b - a - 1), text.substr(b + 1));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("started_at"), std::string::npos) << r.error().message();
  auto no_job = cronrun::pg::run_from_row(
      "box1", "ok", R"({"schema":"cronrun.run/1","run_id":"x","job":"","started_at":"2026-12-06T16:11:00.000Z"})");
  EXPECT_FALSE(no_job.has_value());

  const std::string good = read_all(fs::path(CRONRUN_FIXTURES) / "fuzz/central_row/seed-finish");
  a = good.find('\n'), b = good.find('\n', a + 1);
  auto ok = cronrun::pg::run_from_row(good.substr(0, a), good.substr(a + 1, b - a - 1), good.substr(b + 1));
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->host, "box1.example.com");
}

// fuzz_etcd_answer (tests/fixtures/fuzz/etcd_answer/crash-grant-error-newline): a
// lease grant answered 200 with an "error" string made the error of the call, as
// it was: one error on two lines of stderr.
TEST(EtcdAnswerFuzzRegression, GrantErrorIsOneLine) {
  auto r = cronrun::etcd::answer::lease_grant(nlohmann::json::parse(R"({"error": "no\nFAKE LOG LINE"})"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "no?FAKE LOG LINE");
}

}  // namespace
