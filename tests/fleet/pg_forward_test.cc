// The fleet forwarder (runner/forward.h) against the fixture's PostgreSQL and
// etcd: every fleet record of a host's journal reaches the central history once
// (local runs stay local), a replay from a lost cursor changes nothing, a
// poisoned record is set aside without holding up the others, PostgreSQL stopped
// `-m immediate` twice while three hosts forward 3 x 1000 runs loses and
// duplicates nothing and drains every journal, a running row whose etcd lock is
// gone or carries another revision is turned lost (and completed by its late
// finish), one forwarder per journal, and the detached forwarder keeps none of
// the runner's files.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/etcd.h"
#include "common/history.h"
#include "common/journal.h"
#include "common/pg_history.h"
#include "common/run_record.h"
#include "runner/forward.h"

using namespace cronrun;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::vector<std::string> etcd_endpoints() {
  std::vector<std::string> out;
  std::stringstream ss(env("CRONRUN_FLEET_ETCD"));
  for (std::string e; std::getline(ss, e, ',');)
    if (!e.empty()) out.push_back(e);
  return out;
}

bool cluster(const std::string& cmd) {
  return std::system((env("CRONRUN_FLEET_CLUSTER") + " " + cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// One simulated host: a history and its journal in a directory of its own.
class Host {
 public:
  Host(const std::filesystem::path& dir, std::string name) : name_(std::move(name)), dir_(dir / name_) {
    std::filesystem::create_directories(dir_);
    HistoryOpenOptions o;
    o.journal = HistoryOpenOptions::Journal::ignore;
    auto s = HistoryStore::open(history(), HistoryStore::Mode::read_write, nullptr, o);
    EXPECT_TRUE(s) << (s ? "" : s.error().message());
    UniqueFd d(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto w = journal::Writer::open(std::move(d), history(), 0644);
    EXPECT_TRUE(w) << (w ? "" : w.error().message());
    writer_.emplace(std::move(*w));
  }
  std::string history() const { return (dir_ / "history.db").string(); }
  const std::string& name() const { return name_; }

  void append(journal::RecordType type, const json& j) {
    auto r = run_record_from_json(j);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(writer_->append(type, *r));
  }

  forward::Options options() const {
    forward::Options o;
    o.history_path = history();
    o.pg_uri = env("CRONRUN_FLEET_PG");
    o.host = name_;
    return o;
  }

  // The forwarder's cursor and the journal's size: drained when they meet.
  std::pair<uint64_t, uint64_t> cursor_and_size() const {
    sqlite3* db = nullptr;
    sqlite3_open_v2(history().c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT \"offset\" FROM journal_cursors WHERE consumer = 'fleet'", -1, &st, nullptr);
    uint64_t off = sqlite3_step(st) == SQLITE_ROW ? static_cast<uint64_t>(sqlite3_column_int64(st, 0)) : 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct stat s {};
    ::stat(journal::journal_path(history()).c_str(), &s);
    return {off, static_cast<uint64_t>(s.st_size)};
  }

  void forget_cursor() const {
    sqlite3* db = nullptr;
    sqlite3_open_v2(history().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    ASSERT_EQ(sqlite3_exec(db, "DELETE FROM journal_cursors WHERE consumer = 'fleet'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

 private:
  std::string name_;
  std::filesystem::path dir_;
  std::optional<journal::Writer> writer_;
};

class PgForward : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(env("CRONRUN_FLEET_PG").empty()) << "CRONRUN_FLEET_PG is not set: run under the fleet fixture";
    char tmpl[] = "/tmp/cronrun-pgfwd-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    job_ = std::string("fwd-") + info->name() + "-" + std::to_string(getpid());
    prefix_ = "/t/" + job_;
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    if (etcd_) {
      EXPECT_TRUE(etcd_->delete_range(prefix_, etcd::prefix_end(prefix_))) << "cleaning " << prefix_;
    }
  }

  // A record of job_ (or `job`) claimed with `fence` for tick number `tick`.
  json record(const std::string& run_id, const std::string& status, int64_t tick, std::optional<int64_t> fence,
              const std::string& host, const std::string& job = "") {
    json r = to_json(RunRecord{});
    r["run_id"] = run_id;
    r["job"] = job.empty() ? job_ : job;
    r["host"] = host;
    r["command"] = {"/bin/true"};
    r["started_at"] = format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000 + tick)));
    r["status"] = status;
    if (status != "running") {
      r["finished_at"] = r["started_at"];
      r["wall_s"] = 0.005;
      r["exit_code"] = 0;
    }
    r["fleet"] = {{"group", "g"}, {"host", host}, {"lease_ttl_s", 15}, {"holder", nullptr}, {"note", nullptr}};
    r["fleet"]["tick"] =
        format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000 + tick)));
    r["fleet"]["fence"] = fence ? json(*fence) : json(nullptr);
    return r;
  }

  pg::PgHistory db() {
    auto h = pg::PgHistory::open(env("CRONRUN_FLEET_PG"));
    EXPECT_TRUE(h) << (h ? "" : h.error().message());
    // A test run first on a fresh cluster reads before any forwarder made the schema.
    auto m = h->migrate();
    EXPECT_TRUE(m) << (m ? "" : m.error().message());
    return std::move(*h);
  }
  std::map<std::string, RunStatus> rows(const std::string& job = "") {
    std::map<std::string, RunStatus> out;
    pg::RunFilter f;
    f.job = job.empty() ? job_ : job;
    auto h = db();
    auto r = h.each_run(f, [&](const RunRecord& rec) {
      EXPECT_FALSE(out.contains(rec.run_id));
      out[rec.run_id] = rec.status;
    });
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return out;
  }
  size_t my_dead_letters() {
    auto h = db();
    auto all = h.dead_letters();
    EXPECT_TRUE(all);
    size_t n = 0;
    if (all)
      for (const auto& d : *all) n += d.payload.find(job_) != std::string::npos;
    return n;
  }

  std::filesystem::path dir_;
  std::string job_, prefix_;
  std::optional<etcd::Client> etcd_;
};

