// spawn(): what the child does between clone and exec, and how its failures come
// back. Plain fork (no cgroup): the join files here are ordinary fds, which is
// all the child sees of a cgroup's `tasks` / `cgroup.procs` anyway.
#include "runner/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <cstdlib>

namespace cronrun {
namespace {

struct Ended {
  std::optional<ChildFailure> failure;
  int status = 0;
};

Ended run_to_end(const SpawnRequest& req) {
  auto child = spawn(req);
  EXPECT_TRUE(child) << child.error().message();
  if (!child) return {};
  EXPECT_EQ(std::string(child->method()), req.join_fds.empty() ? "fork" : "fork+join");
  auto result = child->exec_result();
  EXPECT_TRUE(result) << result.error().message();
  Ended e;
  if (result) e.failure = *result;
  EXPECT_EQ(::waitpid(child->pid(), &e.status, 0), child->pid());
  return e;
}

TEST(Spawn, ChildWritesZeroToEveryJoinFileBeforeExec) {
  int p1[2], p2[2];
  ASSERT_EQ(::pipe2(p1, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(p2, O_CLOEXEC), 0);
  SpawnRequest req;
  req.argv = {"/bin/true"};
  req.join_fds = {p1[1], p2[1]};
  Ended e = run_to_end(req);
  EXPECT_FALSE(e.failure);
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0) << e.status;
  for (int* p : {p1, p2}) {
    ::close(p[1]);
    char buf[4] = {};
    EXPECT_EQ(::read(p[0], buf, sizeof buf), 1);
    EXPECT_EQ(buf[0], '0');
    ::close(p[0]);
  }
}

TEST(Spawn, FailedJoinStopsTheChildBeforeExecAndNamesTheFile) {
  int ro = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  int marker[2];
  ASSERT_EQ(::pipe2(marker, O_CLOEXEC), 0);
  SpawnRequest req;
  // Had the job run, it would have written to the inherited stdout pipe.
  req.argv = {"/bin/echo", "ran"};
  req.stdout_fd = marker[1];
  req.join_fds = {marker[1], ro};  // the first join succeeds, the second cannot
  Ended e = run_to_end(req);
  ::close(marker[1]);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->stage, ChildFailure::Stage::join);
  EXPECT_EQ(e.failure->index, 1);
  EXPECT_EQ(e.failure->err, EBADF);
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 125) << e.status;
  char buf[16] = {};
  EXPECT_EQ(::read(marker[0], buf, sizeof buf), 1);  // only the first join's "0"
  EXPECT_EQ(std::string(buf), "0");
  ::close(marker[0]);
  ::close(ro);
}

TEST(Spawn, FailedSetupIsNamedAndExits125) {
  SpawnRequest req;
  req.argv = {"/bin/true"};
  req.rlimits = {{9999, 1}};  // no such resource: setrlimit fails with EINVAL
  Ended e = run_to_end(req);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->stage, ChildFailure::Stage::setup);
  EXPECT_STREQ(e.failure->step(), "setrlimit");
  EXPECT_EQ(e.failure->err, EINVAL);
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 125) << e.status;
}

TEST(Spawn, ExecFailureKeeps126And127) {
  SpawnRequest req;
  req.argv = {"/nonexistent/cronrun-job"};
  Ended e = run_to_end(req);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->stage, ChildFailure::Stage::exec);
  EXPECT_EQ(e.failure->err, ENOENT);
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 127) << e.status;

  // A file without execute permission (root too needs an x bit to exec).
  char path[] = "/tmp/cronrun-spawn-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fchmod(fd, 0644), 0);
  ::close(fd);
  req.argv = {path};
  e = run_to_end(req);
  ::unlink(path);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->stage, ChildFailure::Stage::exec);
  EXPECT_EQ(e.failure->err, EACCES);
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 126) << e.status;
}

// Issue 14 #16: the job dies with its runner (a SIGKILLed runner cannot enforce
// the timeout, and its lock is gone). A stand-in runner spawns a sleeper, reports
// its pid and is SIGKILLed; the sleeper must not outlive it.
TEST(Spawn, JobDiesWithItsRunner) {
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  pid_t runner = ::fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    SpawnRequest req;
    req.argv = {"/bin/sleep", "30"};
    auto child = spawn(req);
    pid_t pid = child ? child->pid() : -1;
    if (::write(report[1], &pid, sizeof pid) != sizeof pid) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  ::close(report[1]);
  pid_t job = -1;
  ASSERT_EQ(::read(report[0], &job, sizeof job), static_cast<ssize_t>(sizeof job));
  ::close(report[0]);
  ASSERT_GT(job, 0);
  ASSERT_EQ(::kill(job, 0), 0);
  ASSERT_EQ(::kill(runner, SIGKILL), 0);
  ASSERT_EQ(::waitpid(runner, nullptr, 0), runner);
  // The sleeper was reparented (to init or a subreaper): gone, or a zombie.
  auto gone = [job] {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", job);
    FILE* f = std::fopen(path, "r");
    if (!f) return true;
    char buf[512] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const char* close = std::strrchr(buf, ')');
    return n > 0 && close && close[1] == ' ' && close[2] == 'Z';
  };
  // The kill on the runner's death is prompt; the bound is for a loaded machine.
  for (int i = 0; i < 3000 && !gone(); ++i) ::usleep(10000);
  bool died = gone();
  if (!died) ::kill(job, SIGKILL);
  EXPECT_TRUE(died) << "the job " << job << " outlived its runner";
}

}  // namespace
}  // namespace cronrun
