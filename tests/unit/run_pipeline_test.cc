// The run pipeline (runner/run.cc) and the supervisor loop on fakes: a fake
// clock, a spawner whose "job" is a script on that clock, a cgroup host with fake
// job cgroups, and a record sink that keeps what it is given. No process is
// started, no cgroup made, no time waited: each test asserts what the run did
// (exit status, record, signals and kills sent, cgroups removed).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/run_record.h"
#include "runner/containment.h"
#include "runner/journal_sink.h"
#include "runner/lock.h"
#include "runner/run.h"
#include "runner/spawner.h"
#include "runner/supervise.h"

namespace cronrun {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FakeClock final : public Clock {
 public:
  SteadyTime steady() const override { return steady_; }
  WallTime wall() const override { return wall_ + (steady_ - SteadyTime{}); }
  void advance(std::chrono::nanoseconds d) { steady_ += d; }
  void set(SteadyTime t) { steady_ = t; }

 private:
  SteadyTime steady_ = SteadyTime{} + seconds(5000);
  WallTime wall_ = WallTime{} + seconds(1790000000);
};

// What the fake job does, on the fake clock (offsets from its spawn).
struct Script {
  std::optional<milliseconds> exits_at;  // exits by itself then, with exit_code
  int exit_code = 0;
  std::optional<milliseconds> term_takes;  // dies of SIGTERM this long after it; nullopt: ignores it
  std::optional<int> exec_errno;           // execve fails with this (the child exits 126/127)
  std::map<milliseconds, int> signals_to_cronrun;  // cronrun receives these (to forward)
  size_t orphans = 0;                      // processes left in the cgroup when the main one exits
  milliseconds startup{20};                // from the runner's start to the exec
};

// The job's processes as the fakes share them.
struct World {
  explicit World(FakeClock& c) : clock(c) {}
  FakeClock& clock;
  Script script;
  SteadyTime spawned_at{};
  bool main_alive = false;
  int status = 0;
  std::optional<SteadyTime> main_exit_at;
  int main_exit_status = 0;
  size_t orphans_alive = 0;
  std::vector<std::string> sent;  // "main SIGTERM", "group SIGTERM", "cgroup SIGTERM", "cgroup kill"

  void schedule_exit(SteadyTime at, int wait_status) {
    if (!main_alive) return;
    if (main_exit_at && *main_exit_at <= at) return;
    main_exit_at = at;
    main_exit_status = wait_status;
  }
  void kill_everything() {
    schedule_exit(clock.steady(), SIGKILL);
    orphans_alive = 0;
  }
};

std::string sig(int s) { return std::string("SIG") + sigabbrev_np(s); }

class FakeJob final : public RunningJob {
 public:
  explicit FakeJob(World& w) : w_(w) {}
  pid_t pid() const override { return 0x7ffffff0; }  // above any pid_max: never a real process

  Result<Wake> wait(std::optional<milliseconds> timeout, int, OutputCapture*, std::span<pollfd>) override {
    Wake wake;
    std::optional<SteadyTime> next;
    if (timeout) next = w_.clock.steady() + *timeout;
    auto earlier = [&](SteadyTime t) { if (!next || t < *next) next = t; };
    if (w_.main_alive && w_.main_exit_at) earlier(*w_.main_exit_at);
    auto sig_it = w_.script.signals_to_cronrun.begin();
    while (sig_it != w_.script.signals_to_cronrun.end() && w_.spawned_at + sig_it->first < w_.clock.steady()) ++sig_it;
    if (sig_it != w_.script.signals_to_cronrun.end()) earlier(w_.spawned_at + sig_it->first);
    if (!next) return fail("fake job: the supervisor would wait forever");
    if (*next > w_.clock.steady()) w_.clock.set(*next);
    if (sig_it != w_.script.signals_to_cronrun.end() && w_.spawned_at + sig_it->first == w_.clock.steady()) {
      wake.signals.push_back(ReceivedSignal{sig_it->second, 4321, 0});
      w_.clock.advance(milliseconds(1));  // each scripted signal arrives once
    }
    if (w_.main_alive && w_.main_exit_at && *w_.main_exit_at <= w_.clock.steady()) {
      w_.main_alive = false;
      w_.status = w_.main_exit_status;
      if (w_.orphans_alive == 0) w_.orphans_alive = w_.script.orphans;
      wake.main_exited = true;
    }
    return wake;
  }
  void reap() override {}
  bool exited() const override { return !w_.main_alive; }
  int wait_status() const override { return w_.status; }
  Result<void> signal_main(int s) override {
    if (!w_.main_alive) return {};
    w_.sent.push_back("main " + sig(s));
    if (s == SIGKILL) w_.schedule_exit(w_.clock.steady(), SIGKILL);
    if (s == SIGTERM && w_.script.term_takes) w_.schedule_exit(w_.clock.steady() + *w_.script.term_takes, SIGTERM);
    return {};
  }
  Result<void> signal_group(int s) override {
    w_.sent.push_back("group " + sig(s));
    return {};
  }
  bool group_alive() const override { return false; }
  std::optional<ChildUsage> usage() const override {
    ChildUsage u;
    u.max_rss_bytes = 4096 * 1024;
    u.cpu_user_s = 0.25;
    u.cpu_system_s = 0.5;
    u.io_read_bytes = 512;
    u.io_write_bytes = 1024;
    return u;
  }

