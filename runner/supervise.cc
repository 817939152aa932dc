// The supervisor loop. Reaping: cronrun is a child subreaper, so daemonized
// grandchildren are re-parented to it; every SIGCHLD reaps everything reapable with
// wait4(-1), recognising the main process by pid. The main process's pidfd wakes
// the loop even if SIGCHLD was coalesced.
//
// Without a cgroup, "the whole job" is the main process group plus every process
// re-parented to us; /proc/self/task/*/children lists the latter.
#include "runner/supervise.h"

#include <dirent.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "runner/sys.h"

namespace cronrun {
namespace {

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

enum class Phase { running, terminating, killing, done };

// Children re-parented to this process (and direct children not yet reaped).
std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  std::ifstream f("/proc/self/task/" + std::to_string(gettid()) + "/children");
  pid_t p;
  while (f >> p) out.push_back(p);
  return out;
}

class Supervisor {
 public:
  Supervisor(Child& child, int signal_fd, const SuperviseConfig& cfg)
      : child_(child), signal_fd_(signal_fd), cfg_(cfg) {}

  Result<Outcome> run();

 private:
  Result<void> arm(std::chrono::milliseconds after);
  void reap();
  void forward(int sig);
  void terminate_all();
  void kill_all();
  void kill_leftovers();

  Child& child_;
  int signal_fd_;
  const SuperviseConfig& cfg_;
  UniqueFd timer_;
  Phase phase_ = Phase::running;
  bool main_done_ = false;
  Outcome out_;
};

Result<void> Supervisor::arm(std::chrono::milliseconds after) {
  struct itimerspec its {};
  auto ms = std::max<int64_t>(after.count(), 1);
  its.it_value.tv_sec = ms / 1000;
  its.it_value.tv_nsec = (ms % 1000) * 1000000;
  if (::timerfd_settime(timer_.get(), 0, &its, nullptr) != 0) return fail_sys("timerfd_settime", "");
  return {};
}

void Supervisor::reap() {
  for (;;) {
    int status = 0;
    struct rusage ru {};
    pid_t pid = ::wait4(-1, &status, WNOHANG | __WALL, &ru);
    if (pid <= 0) return;
    if (pid == child_.pid()) {
      main_done_ = true;
      out_.wait_status = status;
    }
  }
}

void Supervisor::forward(int sig) {
  out_.forwarded_signal = sig;
  // The job leads its own process group (setsid in the child); signal the group so
  // a shell script's foreground children hear it too, and the main pid in case the
  // job moved itself elsewhere.
  ::kill(-child_.pid(), sig);
  sys::pidfd_send_signal(child_.pidfd(), sig);
}

void Supervisor::terminate_all() {
  if (cfg_.cgroup) {
    (void)cfg_.cgroup->signal_all(SIGTERM);
  } else {
    ::kill(-child_.pid(), SIGTERM);
    for (pid_t p : own_children()) ::kill(p, SIGTERM);
  }
  sys::pidfd_send_signal(child_.pidfd(), SIGTERM);
}

void Supervisor::kill_all() {
  out_.escalated_to_kill = true;
  if (cfg_.cgroup) {
    (void)cfg_.cgroup->kill_all(2000);
  } else {
    ::kill(-child_.pid(), SIGKILL);
    for (pid_t p : own_children()) ::kill(p, SIGKILL);
  }
  sys::pidfd_send_signal(child_.pidfd(), SIGKILL);
}

// After the main process exited: whatever it left behind is an orphan.
void Supervisor::kill_leftovers() {
  if (cfg_.cgroup) {
    auto pids = cfg_.cgroup->pids();
    size_t n = pids ? pids->size() : 0;
    if (cfg_.keep_orphans) {
      out_.orphans_left = n;
      return;
    }
    if (n > 0 || !pids) {
      out_.orphans_killed = n;
      (void)cfg_.cgroup->kill_all(5000);
    }
    reap();
    return;
  }
  // No cgroup: the process group, then re-parented children, until none is left.
  std::set<pid_t> seen;
  for (int pass = 0; pass < 200; ++pass) {
    reap();
    std::vector<pid_t> kids = own_children();
    bool group_alive = ::kill(-child_.pid(), 0) == 0;
    if (kids.empty() && !group_alive) break;
    if (cfg_.keep_orphans) {
      out_.orphans_left = kids.size();
      return;
    }
    for (pid_t p : kids) seen.insert(p);
    ::kill(-child_.pid(), SIGKILL);
    for (pid_t p : kids) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  out_.orphans_killed = seen.size();
  reap();
}

Result<Outcome> Supervisor::run() {
  int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) return fail_sys("timerfd_create", "");
  timer_.reset(tfd);
  if (cfg_.timeout)
    if (auto r = arm(*cfg_.timeout); !r) return std::unexpected(r.error());

  std::vector<int> outputs = cfg_.output ? cfg_.output->poll_fds() : std::vector<int>{};
  while (!main_done_) {
    std::vector<pollfd> fds = {{child_.pidfd(), POLLIN, 0}, {signal_fd_, POLLIN, 0}, {timer_.get(), POLLIN, 0}};
    for (int fd : outputs) fds.push_back({fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_sys("poll", "");
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo != SIGCHLD) forward(static_cast<int>(si.ssi_signo));
      }
    }
    if (fds[2].revents & POLLIN) {
      uint64_t expirations;
      (void)!::read(timer_.get(), &expirations, sizeof expirations);
      if (phase_ == Phase::running) {
        phase_ = Phase::terminating;
        out_.timed_out = true;
        terminate_all();
        if (auto r = arm(cfg_.kill_after); !r) return std::unexpected(r.error());
      } else if (phase_ == Phase::terminating) {
        phase_ = Phase::killing;
        kill_all();
      }
    }
    for (size_t i = 3; i < fds.size(); ++i)
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
        if (!cfg_.output->pump(fds[i].fd)) std::erase(outputs, fds[i].fd);
    reap();
  }
  phase_ = Phase::done;
  kill_leftovers();