TEST_F(PgForward, EveryFleetRecordArrivesOnceAndLocalRunsStayLocal) {
  Host h(dir_, "box1");
  for (int i = 0; i < 20; ++i) {
    std::string id = fmt::format("{}-{}", job_, i);
    h.append(journal::RecordType::start, record(id, "running", i, 100 + i, "box1"));
    h.append(journal::RecordType::finish, record(id, "ok", i, 100 + i, "box1"));
  }
  for (int i = 0; i < 5; ++i) {
    json local = record(fmt::format("{}-local-{}", job_, i), "ok", 100 + i, std::nullopt, "box1");
    local.erase("fleet");
    h.append(journal::RecordType::finish, local);
  }
  auto rep = forward::forward(h.options());
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->read, 45u);
  EXPECT_EQ(rep->sent, 40u);
  EXPECT_EQ(rep->stored, 40u);
  auto r = rows();
  EXPECT_EQ(r.size(), 20u);
  for (const auto& [id, st] : r) EXPECT_EQ(st, RunStatus::ok) << id;
  auto [cursor, size] = h.cursor_and_size();
  EXPECT_EQ(cursor, size);

  // Nothing new: nothing sent.
  rep = forward::forward(h.options());
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->read, 0u);

  // A forwarder killed after PostgreSQL committed and before its cursor moved:
  // the next one sends it all again, and nothing changes.
  h.forget_cursor();
  rep = forward::forward(h.options());
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->sent, 40u);
  EXPECT_EQ(rep->unchanged, 40u);
  EXPECT_EQ(rep->stored, 0u);
  EXPECT_EQ(rows().size(), 20u);
  EXPECT_EQ(my_dead_letters(), 0u);
  auto hosts = db().hosts_last_seen();
  ASSERT_TRUE(hosts);
  bool seen = false;
  for (const auto& hs : *hosts) seen |= hs.host == "box1";
  EXPECT_TRUE(seen);
}