 private:
  World& w_;
};

class FakeSpawner final : public Spawner {
 public:
  explicit FakeSpawner(World& w) : w_(w) {}
  Result<Started> start(SpawnRequest req, Containment& where,
                        const std::function<Result<void>()>& before_spawn) override {
    if (auto ok = before_spawn(); !ok) return std::unexpected(ok.error());
    ++spawned;
    rlimits = where.rlimits();
    env = req.env;
    Started s;
    s.spawned_at = w_.clock.steady();
    w_.spawned_at = s.spawned_at;
    w_.main_alive = true;
    w_.clock.advance(w_.script.startup);
    s.exec_at = w_.clock.steady();
    if (w_.script.exec_errno) {
      s.exec_errno = w_.script.exec_errno;
      int code = *w_.script.exec_errno == ENOENT ? 127 : 126;
      w_.schedule_exit(w_.clock.steady(), code << 8);
    } else if (w_.script.exits_at) {
      w_.schedule_exit(s.spawned_at + *w_.script.exits_at, w_.script.exit_code << 8);
    }
    s.job = std::make_unique<FakeJob>(w_);
    return s;
  }
  int spawned = 0;
  std::vector<std::pair<int, rlim_t>> rlimits;
  std::vector<std::string> env;

 private:
  World& w_;
};

// One job cgroup on a fake host.
struct CgroupState {
  bool created = false;
  bool removed = false;
  bool released = false;
  bool kill_fails = false;
  std::vector<cgroup::LimitNotApplied> missing;
};

class FakeCgroup final : public cgroup::JobCgroup {
 public:
  FakeCgroup(World& w, CgroupState& st) : w_(w), st_(st) {}
  // As the real owner type: an early return removes the cgroup.
  ~FakeCgroup() override {
    if (!st_.released) st_.removed = true;
  }
  cgroup::Layout layout() const override { return cgroup::Layout::v2; }
  const std::string& path() const override { return path_; }
  Result<std::vector<cgroup::LimitNotApplied>> apply_limits(const cgroup::Limits&) override { return st_.missing; }
  int clone_into_fd() const override { return -1; }
  Result<std::vector<JoinFile>> join_files(bool) override { return std::vector<JoinFile>{}; }
  Result<std::vector<pid_t>> pids() const override {
    std::vector<pid_t> out;
    if (st_.removed) return out;
    if (w_.main_alive) out.push_back(0x7ffffff0);
    for (size_t i = 0; i < w_.orphans_alive; ++i) out.push_back(static_cast<pid_t>(0x7ffffff1 + i));
    return out;
  }
  Result<void> signal_all(int s) override {
    w_.sent.push_back("cgroup " + sig(s));
    return {};
  }
  Result<void> kill_all(int) override {
    w_.sent.push_back("cgroup kill");
    if (st_.kill_fails) return fail_sys("write", path_ + "/cgroup.kill", EPERM);
    w_.kill_everything();
    return {};
  }
  int events_fd() const override { return -1; }
  Result<Usage> read_usage() const override {
    Usage u;
    u.memory_peak_bytes = 1 << 20;
    u.cpu_user_s = 1.0;
    u.cpu_system_s = 2.0;
    return u;
  }
  Result<void> release() override {
    st_.released = true;
    return {};
  }
  Result<void> remove() override {
    st_.removed = true;
    return {};
  }

