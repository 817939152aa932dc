// The history under faults, end to end with the real binaries as root: records
// that must always be writable (non-UTF-8 argv), an explicit --history whose
// directory is missing, a history another process keeps locked while a job with
// a timeout runs (the run journals its records, common/journal.h, and never waits
// on SQLite), histories the fold cannot write, damaged ones (kept, moved aside,
// said by the fold), and history paths that are symlinks or FIFOs.
// Each test asserts the effect: a job really not started, a row really there,
// the damaged bytes really kept, a directory really not created.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/history.h"
#include "harness.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kCronrun = CRONRUN_BIN;
const std::string kCronprof = CRONPROF_BIN;
constexpr uid_t kNobody = 65534;

class HistoryFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
    static int seq = 0;
    dir_ = fs::temp_directory_path() / ("cronrun-hf" + std::to_string(getpid()) + "-" + std::to_string(++seq));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (holder_ > 0) {
      kill(holder_, SIGKILL);
      waitpid(holder_, nullptr, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // cronrun without cgroups or lock (this file is about the history), with `history`.
  std::vector<std::string> cmd(const std::string& history, std::vector<std::string> opts,
                               std::vector<std::string> job) {
    std::vector<std::string> v = {kCronrun, "--history", history, "--cgroup", "off", "--no-lock", "--summary",
                                  summary()};
    v.insert(v.end(), opts.begin(), opts.end());
    v.push_back("--");
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }
  std::string db() const { return (dir_ / "history.db").string(); }
  std::string summary() const { return (dir_ / "summary.json").string(); }
  std::string marker() const { return (dir_ / "job-ran").string(); }

  // Every row of `path`, read as cronprof reads it.
  std::vector<cronrun::RunRecord> rows(const std::string& path) {
    auto h = cronrun::HistoryStore::open(path, cronrun::HistoryStore::Mode::read_only);
    EXPECT_TRUE(h) << h.error().message();
    if (!h) return {};
    auto runs = h->runs({});
    EXPECT_TRUE(runs) << runs.error().message();
    return runs ? *runs : std::vector<cronrun::RunRecord>{};
  }

  // A process of our own holding the history's write lock (BEGIN IMMEDIATE, as
  // `sqlite3 h.db 'BEGIN IMMEDIATE; ...'` would) for `hold`; returns once it has it.
  void hold_write_lock(std::chrono::milliseconds hold) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    holder_ = fork();
    if (holder_ == 0) {
      close(ready[0]);
      sqlite3* h = nullptr;
      if (sqlite3_open(db().c_str(), &h) != SQLITE_OK) _exit(2);
      if (sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) _exit(3);
      (void)!write(ready[1], "x", 1);
      std::this_thread::sleep_for(hold);
      sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
      sqlite3_close(h);
      _exit(0);
    }
    close(ready[1]);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1) << "the lock holder did not get the lock";
    close(ready[0]);
  }

  // A history with `n` runs written by cronrun (persistent -wal and -shm).
  void make_history(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = run(cmd(db(), {"--name", "seed"}, {"/bin/true"}));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    ASSERT_TRUE(fs::exists(db() + "-wal"));
    ASSERT_TRUE(fs::exists(db() + "-shm"));
  }

  // Files in dir_ named history.db.damaged-*.
  std::vector<fs::path> damaged_files() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename().string().starts_with("history.db.damaged-")) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
  pid_t holder_ = -1;
};

// setpriv to `uid` (files it must own are chowned by the caller).
std::vector<std::string> as_user(uid_t uid, std::vector<std::string> argv, const std::string& home) {
  std::vector<std::string> v = {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid),
                                "--regid=" + std::to_string(uid), "--clear-groups", "/usr/bin/env",
                                "HOME=" + home, "XDG_RUNTIME_DIR=" + home, "XDG_CONFIG_HOME=" + home};
  v.insert(v.end(), argv.begin(), argv.end());
  return v;
}

// ---------- records are always writable ----------

