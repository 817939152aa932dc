// The supervisor loop and the real job it watches.
//
// Reaping: cronrun is a child subreaper, so daemonized grandchildren are
// re-parented to it; every wake-up reaps everything reapable with wait4(-1),
// recognising the main process by pid. The main process's pidfd wakes the loop
// even if SIGCHLD was coalesced.
//
// Time: the loop polls with the machine's next deadline as its timeout. Fleet
// mode's lease deadline is on a timerfd (CLOCK_MONOTONIC, absolute), re-armed
// whenever a renewal moves it: it does not depend on the poll timeout being
// computed right, and the keepalive's messages that move it arrive on the same
// poll. After a timeout's SIGTERM the loop runs until the whole tree is gone
// or kill-after expires, not just the main process: in `sh -c 'dump | gzip'` the
// shell dies of SIGTERM at once while gzip may still be writing its last block.
// Waiting then is poll's only: SIGCHLD (every process of the tree is re-parented
// to us), cgroup.events' POLLPRI where the cgroup has one, and a short poll
// timeout as the backstop.
#include "runner/supervise.h"

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
#include <span>
#include <vector>

#include <fmt/format.h>

#include "runner/escalation.h"
#include "runner/fleet.h"
#include "runner/log.h"
#include "runner/sys.h"

namespace cronrun {
namespace {

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
// How often the tree is looked at in the grace when nothing wakes the loop.
constexpr std::chrono::milliseconds kGraceBackstop{100};

class ProcessJob final : public RunningJob {
 public:
  ProcessJob(Child child, UniqueFd signal_fd, std::optional<seccomp::Listener> listener)
      : child_(std::move(child)), signal_fd_(std::move(signal_fd)), listener_(std::move(listener)) {}

  pid_t pid() const override { return child_.pid(); }
  Result<Wake> wait(std::optional<std::chrono::milliseconds> timeout, int watch_fd, OutputCapture* output,
                    std::span<pollfd> extra) override;
  void reap() override;
  bool exited() const override { return exited_; }
  int wait_status() const override { return status_; }
  Result<void> signal_main(int sig) override;
  Result<void> signal_group(int sig) override;
  bool group_alive() const override { return ::kill(-child_.pid(), 0) == 0; }
  std::optional<ChildUsage> usage() const override;
  void drain_seccomp() override { serve_listener(); }
  std::optional<SeccompOutcome> seccomp() const override;

 private:
  void read_signals(Wake& wake);
  bool polls_listener() const { return listener_ && listener_->is_open() && !listener_idle_; }
  void serve_listener();

  Child child_;
  UniqueFd signal_fd_;
  bool exited_ = false;
  int status_ = 0;
  std::optional<seccomp::Listener> listener_;
  // POLLHUP: no task uses the filter any more (it stays "ready"; not polled again).
  bool listener_idle_ = false;
  std::optional<std::string> listener_note_;
};

// Answers every notification that is waiting. A broken listener is closed: the
// kernel then refuses every notified syscall with ENOSYS (fail closed), which is
// said once and recorded.
void ProcessJob::serve_listener() {
  if (!listener_ || !listener_->is_open()) return;
  for (;;) {
    auto r = listener_->handle_ready();
    if (r && *r) continue;
    if (r) return;
    listener_note_ = fmt::format("seccomp listener failed ({}): every syscall the profile does not allow got ENOSYS "
                                 "from then on, uncounted",
                                 r.error().message());
    log::warn(*listener_note_);
    listener_->close();
    return;
  }
}

std::optional<SeccompOutcome> ProcessJob::seccomp() const {
  if (!listener_) return std::nullopt;
  return SeccompOutcome{listener_->summary(), listener_note_};
}

void ProcessJob::reap() {
  for (;;) {
    int status = 0;
    struct rusage ru {};
    pid_t pid = ::wait4(-1, &status, WNOHANG | __WALL, &ru);
    if (pid <= 0) return;
    if (pid == child_.pid()) {
      exited_ = true;
      status_ = status;
    }
  }
}

void ProcessJob::read_signals(Wake& wake) {
  struct signalfd_siginfo si;
  while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGCHLD) continue;
    ReceivedSignal r;
    r.signo = static_cast<int>(si.ssi_signo);
    if (si.ssi_code != SI_KERNEL) {
      r.sender_pid = static_cast<int64_t>(si.ssi_pid);
      r.sender_uid = static_cast<int64_t>(si.ssi_uid);
    }
    wake.signals.push_back(r);
  }
}