 private:
  World& w_;
  CgroupState& st_;
  std::string path_ = "/cronrun-test/job/run";
};

class FakeCgroups final : public CgroupBackend {
 public:
  FakeCgroups(World& w, CgroupState& st) : w_(w), st_(st) {}
  cgroup::Placement discover(const cgroup::DiscoverOptions&) override {
    cgroup::Placement p;
    p.layout = layout;
    p.parent = "/cronrun-test";
    p.reason = layout == cgroup::Layout::none ? "no delegated cgroup (fake host)" : "fake host";
    return p;
  }
  Result<std::vector<cgroup::LiveRun>> find_live_runs(const cgroup::Placement&, const std::string&) override {
    return live;
  }
  Result<std::unique_ptr<cgroup::JobCgroup>> create(const cgroup::Placement&, const std::string&,
                                                    const std::string&) override {
    if (create_errno) return fail_sys("mkdirat", "/sys/fs/cgroup/cronrun-test/job", create_errno);
    st_.created = true;
    return std::unique_ptr<cgroup::JobCgroup>(std::make_unique<FakeCgroup>(w_, st_));
  }
  std::optional<std::string> unit_of(const cgroup::JobCgroup&) const override { return unit; }
  std::optional<std::string> fallback_cause() const override { return fallback; }
  cgroup::Layout layout = cgroup::Layout::v2;
  int create_errno = 0;
  std::vector<cgroup::LiveRun> live;
  std::optional<std::string> unit;      // a systemd scope the fake placed the run in
  std::optional<std::string> fallback;  // the systemd fallback's cause

 private:
  World& w_;
  CgroupState& st_;
};

class FakeSink final : public RecordSink {
 public:
  Result<void> started(const RunRecord& r) override {
    if (refuse_start) return fail_sys("sqlite3_step", "history.db", EBUSY);
    starts.push_back(r);
    return {};
  }
  Result<void> finished(const RunRecord& r) override {
    finishes.push_back(r);
    return {};
  }
  std::string where() const override { return "fake sink"; }
  bool housekept() const override { return housekeeping; }
  bool refuse_start = false;
  bool housekeeping = false;  // as if finished() folded the journal
  std::vector<RunRecord> starts, finishes;
};

class RunPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronrun-run-pipeline-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spec.name = "job";
    spec.command = {"/usr/bin/job", "--full"};
    spec.lock = false;
    spec.output = OutputMode::passthrough;
    paths.history = "fake";
    paths.drain_file = dir_ + "/drain";
    paths.runtime_dir = dir_ + "/runs";
    paths.euid = 65534;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int run() {
    RunSeams seams{clock, spawner, cgroups, [this](const std::string&, bool) -> Result<std::unique_ptr<RecordSink>> {
                     ++sink_opened;
                     return std::unique_ptr<RecordSink>(std::make_unique<ForwardingSink>(sink));
                   }};
    return run_job(spec, paths, seams);
  }
  const RunRecord& record() const {
    EXPECT_EQ(sink.finishes.size(), 1u);
    return sink.finishes.back();
  }

  // The run owns its sink; the test keeps the records.
  class ForwardingSink final : public RecordSink {
   public:
    explicit ForwardingSink(FakeSink& to) : to_(to) {}
    Result<void> started(const RunRecord& r) override { return to_.started(r); }
    Result<void> finished(const RunRecord& r) override { return to_.finished(r); }
    std::string where() const override { return to_.where(); }
    bool housekept() const override { return to_.housekept(); }

   private:
    FakeSink& to_;
  };

  std::string dir_;
  JobSpec spec;
  RunPaths paths;
  FakeClock clock;
  World world{clock};
  CgroupState cg;
  FakeSpawner spawner{world};
  FakeCgroups cgroups{world, cg};
  FakeSink sink;
  int sink_opened = 0;
};

TEST_F(RunPipeline, AJobThatExitsIsRecordedOkWithItsFiguresAndItsCgroupRemoved) {
  world.script.exits_at = seconds(3);
  EXPECT_EQ(run(), 0);
  ASSERT_EQ(sink.starts.size(), 1u);
  EXPECT_EQ(sink.starts[0].status, RunStatus::running);
  const RunRecord& r = record();
  EXPECT_EQ(r.status, RunStatus::ok);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_DOUBLE_EQ(*r.wall_s, 3.0);
  EXPECT_EQ(r.isolation.cgroup, "v2");
  EXPECT_EQ(r.isolation.path, "/cronrun-test/job/run");
  EXPECT_EQ(r.isolation.accounting, "cgroup");
  EXPECT_EQ(r.usage.cpu_user_s, 1.0) << "the cgroup's figure, not rusage's";
  EXPECT_EQ(r.usage.memory_peak_bytes, 1u << 20);
  EXPECT_EQ(r.usage.max_rss_bytes, 4096u * 1024);
  EXPECT_EQ(r.usage.io_source, "rusage") << "the cgroup measured no IO";
  EXPECT_EQ(r.usage.orphans_killed, 0u);
  EXPECT_TRUE(cg.removed);
  EXPECT_TRUE(world.sent.empty()) << "nothing signalled";
}

