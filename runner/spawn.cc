// clone3/fork and the child's path to exec. Everything the child touches (argv,
// envp, PATH candidates) is laid out by the parent beforehand; the child only
// calls async-signal-safe functions and never allocates.
#include "runner/spawn.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "runner/sys.h"

namespace cronrun {
namespace {

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_sys("pipe2", "");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Everything the child needs, as raw pointers into parent-owned storage.
struct ChildPlan {
  std::vector<std::string> candidates;
  std::vector<const char*> candidate_ptrs;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

ChildPlan plan_exec(const SpawnRequest& req) {
  ChildPlan plan;
  const std::string& name = req.argv.front();
  if (name.find('/') != std::string::npos) {
    plan.candidates.push_back(name);
  } else {
    // Both arms are string_views: a literal against std::string would make the
    // conditional a temporary std::string, and `path` would dangle.
    std::string_view path = req.path_env.empty() ? std::string_view("/usr/local/bin:/usr/bin:/bin")
                                                 : std::string_view(req.path_env);
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string_view::npos) end = path.size();
      std::string dir(path.substr(start, end - start));
      plan.candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + name);
      start = end + 1;
    }
  }
  for (const auto& c : plan.candidates) plan.candidate_ptrs.push_back(c.c_str());
  plan.candidate_ptrs.push_back(nullptr);
  for (const auto& a : req.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (const auto& e : req.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(nullptr);
  return plan;
}

[[noreturn]] void child_fail(int status_fd, int err) {
  while (::write(status_fd, &err, sizeof err) < 0 && errno == EINTR) {
  }
  ::_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

// Runs in the child between clone and exec: async-signal-safe calls only.
[[noreturn]] void child_main(const SpawnRequest& req, const ChildPlan& plan, int go_read, int status_write) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (go_read >= 0) {
    char go = 0;
    ssize_t n;
    do {
      n = ::read(go_read, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(125);  // the parent could not place us: never run unplaced
  }
  // Own session and process group: the fallback kill (no cgroup) signals -pgid, and
  // a terminal's signals reach the job only through cronrun's forwarding.
  ::setsid();
  if (req.stdout_fd >= 0 && ::dup2(req.stdout_fd, 1) < 0) child_fail(status_write, errno);
  if (req.stderr_fd >= 0 && ::dup2(req.stderr_fd, 2) < 0) child_fail(status_write, errno);
  if (req.nice && ::setpriority(PRIO_PROCESS, 0, *req.nice) != 0) child_fail(status_write, errno);
  if (req.ionice && sys::ioprio_set_self(req.ionice->io_class, req.ionice->level) != 0)
    child_fail(status_write, errno);
  for (const auto& [resource, limit] : req.rlimits) {
    struct rlimit rl{limit, limit};
    if (::setrlimit(resource, &rl) != 0) child_fail(status_write, errno);
  }
  int err = ENOENT;
  bool saw_eacces = false;
  for (const char* const* c = plan.candidate_ptrs.data(); *c != nullptr; ++c) {
    ::execve(*c, plan.argv.data(), plan.envp.data());
    err = errno;
    if (err == EACCES) saw_eacces = true;
    if (err != ENOENT && err != ENOTDIR && err != EACCES) break;
  }
  if (saw_eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  child_fail(status_write, err);
}

}  // namespace

Result<void> Child::release() {
  if (!go_write_) return {};
  char go = 1;
  ssize_t n;
  do {
    n = ::write(go_write_.get(), &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return fail_sys("write", "spawn handshake pipe");
  go_write_.reset();
  return {};
}

Result<std::optional<int>> Child::exec_result() {
  if (!status_read_) return std::optional<int>();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(status_read_.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  status_read_.reset();
  if (n < 0) return fail_sys("read", "spawn status pipe");
  if (n == 0) return std::optional<int>();
  return std::optional<int>(err);
}

Result<Child> spawn(const SpawnRequest& req) {
  if (req.argv.empty()) return fail("empty command");
  ChildPlan plan = plan_exec(req);
  auto status = make_pipe();
  if (!status) return std::unexpected(status.error());
  std::optional<Pipe> go;
  if (req.handshake) {
    auto p = make_pipe();
    if (!p) return std::unexpected(p.error());
    go = std::move(*p);
  }

  Child child;
  int pidfd = -1;
  pid_t pid;
  if (req.cgroup_fd >= 0 && !req.handshake) {
    pid = sys::clone3_fork(&pidfd, req.cgroup_fd);
    child.method_ = "clone3";
  } else {
    pid = ::fork();
    child.method_ = req.handshake ? "fork+handshake" : "fork";
  }
  if (pid < 0) return fail_sys(child.method_ == std::string("clone3") ? "clone3" : "fork", "");
  if (pid == 0) child_main(req, plan, go ? go->read.get() : -1, status->write.get());

  child.pid_ = pid;
  if (pidfd < 0) pidfd = sys::pidfd_open(pid);
  if (pidfd < 0) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return fail_sys("pidfd_open", "", err);
  }
  child.pidfd_.reset(pidfd);
  child.status_read_ = std::move(status->read);
  if (go) child.go_write_ = std::move(go->write);
  return child;
}

}  // namespace cronrun