TEST_F(PgForward, APoisonedRecordIsSetAsideAndTheOthersAreStored) {
  Host h(dir_, "box1");
  h.append(journal::RecordType::finish, record(job_ + "-1", "ok", 1, 11, "box1"));
  json poison = record(job_ + "-2", "ok", 2, 12, "box1");
  poison["command"] = {std::string("nul\0here", 8)};  // \u0000: PostgreSQL's jsonb refuses it
  h.append(journal::RecordType::finish, poison);
  h.append(journal::RecordType::finish, record(job_ + "-3", "ok", 3, 13, "box1"));
  auto rep = forward::forward(h.options());
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->stored, 2u);
  EXPECT_EQ(rep->dead, 1u);
  ASSERT_FALSE(rep->notes.empty());
  EXPECT_NE(rep->notes.front().find(job_ + "-2"), std::string::npos) << rep->notes.front();
  auto r = rows();
  EXPECT_EQ(r.size(), 2u);
  EXPECT_TRUE(r.contains(job_ + "-1") && r.contains(job_ + "-3"));
  EXPECT_EQ(my_dead_letters(), 1u);
  auto [cursor, size] = h.cursor_and_size();
  EXPECT_EQ(cursor, size) << "the poisoned record must not block the journal";
}

TEST_F(PgForward, OneForwarderPerJournal) {
  Host h(dir_, "box1");
  h.append(journal::RecordType::finish, record(job_ + "-1", "ok", 1, 11, "box1"));
  std::string lock = journal::journal_path(h.history()) + ".forward-lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto rep = forward::forward(h.options());
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->busy);
  EXPECT_TRUE(rows().empty());
  ::close(fd);
  rep = forward::forward(h.options());
  ASSERT_TRUE(rep);
  EXPECT_FALSE(rep->busy);
  EXPECT_EQ(rows().size(), 1u);
}

TEST_F(PgForward, RunningRowsWhoseLockIsGoneAreTurnedLostAndALateFinishCompletesThem) {
  auto c = etcd::Client::open(etcd::Options{.endpoints = etcd_endpoints()});
  ASSERT_TRUE(c) << c.error().message();
  etcd_.emplace(std::move(*c));
  const std::string held = job_ + "-held", moved = job_ + "-moved", gone = job_ + "-gone";
  auto put = etcd_->put(prefix_ + "/locks/" + held, "{}");
  ASSERT_TRUE(put) << put.error().error.message();
  auto range = etcd_->range(prefix_ + "/locks/" + held);
  ASSERT_TRUE(range);
  const int64_t held_rev = range->kvs.at(0).create_revision;
  ASSERT_TRUE(etcd_->put(prefix_ + "/locks/" + moved, "{}"));
  range = etcd_->range(prefix_ + "/locks/" + moved);
  ASSERT_TRUE(range);
  const int64_t moved_rev = range->kvs.at(0).create_revision;

  Host h(dir_, "box1");
  h.append(journal::RecordType::start, record(held + "-r", "running", 1, held_rev, "box1", held));
  h.append(journal::RecordType::start, record(moved + "-r", "running", 1, moved_rev - 1, "box1", moved));
  h.append(journal::RecordType::start, record(gone + "-r", "running", 1, 3, "box1", gone));
  forward::Options o = h.options();
  o.etcd_endpoints = etcd_endpoints();
  o.prefix = prefix_;
  o.lease_ttl = 0s;  // every row is old enough
  auto rep = forward::forward(o);
  ASSERT_TRUE(rep) << rep.error().message();
  // At least these two: with a TTL of 0 the pass also turns lost the running rows
  // other fleet tests running at the same time leave in the shared database.
  EXPECT_GE(rep->marked_lost, 2u);
  for (const auto& n : rep->notes) ADD_FAILURE() << n;
  EXPECT_EQ(rows(held).at(held + "-r"), RunStatus::running);
  EXPECT_EQ(rows(moved).at(moved + "-r"), RunStatus::lost);
  EXPECT_EQ(rows(gone).at(gone + "-r"), RunStatus::lost);

  // Rows younger than the TTL are left alone whatever etcd says.
  h.append(journal::RecordType::start, record(gone + "-r2", "running", 2, 4, "box1", gone));
  o.lease_ttl = 3600s;
  rep = forward::forward(o);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->marked_lost, 0u);
  EXPECT_EQ(rows(gone).at(gone + "-r2"), RunStatus::running);

  h.append(journal::RecordType::finish, record(gone + "-r", "ok", 1, 3, "box1", gone));
  rep = forward::forward(o);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rows(gone).at(gone + "-r"), RunStatus::ok);
}