TEST_F(RunPipeline, StartDelayIsFromTheRunnersStartToTheExec) {
  world.script.exits_at = seconds(1);
  world.script.startup = milliseconds(250);
  EXPECT_EQ(run(), 0);
  ASSERT_TRUE(record().start_delay_s);
  EXPECT_NEAR(*record().start_delay_s, 0.25, 1e-9);
  EXPECT_EQ(to_json(record())["start_delay_s"], 0.25);
  // Not started: null, never 0.
  RunRecord skipped;
  EXPECT_TRUE(to_json(skipped)["start_delay_s"].is_null());
  auto back = run_record_from_json(to_json(record()));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->start_delay_s, record().start_delay_s);
}

TEST_F(RunPipeline, TimeoutSendsTermThenKillsAfterTheGraceAndExits124) {
  spec.timeout = seconds(5);
  spec.kill_after = seconds(2);
  world.script.term_takes = std::nullopt;  // ignores SIGTERM
  EXPECT_EQ(run(), 124);
  const RunRecord& r = record();
  EXPECT_EQ(r.status, RunStatus::timeout);
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_EQ(r.signal, SIGKILL) << "how the main process actually died";
  EXPECT_DOUBLE_EQ(*r.wall_s, 7.0) << "timeout plus kill-after";
  std::vector<std::string> expected = {"cgroup SIGTERM", "main SIGTERM", "cgroup kill", "main SIGKILL"};
  EXPECT_EQ(world.sent, expected);
  EXPECT_TRUE(cg.removed);
}

TEST_F(RunPipeline, TimeoutOfAJobThatDiesOfTheTermNeedsNoKill) {
  spec.timeout = seconds(5);
  spec.kill_after = seconds(2);
  world.script.term_takes = milliseconds(300);
  EXPECT_EQ(run(), 124);
  EXPECT_EQ(record().status, RunStatus::timeout);
  EXPECT_EQ(record().signal, SIGTERM);
  EXPECT_DOUBLE_EQ(*record().wall_s, 5.3);
  std::vector<std::string> expected = {"cgroup SIGTERM", "main SIGTERM"};
  EXPECT_EQ(world.sent, expected);
}

TEST_F(RunPipeline, OrphansOfATimedOutJobGetTheGraceThenAreKilledAndCounted) {
  spec.timeout = seconds(5);
  spec.kill_after = seconds(2);
  world.script.term_takes = milliseconds(100);
  world.script.orphans = 2;  // ignore SIGTERM and outlive the main process
  EXPECT_EQ(run(), 124);
  const RunRecord& r = record();
  EXPECT_EQ(r.usage.orphans_killed, 2u);
  EXPECT_GE(*r.wall_s, 7.0) << "the leftovers had the whole grace";
  ASSERT_TRUE(r.isolation.note);
  EXPECT_NE(r.isolation.note->find("killed 2 process(es) the job left behind"), std::string::npos) << *r.isolation.note;
  EXPECT_EQ(world.sent.back(), "cgroup kill");
}

TEST_F(RunPipeline, AKillThatFailsIsInTheRecordsNote) {
  spec.timeout = seconds(5);
  spec.kill_after = seconds(2);
  world.script.term_takes = std::nullopt;
  world.script.orphans = 1;
  cg.kill_fails = true;
  EXPECT_EQ(run(), 124);
  const RunRecord& r = record();
  EXPECT_EQ(r.status, RunStatus::timeout);
  ASSERT_TRUE(r.isolation.note);
  EXPECT_NE(r.isolation.note->find("killing cgroup /cronrun-test/job/run: write /cronrun-test/job/run/cgroup.kill: "
                                   "Operation not permitted"),
            std::string::npos)
      << *r.isolation.note;
  EXPECT_NE(r.isolation.note->find("killing what the job left in cgroup /cronrun-test/job/run"), std::string::npos)
      << *r.isolation.note;
}

