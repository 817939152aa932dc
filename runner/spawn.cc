// clone3/fork and the child's path to exec. Everything the child touches (argv,
// envp, PATH candidates) is laid out by the parent beforehand; the child only
// calls async-signal-safe functions and never allocates.
#include "runner/spawn.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iterator>
#include <optional>

#include "runner/log.h"
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
  // The syscall filter the child installs last (nullptr: none), and its end of
  // the listener channel.
  const seccomp::CompiledFilter* filter = nullptr;
  int transfer_fd = -1;
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

// Setup steps, named for ChildFailure::step(); the child reports the index.
enum SetupStep : int32_t {
  kDeathSignal, kDupStdout, kDupStderr, kNice, kIonice, kRlimit, kNoNewPrivs, kSeccompLoad, kSeccompSend
};
constexpr const char* kSetupSteps[] = {"prctl(PR_SET_PDEATHSIG)",    "dup2 stdout",
                                       "dup2 stderr",                "setpriority",
                                       "ioprio_set",                 "setrlimit",
                                       "prctl(PR_SET_NO_NEW_PRIVS)", "seccomp(SECCOMP_SET_MODE_FILTER)",
                                       "sendmsg(seccomp listener)"};

SetupStep seccomp_step(seccomp::ChildInstall::Step step) {
  switch (step) {
    case seccomp::ChildInstall::Step::no_new_privs: return kNoNewPrivs;
    case seccomp::ChildInstall::Step::load: return kSeccompLoad;
    case seccomp::ChildInstall::Step::none:
    case seccomp::ChildInstall::Step::send_listener: break;
  }
  return kSeccompSend;
}

[[noreturn]] void child_fail(int status_fd, ChildFailure::Stage stage, int32_t index, int err) {
  ChildFailure f;
  f.stage = stage;
  f.index = index;
  f.err = err;
  while (::write(status_fd, &f, sizeof f) < 0 && errno == EINTR) {
  }
  if (stage != ChildFailure::Stage::exec) ::_exit(125);
  ::_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

// Runs in the child between clone and exec: async-signal-safe calls only.
[[noreturn]] void child_main(const SpawnRequest& req, const ChildPlan& plan, int status_write, pid_t runner) {
  // The job dies with its runner: a runner that is SIGKILLed cannot enforce the
  // timeout any more, and its lock is gone, so a job left running would run beside
  // the next one. The runner is single-threaded, so "the parent thread exits" is
  // "the runner exits". If it died before the prctl, getppid() is no longer it.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    child_fail(status_write, ChildFailure::Stage::setup, kDeathSignal, errno);
  if (::getppid() != runner) ::_exit(125);
  // Join first: nothing the job does, not even its setup, happens outside.
  // From the stack: a literal's page in .rodata would be one more fault here (a
  // forked child maps the runner's file pages again as it touches them).
  const char zero = '0';
  for (size_t i = 0; i < req.join_fds.size(); ++i) {
    ssize_t n;
    do {
      n = ::write(req.join_fds[i], &zero, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) child_fail(status_write, ChildFailure::Stage::join, static_cast<int32_t>(i), n < 0 ? errno : EIO);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  // Own session and process group: the fallback kill (no cgroup) signals -pgid, and
  // a terminal's signals reach the job only through cronrun's forwarding.
  ::setsid();
  auto setup_fail = [status_write](SetupStep step) {
    child_fail(status_write, ChildFailure::Stage::setup, step, errno);
  };
  if (req.stdout_fd >= 0 && ::dup2(req.stdout_fd, 1) < 0) setup_fail(kDupStdout);
  if (req.stderr_fd >= 0 && ::dup2(req.stderr_fd, 2) < 0) setup_fail(kDupStderr);
  if (req.nice && ::setpriority(PRIO_PROCESS, 0, *req.nice) != 0) setup_fail(kNice);
  if (req.ionice && sys::ioprio_set_self(req.ionice->io_class, req.ionice->level) != 0) setup_fail(kIonice);
  for (const auto& [resource, limit] : req.rlimits) {
    struct rlimit rl{limit, limit};
    if (::setrlimit(resource, &rl) != 0) setup_fail(kRlimit);
  }
  // Last: after this only execve, the status write and _exit may run (the
  // filter's exec window, seccomp_filter.h).
  if (plan.filter) {
    seccomp::ChildInstall r = seccomp::install_in_child(*plan.filter, plan.transfer_fd);
    if (r.err != 0) child_fail(status_write, ChildFailure::Stage::setup, seccomp_step(r.step), r.err);
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
  child_fail(status_write, ChildFailure::Stage::exec, 0, err);
}

}  // namespace

const char* ChildFailure::step() const {
  if (stage != Stage::setup || index < 0 || static_cast<size_t>(index) >= std::size(kSetupSteps)) return "setup";
  return kSetupSteps[index];
}

Result<std::optional<ChildFailure>> Child::exec_result() {
  if (!status_read_) return std::optional<ChildFailure>();
  ChildFailure f;
  ssize_t n;
  do {
    n = ::read(status_read_.get(), &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  status_read_.reset();
  if (n < 0) return fail_sys("read", "spawn status pipe");
  if (n == 0) return std::optional<ChildFailure>();
  if (n != static_cast<ssize_t>(sizeof f)) return fail("spawn status pipe: short message from the child");
  return std::optional<ChildFailure>(f);
}

Result<UniqueFd> Child::take_seccomp_listener() {
  if (!seccomp_channel_) return fail("seccomp listener: the job has no filter");
  auto fd = seccomp::receive_listener(seccomp_channel_.get());
  seccomp_channel_.reset();
  return fd;
}

Result<Child> spawn(const SpawnRequest& req) {
  if (req.argv.empty()) return fail("empty command");
  ChildPlan plan = plan_exec(req);
  auto status = make_pipe();
  if (!status) return std::unexpected(status.error());
  // The filter is compiled (or read from the cache) for this child's descriptors.
  std::optional<seccomp::ListenerChannel> channel;
  std::optional<seccomp::CompiledFilter> filter;
  if (req.seccomp) {
    auto ch = seccomp::make_listener_channel();
    if (!ch) return std::unexpected(std::move(ch.error()).context("--seccomp"));
    channel.emplace(std::move(*ch));
    std::string cache_note;
    auto f = seccomp::load_filter(*req.seccomp, {channel->child_end.get(), status->write.get()},
                                  req.seccomp_cache_dir, &cache_note);
    if (!cache_note.empty()) log::info(cache_note);
    if (!f) return std::unexpected(std::move(f.error()).context("--seccomp " + req.seccomp->name));
    filter.emplace(std::move(*f));
    plan.filter = &*filter;
    plan.transfer_fd = channel->child_end.get();
  }

  Child child;
  int pidfd = -1;
  pid_t pid;
  const bool join = !req.join_fds.empty();
  const pid_t runner = ::getpid();
  if (req.cgroup_fd >= 0) {
    pid = sys::clone3_fork(&pidfd, req.cgroup_fd);
    child.method_ = join ? "clone3(CLONE_INTO_CGROUP)+join" : "clone3(CLONE_INTO_CGROUP)";
  } else {
    pid = ::fork();
    child.method_ = join ? "fork+join" : "fork";
  }
  if (pid < 0) return fail_sys(req.cgroup_fd >= 0 ? "clone3" : "fork", "");
  if (pid == 0) child_main(req, plan, status->write.get(), runner);

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
  if (channel) child.seccomp_channel_ = std::move(channel->parent_end);
  return child;
}

}  // namespace cronrun
