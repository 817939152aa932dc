// START/FINISH for machines (issue 16 §3): the journal's fields and priorities
// (DESIGN §9) and the syslog fallback's key=value text.
#include <gtest/gtest.h>
#include <syslog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/run_record.h"
#include "runner/log.h"

namespace cronrun::log {
namespace {

RunRecord failed_run() {
  RunRecord r;
  r.run_id = "0193f1c2-0000-7000-8000-000000000000";
  r.job = "nightly-report";
  r.user = "report";
  r.command = {"/bin/sh", "-c", "echo \"hi\"; exit 3"};
  r.status = RunStatus::failed;
  r.exit_code = 3;
  r.wall_s = 1.25;
  r.usage.memory_peak_bytes = 10485760;
  r.usage.cpu_user_s = 0.5;
  r.usage.cpu_system_s = 0.25;
  r.isolation.cgroup = "v2";
  r.isolation.path = "/cronrun.slice/cronrun-nightly-report-0193f1c2-0000-7000-8000-000000000000.scope/job";
  r.isolation.unit = "cronrun-nightly-report-0193f1c2-0000-7000-8000-000000000000.scope";
  r.runner_pid = 77;
  return r;
}

bool has(const std::vector<std::string>& fields, const std::string& f) {
  return std::find(fields.begin(), fields.end(), f) != fields.end();
}

std::string field(const std::vector<std::string>& fields, const std::string& name) {
  for (const auto& f : fields)
    if (f.starts_with(name + "=")) return f.substr(name.size() + 1);
  return "<absent>";
}

TEST(LogEvent, PriorityByOutcome) {
  RunRecord r = failed_run();
  EXPECT_EQ(event_priority(Event::start, r), LOG_INFO);
  for (RunStatus s : {RunStatus::ok, RunStatus::skipped}) {
    r.status = s;
    EXPECT_EQ(event_priority(Event::finish, r), LOG_INFO) << to_string(s);
  }
  for (RunStatus s : {RunStatus::failed, RunStatus::timeout, RunStatus::oom, RunStatus::killed, RunStatus::lost}) {
    r.status = s;
    EXPECT_EQ(event_priority(Event::finish, r), LOG_WARNING) << to_string(s);
  }
  r.status = RunStatus::error;
  EXPECT_EQ(event_priority(Event::finish, r), LOG_ERR);
}

TEST(LogEvent, FinishCarriesTheDesignFields) {
  auto f = event_fields(Event::finish, failed_run());
  EXPECT_TRUE(has(f, "SYSLOG_IDENTIFIER=cronrun"));
  EXPECT_TRUE(has(f, "PRIORITY=4"));
  EXPECT_TRUE(has(f, "CRONRUN_JOB=nightly-report"));
  EXPECT_TRUE(has(f, "CRONRUN_RUN_ID=0193f1c2-0000-7000-8000-000000000000"));
  EXPECT_TRUE(has(f, "CRONRUN_STATUS=failed"));
  EXPECT_TRUE(has(f, "CRONRUN_EXIT=3"));
  EXPECT_TRUE(has(f, "CRONRUN_WALL_S=1.250"));
  EXPECT_TRUE(has(f, "CRONRUN_MEMORY_PEAK_BYTES=10485760"));
  EXPECT_TRUE(has(f, "CRONRUN_UNIT=cronrun-nightly-report-0193f1c2-0000-7000-8000-000000000000.scope"));
  EXPECT_TRUE(has(f, "CRONRUN_EVENT=finish"));
  EXPECT_EQ(field(f, "MESSAGE_ID").size(), 32u);
  EXPECT_TRUE(field(f, "MESSAGE").starts_with("FINISH job=nightly-report")) << field(f, "MESSAGE");
  // One MESSAGE_ID per event kind, fixed: journalctl MESSAGE_ID=... finds every FINISH.
  auto s = event_fields(Event::start, failed_run());
  EXPECT_NE(field(s, "MESSAGE_ID"), field(f, "MESSAGE_ID"));
  EXPECT_EQ(field(event_fields(Event::finish, RunRecord{}), "MESSAGE_ID"), field(f, "MESSAGE_ID"));
  EXPECT_TRUE(has(s, "PRIORITY=6"));
  EXPECT_TRUE(has(s, "CRONRUN_EVENT=start"));
}

TEST(LogEvent, AFigureTheRecordLacksIsNotAField) {
  RunRecord r = failed_run();
  r.usage.memory_peak_bytes.reset();
  r.exit_code.reset();
  r.signal = 9;
  auto f = event_fields(Event::finish, r);
  EXPECT_EQ(field(f, "CRONRUN_MEMORY_PEAK_BYTES"), "<absent>");
  EXPECT_EQ(field(f, "CRONRUN_EXIT"), "<absent>");
  EXPECT_EQ(field(f, "CRONRUN_SIGNAL"), "9");
  std::string text = event_text(Event::finish, r);
  EXPECT_EQ(text.find("peak_bytes="), std::string::npos) << text;
  EXPECT_NE(text.find(" signal=9"), std::string::npos) << text;
}

TEST(LogEvent, SyslogTextIsKeyValueWithTheCommandQuoted) {
  std::string text = event_text(Event::finish, failed_run());
  EXPECT_EQ(text,
            "FINISH job=nightly-report run_id=0193f1c2-0000-7000-8000-000000000000 status=failed exit=3 wall_s=1.250 "
            "peak_bytes=10485760 cpu_s=0.750 command=\"/bin/sh -c 'echo \\\"hi\\\"; exit 3'\"");
  std::string start = event_text(Event::start, failed_run());
  EXPECT_TRUE(start.starts_with("START job=nightly-report run_id=0193f1c2-0000-7000-8000-000000000000 pid=77 "
                                "cgroup=/cronrun.slice/"))
      << start;
  EXPECT_NE(start.find(" unit=cronrun-nightly-report-"), std::string::npos) << start;
}

TEST(LogEvent, ValuesAreQuotedAndEscapedOnlyWhenNeeded) {
  EXPECT_EQ(kv_value("plain-word_1.2"), "plain-word_1.2");
  EXPECT_EQ(kv_value(""), "\"\"");
  EXPECT_EQ(kv_value("two words"), "\"two words\"");
  EXPECT_EQ(kv_value("a=b"), "\"a=b\"");
  EXPECT_EQ(kv_value("say \"x\" \\ y"), "\"say \\\"x\\\" \\\\ y\"");
  EXPECT_EQ(kv_value("line1\nline2\t\x01"), "\"line1\\nline2\\t\\x01\"");
  // A skip reason with spaces stays one value.
  RunRecord r = failed_run();
  r.status = RunStatus::skipped;
  r.skip_reason = "lock /run/cronrun/locks/x.pid held by pid 9";
  EXPECT_NE(event_text(Event::finish, r).find(" reason=\"lock /run/cronrun/locks/x.pid held by pid 9\""),
            std::string::npos);
}

TEST(LogEvent, CommandLineQuotesWhatAShellWouldSplit) {
  EXPECT_EQ(command_line({"/usr/bin/report", "--full", "a=b"}), "/usr/bin/report --full a=b");
  EXPECT_EQ(command_line({"echo", "it's", "", "$HOME"}), "echo 'it'\\''s' '' '$HOME'");
}


// Fleet mode: which host ran which tick under which fence, and whom a skip lost to.
TEST(LogEvent, FleetRunsNameHostTickAndFence) {
  RunRecord r = failed_run();
  r.fleet = FleetRecord{};
  r.fleet->group = "scripts";
  r.fleet->host = "box1";
  r.fleet->tick = "2026-12-06T12:00:00Z";
  r.fleet->fence = 4711;
  std::string start = event_text(Event::start, r);
  EXPECT_NE(start.find(" host=box1 tick=2026-12-06T12:00:00Z fence=4711"), std::string::npos) << start;
  std::string finish = event_text(Event::finish, r);
  EXPECT_NE(finish.find(" host=box1 tick=2026-12-06T12:00:00Z fence=4711"), std::string::npos) << finish;
  auto f = event_fields(Event::finish, r);
  EXPECT_TRUE(has(f, "CRONRUN_FLEET_HOST=box1"));
  EXPECT_TRUE(has(f, "CRONRUN_TICK=2026-12-06T12:00:00Z"));
  EXPECT_TRUE(has(f, "CRONRUN_FENCE=4711"));
  EXPECT_TRUE(has(f, "CRONRUN_GROUP=scripts"));
  EXPECT_TRUE(has(event_fields(Event::start, r), "CRONRUN_FENCE=4711"));
}

TEST(LogEvent, AFleetSkipNamesTheHolderAndItsRevision) {
  RunRecord r = failed_run();
  r.status = RunStatus::skipped;
  r.exit_code = 0;
  r.skip_reason = "fleet lock of nightly-report held by host box2 (revision 41)";
  r.fleet = FleetRecord{};
  r.fleet->host = "box1";
  r.fleet->tick = "2026-12-06T12:00:00Z";
  r.fleet->holder = FleetHolder{"box2", 41};
  r.fleet->note = "n";
  std::string text = event_text(Event::finish, r);
  EXPECT_NE(text.find(" holder=box2 holder_revision=41 reason="), std::string::npos) << text;
  EXPECT_EQ(text.find("fence="), std::string::npos) << "no fence without a claim";
  auto f = event_fields(Event::finish, r);
  EXPECT_TRUE(has(f, "CRONRUN_HOLDER=box2"));
  EXPECT_TRUE(has(f, "CRONRUN_HOLDER_REVISION=41"));
  EXPECT_TRUE(has(f, "CRONRUN_FLEET_NOTE=n"));
}

TEST(LogEvent, OutsideFleetModeNoFleetField) {
  RunRecord r = failed_run();
  EXPECT_EQ(event_text(Event::finish, r).find("tick="), std::string::npos);
  for (const auto& f : event_fields(Event::finish, r)) EXPECT_EQ(f.find("CRONRUN_TICK"), std::string::npos);
}

}  // namespace
}  // namespace cronrun::log