TEST_F(RunPipeline, SignalsToCronrunAreForwardedToTheJob) {
  world.script.signals_to_cronrun = {{seconds(1), SIGTERM}};
  world.script.term_takes = milliseconds(10);
  EXPECT_EQ(run(), 128 + SIGTERM);
  EXPECT_EQ(record().status, RunStatus::killed);
  // Forwarded to the group and the main process; once the main process is gone,
  // SIGTERM to whatever is left of the job (here nothing), never a kill.
  std::vector<std::string> expected = {"group SIGTERM", "main SIGTERM", "cgroup SIGTERM"};
  EXPECT_EQ(world.sent, expected);
  // The record says that it was asked to stop, and by whom.
  ASSERT_TRUE(record().forwarded_signal);
  EXPECT_EQ(record().forwarded_signal->signal, SIGTERM);
  EXPECT_EQ(record().forwarded_signal->sender_pid, 4321);
  EXPECT_EQ(record().forwarded_signal->sender_uid, 0);
  EXPECT_EQ(record().forwarded_signal->count, 1u);
}

TEST_F(RunPipeline, AJobThatExits0AfterAForwardedSignalIsOkAndSaysItWasAskedToStop) {
  world.script.signals_to_cronrun = {{seconds(1), SIGHUP}, {seconds(2), SIGTERM}};
  world.script.exits_at = seconds(3);  // it handles both (ignores TERM) and ends by itself
  EXPECT_EQ(run(), 0);
  EXPECT_EQ(record().status, RunStatus::ok);
  ASSERT_TRUE(record().forwarded_signal);
  EXPECT_EQ(record().forwarded_signal->signal, SIGTERM);
  EXPECT_EQ(record().forwarded_signal->count, 2u);
  EXPECT_EQ(forwarded_signal_text(*record().forwarded_signal),
            "SIGTERM from pid 4321 (uid 0), forwarded to the job (2 signals forwarded in all)");
}

TEST_F(RunPipeline, WhatAJobStoppedByCronLeftGetsSigtermAndTheGraceBeforeAnyKill) {
  // `sh -c 'dump | gzip'` when cron stops: the shell dies of the forwarded
  // SIGTERM at once; what it left is not killed outright.
  spec.kill_after = seconds(2);
  world.script.signals_to_cronrun = {{seconds(1), SIGTERM}};
  world.script.term_takes = milliseconds(10);
  world.script.orphans = 2;  // they ignore SIGTERM: killed when the grace ends
  EXPECT_EQ(run(), 128 + SIGTERM);
  const RunRecord& r = record();
  EXPECT_EQ(r.status, RunStatus::killed);
  std::vector<std::string> expected = {"group SIGTERM", "main SIGTERM", "cgroup SIGTERM", "cgroup kill"};
  EXPECT_EQ(world.sent, expected);
  EXPECT_GE(*r.wall_s, 3.0) << "the leftovers had the whole grace";
  EXPECT_EQ(r.usage.orphans_killed, 2u);
}

TEST_F(RunPipeline, NoSignalNoForwardedSignal) {
  world.script.exits_at = milliseconds(100);
  EXPECT_EQ(run(), 0);
  EXPECT_FALSE(record().forwarded_signal);
}

TEST_F(RunPipeline, ABusyLockSkipsTheRunWithExit0OrWith75) {
  paths.lock = dir_ + "/job.pid";
  paths.lock_dir = PidFileLock::Dir::must_exist;
  auto held = PidFileLock::acquire(*paths.lock, milliseconds(0), PidFileLock::Dir::must_exist);
  ASSERT_TRUE(held && std::holds_alternative<PidFileLock>(*held));

  EXPECT_EQ(run(), 0);
  EXPECT_EQ(record().status, RunStatus::skipped);
  EXPECT_NE(record().skip_reason->find("held by pid"), std::string::npos) << *record().skip_reason;
  EXPECT_EQ(record().lock.path, paths.lock);

  spec.on_locked = OnLocked::fail;
  sink.finishes.clear();
  EXPECT_EQ(run(), 75);
  EXPECT_EQ(record().status, RunStatus::skipped);

  EXPECT_EQ(spawner.spawned, 0);
  EXPECT_TRUE(sink.starts.empty());
  EXPECT_FALSE(cg.created) << "nothing placed";
}

