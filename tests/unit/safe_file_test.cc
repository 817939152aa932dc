// common/safe_file.h against real directories: symlinks judged by who could have
// planted them, directory checks, regular-file-only opens that never block on a
// FIFO, our own subdirectories, bounded reads. Tests that need a second owner
// (chown to 65534) run only as root.
#include "common/safe_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

using namespace cronrun;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kOther = 65534;

class SafeFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cronrun-safe-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    chmod(dir_.c_str(), 0755);
    alarm(20);  // a blocking open on a FIFO fails the test instead of hanging it
  }
  void TearDown() override {
    alarm(0);
    fs::remove_all(dir_);
  }
  std::string p(const std::string& rel) const { return (dir_ / rel).string(); }
  static void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  fs::path dir_;
};

bool contains(const Error& e, const std::string& what) { return e.message().find(what) != std::string::npos; }

}  // namespace

TEST_F(SafeFile, SplitPathKeepsTheDirectoryAndName) {
  EXPECT_EQ(split_path("/a/b/c"), (std::pair<std::string, std::string>{"/a/b", "c"}));
  EXPECT_EQ(split_path("/c"), (std::pair<std::string, std::string>{"/", "c"}));
  EXPECT_EQ(split_path("c"), (std::pair<std::string, std::string>{".", "c"}));
}