TEST_F(HistoryFaults, NonUtf8ArgumentIsRecordedWithTheBytesReplaced) {
  auto r = run(cmd(db(), {}, {"/bin/sh", "-c", "sleep 1; echo done", "\xff"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;  // was SIGABRT (134), the job left running
  EXPECT_EQ(r.out, "done\n");
  json s = read_json(summary());
  EXPECT_EQ(s["status"], "ok");
  EXPECT_EQ(s["command"][3], "\xEF\xBF\xBD");
  auto runs = rows(db());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, cronrun::RunStatus::ok);
  EXPECT_EQ(runs[0].command.back(), "\xEF\xBF\xBD");
}

TEST_F(HistoryFaults, DryRunWithANonUtf8ArgumentDoesNotAbort) {
  auto r = run({kCronrun, "--dry-run", "--cgroup", "off", "--", "/bin/true", "\xff"});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // was SIGABRT (134), type_error 316
  EXPECT_EQ(r.err.find("type_error"), std::string::npos) << r.err;
}

// ---------- an explicit --history's directory must exist ----------

TEST_F(HistoryFaults, ExplicitHistoryDirectoryIsNeverCreated) {
  fs::path missing = dir_ / "typo" / "dir";
  auto r = run(cmd((missing / "h.db").string(), {}, {"/bin/touch", marker()}));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "typo"));
  EXPECT_FALSE(fs::exists(marker())) << "the job ran";
  // One line, naming the path.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("cronrun: --history " + (missing / "h.db").string()), std::string::npos) << r.err;
}

// ---------- a locked history never holds up a run ----------

// The run appends to the journal and never opens SQLite (DESIGN.md section 5):
// a history whose write lock another process holds for longer than the job
// neither delays the start nor the timeout, and the run is recorded all the same
// (seen by readers through the journal, folded once the lock is gone). Before the
// journal the job was not started at all (exit 125).
TEST_F(HistoryFaults, HistoryLockedDoesNotHoldUpTheRunOrItsTimeout) {
  make_history(1);
  hold_write_lock(8s);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(cmd(db(), {"--name", "locked", "--timeout", "2s"}, {"/bin/sh", "-c", "touch " + marker() + "; sleep 12"}),
               60s);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_TRUE(fs::exists(marker()));
  EXPECT_LT(took, 7s) << "the run waited for the history's lock";
  bool found = false;
  for (const auto& row : rows(db()))
    if (row.job == "locked") {
      found = true;
      EXPECT_EQ(row.status, cronrun::RunStatus::timeout);
    }
  EXPECT_TRUE(found) << "no record of the run";
  EXPECT_EQ(wait_exit(holder_), 0);
  holder_ = -1;
  auto f = run({kCronrun, "--flush", "--history", db()});
  EXPECT_EQ(f.exit_code, 0) << f.err;
}

// ---------- an unwritable history: the run is recorded in the journal, the fold says why it cannot fold ----------