Result<Wake> ProcessJob::wait(std::optional<std::chrono::milliseconds> timeout, int watch_fd, OutputCapture* output,
                              std::span<pollfd> extra) {
  // The main process's pidfd stays readable once it has exited: polled only
  // while it runs. cgroup.events is read first so that its next change
  // ("populated 0") raises POLLPRI.
  std::vector<pollfd> fds = {{signal_fd_.get(), POLLIN, 0}};
  if (!exited_) fds.push_back({child_.pidfd(), POLLIN, 0});
  if (watch_fd >= 0) {
    char buf[256];
    if (::pread(watch_fd, buf, sizeof buf, 0) >= 0) fds.push_back({watch_fd, POLLPRI, 0});
  }
  const size_t listener_at = fds.size();
  const bool listener = polls_listener();
  if (listener) fds.push_back({listener_->fd(), POLLIN, 0});
  const size_t extra_at = fds.size();
  for (pollfd& p : extra) {
    p.revents = 0;
    fds.push_back(p);
  }
  size_t first_output = fds.size();
  if (output) output->add_poll(fds);
  int ms = timeout ? static_cast<int>(std::min<int64_t>(timeout->count(), INT32_MAX)) : -1;
  Wake wake;
  if (::poll(fds.data(), fds.size(), ms) < 0) {
    if (errno == EINTR) return wake;
    return fail_sys("poll", "");
  }
  for (size_t i = 0; i < extra.size(); ++i) extra[i].revents = fds[extra_at + i].revents;
  if (fds[0].revents & POLLIN) read_signals(wake);
  if (listener) {
    if (fds[listener_at].revents & POLLIN) serve_listener();
    if (fds[listener_at].revents & (POLLHUP | POLLERR)) listener_idle_ = true;
  }
  if (output) output->on_poll(std::span<const pollfd>(fds).subspan(first_output));
  bool was = exited_;
  reap();
  wake.main_exited = !was && exited_;
  return wake;
}

Result<void> ProcessJob::signal_main(int sig) {
  if (exited_) return {};  // reaped: the pidfd refers to no process any more
  if (sys::pidfd_send_signal(child_.pidfd(), sig) != 0 && errno != ESRCH) return fail_sys("pidfd_send_signal", "");
  return {};
}

Result<void> ProcessJob::signal_group(int sig) {
  if (::kill(-child_.pid(), sig) != 0 && errno != ESRCH) return fail_sys("kill", "");
  return {};
}

std::optional<ChildUsage> ProcessJob::usage() const {
  struct rusage ru {};
  if (::getrusage(RUSAGE_CHILDREN, &ru) != 0) return std::nullopt;
  ChildUsage u;
  u.max_rss_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  u.cpu_user_s = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  u.cpu_system_s = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  // The counts are in 512-byte units whatever the device's block size.
  u.io_read_bytes = static_cast<uint64_t>(ru.ru_inblock) * 512;
  u.io_write_bytes = static_cast<uint64_t>(ru.ru_oublock) * 512;
  return u;
}

class Supervisor {
 public:
  Supervisor(RunningJob& job, Containment& where, const SuperviseConfig& cfg, const Clock& clock, SteadyTime start)
      : job_(job),
        where_(where),
        cfg_(cfg),
        clock_(clock),
        machine_(escalation::Config{cfg.timeout, cfg.kill_after, cfg.keep_orphans,
                                    cfg.lease ? std::optional(cfg.lease->lease) : std::nullopt},
                 start) {
    if (cfg.settle) settle_at_ = start + cfg.settle->after;
  }

  Result<Outcome> run();

 private:
  escalation::Actions perform(escalation::Actions a);
  void open_lease_timer();
  void arm_lease_timer(const escalation::Actions& a);
  escalation::Actions read_keepalive(escalation::Actions a);
  escalation::Actions on_message(const fleet::Message& m);
  std::optional<std::chrono::milliseconds> wait_for(const escalation::Actions& a) const;
  void signal_main(int sig);
  void finish_leftovers();
  void drain_output();
  void settle_if_due(const escalation::Actions& a);

  RunningJob& job_;
  Containment& where_;
  const SuperviseConfig& cfg_;
  const Clock& clock_;
  escalation::Machine machine_;
  FailureLog failures_;
  Outcome out_;
  // Fleet mode: the lease's timer and the keepalive's pipe.
  UniqueFd lease_timer_;
  std::optional<SteadyTime> armed_;
  bool lease_on_poll_timeout_ = false;  // no timerfd: poll's timeout carries the lease deadline
  bool report_open_ = false;
  fleet::MessageReader reader_;
  std::optional<SteadyTime> settle_at_;  // cfg_.settle not yet done
};

void Supervisor::open_lease_timer() {
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) {
    failures_.add(fmt::format("timerfd_create: {}; the fleet lease deadline rides on poll's timeout", std::strerror(errno)));
    lease_on_poll_timeout_ = true;
    return;
  }
  lease_timer_.reset(fd);
}