TEST_F(RunPipeline, ALeftoverRunWhoseRunnerLostTheLockSkipsThisRun) {
  paths.lock = dir_ + "/job.pid";
  paths.lock_dir = PidFileLock::Dir::must_exist;
  cgroups.live = {cgroup::LiveRun{"old-run", "/cronrun-test/job/old-run", 3}};
  EXPECT_EQ(run(), 0);
  EXPECT_EQ(record().status, RunStatus::skipped);
  EXPECT_NE(record().skip_reason->find("run old-run of this job still has 3 process(es)"), std::string::npos);
  EXPECT_NE(record().skip_reason->find("its runner no longer holds the lock"), std::string::npos);
  EXPECT_EQ(spawner.spawned, 0);
  EXPECT_FALSE(cg.created);

  spec.on_locked = OnLocked::fail;
  sink.finishes.clear();
  EXPECT_EQ(run(), 75);
}

TEST_F(RunPipeline, AFailedPlacementDegradesUnderAutoAndSaysWhy) {
  spec.limits.memory_max_bytes = 1ull << 30;
  spec.limits.pids_max = 10;
  cgroups.create_errno = EACCES;
  world.script.exits_at = seconds(1);
  EXPECT_EQ(run(), 0);
  const RunRecord& r = record();
  EXPECT_EQ(r.status, RunStatus::ok);
  EXPECT_EQ(r.isolation.cgroup, "none");
  EXPECT_EQ(r.isolation.accounting, "rusage");
  ASSERT_TRUE(r.isolation.note);
  EXPECT_NE(r.isolation.note->find("creating cgroup for job 'job': mkdirat"), std::string::npos) << *r.isolation.note;
  EXPECT_NE(r.isolation.note->find("running without a cgroup (rusage accounting, process-group kill)"),
            std::string::npos);
  EXPECT_NE(r.isolation.note->find("RLIMIT_DATA=1.00 GiB per process"), std::string::npos) << *r.isolation.note;
  EXPECT_NE(r.isolation.note->find("not enforceable without a cgroup: --pids"), std::string::npos);
  // The rlimit really reaches the child; the figures are rusage's.
  ASSERT_EQ(spawner.rlimits.size(), 1u);
  EXPECT_EQ(spawner.rlimits[0].first, RLIMIT_DATA);
  EXPECT_EQ(spawner.rlimits[0].second, 1ull << 30);
  EXPECT_EQ(r.usage.cpu_user_s, 0.25);
  EXPECT_EQ(r.usage.io_read_bytes, 512u);
}

TEST_F(RunPipeline, NoWritableCgroupDegradesTooAndCgroupOffSaysSo) {
  cgroups.layout = cgroup::Layout::none;
  world.script.exits_at = seconds(1);
  EXPECT_EQ(run(), 0);
  EXPECT_NE(record().isolation.note->find("no writable cgroup: no delegated cgroup (fake host)"), std::string::npos);

  spec.cgroup_mode = CgroupMode::off;
  sink.finishes.clear();
  sink.starts.clear();
  EXPECT_EQ(run(), 0);
  EXPECT_NE(record().isolation.note->find("cgroups disabled by --cgroup off"), std::string::npos);
}

TEST_F(RunPipeline, AFailedPlacementUnderRequiredIs125WithNothingStartedOrRecorded) {
  spec.cgroup_mode = CgroupMode::required;
  cgroups.create_errno = EACCES;
  EXPECT_EQ(run(), 125);
  EXPECT_EQ(spawner.spawned, 0);
  EXPECT_TRUE(sink.starts.empty());
  EXPECT_TRUE(sink.finishes.empty());
}

TEST_F(RunPipeline, ALimitNotAppliedUnderRequiredIs125AndTheCgroupIsRemoved) {
  spec.cgroup_mode = CgroupMode::required;
  spec.limits.io_weight = 100;
  cg.missing = {cgroup::LimitNotApplied{"--io-weight", "no io.weight", "io.weight is missing"}};
  EXPECT_EQ(run(), 125);
  EXPECT_TRUE(cg.created);
  EXPECT_TRUE(cg.removed);
  EXPECT_EQ(spawner.spawned, 0);
  EXPECT_TRUE(sink.finishes.empty());
}

