// dbcount::Session: the private directory and counter file it creates and removes,
// the environment it hands the job, and collect() against the real preload
// library (built in this tree) loaded into plain programs -- no DB servers here.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "runner/db_counter.h"

extern "C" {
#include "preload/cronrun_db_shm.h"
}

using cronrun::dbcount::Session;
namespace fs = std::filesystem;

class DbcountSession : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("cronrun-dbtest-" + std::to_string(getpid()));
    fs::remove_all(base_);
  }
  void TearDown() override { fs::remove_all(base_); }

  // Runs argv with the session's environment added (and `extra` after it, so it
  // can override); returns the exit status.
  static int run_with(const Session& s, std::vector<std::string> argv, std::vector<std::string> extra = {}) {
    std::vector<std::string> env = s.env("");
    env.insert(env.end(), extra.begin(), extra.end());
    pid_t pid = fork();
    if (pid == 0) {
      for (auto& kv : env) putenv(kv.data());
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
  }

  fs::path base_;
};

TEST_F(DbcountSession, CreatesPrivateDirAndStampedFile) {
  auto s = Session::create_in(base_.string(), "run/../id 1");
  ASSERT_TRUE(s) << s.error().message();
  struct stat st {};
  ASSERT_EQ(stat(s->dir_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(fs::path(s->dir_path()).parent_path(), base_);
  EXPECT_EQ(fs::path(s->dir_path()).filename().string().find('/'), std::string::npos);
  ASSERT_EQ(lstat(s->file_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(static_cast<size_t>(st.st_size), sizeof(cronrun_db_shm));

  auto c = s->collect();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->at("db.processes"), 0);
  EXPECT_FALSE(c->contains("db.queries"));
}

TEST_F(DbcountSession, DestructorRemovesAndMoveTransfersOwnership) {
  std::string dir;
  {
    auto s = Session::create_in(base_.string(), "r");
    ASSERT_TRUE(s) << s.error().message();
    dir = s->dir_path();
    Session moved = std::move(*s);
    EXPECT_TRUE(fs::exists(dir));
    EXPECT_EQ(moved.dir_path(), dir);
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(base_));  // the shared base directory stays
}

TEST_F(DbcountSession, EnvPrependsLibraryAndNamesTheFile) {
  auto s = Session::create_in(base_.string(), "r");
  ASSERT_TRUE(s) << s.error().message();
  auto lib = cronrun::dbcount::library_path();
  ASSERT_TRUE(lib) << lib.error().message();
  auto env = s->env("libother.so");
  ASSERT_EQ(env.size(), 2u);
  EXPECT_EQ(env[0], "LD_PRELOAD=" + *lib + ":libother.so");
  EXPECT_EQ(env[1], std::string(CRONRUN_DB_ENV) + "=" + s->file_path());
  EXPECT_EQ(s->env("")[0], "LD_PRELOAD=" + *lib);
}

TEST_F(DbcountSession, RefusesAnUnsafeBaseDirectory) {
  fs::create_directories(base_);
  chmod(base_.c_str(), 0777);
  auto s = Session::create_in(base_.string(), "r");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("writable"), std::string::npos) << s.error().message();
  chmod(base_.c_str(), 0700);
  if (geteuid() == 0) {
    ASSERT_EQ(chown(base_.c_str(), 65534, 65534), 0);
    auto t = Session::create_in(base_.string(), "r");
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message().find("owned by"), std::string::npos) << t.error().message();
  }
}

TEST_F(DbcountSession, LibraryAttachesToEveryExecAndRefusesAnUnsafeFile) {
  auto s = Session::create_in(base_.string(), "r");
  ASSERT_TRUE(s) << s.error().message();
  // sh plus two exec'd children: three processes, none with a DB client.
  EXPECT_EQ(run_with(*s, {"/bin/sh", "-c", "/bin/true; /bin/true; :"}), 0);
  auto c = s->collect();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->at("db.processes"), 3);
  EXPECT_EQ(c->at("db.processes_with_client"), 0);
  EXPECT_FALSE(c->contains("db.queries"));

  // A file others could write is not ours to trust: the library stays inert.
  chmod(s->file_path().c_str(), 0644);
  EXPECT_EQ(run_with(*s, {"/bin/true"}), 0);
  chmod(s->file_path().c_str(), 0600);
  c = s->collect();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->at("db.processes"), 3);
}

TEST_F(DbcountSession, LibraryRefusesASymlinkedOrForeignFile) {
  auto s = Session::create_in(base_.string(), "r");
  ASSERT_TRUE(s) << s.error().message();
  std::string link = s->dir_path() + "/link";
  ASSERT_EQ(symlink(s->file_path().c_str(), link.c_str()), 0);
  EXPECT_EQ(run_with(*s, {"/bin/true"}, {std::string(CRONRUN_DB_ENV) + "=" + link}), 0);  // O_NOFOLLOW
  EXPECT_EQ(run_with(*s, {"/bin/true"}, {std::string(CRONRUN_DB_ENV) + "=relative/path"}), 0);
  unlink(link.c_str());
  auto c = s->collect();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->at("db.processes"), 0);
  EXPECT_EQ(run_with(*s, {"/bin/true"}), 0);  // the file itself is fine
  c = s->collect();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->at("db.processes"), 1);
}

TEST_F(DbcountSession, CollectRefusesASwappedFile) {
  auto s = Session::create_in(base_.string(), "r");
  ASSERT_TRUE(s) << s.error().message();
  std::string target = (base_ / "elsewhere").string();
  { int fd = open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600); close(fd); }
  ASSERT_EQ(unlink(s->file_path().c_str()), 0);
  ASSERT_EQ(symlink(target.c_str(), s->file_path().c_str()), 0);
  EXPECT_FALSE(s->collect());  // O_NOFOLLOW
  unlink(s->file_path().c_str());
  { int fd = open(s->file_path().c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600); close(fd); }
  auto c = s->collect();
  ASSERT_FALSE(c);  // truncated: wrong size
  EXPECT_NE(c.error().message().find("size"), std::string::npos) << c.error().message();
}
