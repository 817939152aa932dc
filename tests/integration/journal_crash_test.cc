// The run journal end to end with the real binaries as root (DESIGN.md section 5):
// the runner SIGKILLed at every phase (before its start record, while the job
// runs, before its finish record, in the middle of a fold and of a rotation)
// leaves each run complete or `lost`, never missing, never twice; 500 concurrent
// runs land 500 records; a torn last record is skipped and reported; cronprof as
// another user sees runs not yet folded; skipped runs no longer touch SQLite.
//
// A phase is hit deterministically: CRONRUN_TEST_PAUSE_AT=<phase> makes the
// process stop itself (SIGSTOP) there; the test sees it stopped and SIGKILLs it.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/history.h"
#include "common/journal.h"
#include "harness.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using namespace std::chrono_literals;

namespace {

const std::string kCronrun = CRONRUN_BIN;
const std::string kCronprof = CRONPROF_BIN;

class JournalCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
    static int seq = 0;
    dir_ = fs::temp_directory_path() / ("cronrun-jc" + std::to_string(getpid()) + "-" + std::to_string(++seq));
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms(0755));
  }
  void TearDown() override {
    for (pid_t p : stray_) kill(p, SIGKILL);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string db() const { return (dir_ / "history.db").string(); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  std::vector<std::string> cmd(const std::vector<std::string>& job, const std::string& name = "job") {
    std::vector<std::string> v = {kCronrun, "--history", db(), "--cgroup", "off", "--no-lock", "--name", name, "--"};
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }

  // Starts argv with CRONRUN_TEST_PAUSE_AT=phase (if any); output to a log file.
  pid_t spawn(const std::vector<std::string>& argv, const std::string& phase = "") {
    pid_t pid = fork();
    if (pid == 0) {
      if (!phase.empty()) setenv("CRONRUN_TEST_PAUSE_AT", phase.c_str(), 1);
      int log = open((dir_ / "spawn.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      dup2(log, 1);
      dup2(log, 2);
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    return pid;
  }

  // Runs argv until it stops itself at `phase`, then SIGKILLs it.
  void kill_at(const std::vector<std::string>& argv, const std::string& phase) {
    pid_t pid = spawn(argv, phase);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
    ASSERT_TRUE(WIFSTOPPED(status)) << phase << ": exited before the pause point (status " << status << ")\n"
                                    << read_text((dir_ / "spawn.log").string());
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
  }

  Ran flush(const std::string& history) { return run({kCronrun, "--flush", "--history", history}, 120s); }

  // Every run as cronprof reads it (journal merged), by run id.
  std::map<std::string, cronrun::RunStatus> runs() {
    std::map<std::string, cronrun::RunStatus> out;
    auto h = cronrun::HistoryStore::open(db(), cronrun::HistoryStore::Mode::read_only);
    EXPECT_TRUE(h) << h.error().message();
    if (!h) return out;
    auto rs = h->runs({});
    EXPECT_TRUE(rs) << rs.error().message();
    if (rs)
      for (const auto& r : *rs) {
        EXPECT_FALSE(out.contains(r.run_id)) << "run " << r.run_id << " twice";
        out[r.run_id] = r.status;
      }
    return out;
  }

  // The folded history itself (no journal merge): every row, sorted.
  static std::string dump(const std::string& path) {
    sqlite3* h = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(h, "SELECT run_id, status, record FROM runs ORDER BY run_id", -1, &st, nullptr);
    std::string out;
    while (sqlite3_step(st) == SQLITE_ROW)
      for (int c = 0; c < 3; ++c) {
        out += reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        out += c == 2 ? "\n" : " ";
      }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
  }

  // A copy of the history and its journal in dir_/name, for a reference fold.
  std::string copy_history(const std::string& name) {
    fs::path to = dir_ / name;
    fs::create_directories(to);
    for (const char* suffix : {"", "-wal", "-shm", ".journal"})
      if (fs::exists(db() + suffix)) fs::copy_file(db() + suffix, to / (std::string("history.db") + suffix));
    return (to / "history.db").string();
  }

  fs::path dir_;
  std::vector<pid_t> stray_;
};

// ---------- the runner killed at each phase ----------

TEST_F(JournalCrash, KilledBeforeTheStartRecordStartsNothingAndRecordsNothing) {
  kill_at(cmd({"/bin/sh", "-c", "touch " + file("ran")}), "start");
  EXPECT_FALSE(fs::exists(file("ran")));  // the job never started
  EXPECT_TRUE(runs().empty());
  auto f = flush(db());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_TRUE(runs().empty());
}

TEST_F(JournalCrash, KilledWhileTheJobRunsReadsLostOnceAndFoldsOnce) {
  pid_t runner = spawn(cmd({"/bin/sh", "-c", "echo $$ > " + file("job.pid") + "; exec sleep 60"}));
  // The shell creates the file before it writes to it: wait for the whole line.
  ASSERT_TRUE(wait_until([&] { return read_text(file("job.pid")).ends_with("\n"); }))
      << read_text((dir_ / "spawn.log").string());
  pid_t job = std::stoi(read_text(file("job.pid")));
  stray_.push_back(job);
  ASSERT_EQ(kill(runner, SIGKILL), 0);
  ASSERT_EQ(waitpid(runner, nullptr, 0), runner);
  auto seen = runs();  // unfolded: merged from the journal
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.begin()->second, cronrun::RunStatus::lost);
  for (int round = 0; round < 2; ++round) {
    auto f = flush(db());
    ASSERT_EQ(f.exit_code, 0) << f.err;
    seen = runs();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen.begin()->second, cronrun::RunStatus::lost);
  }
}

TEST_F(JournalCrash, KilledBeforeTheFinishRecordReadsLost) {
  kill_at(cmd({"/bin/true"}), "finish");
  auto seen = runs();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.begin()->second, cronrun::RunStatus::lost);
  ASSERT_EQ(flush(db()).exit_code, 0);
  seen = runs();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.begin()->second, cronrun::RunStatus::lost);
}

