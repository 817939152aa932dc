// The test supervisor for seccomp runs (seccomp_harness.h). The child side copies
// the runner's spawn path: PR_SET_PDEATHSIG, output redirection, then
// install_in_child() last and execve; everything it touches is prepared before
// fork, and it reports a failure over the CLOEXEC status pipe with write(2),
// which the filter's exec window allows.
#include "tests/integration/seccomp_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

namespace cronrun::seccomp::testing {
namespace {

struct ChildReport {
  int32_t step;  // 0 exec, else ChildInstall::Step
  int32_t err;
};

[[noreturn]] void child_report(int fd, int32_t step, int err) {
  ChildReport r{step, err};
  while (::write(fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
  ::_exit(step == 0 ? 127 : 125);
}

using Clock = std::chrono::steady_clock;

}  // namespace

RunOutcome run_filtered(const Profile* profile, const std::vector<std::string>& argv, const RunOptions& opt) {
  RunOutcome out;
  int status_fds[2];
  if (::pipe2(status_fds, O_CLOEXEC) != 0) {
    out.error = fmt::format("pipe2: {}", std::strerror(errno));
    return out;
  }
  UniqueFd status_read(status_fds[0]), status_write(status_fds[1]);
  auto channel = make_listener_channel();
  if (!channel) {
    out.error = channel.error().message();
    return out;
  }
  std::optional<CompiledFilter> filter;
  if (profile != nullptr) {
    auto f = compile_filter(*profile, {channel->child_end.get(), status_write.get()});
    if (!f) {
      out.error = f.error().message();
      return out;
    }
    filter = std::move(*f);
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : opt.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const auto started = Clock::now();

  const pid_t pid = ::fork();
  if (pid < 0) {
    out.error = fmt::format("fork: {}", std::strerror(errno));
    return out;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(125);
    if (opt.stdout_fd >= 0) {
      ::dup2(opt.stdout_fd, 1);
      ::dup2(opt.stdout_fd, 2);
    }
    if (!opt.cwd.empty() && ::chdir(opt.cwd.c_str()) != 0) child_report(status_write.get(), 0, errno);
    if (filter) {
      ChildInstall r = install_in_child(*filter, channel->child_end.get());
      if (r.err != 0) child_report(status_write.get(), static_cast<int32_t>(r.step), r.err);
    }
    ::execve(args[0], args.data(), envp.data());
    child_report(status_write.get(), 0, errno);
  }
  channel->child_end.reset();
  status_write.reset();

  // The exec outcome, bounded: a child stuck in the window would hang here.
  struct pollfd sp {status_read.get(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&sp, 1, 10'000);
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) {
    out.error = "the child did not exec within 10 s (blocked between loading the filter and exec?)";
    out.timed_out = true;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &out.wait_status, 0);
    return out;
  }
  ChildReport report{};
  ssize_t n;
  do {
    n = ::read(status_read.get(), &report, sizeof report);
  } while (n < 0 && errno == EINTR);
  out.exec_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (n == static_cast<ssize_t>(sizeof report)) {
    ChildInstall step;
    step.step = static_cast<ChildInstall::Step>(report.step);
    out.exec_error = fmt::format("{}: {}", report.step == 0 ? "execve" : step.step_name(), std::strerror(report.err));
  }

  std::optional<Listener> listener;
  if (filter && out.exec_error.empty() && !opt.drop_channel) {
    auto fd = receive_listener(channel->parent_end.get());
    if (!fd) {
      out.error = fd.error().message();
    } else if (!opt.close_listener) {
      auto l = Listener::create(std::move(*fd), *profile);
      if (!l) out.error = l.error().message();
      else listener.emplace(std::move(*l));
    }
  }
  channel->parent_end.reset();

  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  const auto deadline = started + opt.limit;
  bool exited = false;
  std::optional<Clock::time_point> drain_until;
  bool hung_up = false;
  while (true) {
    const auto now = Clock::now();
    if (now >= deadline) {
      out.timed_out = true;
      out.error = "timed out";
      ::kill(pid, SIGKILL);
      break;
    }
    if (exited && (!listener || hung_up || (drain_until && now >= *drain_until))) break;
    struct pollfd fds[2];
    nfds_t count = 0;
    if (!exited) fds[count++] = {pidfd.get(), POLLIN, 0};
    if (listener && !hung_up) fds[count++] = {listener->fd(), POLLIN, 0};
    const int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>((drain_until ? *drain_until : deadline) - now).count());
    int r = ::poll(fds, count, std::max(wait_ms, 1));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      out.error = fmt::format("poll: {}", std::strerror(errno));
      break;
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == pidfd.get()) {
        struct rusage ru {};
        ::wait4(pid, &out.wait_status, 0, &ru);
        out.cpu_us = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        exited = true;
        drain_until = Clock::now() + std::chrono::seconds(5);
      } else if (listener) {
        if (fds[i].revents & POLLIN) {
          auto h = listener->handle_ready();
          if (!h) out.error = h.error().message();
        } else if (fds[i].revents & (POLLHUP | POLLERR)) {
          // No task uses the filter any more: everything it will report is in.
          // Stop polling it (it would stay ready) and keep the summary.
          hung_up = true;
          if (exited) drain_until = Clock::now();
        }
      }
    }
  }
  if (!exited) ::waitpid(pid, &out.wait_status, 0);
  if (listener) out.summary = listener->summary();
  return out;
}

std::string describe(const RunOutcome& o) {
  std::string s;
  if (!o.exec_error.empty()) s += "exec failed: " + o.exec_error + "; ";
  if (!o.error.empty()) s += "harness: " + o.error + "; ";
  if (o.wait_status < 0) return s + "not run";
  if (WIFEXITED(o.wait_status)) return s + fmt::format("exit {}", WEXITSTATUS(o.wait_status));
  if (WIFSIGNALED(o.wait_status)) return s + fmt::format("signal {}", strsignal(WTERMSIG(o.wait_status)));
  return s + "unknown status";
}

}  // namespace cronrun::seccomp::testing
