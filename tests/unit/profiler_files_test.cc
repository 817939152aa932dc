// cronprof's files in places another user may write (issue 14): the atomic
// replace behind `suggest --write`, `export -o` and `report --html` refuses
// symlink, FIFO and other users' targets and leaves them unchanged; it creates no
// directory for an explicit path; an old file's owner and mode carry over only
// from root or us. User-named reads (--crontab, the config suggest edits) are
// bounded and never block on a FIFO.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/safe_file.h"
#include "profiler/config_edit.h"
#include "profiler/crontab.h"

using namespace cronrun;
using namespace cronrun::prof;

namespace {

constexpr uid_t kOtherUid = 65534;

class ProfFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronrun-proffiles-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  static void put(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }
  static std::string get(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  std::string dir_;
};

TEST_F(ProfFiles, SymlinkTargetIsRefusedAndItsFileUnchanged) {
  put(path("victim"), "victim\n");
  ASSERT_EQ(::symlink(path("victim").c_str(), path("job.json").c_str()), 0);
  auto w = write_file_atomically(path("job.json"), "{}\n");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("symlink"), std::string::npos) << w.error().message();
  EXPECT_EQ(get(path("victim")), "victim\n");
  struct stat st {};
  ASSERT_EQ(::lstat(path("job.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(ProfFiles, FifoTargetIsRefusedAndStaysAFifo) {
  ASSERT_EQ(::mkfifo(path("out.html").c_str(), 0666), 0);
  auto w = write_file_atomically(path("out.html"), "<html></html>\n");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("FIFO"), std::string::npos) << w.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat(path("out.html").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(ProfFiles, ExplicitPathsDirectoryIsNotCreated) {
  auto w = write_file_atomically(path("missing/deeper/x.json"), "{}\n");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("does not exist"), std::string::npos) << w.error().message();
  EXPECT_FALSE(std::filesystem::exists(path("missing")));
}

TEST_F(ProfFiles, NoTempFileLeftAndContentReplaced) {
  put(path("x.json"), "old\n");
  ASSERT_TRUE(write_file_atomically(path("x.json"), "new\n"));
  EXPECT_EQ(get(path("x.json")), "new\n");
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++n;
  EXPECT_EQ(n, 1u);
}

// Root replacing a file another user owns in root's own directory: the new file
// is root's (the other user must not gain write access to a job config), and
// its mode is no wider than the old one's nor than 0644.
TEST_F(ProfFiles, AnotherUsersFileGivesNeitherOwnerNorWideMode) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  put(path("job.json"), "{}\n");
  ASSERT_EQ(::chown(path("job.json").c_str(), kOtherUid, kOtherUid), 0);
  ASSERT_EQ(::chmod(path("job.json").c_str(), 0666), 0);
  ASSERT_TRUE(write_file_atomically(path("job.json"), "{\"memory\": \"1G\"}\n"));
  struct stat st {};
  ASSERT_EQ(::lstat(path("job.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(ProfFiles, OwnFileKeepsItsMode) {
  put(path("job.json"), "{}\n");
  ASSERT_EQ(::chmod(path("job.json").c_str(), 0600), 0);
  ASSERT_TRUE(write_file_atomically(path("job.json"), "{}\n"));
  struct stat st {};
  ASSERT_EQ(::lstat(path("job.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

// In a sticky shared directory another user's file is theirs: root must not
// replace it (the sticky bit does not stop root's rename).
TEST_F(ProfFiles, AnotherUsersFileInStickyDirIsRefusedAndUnchanged) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(::mkdir(path("shared").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path("shared").c_str(), 01777), 0);
  std::string target = path("shared/report.html");
  put(target, "theirs\n");
  ASSERT_EQ(::chown(target.c_str(), kOtherUid, kOtherUid), 0);
  auto w = write_file_atomically(target, "root's report\n");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("uid 65534"), std::string::npos) << w.error().message();
  EXPECT_EQ(get(target), "theirs\n");
  struct stat st {};
  ASSERT_EQ(::lstat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kOtherUid);
}

TEST_F(ProfFiles, ReadRegularFileRefusesFifoAndDeviceAndBoundsSize) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0666), 0);
  auto f = read_regular_file(path("fifo"), 1024);  // no writer: would block without O_NONBLOCK
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find(path("fifo") + ": is a FIFO"), std::string::npos) << f.error().message();
  auto z = read_regular_file("/dev/zero", 1024);
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message().find("character device"), std::string::npos) << z.error().message();
  put(path("big"), std::string(2048, 'x'));
  auto b = read_regular_file(path("big"), 1024);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("1024 bytes"), std::string::npos) << b.error().message();
  auto ok = read_regular_file(path("big"), 2048);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->size(), 2048u);
}

TEST_F(ProfFiles, CrontabFifoFailsAtOnceNamingTheFile) {
  ASSERT_EQ(::mkfifo(path("crontab").c_str(), 0666), 0);
  auto c = crontab::load_crontab(path("crontab"), crontab::Kind::user);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(path("crontab") + ": is a FIFO"), std::string::npos) << c.error().message();
}

TEST_F(ProfFiles, FifoInCronDirIsRejectedNotRead) {
  ASSERT_EQ(::mkdir(path("cron.d").c_str(), 0755), 0);
  put(path("cron.d/good"), "0 3 * * * root /bin/true\n");
  ASSERT_EQ(::mkfifo(path("cron.d/pipe").c_str(), 0644), 0);
  auto c = crontab::load_crontab(path("cron.d"), crontab::Kind::system);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->entries.size(), 1u);
  bool said = false;
  for (const auto& r : c->rejected) said |= r.file == path("cron.d/pipe") && r.reason.find("FIFO") != std::string::npos;
  EXPECT_TRUE(said);
}

}  // namespace