class UnwritableHistory : public HistoryFaults {
 protected:
  void SetUp() override {
    HistoryFaults::SetUp();
    if (IsSkipped()) return;
    home_ = dir_ / "home";
    fs::create_directories(home_);
    ASSERT_EQ(chown(dir_.c_str(), kNobody, kNobody), 0);
    ASSERT_EQ(chown(home_.c_str(), kNobody, kNobody), 0);
    // A history of nobody's, written once as nobody.
    auto r = run(as_user(kNobody, cmd(db(), {}, {"/bin/true"}), home_.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::remove(summary());
  }
  // The run itself needs only the journal: it runs and is recorded there.
  Ran run_as_nobody() {
    auto r = run(as_user(kNobody, cmd(db(), {}, {"/bin/touch", marker()}), home_.string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::exists(marker())) << "the job did not run";
    EXPECT_EQ(rows(db()).size(), 2u) << "the run is not in the journal";
    return run(as_user(kNobody, {kCronrun, "--flush", "--history", db()}, home_.string()));
  }
  fs::path home_;
};

TEST_F(UnwritableHistory, ReadOnlyDatabaseFile) {
  fs::permissions(db(), fs::perms(0444));
  auto r = run_as_nobody();
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(db() + ": Permission denied"), std::string::npos) << r.err;
}

TEST_F(UnwritableHistory, ReadOnlyWal) {
  fs::permissions(db() + "-wal", fs::perms(0444));
  auto r = run_as_nobody();
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(db() + "-wal: Permission denied"), std::string::npos) << r.err;
}

TEST_F(UnwritableHistory, ReadOnlyShm) {
  fs::permissions(db() + "-shm", fs::perms(0444));
  auto r = run_as_nobody();
  EXPECT_EQ(r.exit_code, 125) << r.err;
}

TEST_F(UnwritableHistory, ReadOnlyDirectoryWhereAFileMustBeCreated) {
  fs::remove(db() + "-shm");
  // The journal exists already (the setup's run): only the fold must create a file.
  fs::permissions(dir_, fs::perms(0555));
  fs::path marker_dir = dir_ / "home";
  auto r = run(as_user(kNobody, cmd(db(), {}, {"/bin/touch", (marker_dir / "ran").string()}), home_.string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(marker_dir / "ran"));
  r = run(as_user(kNobody, {kCronrun, "--flush", "--history", db()}, home_.string()));
  fs::permissions(dir_, fs::perms(0755));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(dir_.string() + ": Permission denied"), std::string::npos) << r.err;
}

// ---------- a damaged history is kept, moved aside and said ----------

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(HistoryFaults, TruncatedWalIsKeptMovedAsideAndSaid) {
  make_history(3);
  fs::resize_file(db() + "-wal", 100);
  std::string wal = bytes_of(db() + "-wal"), main = bytes_of(db());
  auto ran = run(cmd(db(), {"--name", "after"}, {"/bin/true"}));
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  // The fold opens the history: said once, loudly. The new history gets every
  // run the journal still holds (the damaged one's folded runs stay in its copy).
  auto r = run({kCronrun, "--flush", "--history", db()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("lost committed frames"), std::string::npos) << r.err;
  auto damaged = damaged_files();
  ASSERT_EQ(damaged.size(), 3u) << r.err;  // NAME.damaged-<UTC>{,-shm,-wal}
  EXPECT_EQ(bytes_of(damaged[0].string()), main);
  EXPECT_EQ(bytes_of(damaged[2].string()), wal);
  EXPECT_EQ(damaged[2].string(), damaged[0].string() + "-wal");
  EXPECT_EQ(cronrun::HistoryStore::damaged_copies(db()), std::vector<std::string>{damaged[0].string()});
  EXPECT_NE(r.err.find("moved aside to " + damaged[0].string()), std::string::npos) << r.err;
  auto runs = rows(db());
  EXPECT_GE(runs.size(), 1u);
  bool after = false;
  for (const auto& row : runs) after |= row.job == "after";
  EXPECT_TRUE(after);
  // The next fold finds a sound history and says nothing.
  ASSERT_EQ(run(cmd(db(), {"--name", "after"}, {"/bin/true"})).exit_code, 0);
  auto again = run({kCronrun, "--flush", "--history", db()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("damaged"), std::string::npos) << again.err;
  EXPECT_EQ(damaged_files().size(), 3u);
}

TEST_F(HistoryFaults, GarbageWalHeaderIsKeptAndCronprofSaysSo) {
  make_history(2);
  {
    std::fstream f(db() + "-wal", std::ios::in | std::ios::out | std::ios::binary);
    f.write("garbage garbage garbage garbage!", 32);
  }
  // cronprof (read-only) refuses to show a history without its WAL's runs.
  auto prof = run({kCronprof, "--history", db(), "runs"}, 30s);
  EXPECT_NE(prof.exit_code, 0) << prof.out;
  EXPECT_NE(prof.err.find("not a SQLite WAL"), std::string::npos) << prof.err;
  // The runner keeps the damaged files and records in a new history.
  std::string wal = bytes_of(db() + "-wal");
  ASSERT_EQ(run(cmd(db(), {}, {"/bin/true"})).exit_code, 0);
  auto r = run({kCronrun, "--flush", "--history", db()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto damaged = damaged_files();
  ASSERT_EQ(damaged.size(), 3u) << r.err;
  EXPECT_EQ(bytes_of(damaged[2].string()), wal);
  EXPECT_GE(rows(db()).size(), 1u);
}

TEST_F(HistoryFaults, GarbageDatabaseBesideItsWalIsMovedAside) {
  make_history(1);
  {
    std::ofstream f(db(), std::ios::binary | std::ios::trunc);
    f << std::string(8192, 'x');
  }
  ASSERT_EQ(run(cmd(db(), {}, {"/bin/true"})).exit_code, 0);
  auto r = run({kCronrun, "--flush", "--history", db()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("not a database"), std::string::npos) << r.err;
  auto damaged = damaged_files();
  ASSERT_FALSE(damaged.empty());
  EXPECT_EQ(bytes_of(damaged[0].string()), std::string(8192, 'x'));
  EXPECT_GE(rows(db()).size(), 1u);
}

// An explicit path naming some other file is not a damaged history: never moved.
TEST_F(HistoryFaults, ForeignFileIsNeitherMovedNorWritten) {
  std::string other = (dir_ / "notes.txt").string();
  {
    std::ofstream f(other);
    f << "not a database, and not ours\n";
  }
  // The run goes to the journal; the fold refuses to touch the file.
  ASSERT_EQ(run(cmd(other, {}, {"/bin/touch", marker()})).exit_code, 0);
  auto r = run({kCronrun, "--flush", "--history", other});
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_EQ(bytes_of(other), "not a database, and not ours\n");
  EXPECT_TRUE(damaged_files().empty());
}

// ---------- symlinks and FIFOs ----------

TEST_F(HistoryFaults, SymlinkedHistoryIsNotFollowed) {
  make_history(1);
  std::string link = (dir_ / "link.db").string();
  fs::create_symlink(db(), link);
  auto r = run(cmd(link, {}, {"/bin/touch", marker()}));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(marker()));
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(rows(db()).size(), 1u) << "a row went through the symlink";
}

TEST_F(HistoryFaults, SymlinkedWalIsNotFollowed) {
  make_history(1);
  std::string target = (dir_ / "precious").string();
  {
    std::ofstream f(target);
    f << "precious\n";
  }
  fs::remove(db() + "-wal");
  fs::create_symlink(target, db() + "-wal");
  // The run does not open SQLite; the fold refuses the planted -wal.
  ASSERT_EQ(run(cmd(db(), {}, {"/bin/touch", marker()})).exit_code, 0);
  auto r = run({kCronrun, "--flush", "--history", db()});
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_EQ(bytes_of(target), "precious\n");
  // Said as what it is (SQLite's own refusal read "unable to open database file").
  EXPECT_NE(r.err.find(db() + "-wal is a symbolic link"), std::string::npos) << r.err;
}

TEST_F(HistoryFaults, FifoAsHistoryDoesNotHangCronprofOrCronrun) {
  std::string fifo = (dir_ / "fifo.db").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  auto prof = run({kCronprof, "--history", fifo, "runs"}, 15s);
  EXPECT_EQ(prof.err.find("harness: timed out"), std::string::npos) << "cronprof hung on the FIFO";
  EXPECT_NE(prof.exit_code, 0);
  EXPECT_NE(prof.err.find("FIFO"), std::string::npos) << prof.err;
  auto r = run(cmd(fifo, {}, {"/bin/touch", marker()}), 15s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(marker()));
}

// Another user's history (a copy planted in /tmp for root's run to write into): its
// owner could rewrite the records, and the fold takes only the owner's journal, so
// they would never land. Refused before anything starts, and no journal is made.
TEST_F(HistoryFaults, AnotherUsersHistoryIsRefused) {
  make_history(1);
  fs::path shared = dir_ / "shared";
  fs::create_directory(shared);
  fs::permissions(shared, fs::perms::all | fs::perms::sticky_bit);
  std::string planted = (shared / "h.db").string();
  fs::copy_file(db(), planted);
  ASSERT_EQ(chown(planted.c_str(), kNobody, kNobody), 0);
  auto r = run(cmd(planted, {}, {"/bin/touch", marker()}));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(marker()));
  EXPECT_NE(r.err.find(planted + " is owned by uid 65534"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(planted + ".journal"));
  // The same in a directory of root's own: the records could never be folded in.
  ASSERT_EQ(chown(db().c_str(), kNobody, kNobody), 0);
  r = run(cmd(db(), {}, {"/bin/touch", marker()}));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(marker()));
}

// A first run refused for a FIFO at the history's -wal leaves no journal behind.
TEST_F(HistoryFaults, RefusedFirstRunLeavesNoJournal) {
  std::string wal = db() + "-wal";
  ASSERT_EQ(mkfifo(wal.c_str(), 0644), 0);
  auto r = run(cmd(db(), {}, {"/bin/touch", marker()}), 15s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(fs::exists(marker()));
  EXPECT_FALSE(fs::exists(db() + ".journal"));
}

}  // namespace
