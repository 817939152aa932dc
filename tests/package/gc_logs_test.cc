// `cronprof gc` removes the kept logs (--log-dir) of the runs it deletes, and only
// those: a real history with runs of known start times and their log files, the
// real gc subcommand (CLI11 sub-app, as cronprof's main registers it), then the
// files on disk.
#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/history.h"
#include "common/run_record.h"
#include "profiler/command.h"
#include "profiler/gc_logs.h"

using namespace cronrun;
namespace fs = std::filesystem;

namespace {

class GcLogs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cronrun-gc-logs-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "log" / "report");
    ::chmod((dir_ / "log").c_str(), 0755);
    ::chmod((dir_ / "log" / "report").c_str(), 0750);
    history_ = (dir_ / "history.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A finished run of job "report", `days_ago` days old, with its log kept (or,
  // with `log_name`, a record naming some other file).
  std::string add_run(int days_ago, RunStatus status, std::optional<std::string> log_name = std::nullopt) {
    RunRecord r;
    r.run_id = new_run_id();
    r.job = "report";
    r.host = "box1";
    r.user = "root";
    r.command = {"/usr/local/bin/report"};
    r.started_at = format_rfc3339(std::chrono::system_clock::now() - std::chrono::hours(24 * days_ago));
    r.finished_at = r.started_at;
    r.wall_s = 1.0;
    r.status = status;
    r.exit_code = status == RunStatus::ok ? 0 : 1;
    r.runner_pid = ::getpid();
    r.boot_id = current_boot_id();
    fs::path log = dir_ / "log" / "report" / log_name.value_or(r.run_id + ".log");
    r.log.path = log.string();
    std::ofstream(log) << "output of run " << r.run_id << "\n";
    auto store = HistoryStore::open(history_, HistoryStore::Mode::read_write);
    EXPECT_TRUE(store) << store.error().message();
    if (store) {
      EXPECT_TRUE(store->record(r));
    }
    return r.run_id;
  }

  fs::path log_of(const std::string& run_id) const { return dir_ / "log" / "report" / (run_id + ".log"); }

  // `cronprof --history H gc ARGS`; returns its exit code.
  int gc(const std::string& args) {
    CLI::App app{"cronprof"};
    prof::Global g;
    g.history_path = history_;
    prof::Command cmd = prof::add_gc(app, g);
    app.parse("gc " + args);
    return cmd.run();
  }

  fs::path dir_;
  std::string history_;
};

TEST_F(GcLogs, DeletesTheLogsOfTheRunsItDeletesAndKeepsTheOthers) {
  std::string old_ok = add_run(40, RunStatus::ok);
  std::string old_failed = add_run(35, RunStatus::failed);
  std::string recent = add_run(2, RunStatus::ok);

  EXPECT_EQ(gc("--keep 30d --dry-run"), 0);
  EXPECT_TRUE(fs::exists(log_of(old_ok))) << "--dry-run deleted a log";

  EXPECT_EQ(gc("--keep 30d"), 0);
  EXPECT_FALSE(fs::exists(log_of(old_ok))) << "the log of a deleted run is still there";
  EXPECT_FALSE(fs::exists(log_of(old_failed))) << "the log of a deleted run is still there";
  EXPECT_TRUE(fs::exists(log_of(recent))) << "the log of a kept run was deleted";

  auto store = HistoryStore::open(history_, HistoryStore::Mode::read_only);
  ASSERT_TRUE(store);
  auto left = store->runs({});
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().run_id, recent);
}

TEST_F(GcLogs, ALogAlreadyRemovedByLogrotateIsNoError) {
  std::string old_ok = add_run(40, RunStatus::ok);
  fs::remove(log_of(old_ok));
  EXPECT_EQ(gc("--keep 30d"), 0);
}

TEST_F(GcLogs, NeverDeletesAFileThatIsNotTheRunsOwnLog) {
  // A record naming another file (edited or damaged) and a symlink planted in
  // place of a log: the row goes, the other file and the link's target stay,
  // and gc says so in its exit status.
  fs::path precious = dir_ / "precious.txt";
  std::ofstream(precious) << "not a log\n";
  add_run(40, RunStatus::ok, "precious.log");
  std::string linked = add_run(40, RunStatus::ok);
  fs::remove(log_of(linked));
  fs::create_symlink(precious, log_of(linked));

  EXPECT_EQ(gc("--keep 30d"), 1) << "a log left behind is not reported";
  EXPECT_TRUE(fs::exists(dir_ / "log" / "report" / "precious.log"));
  EXPECT_TRUE(fs::exists(precious));
  EXPECT_TRUE(fs::is_symlink(log_of(linked)));
}

}  // namespace