// The timer holds the machine's lease deadline as an absolute CLOCK_MONOTONIC
// instant (the steady clock's epoch); disarmed when there is none.
void Supervisor::arm_lease_timer(const escalation::Actions& a) {
  if (!lease_timer_ || a.lease_deadline == armed_) return;
  itimerspec its{};
  if (a.lease_deadline) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(a.lease_deadline->time_since_epoch()).count();
    ns = std::max<int64_t>(ns, 1);  // zero would disarm it
    its.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    its.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  if (::timerfd_settime(lease_timer_.get(), TFD_TIMER_ABSTIME, &its, nullptr) != 0) {
    failures_.add(fmt::format("timerfd_settime: {}; the fleet lease deadline rides on poll's timeout", std::strerror(errno)));
    lease_timer_.reset();
    lease_on_poll_timeout_ = true;
    return;
  }
  armed_ = a.lease_deadline;
}

escalation::Actions Supervisor::on_message(const fleet::Message& m) {
  LeaseOutcome& l = *out_.lease;
  using Kind = fleet::Message::Kind;
  switch (m.kind) {
    case Kind::renewed:
      ++l.renewals;
      return perform(machine_.on(escalation::Event::renewal(m.sent), clock_.steady()));
    case Kind::revoked:
      l.revoked = m.text;
      log::info(fmt::format("fleet: {} while job runs", m.text));
      return perform(machine_.on(escalation::Event::revoke(), clock_.steady()));
    case Kind::lost:
      log::warn(fmt::format("fleet: {}: stopping the job", m.text));
      if (!l.first_failure) l.first_failure = m.text;
      return perform(machine_.on(escalation::Event::lost(), clock_.steady()));
    case Kind::failed:
      // Blips are retried by the keepalive and never stop the job by themselves:
      // said once, counted in the record.
      if (l.failures++ == 0) {
        l.first_failure = m.text;
        log::warn(fmt::format("fleet keepalive: {} (retrying; only the lease deadline stops the job)", m.text));
      }
      return perform(machine_.on(escalation::Event::tick(), clock_.steady()));
  }
  return perform(machine_.on(escalation::Event::tick(), clock_.steady()));
}

// Everything the keepalive has written so far.
escalation::Actions Supervisor::read_keepalive(escalation::Actions a) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(cfg_.lease->report_fd, buf, sizeof buf);
    if (n > 0) {
      for (const auto& m : reader_.feed(std::string_view(buf, static_cast<size_t>(n)))) a = on_message(m);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return a;
    report_open_ = false;
    if (n == 0) {
      out_.lease->keepalive_gone = true;
      log::warn("fleet keepalive process exited while the job ran: the lease is no longer renewed; the job is stopped "
                "at its deadline");
    } else {
      failures_.add(fmt::format("reading the fleet keepalive's pipe: {}", std::strerror(errno)));
    }
    return a;
  }
}

void Supervisor::signal_main(int sig) {
  if (auto r = job_.signal_main(sig); !r)
    failures_.add(fmt::format("sending {} to the job's main process {}: {}", signal_name(sig), job_.pid(),
                              std::strerror(r.error().err())));
}

// Carries out `a`; a tree check is answered to the machine at once, and what it
// says then is carried out too.
escalation::Actions Supervisor::perform(escalation::Actions a) {
  for (;;) {
    if (a.forward) {
      // The job leads its own process group (setsid in the child); signal the
      // group so a shell script's foreground children hear it too, and the main
      // pid in case the job moved itself elsewhere.
      if (auto r = job_.signal_group(*a.forward); !r)
        failures_.add(fmt::format("sending {} to the job's process group {}: {}", signal_name(*a.forward), job_.pid(),
                                  std::strerror(r.error().err())));
      signal_main(*a.forward);
    }
    if (a.terminate) {
      where_.signal_all(job_, SIGTERM, failures_);
      signal_main(SIGTERM);
    }
    if (a.kill) {
      where_.kill_all(job_, failures_);
      signal_main(SIGKILL);
    }
    if (!a.check_tree) return a;
    a = machine_.on(escalation::Event::tree(where_.tree_empty(job_)), clock_.steady());
  }
}

std::optional<std::chrono::milliseconds> Supervisor::wait_for(const escalation::Actions& a) const {
  std::optional<std::chrono::milliseconds> out;
  if (a.deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*a.deadline - clock_.steady());
    out = std::max(left, std::chrono::milliseconds(0));
  }
  if (a.watch_tree) out = out ? std::min(*out, kGraceBackstop) : kGraceBackstop;
  if (lease_on_poll_timeout_ && a.lease_deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*a.lease_deadline - clock_.steady());
    left = std::max(left, std::chrono::milliseconds(0));
    out = out ? std::min(*out, left) : left;
  }
  if (settle_at_) {
    auto left = std::max(std::chrono::ceil<std::chrono::milliseconds>(*settle_at_ - clock_.steady()),
                         std::chrono::milliseconds(0));
    out = out ? std::min(*out, left) : left;
  }
  return out;
}