TEST_F(RunPipeline, AnExecFailureIs127ForAMissingCommandAnd126ForOneNotExecutable) {
  world.script.exec_errno = ENOENT;
  EXPECT_EQ(run(), 127);
  EXPECT_EQ(record().status, RunStatus::failed);
  EXPECT_EQ(record().exit_code, 127);
  EXPECT_FALSE(record().start_delay_s) << "the job never started";

  world.main_exit_at.reset();
  world.script.exec_errno = EACCES;
  sink.finishes.clear();
  EXPECT_EQ(run(), 126);
  EXPECT_EQ(record().exit_code, 126);
}

TEST_F(RunPipeline, AStartTheSinkRefusesIs125AndNothingRuns) {
  sink.refuse_start = true;
  EXPECT_EQ(run(), 125);
  EXPECT_EQ(spawner.spawned, 0);
  EXPECT_TRUE(sink.finishes.empty()) << "the store that refused the start is not asked again";
  EXPECT_TRUE(cg.created && cg.removed) << "placed before the start was refused, removed after";
}

TEST_F(RunPipeline, DrainingSkipsWithExit0AndRecordsTheSkip) {
  std::FILE* f = std::fopen(paths.drain_file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  EXPECT_EQ(run(), 0);
  EXPECT_EQ(record().status, RunStatus::skipped);
  EXPECT_NE(record().skip_reason->find("draining"), std::string::npos);
  EXPECT_EQ(spawner.spawned, 0);
}

TEST_F(RunPipeline, TheJobGetsItsRunIdJobAndCountersInItsEnvironment) {
  world.script.exits_at = seconds(1);
  EXPECT_EQ(run(), 0);
  auto has = [&](const std::string& prefix) {
    for (const auto& e : spawner.env)
      if (e.rfind(prefix, 0) == 0) return true;
    return false;
  };
  EXPECT_TRUE(has("CRONRUN_RUN_ID=" + record().run_id));
  EXPECT_TRUE(has("CRONRUN_JOB=job"));
  EXPECT_TRUE(has("CRONRUN_COUNTERS=" + paths.runtime_dir + "/"));
}

// Files of runners killed mid-run (nobody holds them; DB-query counter
// directories too) go with the fold's housekeeping, and only then; a file its
// runner still holds, or one changed within the last minute, stays.
TEST_F(RunPipeline, TheFoldsHousekeepingRemovesFilesOfKilledRunnersOnly) {
  namespace fs = std::filesystem;
  spec.paths.runtime_dir = dir_;
  fs::create_directories(paths.runtime_dir);
  ::chmod(paths.runtime_dir.c_str(), 0700);
  auto make = [](const std::string& path, bool old) {
    std::ofstream(path) << "";
    if (old) fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::minutes(2));
  };
  const std::string dead = paths.runtime_dir + "/dead.counters", live = paths.runtime_dir + "/live.counters",
                    young = paths.runtime_dir + "/young.counters", db_dir = dir_ + "/db-dead-Ab12Cd";
  make(dead, true);
  make(live, true);
  make(young, false);
  fs::create_directory(db_dir);
  make(db_dir + "/counters", true);
  UniqueFd held(::open(live.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::flock(held.get(), LOCK_EX), 0);  // its runner, alive

  world.script.exits_at = seconds(1);
  EXPECT_EQ(run(), 0);
  EXPECT_TRUE(fs::exists(dead)) << "no fold, no sweep";
  EXPECT_TRUE(fs::exists(db_dir));

  sink.housekeeping = true;
  sink.finishes.clear();
  sink.starts.clear();
  EXPECT_EQ(run(), 0);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(db_dir));
  EXPECT_TRUE(fs::exists(live)) << "held by a live runner";
  EXPECT_TRUE(fs::exists(young)) << "its runner may not hold it yet";
  // The run's own counters file went with the run, as always.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(paths.runtime_dir)) left.push_back(e.path().filename());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"live.counters", "young.counters"}));
}

}  // namespace
}  // namespace cronrun

namespace cronrun {
namespace {

// The supervisor's own trimming (SuperviseConfig::settle) is for a job that
// keeps it waiting: done once when the job has run that long, never for a job
// that ends sooner or is already being stopped.
struct SettleCase {
  FakeClock clock;
  World world{clock};
  CgroupState cg;
  int settled = 0;
  std::optional<SteadyTime> settled_at;

