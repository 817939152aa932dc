// The pid-file lock against a second open file description in this process (flock
// locks belong to the open file description, so this is a real contender), and the
// private-directory checks.
#include "runner/lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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
  auto first = PidFileLock::acquire(path, 0ms, false);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(std::holds_alternative<PidFileLock>(*first));
  auto second = PidFileLock::acquire(path, 120ms, false);
  ASSERT_TRUE(second);
  auto* busy = std::get_if<PidFileLock::Busy>(&*second);
  ASSERT_NE(busy, nullptr);
  EXPECT_EQ(busy->holder_pid.value_or(-1), getpid());
  EXPECT_GE(busy->waited_s, 0.1);
  first->emplace<PidFileLock::Busy>();  // release the first lock
  auto third = PidFileLock::acquire(path, 0ms, false);
  ASSERT_TRUE(third);
  EXPECT_TRUE(std::holds_alternative<PidFileLock>(*third));
}

TEST_F(LockTest, LockFdIsCloseOnExec) {
  std::string path = (dir_ / "job.pid").string();
  auto lock = PidFileLock::acquire(path, 0ms, false);
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

TEST_F(LockTest, PrivateDirRefusesSymlinksAndFixesMode) {
  auto real = dir_ / "real";
  std::filesystem::create_directory(real);
  std::filesystem::create_directory_symlink(real, dir_ / "link");
  auto r = ensure_private_dir((dir_ / "link").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("symlinks are refused"), std::string::npos);
  chmod(real.c_str(), 0755);
  ASSERT_TRUE(ensure_private_dir(real.string()));
  struct stat st;
  ASSERT_EQ(stat(real.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}