  // Drain output: after the leftovers are gone the pipes hit EOF; with orphans
  // kept alive they may stay open, so the drain is bounded.
  auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(out_.orphans_left ? 200 : 5000);
  while (!outputs.empty() && std::chrono::steady_clock::now() < drain_deadline) {
    std::vector<pollfd> fds;
    for (int fd : outputs) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) break;
    for (const auto& p : fds)
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        if (!cfg_.output->pump(p.fd)) std::erase(outputs, p.fd);
  }

  struct rusage ru {};
  if (::getrusage(RUSAGE_CHILDREN, &ru) == 0) {
    out_.max_rss_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
    out_.cpu_user_s = static_cast<double>(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec / 1e6;
    out_.cpu_system_s = static_cast<double>(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec / 1e6;
    // The counts are in 512-byte units whatever the device's block size.
    out_.io_read_bytes = static_cast<uint64_t>(ru.ru_inblock) * 512;
    out_.io_write_bytes = static_cast<uint64_t>(ru.ru_oublock) * 512;
  }
  return out_;
}

}  // namespace

Result<UniqueFd> prepare_supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwarded) sigaddset(&set, s);
  sigaddset(&set, SIGCHLD);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return fail_sys("sigprocmask", "");
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return fail_sys("signalfd", "");
  // Daemonizing grandchildren come back to us instead of init, so they can be
  // found and killed without a cgroup, and reaped in every case.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return fail_sys("prctl", "PR_SET_CHILD_SUBREAPER");
  ::signal(SIGPIPE, SIG_IGN);
  return UniqueFd(fd);
}

Result<Outcome> supervise(Child& child, int signal_fd, const SuperviseConfig& cfg) {
  Supervisor s(child, signal_fd, cfg);
  return s.run();
}

}  // namespace cronrun