// Only while the main process still runs and nothing is being stopped: a job
// on its way out is not worth trimming for.
void Supervisor::settle_if_due(const escalation::Actions& a) {
  if (!settle_at_ || a.collect || clock_.steady() < *settle_at_) return;
  settle_at_.reset();
  if (job_.exited() || machine_.phase() != escalation::Phase::running) return;
  cfg_.settle->act();
}

// After the main process exited: whatever it left behind is an orphan.
void Supervisor::finish_leftovers() {
  auto left = where_.end_leftovers(job_, cfg_.keep_orphans, failures_);
  out_.orphans_killed = left.killed;
  out_.orphans_left = left.left;
  // Killing what is left once the grace ran out is the escalation too.
  out_.escalated_to_kill =
      machine_.escalated_to_kill() || (left.kill_sent && machine_.phase() == escalation::Phase::killing);
}

// After the leftovers are gone the pipes hit EOF; with orphans kept alive they
// may stay open, so the drain is bounded.
void Supervisor::drain_output() {
  if (!cfg_.output) return;
  auto deadline = clock_.steady() + std::chrono::milliseconds(out_.orphans_left ? 200 : 5000);
  while (cfg_.output->reading() && clock_.steady() < deadline) {
    std::vector<pollfd> fds;
    cfg_.output->add_poll(fds);
    if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) break;
    cfg_.output->on_poll(fds);
  }
}

Result<Outcome> Supervisor::run() {
  if (cfg_.lease) {
    out_.lease.emplace();
    report_open_ = cfg_.lease->report_fd >= 0;
    open_lease_timer();
  }
  escalation::Actions a = perform(machine_.begin());
  while (!a.collect) {
    arm_lease_timer(a);
    pollfd extra[2];
    size_t n_extra = 0;
    std::optional<size_t> report_at, timer_at;
    if (report_open_) {
      report_at = n_extra;
      extra[n_extra++] = {cfg_.lease->report_fd, POLLIN, 0};
    }
    if (lease_timer_) {
      timer_at = n_extra;
      extra[n_extra++] = {lease_timer_.get(), POLLIN, 0};
    }
    auto wake = job_.wait(wait_for(a), a.watch_tree ? where_.events_fd() : -1, cfg_.output,
                          std::span<pollfd>(extra, n_extra));
    if (!wake) return std::unexpected(wake.error());
    if (timer_at && (extra[*timer_at].revents & POLLIN)) {
      // Expired: the tick below carries the deadline out; reading re-enables it.
      uint64_t expirations = 0;
      if (::read(lease_timer_.get(), &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        failures_.add(fmt::format("reading the fleet lease timer: {}", std::strerror(errno)));
      armed_.reset();
    }
    for (const ReceivedSignal& sig : wake->signals) {
      escalation::Actions next = machine_.on(escalation::Event::signal_received(sig.signo), clock_.steady());
      if (next.forward) {
        uint64_t before = out_.forwarded ? out_.forwarded->count : 0;
        out_.forwarded = ForwardedSignal{sig.signo, sig.sender_pid, sig.sender_uid, before + 1};
      }
      a = perform(next);
    }
    // Renewals before the tick: one that came in time is not taken for a missed deadline.
    if (report_at && (extra[*report_at].revents & (POLLIN | POLLHUP | POLLERR))) a = read_keepalive(a);
    a = perform(machine_.on(escalation::Event::tick(), clock_.steady()));
    if (wake->main_exited) a = perform(machine_.on(escalation::Event::main_exit(), clock_.steady()));
    settle_if_due(a);
  }
  // Calls the leftovers made just before they are killed are counted too.
  job_.drain_seccomp();
  finish_leftovers();
  drain_output();
  out_.wait_status = job_.wait_status();
  out_.timed_out = machine_.timed_out();
  out_.children = job_.usage();
  out_.failures = failures_.lines();
  out_.seccomp = job_.seccomp();
  if (out_.lease) {
    out_.lease->stopped_by_deadline = machine_.stopped_by_lease();
    out_.lease->lost = machine_.lease_lost();
    out_.lease->stopped_by_revoke = machine_.stopped_by_revoke();
    if (auto t = machine_.last_renewal()) out_.lease->last_renewal = *t;
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

std::unique_ptr<RunningJob> watch_process(Child child, UniqueFd signal_fd, std::optional<seccomp::Listener> listener) {
  return std::make_unique<ProcessJob>(std::move(child), std::move(signal_fd), std::move(listener));
}

Result<Outcome> supervise(RunningJob& job, Containment& where, const SuperviseConfig& cfg, const Clock& clock,
                          SteadyTime start) {
  Supervisor s(job, where, cfg, clock, start);
  return s.run();
}

}  // namespace cronrun
