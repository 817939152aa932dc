// The supervisor loop. Reaping: cronrun is a child subreaper, so daemonized
// grandchildren are re-parented to it; every SIGCHLD reaps everything reapable with
// wait4(-1), recognising the main process by pid. The main process's pidfd wakes
// the loop even if SIGCHLD was coalesced.
//
// Without a cgroup, "the whole job" is the main process group plus every process
// re-parented to us; /proc/self/task/*/children lists the latter.
//
// After a timeout's SIGTERM the loop runs until the whole tree is gone or
// kill-after expires, not just the main process: in `sh -c 'dump | gzip'` the
// shell dies of SIGTERM at once while gzip may still be writing its last block.
// Waiting is poll's only: SIGCHLD (every process of the tree is re-parented to
// us), cgroup.events' POLLPRI where the cgroup has one, and a short poll timeout
// as the backstop.
//
// Signals and kills that fail for a reason other than "already gone" are logged
// once each and returned in Outcome::failures for the run record: a tree cronrun
// could not stop must not read as a clean run.
#include "runner/supervise.h"

#include <dirent.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "runner/log.h"
#include "runner/sys.h"

namespace cronrun {
namespace {

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

enum class Phase { running, terminating, killing, done };

// Children re-parented to this process (and direct children not yet reaped).
std::string sig_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

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
  bool tree_empty();
  bool in_grace();
  void failure(const std::string& what);
  void signal_group(int sig);
  void signal_pid(pid_t pid, int sig);
  void signal_main(int sig);

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

void Supervisor::failure(const std::string& what) {
  if (std::find(out_.failures.begin(), out_.failures.end(), what) != out_.failures.end()) return;
  log::warn(what);
  out_.failures.push_back(what);
}

void Supervisor::signal_group(int sig) {
  if (::kill(-child_.pid(), sig) != 0 && errno != ESRCH)
    failure(fmt::format("sending {} to the job's process group {}: {}", sig_name(sig), child_.pid(),
                        std::strerror(errno)));
}

void Supervisor::signal_pid(pid_t pid, int sig) {
  if (::kill(pid, sig) != 0 && errno != ESRCH)
    failure(fmt::format("sending {} to pid {}: {}", sig_name(sig), pid, std::strerror(errno)));
}

void Supervisor::signal_main(int sig) {
  if (main_done_) return;  // reaped: the pidfd refers to no process any more
  if (sys::pidfd_send_signal(child_.pidfd(), sig) != 0 && errno != ESRCH)
    failure(fmt::format("sending {} to the job's main process {}: {}", sig_name(sig), child_.pid(),
                        std::strerror(errno)));
}

void Supervisor::forward(int sig) {
  out_.forwarded_signal = sig;
  // The job leads its own process group (setsid in the child); signal the group so
  // a shell script's foreground children hear it too, and the main pid in case the
  // job moved itself elsewhere.
  signal_group(sig);
  signal_main(sig);
}

void Supervisor::terminate_all() {
  if (cfg_.cgroup) {
    if (auto r = cfg_.cgroup->signal_all(SIGTERM); !r)
      failure(fmt::format("sending SIGTERM to cgroup {}: {}", cfg_.cgroup->path(), r.error().message()));
  } else {
    signal_group(SIGTERM);
    for (pid_t p : own_children()) signal_pid(p, SIGTERM);
  }
  signal_main(SIGTERM);
}

void Supervisor::kill_all() {
  out_.escalated_to_kill = true;
  if (cfg_.cgroup) {
    if (auto r = cfg_.cgroup->kill_all(2000); !r)
      failure(fmt::format("killing cgroup {}: {}", cfg_.cgroup->path(), r.error().message()));
  } else {
    signal_group(SIGKILL);
    for (pid_t p : own_children()) signal_pid(p, SIGKILL);
  }
  signal_main(SIGKILL);
}

// Whether anything of the job is left besides the (reaped) main process.
bool Supervisor::tree_empty() {
  reap();
  if (cfg_.cgroup) {
    auto pids = cfg_.cgroup->pids();
    return pids && pids->empty();  // unreadable: not known to be empty
  }
  return own_children().empty() && ::kill(-child_.pid(), 0) != 0;
}

// After a timeout's SIGTERM the main process died, the rest still has kill-after.
// With --keep-orphans what is left stays anyway: nothing to wait for.
bool Supervisor::in_grace() {
  return main_done_ && phase_ == Phase::terminating && !cfg_.keep_orphans && !tree_empty();
}

// After the main process exited: whatever it left behind is an orphan.
void Supervisor::kill_leftovers() {
  if (cfg_.cgroup) {
    auto pids = cfg_.cgroup->pids();
    if (!pids) failure(fmt::format("listing the processes of cgroup {}: {}", cfg_.cgroup->path(), pids.error().message()));
    size_t n = pids ? pids->size() : 0;
    if (cfg_.keep_orphans) {
      out_.orphans_left = n;
      return;
    }
    if (n > 0 || !pids) {
      out_.orphans_killed = n;
      if (phase_ == Phase::killing) out_.escalated_to_kill = true;
      if (auto r = cfg_.cgroup->kill_all(5000); !r)
        failure(fmt::format("killing what the job left in cgroup {}: {}", cfg_.cgroup->path(), r.error().message()));
    }
    reap();
    return;
  }
  // No cgroup: the process group, then re-parented children, until none is left.
  std::set<pid_t> seen;
  bool gone = false;
  for (int pass = 0; pass < 200; ++pass) {
    reap();
    std::vector<pid_t> kids = own_children();
    bool group_alive = ::kill(-child_.pid(), 0) == 0;
    if (kids.empty() && !group_alive) {
      gone = true;
      break;
    }
    if (cfg_.keep_orphans) {
      out_.orphans_left = kids.size();
      return;
    }
    for (pid_t p : kids) seen.insert(p);
    if (phase_ == Phase::killing) out_.escalated_to_kill = true;
    signal_group(SIGKILL);
    for (pid_t p : kids) signal_pid(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!gone) failure(fmt::format("processes of the job's process group {} survived SIGKILL", child_.pid()));
  out_.orphans_killed = seen.size();
  reap();
}

Result<Outcome> Supervisor::run() {
  int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) return fail_sys("timerfd_create", "");
  timer_.reset(tfd);
  if (cfg_.timeout)
    if (auto r = arm(*cfg_.timeout); !r) return std::unexpected(r.error());

  int events_fd = cfg_.cgroup ? cfg_.cgroup->events_fd() : -1;
  for (;;) {
    bool grace = false;
    if (main_done_) {
      grace = in_grace();
      if (!grace) break;
    }
    // The main process's pidfd stays readable once it has exited: polled only
    // while it runs. In the grace, cgroup.events is read first so that its next
    // change ("populated 0") raises POLLPRI.
    std::vector<pollfd> fds = {{signal_fd_, POLLIN, 0}, {timer_.get(), POLLIN, 0}};
    if (!main_done_) fds.push_back({child_.pidfd(), POLLIN, 0});
    if (grace && events_fd >= 0) {
      char buf[256];
      if (::pread(events_fd, buf, sizeof buf, 0) >= 0) fds.push_back({events_fd, POLLPRI, 0});
    }
    size_t first_output = fds.size();
    if (cfg_.output) cfg_.output->add_poll(fds);
    int n = ::poll(fds.data(), fds.size(), grace ? 100 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_sys("poll", "");
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo != SIGCHLD) forward(static_cast<int>(si.ssi_signo));
      }
    }
    if (fds[1].revents & POLLIN) {
      uint64_t expirations;
      if (::read(timer_.get(), &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        return fail_sys("read", "timerfd");
      if (phase_ == Phase::running) {
        phase_ = Phase::terminating;
        out_.timed_out = true;
        terminate_all();
        if (auto r = arm(cfg_.kill_after); !r) return std::unexpected(r.error());
      } else if (phase_ == Phase::terminating) {
        phase_ = Phase::killing;
        // With the main process gone, kill_leftovers() counts and kills the rest.
        if (!main_done_) kill_all();
      }
    }
    if (cfg_.output) cfg_.output->on_poll(std::span<const pollfd>(fds).subspan(first_output));
    reap();
  }
  if (phase_ != Phase::killing) phase_ = Phase::done;
  kill_leftovers();

  // Drain output: after the leftovers are gone the pipes hit EOF; with orphans
  // kept alive they may stay open, so the drain is bounded.
  auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(out_.orphans_left ? 200 : 5000);
  while (cfg_.output && cfg_.output->reading() && std::chrono::steady_clock::now() < drain_deadline) {
    std::vector<pollfd> fds;
    cfg_.output->add_poll(fds);
    if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) break;
    cfg_.output->on_poll(fds);
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