TEST_F(JournalCrash, TornFinishRecordIsSkippedAndReported) {
  // A finish write cut short (the runner killed inside write(2), or a full disk):
  // the run stays `lost`, the torn bytes are reported, and once another record
  // follows them they are skipped as damage.
  kill_at(cmd({"/bin/true"}), "finish");
  auto seen = runs();
  ASSERT_EQ(seen.size(), 1u);
  cronrun::RunRecord r;
  r.run_id = seen.begin()->first;
  r.job = "job";
  r.started_at = "2026-11-23T02:10:00.123Z";
  r.status = cronrun::RunStatus::ok;
  std::string bytes = cronrun::journal::encode_record(cronrun::journal::RecordType::finish, r).value();
  {
    int fd = open(cronrun::journal::journal_path(db()).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size() / 2), static_cast<ssize_t>(bytes.size() / 2));
    close(fd);
  }
  auto f = flush(db());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.err.find("incomplete last record"), std::string::npos) << f.err;
  seen = runs();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.begin()->second, cronrun::RunStatus::lost);
  auto next = run(cmd({"/bin/true"}));
  ASSERT_EQ(next.exit_code, 0) << next.err;
  f = flush(db());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.err.find("skipped a damaged record"), std::string::npos) << f.err;
  seen = runs();
  ASSERT_EQ(seen.size(), 2u);
  int ok = 0, lost = 0;
  for (const auto& [id, s] : seen) (s == cronrun::RunStatus::ok ? ok : lost)++;
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(lost, 1);
}

// ---------- a fold killed halfway ----------

TEST_F(JournalCrash, FoldKilledBeforeItsCommitAndRerunYieldsTheSameHistory) {
  for (int i = 0; i < 5; ++i) ASSERT_EQ(run(cmd({"/bin/sh", "-c", "exit " + std::to_string(i % 2)})).exit_code, i % 2);
  kill_at(cmd({"/bin/true"}), "finish");  // and one lost run
  std::string reference = copy_history("reference");
  auto ref = flush(reference);
  ASSERT_EQ(ref.exit_code, 0) << ref.err;

  kill_at({kCronrun, "--flush", "--history", db()}, "fold-commit");
  EXPECT_EQ(runs().size(), 6u);  // nothing lost to the killed fold
  auto f = flush(db());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(dump(db()), dump(reference));
  EXPECT_EQ(runs().size(), 6u);
}

