// --summary's target rules (runner/summary.h) on real files: what is replaced,
// what is refused, and that a refused or replaced file's content never changes.
#include "runner/summary.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace cronrun;
namespace fs = std::filesystem;

namespace {

class Summary : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cronrun-summary-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    chmod(dir_.c_str(), 0755);
    rec_.run_id = "r1";
    rec_.job = "job";
    alarm(20);  // a blocking open would fail the test, not hang it
  }
  void TearDown() override {
    alarm(0);
    fs::remove_all(dir_);
  }
  static std::string text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
  RunRecord rec_;
};

}  // namespace

TEST_F(Summary, NewFileIsCreatedWithNoTempFileLeft) {
  auto target = dir_ / "s.json";
  ASSERT_TRUE(write_summary(target.string(), rec_));
  EXPECT_NE(text(target).find("\"run_id\": \"r1\""), std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(Summary, ExistingFileIsReplacedNeverWrittenInto) {
  auto target = dir_ / "s.json";
  std::ofstream(target) << "old\n";
  fs::create_hard_link(target, dir_ / "other-name");  // another name for the old inode
  ASSERT_TRUE(write_summary(target.string(), rec_));
  EXPECT_NE(text(target).find("\"run_id\": \"r1\""), std::string::npos);
  EXPECT_EQ(text(dir_ / "other-name"), "old\n");
}

TEST_F(Summary, DevicesFifosAndSocketsAreRefusedButDevNullIsAccepted) {
  ASSERT_EQ(mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  auto f = write_summary((dir_ / "fifo").string(), rec_);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("fifo: is a FIFO; --summary writes only"), std::string::npos)
      << f.error().message();
  auto z = check_summary_target("/dev/zero");
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message().find("/dev/zero: is a character device"), std::string::npos) << z.error().message();
  EXPECT_TRUE(write_summary("/dev/null", rec_));
}

TEST_F(Summary, OurOwnSymlinkIsFollowedToTheFileItNames) {
  fs::create_directory(dir_ / "real");
  fs::create_symlink("real/s.json", dir_ / "s.json");
  ASSERT_TRUE(write_summary((dir_ / "s.json").string(), rec_));
  EXPECT_TRUE(fs::is_symlink(dir_ / "s.json"));
  EXPECT_NE(text(dir_ / "real" / "s.json").find("\"job\": \"job\""), std::string::npos);
}

TEST_F(Summary, AnotherUsersFileInASharedDirectoryIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  chmod(dir_.c_str(), 01777);
  auto target = dir_ / "s.json";
  std::ofstream(target) << "theirs\n";
  ASSERT_EQ(chown(target.c_str(), 65534, 65534), 0);
  auto r = write_summary(target.string(), rec_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("owned by uid 65534 in a directory others can write"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(text(target), "theirs\n");
}