TEST_F(SafeFile, OwnSymlinkInAPrivateDirectoryIsFollowed) {
  fs::create_directory(p("real"));
  fs::create_directory_symlink(p("real"), p("link"));
  auto d = CheckedDir::open(p("link"));
  ASSERT_TRUE(d) << d.error().message();
  struct stat a {}, b {};
  fstat(d->fd(), &a);
  stat(p("real").c_str(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(SafeFile, SymlinkInADirectoryOthersCanWriteIsRefused) {
  fs::create_directory(p("open"));
  chmod(p("open").c_str(), 0777);  // world-writable, not sticky: anyone could have put the link
  fs::create_directory(p("real"));
  fs::create_directory_symlink(p("real"), p("open/link"));
  auto d = CheckedDir::open(p("open/link"));
  ASSERT_FALSE(d);
  EXPECT_TRUE(contains(d.error(), "open/link: is a symlink in a directory others can write")) << d.error().message();
}

TEST_F(SafeFile, SymlinkOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  fs::create_directory(p("shared"));
  chmod(p("shared").c_str(), 01777);
  fs::create_directory(p("secret"));
  chmod(p("secret").c_str(), 0700);
  fs::create_directory_symlink(p("secret"), p("shared/logs"));
  ASSERT_EQ(lchown(p("shared/logs").c_str(), kOther, kOther), 0);
  auto d = CheckedDir::open(p("shared/logs"));
  ASSERT_FALSE(d);
  EXPECT_TRUE(contains(d.error(), "is a symlink owned by uid 65534; refusing to follow it")) << d.error().message();
}

TEST_F(SafeFile, DirectoryCheckRefusesForeignOwnerAndOpenWriteButTakesSticky) {
  fs::create_directory(p("w"));
  chmod(p("w").c_str(), 0777);
  auto w = CheckedDir::open(p("w"));
  ASSERT_FALSE(w);
  EXPECT_TRUE(contains(w.error(), "writable by group or others and not sticky")) << w.error().message();
  chmod(p("w").c_str(), 01777);
  auto sticky = CheckedDir::open(p("w"));
  ASSERT_TRUE(sticky) << sticky.error().message();
  EXPECT_TRUE(sticky->shared());
  if (geteuid() != 0) return;
  fs::create_directory(p("theirs"));
  ASSERT_EQ(chown(p("theirs").c_str(), kOther, kOther), 0);
  auto theirs = CheckedDir::open(p("theirs"));
  ASSERT_FALSE(theirs);
  EXPECT_TRUE(contains(theirs.error(), "directory owned by uid 65534")) << theirs.error().message();
}

TEST_F(SafeFile, MakeCreatesPrivateDirectoriesAndNarrowsOurOwn) {
  auto d = CheckedDir::make(p("a/b/c"), 0700);
  ASSERT_TRUE(d) << d.error().message();
  struct stat st {};
  ASSERT_EQ(stat(p("a/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  chmod(p("a/b/c").c_str(), 0755);
  ASSERT_TRUE(CheckedDir::make(p("a/b/c"), 0700));
  ASSERT_EQ(stat(p("a/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  chmod(p("a/b/c").c_str(), 0777);  // others could have planted files: refused, not fixed
  auto open = CheckedDir::make(p("a/b/c"), 0700);
  ASSERT_FALSE(open);
  EXPECT_TRUE(contains(open.error(), "writable by group or others")) << open.error().message();
}

TEST_F(SafeFile, MakeRefusesADirectoryAnotherUserPreparedInASharedOne) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  fs::create_directory(p("tmp"));
  chmod(p("tmp").c_str(), 01777);
  fs::create_directory(p("tmp/cronrun-0"));
  ASSERT_EQ(chown(p("tmp/cronrun-0").c_str(), kOther, kOther), 0);
  auto d = CheckedDir::make(p("tmp/cronrun-0/runs"), 0700);
  ASSERT_FALSE(d);
  EXPECT_TRUE(contains(d.error(), "owned by uid 65534")) << d.error().message();
  EXPECT_FALSE(fs::exists(p("tmp/cronrun-0/runs")));
}

TEST_F(SafeFile, OpenRegularRefusesFifosSymlinksAndDevicesWithoutBlocking) {
  auto d = CheckedDir::open(dir_.string());
  ASSERT_TRUE(d);
  ASSERT_EQ(mkfifo(p("fifo").c_str(), 0600), 0);
  auto f = d->open_regular("fifo", O_RDONLY);  // blocking open(2) would wait for a writer
  ASSERT_FALSE(f);
  EXPECT_TRUE(contains(f.error(), "fifo: is a FIFO, expected a regular file")) << f.error().message();
  fs::create_symlink("/dev/zero", p("zero"));
  auto z = d->open_regular("zero", O_RDONLY);
  ASSERT_FALSE(z);
  EXPECT_TRUE(contains(z.error(), "is a symlink")) << z.error().message();
  write(p("plain"), "x");
  EXPECT_TRUE(d->open_regular("plain", O_RDONLY));
}

TEST_F(SafeFile, SharedDirectoryTrustsOnlyOurOwnExistingFiles) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  chmod(dir_.c_str(), 01777);
  write(p("theirs"), "planted");
  ASSERT_EQ(chown(p("theirs").c_str(), kOther, kOther), 0);
  auto d = CheckedDir::open(dir_.string());
  ASSERT_TRUE(d);
  auto f = d->open_regular("theirs", O_RDWR);
  ASSERT_FALSE(f);
  EXPECT_TRUE(contains(f.error(), "owned by uid 65534 in a directory others can write")) << f.error().message();
  auto c = d->create_file("theirs", O_WRONLY, 0600);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().err(), EEXIST);
}

TEST_F(SafeFile, SubdirectoryMustBeOursAndNotASymlink) {
  auto d = CheckedDir::open(dir_.string());
  ASSERT_TRUE(d);
  fs::create_directory(p("elsewhere"));
  fs::create_directory_symlink(p("elsewhere"), p("job"));
  auto s = d->make_subdir("job", 0750);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error(), "job: is a symlink, expected a directory")) << s.error().message();
  auto fresh = d->make_subdir("fresh", 0750);
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_TRUE(d->make_subdir("fresh", 0750));  // ours already: reused
}

TEST_F(SafeFile, SubdirectorySetgidToAForeignGroupIsRefusedAndNotInherited) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  auto d = CheckedDir::open(dir_.string());
  ASSERT_TRUE(d);
  fs::create_directory(p("job"));
  ASSERT_EQ(chown(p("job").c_str(), 0, kOther), 0);
  ASSERT_EQ(chmod(p("job").c_str(), 02750), 0);
  auto s = d->make_subdir("job", 0750);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error(), "setgid to group 65534")) << s.error().message();
  // A new subdirectory under a setgid parent: our group, no setgid.
  ASSERT_EQ(chmod(p("job").c_str(), 0750), 0);
  auto job = d->make_subdir("job", 0750);
  ASSERT_TRUE(job) << job.error().message();
  ASSERT_EQ(chmod(p("job").c_str(), 02750), 0);
  auto run = job->make_subdir("run", 0750);
  ASSERT_TRUE(run) << run.error().message();
  struct stat st {};
  ASSERT_EQ(stat(p("job/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, getegid());
  EXPECT_FALSE(st.st_mode & S_ISGID);
}

TEST_F(SafeFile, BoundedReadStopsAtTheLimitAndNeverWaits) {
  write(p("big"), std::string(100000, 'x'));
  int fd = open(p("big").c_str(), O_RDONLY | O_CLOEXEC);
  auto r = read_bounded(fd, 1000, p("big"));
  close(fd);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data.size(), 1000u);
  EXPECT_TRUE(r->truncated);
  ASSERT_EQ(mkfifo(p("fifo").c_str(), 0600), 0);
  int rd = open(p("fifo").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  int wr = open(p("fifo").c_str(), O_WRONLY | O_CLOEXEC);  // a writer that never writes
  auto e = read_bounded(rd, 1000, p("fifo"));
  close(rd);
  close(wr);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->data.empty());
}

// A per-run file is removed only when it is a regular file of ours, a minute
// old, and nobody holds it; a symlink, another user's file or a held one stays.
TEST_F(SafeFile, OnlyAnUnheldOldRegularFileOfOursIsALeftover) {
  auto d = CheckedDir::open(dir_.string());
  ASSERT_TRUE(d) << d.error().message();
  const time_t now = ::time(nullptr), later = now + 2 * kLeftoverMinAgeS;
  auto left = [&](const std::string& name, time_t when) {
    auto r = remove_if_left(d->fd(), dir_.string(), name, when, kLeftoverMinAgeS);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : Leftover::other;
  };
  write(p("dead"), "");
  EXPECT_EQ(left("dead", now), Leftover::young);
  EXPECT_TRUE(fs::exists(p("dead")));
  EXPECT_EQ(left("dead", later), Leftover::removed);
  EXPECT_FALSE(fs::exists(p("dead")));

  write(p("live"), "");
  UniqueFd fd(::open(p("live").c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(hold_file(fd.get(), p("live")));
  EXPECT_EQ(left("live", later), Leftover::held);
  fd.reset();  // its runner died
  EXPECT_EQ(left("live", later), Leftover::removed);

  write(p("target"), "");
  fs::create_symlink(p("target"), p("link"));
  write(p("theirs"), "");
  ASSERT_EQ(::chown(p("theirs").c_str(), kOther, kOther), 0);
  ASSERT_EQ(::mkfifo(p("fifo").c_str(), 0600), 0);
  for (const char* name : {"link", "theirs", "fifo", "missing"}) {
    EXPECT_EQ(left(name, later), Leftover::other) << name;
    EXPECT_EQ(fs::exists(fs::symlink_status(p(name))), std::string(name) != "missing") << name;
  }
  EXPECT_TRUE(fs::exists(p("target")));
}

TEST_F(SafeFile, ListDirNamesEveryEntryUpToTheCap) {
  for (const char* name : {"a", "b", "c"}) write(p(name), "");
  auto d = CheckedDir::open(dir_.string());
  ASSERT_TRUE(d);
  auto all = list_dir(d->fd(), dir_.string(), 100);
  ASSERT_TRUE(all) << all.error().message();
  std::sort(all->begin(), all->end());
  EXPECT_EQ(*all, (std::vector<std::string>{"a", "b", "c"}));
  auto again = list_dir(d->fd(), dir_.string(), 2);  // the fd's offset is not the list's
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 2u);
}