  Outcome supervise_for(std::optional<milliseconds> timeout) {
    world.spawned_at = clock.steady();
    world.main_alive = true;
    if (world.script.exits_at) world.schedule_exit(world.spawned_at + *world.script.exits_at, 0);
    FakeJob job(world);
    CgroupContainment where(std::make_unique<FakeCgroup>(world, cg));
    SuperviseConfig cfg;
    cfg.timeout = timeout;
    cfg.kill_after = seconds(1);
    cfg.settle = SuperviseConfig::Settle{milliseconds(250), [this] {
                                           ++settled;
                                           settled_at = clock.steady();
                                         }};
    auto out = supervise(job, where, cfg, clock, world.spawned_at);
    EXPECT_TRUE(out) << (out ? "" : out.error().message());
    cg.released = true;  // nothing to remove: the fake's destructor stays quiet
    return out ? *out : Outcome{};
  }
};

TEST(SuperviseSettle, ALongJobIsSettledForOnceWhenItHasRunThatLong) {
  SettleCase c;
  c.world.script.exits_at = seconds(5);
  SteadyTime spawned = c.clock.steady();
  c.supervise_for(std::nullopt);
  EXPECT_EQ(c.settled, 1);
  ASSERT_TRUE(c.settled_at);
  EXPECT_EQ(*c.settled_at - spawned, milliseconds(250));
}

TEST(SuperviseSettle, AJobThatEndsSoonerIsNeverSettledFor) {
  SettleCase c;
  c.world.script.exits_at = milliseconds(100);
  c.supervise_for(std::nullopt);
  EXPECT_EQ(c.settled, 0);
}

TEST(SuperviseSettle, AJobBeingStoppedIsNotSettledFor) {
  SettleCase c;  // timed out at 100 ms, ignores SIGTERM: killed after the grace
  c.world.script.exits_at = seconds(5);
  auto out = c.supervise_for(milliseconds(100));
  EXPECT_TRUE(out.timed_out);
  EXPECT_EQ(c.settled, 0);
}

TEST(ErrorKind, SyscallErrorsAreSystemAndAKindCanBeGivenWithoutChangingTheMessage) {
  EXPECT_EQ(Error("bad").kind(), ErrorKind::other);
  EXPECT_EQ(Error("--memory: expected a size", ErrorKind::usage).kind(), ErrorKind::usage);
  Error e = Error::sys("openat", "/x", ENOENT).context("opening the history");
  EXPECT_EQ(e.kind(), ErrorKind::system);
  std::string before = e.message();
  Error h = std::move(e).with_kind(ErrorKind::history);
  EXPECT_EQ(h.kind(), ErrorKind::history);
  EXPECT_EQ(h.message(), before);
  EXPECT_EQ(h.err(), ENOENT);
  EXPECT_STREQ(to_string(ErrorKind::history), "history");
}

TEST(JournalSinkOpen, AHistoryThatCannotBeOpenedIsAHistoryFault) {
  auto s = open_journal_sink("/nonexistent-cronrun-dir/history.db", /*default_location=*/false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::history) << s.error().message();
}

// Issue 16 §2: an ordinary user on a systemd host without a user manager gets
// the fallback, and its one warning line names the fix.
TEST_F(RunPipeline, TheSystemdFallbackLineNamesEnableLinger) {
  cgroups.layout = cgroup::Layout::none;
  cgroups.fallback = "no systemd user manager for alice (loginctl enable-linger alice)";
  world.script.exits_at = seconds(1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(run(), 0);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("runs without a cgroup: no systemd user manager for alice (loginctl enable-linger alice)"),
            std::string::npos)
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  const RunRecord& r = record();
  EXPECT_EQ(r.isolation.cgroup, "none");
  ASSERT_TRUE(r.isolation.note);
  EXPECT_NE(r.isolation.note->find("no writable cgroup: no delegated cgroup (fake host)"), std::string::npos)
      << *r.isolation.note;
}

// Issue 16 §2: the scope a run was placed in is in its record (isolation.unit).
TEST_F(RunPipeline, ARunPlacedInAScopeRecordsTheUnit) {
  cgroups.unit = "cronrun-job-0193f1c2-0000-7000-8000-000000000000.scope";
  world.script.exits_at = seconds(1);
  EXPECT_EQ(run(), 0);
  const RunRecord& r = record();
  EXPECT_EQ(r.isolation.unit, cgroups.unit);
  EXPECT_EQ(to_json(r)["isolation"]["unit"], *cgroups.unit);
  cgroups.unit.reset();
  sink.finishes.clear();
  EXPECT_EQ(run(), 0);
  EXPECT_FALSE(record().isolation.unit);
  EXPECT_FALSE(to_json(record())["isolation"].contains("unit"));
}

}  // namespace
}  // namespace cronrun
