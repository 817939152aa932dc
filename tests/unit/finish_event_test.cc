// What the supervisor did beyond the job's own exit (orphans killed, output
// dropped) reaches the FINISH line, the --report profile and the record's JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/run_record.h"
#include "runner/log.h"
#include "runner/report.h"

namespace cronrun {
namespace {

RunRecord finished() {
  RunRecord r;
  r.run_id = "0193f1c2-0000-7000-8000-000000000000";
  r.job = "watchdog";
  r.status = RunStatus::ok;
  r.exit_code = 0;
  r.wall_s = 0.2;
  r.usage.orphans_killed = 0;
  return r;
}

TEST(FinishEvent, SaysNothingExtraForACleanRun) {
  std::string line = log::event_text(log::Event::finish, finished());
  EXPECT_EQ(line.find("orphans_killed"), std::string::npos) << line;
  EXPECT_EQ(line.find("dropped"), std::string::npos) << line;
  EXPECT_EQ(line.find("forwarded"), std::string::npos) << line;
}

TEST(FinishEvent, NamesASignalForwardedToTheJobAndItsSender) {
  RunRecord r = finished();
  r.forwarded_signal = ForwardedSignal{15, 812, 0, 1};
  std::string line = log::event_text(log::Event::finish, r);
  EXPECT_NE(line.find(" status=ok exit=0"), std::string::npos) << line;
  EXPECT_NE(line.find(" forwarded_signal=15 signal_sender_pid=812"), std::string::npos) << line;
  std::string report = format_report(r);
  EXPECT_NE(report.find("  signal SIGTERM from pid 812 (uid 0), forwarded to the job\n"), std::string::npos) << report;
}

TEST(FinishEvent, NamesKilledOrphansAndDroppedOutput) {
  RunRecord r = finished();
  r.usage.orphans_killed = 1;
  r.output.dropped_bytes = 4096;
  r.log.dropped_bytes = 10;
  std::string line = log::event_text(log::Event::finish, r);
  EXPECT_NE(line.find(" orphans_killed=1"), std::string::npos) << line;
  EXPECT_NE(line.find(" output_dropped=4096"), std::string::npos) << line;
  EXPECT_NE(line.find(" log_dropped=10"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  std::string report = format_report(r);
  EXPECT_NE(report.find("orphans killed 1"), std::string::npos) << report;
  EXPECT_NE(report.find("output dropped"), std::string::npos) << report;
}

TEST(RunRecordJson, NewFieldsRoundTripAndOldRecordsStillRead) {
  RunRecord r = finished();
  r.usage.orphans_killed = 2;
  r.output.dropped_bytes = 123;
  r.log.dropped_bytes = 7;
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["usage"]["orphans_killed"], 2);
  EXPECT_EQ(j["output"]["dropped_bytes"], 123);
  EXPECT_EQ(j["log"]["dropped_bytes"], 7);
  auto back = run_record_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->usage.orphans_killed, 2u);
  EXPECT_EQ(back->output.dropped_bytes, 123u);
  EXPECT_EQ(back->log.dropped_bytes, 7u);

  // A record written before these fields: null / 0, not an error.
  j["usage"].erase("orphans_killed");
  j.erase("output");
  j["log"].erase("dropped_bytes");
  auto old = run_record_from_json(j);
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_FALSE(old->usage.orphans_killed);
  EXPECT_EQ(old->output.dropped_bytes, 0u);
  EXPECT_EQ(old->log.dropped_bytes, 0u);
}


// Issue 14 #6: --report labels IO counted from rusage.
TEST(FinishEvent, ReportLabelsRusageIo) {
  RunRecord r = finished();
  r.usage.io_read_bytes = 0;
  r.usage.io_write_bytes = 4096;
  r.usage.io_source = "rusage";
  EXPECT_NE(format_report(r).find("(rusage block counts"), std::string::npos) << format_report(r);
  r.usage.io_source = "cgroup";
  EXPECT_EQ(format_report(r).find("rusage block"), std::string::npos) << format_report(r);
}

}  // namespace
}  // namespace cronrun