TEST_F(PgForward, EtcdAwaySkipsLostMarkingButNotForwarding) {
  Host h(dir_, "box1");
  h.append(journal::RecordType::start, record(job_ + "-r", "running", 1, 9, "box1"));
  forward::Options o = h.options();
  o.lease_ttl = 0s;
  o.lock_revision = [](const std::string&) -> Result<std::optional<int64_t>> { return fail("etcd unavailable: test"); };
  auto rep = forward::forward(o);
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->stored, 1u);
  EXPECT_EQ(rep->marked_lost, 0u);
  ASSERT_EQ(rep->notes.size(), 1u);
  EXPECT_NE(rep->notes[0].find("lost marking skipped: etcd unavailable"), std::string::npos) << rep->notes[0];
  EXPECT_EQ(rows().at(job_ + "-r"), RunStatus::running);
}

TEST_F(PgForward, TheDetachedForwarderKeepsNoneOfTheRunnersFiles) {
  Host h(dir_, "box1");
  h.append(journal::RecordType::finish, record(job_ + "-1", "ok", 1, 11, "box1"));
  // Stands for the job's lock: held by "the runner" when it starts the forwarder.
  std::string job_lock = (dir_ / "job.lock").string();
  int lock_fd = ::open(job_lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(lock_fd, 0);
  ASSERT_EQ(::flock(lock_fd, LOCK_EX), 0);
  // The forwarder waits for this lock: it stays alive for the test to look at.
  std::string fwd_lock = journal::journal_path(h.history()) + ".forward-lock";
  int fwd_fd = ::open(fwd_lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fwd_fd, 0);
  ASSERT_EQ(::flock(fwd_fd, LOCK_EX), 0);

  forward::Options o = h.options();
  o.wait_for_lock = true;
  auto pid = forward::spawn_forwarder(o);
  ASSERT_TRUE(pid) << pid.error().message();
  ASSERT_GT(*pid, 0);
  std::string proc = "/proc/" + std::to_string(*pid);
  std::this_thread::sleep_for(200ms);  // let it reach its flock
  // Double fork: the session of the intermediate process (setsid), not ours, and
  // not a session leader (it can never get a controlling terminal).
  EXPECT_NE(::getsid(*pid), ::getsid(0));
  EXPECT_NE(::getsid(*pid), *pid);
  std::ifstream comm(proc + "/comm");
  std::string name;
  std::getline(comm, name);
  EXPECT_EQ(name, "cronrun-forward");
  for (const auto& e : std::filesystem::directory_iterator(proc + "/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec).string();
    EXPECT_NE(target, job_lock) << "the detached forwarder holds the job's lock file";
  }
  // The job's lock is free for the next run while the forwarder lives.
  int other = ::open(job_lock.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(other, 0);
  ::close(lock_fd);
  EXPECT_EQ(::flock(other, LOCK_EX | LOCK_NB), 0);
  ::close(other);

  ::close(fwd_fd);  // now it forwards and exits
  for (int i = 0; i < 200 && rows().empty(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rows().size(), 1u);
}

// Runs `cmd`, returns its exit status and what it printed (stdout + stderr).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST_F(PgForward, CronrunFlushForwardsOnAFleetHostAndSaysWhenTheDatabaseIsAway) {
  Host h(dir_, "box1");
  h.append(journal::RecordType::finish, record(job_ + "-1", "ok", 1, 11, "box1"));
  auto write_config = [&](const std::string& uri) {
    std::ofstream f(dir_ / "fleet.json");
    json eps = etcd_endpoints();
    f << json{{"etcd", eps}, {"prefix", prefix_}, {"history", uri}, {"host", "box1"}}.dump();
    f.close();
    // A URI with a password is refused in a file others can read.
    std::filesystem::permissions(dir_ / "fleet.json",
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  };
  const std::string cmd = env("CRONRUN_BIN") + " --flush --history " + h.history() + " --fleet-config " +
                          (dir_ / "fleet.json").string();
  // The database away: exit 125, one line naming it, the record still waiting.
  write_config("postgresql://cronrun:secret@127.0.0.1:1/cronrun?connect_timeout=2");
  auto [rc, out] = run(cmd);
  EXPECT_EQ(rc, 125) << out;
  EXPECT_NE(out.find("cronrun: --flush: "), std::string::npos) << out;
  EXPECT_NE(out.find("postgresql://cronrun:***@127.0.0.1:1/cronrun"), std::string::npos) << out;
  EXPECT_EQ(out.find("secret"), std::string::npos) << out;
  EXPECT_TRUE(rows().empty());

  write_config(env("CRONRUN_FLEET_PG"));
  std::tie(rc, out) = run(cmd);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("forwarded 1 fleet record(s)"), std::string::npos) << out;
  EXPECT_EQ(rows().size(), 1u);
}

// A batch the forwarder saw committed moves the fleet cursor past its records for
// good, so the commit must survive PostgreSQL stopped -m immediate right after it.
// The test cluster runs with synchronous_commit = off (as a tuned server may): an
// acknowledged commit then waits for the WAL writer and an immediate stop drops it.
// PostgreSQL away from a host's first fleet run on: the forwarder never got to
// move its cursor, and a fold past the rotation threshold must still not rotate
// the unsent records away (nor remove the retired journal holding them).
TEST_F(PgForward, AJournalTheForwarderCouldNotSendYetIsNotRotatedAway) {
  Host h(dir_, "box1");
  forward::Options away = h.options();
  away.pg_uri = "postgresql://cronrun@127.0.0.1:1/cronrun";
  const std::string padding(4000, 'x');  // past the fold threshold in a few dozen runs
  int runs = 0;
  auto add_run = [&] {
    std::string id = fmt::format("{}-{}", job_, runs);
    json s = record(id, "running", runs, runs + 1, h.name()), f = record(id, "ok", runs, runs + 1, h.name());
    s["command"] = f["command"] = {"/bin/echo", padding};
    h.append(journal::RecordType::start, s);
    h.append(journal::RecordType::finish, f);
    ++runs;
  };
  while (h.cursor_and_size().second < journal::kFoldThresholdBytes + 4096) add_run();
  auto first = forward::forward(away);
  ASSERT_FALSE(first) << "PostgreSQL is away";
  auto fold = HistoryStore::fold(h.history(), /*wait_for_lock=*/true);
  ASSERT_TRUE(fold) << fold.error().message();
  EXPECT_FALSE(fold->rotated) << "the fleet consumer has read none of it";
  add_run();
  auto rep = forward::forward(h.options());
  ASSERT_TRUE(rep) << rep.error().message();
  auto r = rows();
  EXPECT_EQ(r.size(), static_cast<size_t>(runs)) << "every run reaches PostgreSQL";
  size_t not_ok = 0;
  for (const auto& [id, st] : r) not_ok += st != RunStatus::ok;
  EXPECT_EQ(not_ok, 0u);
}

TEST_F(PgForward, PostgresStoppedImmediateJustAfterABatchKeepsTheBatch) {
  ASSERT_FALSE(env("CRONRUN_FLEET_CLUSTER").empty());
  constexpr int kRounds = 4;
  Host h(dir_, "box1");
  for (int round = 0; round < kRounds; ++round) {
    std::string id = fmt::format("{}-{}", job_, round);
    h.append(journal::RecordType::start, record(id, "running", round, round + 1, h.name()));
    h.append(journal::RecordType::finish, record(id, "ok", round, round + 1, h.name()));
    auto rep = forward::forward(h.options());
    ASSERT_TRUE(rep) << rep.error().message();
    ASSERT_EQ(rep->sent, 2u);
    ASSERT_TRUE(cluster("pg-stop-immediate"));
    ASSERT_TRUE(cluster("pg-start"));
    auto [cursor, size] = h.cursor_and_size();
    ASSERT_EQ(cursor, size) << "the cursor moved past the batch";
    auto r = rows();
    ASSERT_EQ(r.size(), static_cast<size_t>(round + 1)) << "round " << round << ": a committed batch was lost";
    EXPECT_EQ(r[id], RunStatus::ok);
  }
}

TEST_F(PgForward, PostgresStoppedImmediateTwiceWhileThreeHostsForward) {
  ASSERT_FALSE(env("CRONRUN_FLEET_CLUSTER").empty());
  constexpr int kHosts = 3, kRuns = 1000, kChunk = 50;
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < kHosts; ++i) hosts.push_back(std::make_unique<Host>(dir_, "box" + std::to_string(i + 1)));
  std::atomic<int> appended{0};
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kHosts);
  std::vector<std::thread> threads;
  for (int hi = 0; hi < kHosts; ++hi) {
    threads.emplace_back([&, hi] {
      Host& h = *hosts[static_cast<size_t>(hi)];
      for (int base = 0; base < kRuns; base += kChunk) {
        for (int i = base; i < base + kChunk; ++i) {
          int tick = i * kHosts + hi;  // the hosts take turns at the ticks
          std::string id = fmt::format("{}-{}", job_, tick);
          h.append(journal::RecordType::start, record(id, "running", tick, tick + 1, h.name()));
          h.append(journal::RecordType::finish, record(id, "ok", tick, tick + 1, h.name()));
          ++appended;
        }
        auto rep = forward::forward(h.options());
        if (!rep) {
          ++failures;
          errors[static_cast<size_t>(hi)] = rep.error().message();
        }
      }
    });
  }
  auto wait_for = [&](int n) {
    while (appended < n) std::this_thread::sleep_for(5ms);
  };
  wait_for(kHosts * kRuns / 4);
  ASSERT_TRUE(cluster("pg-stop-immediate"));
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(cluster("pg-start"));
  wait_for(kHosts * kRuns * 2 / 3);
  ASSERT_TRUE(cluster("pg-stop-immediate"));
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(cluster("pg-start"));
  for (auto& t : threads) t.join();

  EXPECT_GT(failures.load(), 0) << "PostgreSQL was stopped while the hosts forwarded";
  for (const auto& e : errors)
    if (!e.empty()) {
      EXPECT_EQ(e.find('\n'), std::string::npos) << "one line: " << e;
      EXPECT_NE(e.find("postgresql://"), std::string::npos) << "names the database: " << e;
    }
  // The next forwarders (after the next runs, or cronrun --flush) send the rest.
  for (auto& h : hosts) {
    auto rep = forward::forward(h->options());
    ASSERT_TRUE(rep) << rep.error().message();
  }
  auto r = rows();
  EXPECT_EQ(r.size(), static_cast<size_t>(kHosts * kRuns));
  size_t not_ok = 0;
  for (const auto& [id, st] : r) not_ok += st != RunStatus::ok;
  EXPECT_EQ(not_ok, 0u) << "none left running";
  EXPECT_EQ(my_dead_letters(), 0u);
  for (auto& h : hosts) {
    auto [cursor, size] = h->cursor_and_size();
    EXPECT_EQ(cursor, size) << h->name() << "'s journal is drained";
  }
}

}  // namespace
