// The pid-file lock against a second open file description in this process (flock
// locks belong to the open file description, so this is a real contender), and the
// private-directory checks.
#include "runner/lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace cronrun;
using namespace std::chrono_literals;

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-lock-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LockTest, SecondHolderIsBusyAndSeesThePid) {
  std::string path = (dir_ / "a" / "job.pid").string();
  auto first = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::create);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(std::holds_alternative<PidFileLock>(*first));
  auto second = PidFileLock::acquire(path, 120ms, PidFileLock::Dir::create);
  ASSERT_TRUE(second);
  auto* busy = std::get_if<PidFileLock::Busy>(&*second);
  ASSERT_NE(busy, nullptr);
  EXPECT_EQ(busy->holder_pid.value_or(-1), getpid());
  EXPECT_GE(busy->waited_s, 0.1);
  first->emplace<PidFileLock::Busy>();  // release the first lock
  auto third = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::create);
  ASSERT_TRUE(third);
  EXPECT_TRUE(std::holds_alternative<PidFileLock>(*third));
}

// The holder writes its pid just after it takes the lock; in between, the file
// still names the previous holder, who is gone. A contender that looks then must
// not report that dead pid as the holder (it did: the CI race of e97f7c5 seen from
// the runner's side, in skip records and their reason).
TEST_F(LockTest, BusyNeverNamesAPreviousHolderThatIsGone) {
  std::string path = (dir_ / "job.pid").string();
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
  { std::ofstream(path) << gone << "\n"; }
  // The new holder: has the lock, has not written its pid yet.
  int holder = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(flock(holder, LOCK_EX | LOCK_NB), 0);
  auto r = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::must_exist);
  ASSERT_TRUE(r) << r.error().message();
  auto* busy = std::get_if<PidFileLock::Busy>(&*r);
  ASSERT_NE(busy, nullptr);
  EXPECT_FALSE(busy->holder_pid) << "reported the previous holder " << *busy->holder_pid;

  // Once the holder has written its pid, that is what is seen.
  std::string mine = std::to_string(getpid()) + "\n";
  ASSERT_EQ(pwrite(holder, mine.data(), mine.size(), 0), static_cast<ssize_t>(mine.size()));
  r = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::must_exist);
  ASSERT_TRUE(r) << r.error().message();
  busy = std::get_if<PidFileLock::Busy>(&*r);
  ASSERT_NE(busy, nullptr);
  EXPECT_EQ(busy->holder_pid.value_or(-1), getpid());
  close(holder);
}

TEST_F(LockTest, LockFdIsCloseOnExec) {
  std::string path = (dir_ / "job.pid").string();
  auto lock = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::must_exist);
  ASSERT_TRUE(lock);
  bool found = false;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (ec || target != path) continue;
    int fd = std::stoi(e.path().filename().string());
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(LockTest, PrivateDirIsMadeOursAndNarrowed) {
  std::string path = (dir_ / "priv" / "job.pid").string();
  auto lock = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::create_private);
  ASSERT_TRUE(lock) << lock.error().message();
  struct stat st;
  ASSERT_EQ(stat((dir_ / "priv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
}

TEST_F(LockTest, ExplicitPathsDirectoryMustExist) {
  auto r = PidFileLock::acquire((dir_ / "typo" / "job.pid").string(), 0ms, PidFileLock::Dir::must_exist);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("typo"), std::string::npos) << r.error().message();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "typo"));
}

// `cronrun --lock /usr/local/bin/tool` (a forgotten `--`) cut the binary to a pid.
TEST_F(LockTest, ExistingFileThatIsNotAPidFileIsRefusedAndUnchanged) {
  std::string path = (dir_ / "tool").string();
  std::string content = "\x7f" "ELF not a pid file, a program\n";
  { std::ofstream(path) << content; }
  auto r = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::must_exist);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("is not a cronrun lock file"), std::string::npos) << r.error().message();
  std::ifstream in(path);
  std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(now, content);
}

TEST_F(LockTest, ExistingPidFileIsReused) {
  std::string path = (dir_ / "job.pid").string();
  { std::ofstream(path) << "4194304\n"; }
  auto r = PidFileLock::acquire(path, 0ms, PidFileLock::Dir::must_exist);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(std::holds_alternative<PidFileLock>(*r));
  std::ifstream in(path);
  std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(now, std::to_string(getpid()) + "\n");
}

TEST_F(LockTest, FifoOrSymlinkAtTheLockPathIsRefusedWithoutBlocking) {
  alarm(20);  // a blocking open would hang here
  std::string fifo = (dir_ / "fifo.pid").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  auto f = PidFileLock::acquire(fifo, 0ms, PidFileLock::Dir::must_exist);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("is a FIFO"), std::string::npos) << f.error().message();
  std::string victim = (dir_ / "victim").string();
  { std::ofstream(victim) << "root only\n"; }
  std::filesystem::create_symlink(victim, dir_ / "link.pid");
  auto l = PidFileLock::acquire((dir_ / "link.pid").string(), 0ms, PidFileLock::Dir::must_exist);
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message().find("is a symlink"), std::string::npos) << l.error().message();
  alarm(0);
}

TEST_F(LockTest, LockDirectoryThroughAnotherUsersSymlinkIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  auto shared = dir_ / "shared";
  auto secret = dir_ / "secret";
  std::filesystem::create_directory(shared);
  std::filesystem::create_directory(secret);
  chmod(shared.c_str(), 01777);
  chmod(secret.c_str(), 0700);
  { std::ofstream(secret / "victim") << "\n"; }  // empty-ish: would pass the pid-file check
  std::filesystem::create_directory_symlink(secret, shared / "locks");
  ASSERT_EQ(lchown((shared / "locks").c_str(), 65534, 65534), 0);
  auto r = PidFileLock::acquire((shared / "locks" / "victim").string(), 0ms, PidFileLock::Dir::must_exist);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("refusing to follow"), std::string::npos) << r.error().message();
  std::ifstream in(secret / "victim");
  std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(now, "\n");
}

TEST(LockFile, PidFileContentCheck) {
  EXPECT_TRUE(looks_like_pid_file(""));
  EXPECT_TRUE(looks_like_pid_file("123\n"));
  EXPECT_TRUE(looks_like_pid_file("123\n5\n"));  // a shorter pid over a longer one, mid-rewrite
  EXPECT_FALSE(looks_like_pid_file("#!/bin/sh\n"));
  EXPECT_FALSE(looks_like_pid_file(std::string(40, '1')));
}