TEST_F(JournalCrash, FoldKilledInTheMiddleOfARotationAndRerunYieldsTheSameHistory) {
  // A journal past the fold threshold: runs while a lock of ours keeps their own
  // (non-blocking) folds away, so the journal grows unfolded.
  std::string jpath = cronrun::journal::journal_path(db());
  ASSERT_EQ(run(cmd({"/bin/true"})).exit_code, 0);
  int held = open(jpath.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  ASSERT_EQ(flock(held, LOCK_EX), 0);
  int n = 1;
  while (fs::file_size(jpath) < cronrun::journal::kFoldThresholdBytes) {
    ASSERT_EQ(run(cmd({"/bin/true"}, "j" + std::to_string(n % 7))).exit_code, 0);
    ++n;
  }
  close(held);
  std::string reference = copy_history("reference");
  auto ref = flush(reference);
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  EXPECT_NE(ref.out.find("journal rotated"), std::string::npos) << ref.out;

  kill_at({kCronrun, "--flush", "--history", db()}, "fold-rotate");
  // Swapped but not finished: the retired journal is still there...
  EXPECT_TRUE(fs::exists(cronrun::journal::retired_path(db())));
  // ...a run that lands now goes to the new journal...
  ASSERT_EQ(run(cmd({"/bin/true"}, "after")).exit_code, 0);
  EXPECT_EQ(runs().size(), static_cast<size_t>(n + 1));
  auto f = flush(db());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_FALSE(fs::exists(cronrun::journal::retired_path(db())));
  auto seen = runs();
  EXPECT_EQ(seen.size(), static_cast<size_t>(n + 1));
  // ...and the history is the reference plus that one run.
  std::string mine = dump(db()), theirs = dump(reference);
  EXPECT_EQ(mine.size() > theirs.size(), true);
  std::istringstream in(theirs);
  std::string line;
  while (std::getline(in, line)) EXPECT_NE(mine.find(line), std::string::npos) << line.substr(0, 60);
}

// ---------- many at once ----------

TEST_F(JournalCrash, FiveHundredConcurrentRunsLandFiveHundredRecords) {
  constexpr int kRuns = 500, kParallel = 48;
  std::set<pid_t> live;
  int started = 0, failed = 0;
  while (started < kRuns || !live.empty()) {
    while (started < kRuns && static_cast<int>(live.size()) < kParallel) {
      live.insert(spawn(cmd({"/bin/true"}, "burst" + std::to_string(started % 50))));
      ++started;
    }
    int status = 0;
    pid_t done = waitpid(-1, &status, 0);
    ASSERT_GT(done, 0);
    live.erase(done);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  EXPECT_EQ(failed, 0) << read_text((dir_ / "spawn.log").string());
  auto seen = runs();  // some folded by the runs themselves, the rest merged
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRuns));
  for (const auto& [id, s] : seen) EXPECT_EQ(s, cronrun::RunStatus::ok) << id;
  auto f = flush(db());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.err.find("damaged"), std::string::npos) << f.err;
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db().c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, "SELECT count(*), count(DISTINCT run_id), sum(status = 'ok') FROM runs", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), kRuns);
  EXPECT_EQ(sqlite3_column_int(st, 1), kRuns);
  EXPECT_EQ(sqlite3_column_int(st, 2), kRuns);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

// ---------- readers ----------

TEST_F(JournalCrash, CronprofAsAnotherUserSeesUnfoldedRuns) {
  ASSERT_EQ(run(cmd({"/bin/true"}, "first")).exit_code, 0);
  ASSERT_EQ(flush(db()).exit_code, 0);
  ASSERT_EQ(run(cmd({"/bin/false"}, "second")).exit_code, 1);  // journal only
  auto seen = runs();
  ASSERT_EQ(seen.size(), 2u);
  struct stat before {};
  ASSERT_EQ(stat(db().c_str(), &before), 0);
  auto r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", kCronprof, "--history", db(),
                "--json", "runs"},
               60s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [id, s] : seen) EXPECT_NE(r.out.find(id), std::string::npos) << id << " missing from\n" << r.out;
  EXPECT_NE(r.out.find("second"), std::string::npos);
  struct stat after {};
  ASSERT_EQ(stat(db().c_str(), &after), 0);
  EXPECT_EQ(after.st_mtime, before.st_mtime);
}

TEST_F(JournalCrash, SkippedRunsDoNotOpenSqliteAndTheWalStaysBounded) {
  ASSERT_EQ(run(cmd({"/bin/true"})).exit_code, 0);
  ASSERT_EQ(flush(db()).exit_code, 0);
  std::string drain = file("drain");
  { std::ofstream(drain) << ""; }
  const std::vector<std::string> env = {"CRONRUN_DRAIN_FILE=" + drain};
  struct stat wal_before {}, db_before {};
  ASSERT_EQ(stat((db() + "-wal").c_str(), &wal_before), 0);
  ASSERT_EQ(stat(db().c_str(), &db_before), 0);
  // Below the fold threshold: SQLite's files are not touched at all.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(run(cmd({"/bin/true"}), 60s, env).exit_code, 0);
  struct stat wal_mid {}, db_mid {};
  ASSERT_EQ(stat((db() + "-wal").c_str(), &wal_mid), 0);
  ASSERT_EQ(stat(db().c_str(), &db_mid), 0);
  EXPECT_EQ(wal_mid.st_size, wal_before.st_size);
  EXPECT_EQ(wal_mid.st_mtim.tv_nsec, wal_before.st_mtim.tv_nsec);
  EXPECT_EQ(db_mid.st_mtim.tv_nsec, db_before.st_mtim.tv_nsec);
  // 400 skipped runs: the WAL grew 26 KB a run (10.5 MB) when each opened SQLite;
  // now only the threshold folds write, a few pages each.
  for (int i = 20; i < 400; ++i) ASSERT_EQ(run(cmd({"/bin/true"}), 60s, env).exit_code, 0);
  auto wal = fs::file_size(db() + "-wal");
  EXPECT_LT(wal, 1u << 20) << "WAL of " << wal << " bytes after 400 skipped runs";
  auto seen = runs();
  EXPECT_EQ(seen.size(), 401u);
}

}  // namespace
