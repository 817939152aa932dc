// The claim, the keepalive process and the lease arithmetic (fleet.h).
//
// The keepalive is forked twice: the middle process exits at once, so the
// keepalive is re-parented away from the runner (which is not yet a child
// subreaper when this runs). Were it the runner's child, a run without a cgroup
// would count it among the job's processes (NoCgroup lists the runner's children)
// and kill it with the job's leftovers, and the subreaper's wait4(-1) would reap
// it behind the runner's back. Not being the runner's child, it cannot use
// PR_SET_PDEATHSIG (the parent that would signal it is the middle process, gone at
// once); it learns of the runner's death from two sources the kernel keeps for
// it: the runner's pidfd (opened by the runner itself before the fork, so it
// cannot name a recycled pid) turns readable, and the control pipe, whose only
// writer is the runner, reaches EOF without the "stop" a normal end writes first.
//
// The keepalive never writes its own records and never returns into the
// runner's code: it leaves with _exit(), so that the runner's objects it shares by
// fork (the cgroup's owner, whose destructor would remove the cgroup; the history)
// are not destroyed twice.
#include "runner/fleet.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/log.h"
#include "runner/sys.h"

namespace cronrun::fleet {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string one_line(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

// The host a lock or claim value names ("unknown" for a value that is not ours).
// Whoever can write the prefix writes these values: a name that is not a host
// name is shown cut short, so that it cannot grow the run's record past what the
// journal takes (a megabyte "host" made the skipped run unrecordable).
std::string host_of(const std::string& value) {
  constexpr size_t kShown = 64;
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("host") || !j["host"].is_string()) return "unknown";
  std::string h = j["host"].get<std::string>();
  if (valid_host_name(h)) return h;
  if (h.size() > kShown) h = h.substr(0, kShown) + "...";
  return fmt::format("'{}' (not a host name)", h);
}

Error call_error(const etcd::CallError& e, const std::string& what) {
  return Error(e.error.message()).context(what);
}

}  // namespace

// ---- the transaction ----

std::string lock_value(const Params& p) {
  nlohmann::json j = {{"run_id", p.run_id},
                      {"host", p.host},
                      {"pid", p.pid},
                      {"tick", format_tick(p.tick_s)},
                      {"started_at", p.started_at}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string claim_value(const Params& p) {
  nlohmann::json j = {{"run_id", p.run_id}, {"host", p.host}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ClaimTxn claim_txn(const Params& p, int64_t lease_id) {
  using etcd::Compare;
  using etcd::Op;
  const std::string lock = lock_key(p.prefix, p.job);
  const std::string claim = tick_key(p.prefix, p.job, format_tick(p.tick_s));
  const std::string claims = runs_prefix(p.prefix, p.job);
  const int64_t cutoff_s = p.tick_s - std::chrono::duration_cast<std::chrono::seconds>(kClaimRetention).count();
  ClaimTxn t;
  t.compare = {Compare{lock, Compare::Target::create_revision, Compare::Op::equal, 0, {}},
               Compare{claim, Compare::Target::create_revision, Compare::Op::equal, 0, {}}};
  Op put_lock{Op::Kind::put, lock, {}, lock_value(p), lease_id, 0};
  Op put_claim{Op::Kind::put, claim, {}, claim_value(p), 0, 0};
  // [claims, claims + cutoff): the ticks before the cutoff, never this tick's key
  // (etcd refuses a put and a delete of the same key in one transaction).
  Op prune{Op::Kind::delete_range, claims, claims + format_tick(cutoff_s), {}, 0, 0};
  t.success = {put_lock, put_claim, prune};
  t.failure = {Op{Op::Kind::range, lock, {}, {}, 0, 0}, Op{Op::Kind::range, claim, {}, {}, 0, 0}};
  return t;
}

// ---- skips ----

std::string lock_held_reason(std::string_view job, const Holder& h) {
  return fmt::format("fleet lock of {} held by host {} (revision {})", job, h.host, h.revision);
}
std::string tick_claimed_reason(int64_t tick_s, std::string_view job, const Holder& h) {
  return fmt::format("tick {} of {} already claimed by host {} (revision {})", format_tick(tick_s), job, h.host,
                     h.revision);
}
std::string not_in_group_reason(std::string_view host, std::string_view group) {
  return fmt::format("host {} not in group {}", host, group);
}

std::string no_such_group_reason(std::string_view group, std::string_view config_key, bool config_exists) {
  if (!config_exists) return fmt::format("group {} is not defined: etcd key {} does not exist", group, config_key);
  return fmt::format("group {} is not defined in etcd key {}", group, config_key);
}
std::string unavailable_reason(std::string_view what) { return fmt::format("etcd unavailable: {}", one_line(what)); }

Skip skip_of_failed_claim(const Params& p, const etcd::TxnResult& r) {
  // The lock first: a run in progress says more than a claimed tick (the same
  // run, usually) does.
  if (!r.responses.empty() && !r.responses[0].kvs.empty()) {
    const auto& kv = r.responses[0].kvs.front();
    Holder h{host_of(kv.value), kv.create_revision};
    return Skip{Skip::Why::lock_held, lock_held_reason(p.job, h), h};
  }
  if (r.responses.size() > 1 && !r.responses[1].kvs.empty()) {
    const auto& kv = r.responses[1].kvs.front();
    Holder h{host_of(kv.value), kv.create_revision};
    return Skip{Skip::Why::tick_claimed, tick_claimed_reason(p.tick_s, p.job, h), h};
  }
  // Both compares failed, yet neither key is there any more: the holder released
  // between the compare and the ranges (they are one revision, so only a reader
  // of another revision sees this); named as a lost race.
  Holder h{"unknown", r.header.revision};
  return Skip{Skip::Why::lock_held, lock_held_reason(p.job, h), h};
}

std::optional<int64_t> own_lock_fence(const Params& p, const etcd::TxnResult& r, int64_t lease_id) {
  if (r.responses.empty() || r.responses[0].kvs.empty()) return std::nullopt;
  const auto& kv = r.responses[0].kvs.front();
  auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (kv.lease != lease_id || !j.is_object() || !j.contains("run_id") || j["run_id"] != p.run_id) return std::nullopt;
  return kv.create_revision;
}

// ---- the claim ----

Result<Claimer> Claimer::open(const Params& p) {
  etcd::Options o;
  o.endpoints = p.endpoints;
  o.tls = p.tls;
  auto c = etcd::Client::open(std::move(o));
  if (!c) return std::unexpected(std::move(c.error()).context("fleet mode"));
  return Claimer(&p, std::move(*c));
}

Result<ClaimOutcome> Claimer::claim(const MemberCheck& is_member) {
  const Params& p = *params_;
  auto skip_or_error = [](const etcd::CallError& e, const std::string& what) -> Result<ClaimOutcome> {
    if (e.failure == etcd::Failure::unavailable)
      return ClaimOutcome{Skip{Skip::Why::unavailable, unavailable_reason(e.error.message()), std::nullopt}};
    return std::unexpected(call_error(e, what));
  };
  if (p.group) {
    const std::string key = config_key(p.prefix);
    auto r = client_.range(key);
    if (!r) return skip_or_error(r.error(), "reading " + key);
    std::optional<std::string> value;
    if (!r->kvs.empty()) value = r->kvs.front().value;
    auto member = is_member(value);
    if (!member) return std::unexpected(std::move(member.error()).context("etcd key " + key));
    if (*member == Membership::no_such_group)
      return ClaimOutcome{Skip{Skip::Why::no_such_group, no_such_group_reason(*p.group, key, value.has_value()), std::nullopt}};
    if (*member == Membership::not_member)
      return ClaimOutcome{Skip{Skip::Why::not_in_group, not_in_group_reason(p.host, *p.group), std::nullopt}};
  }
  SteadyTime sent = steady_clock::now();
  auto lease = client_.lease_grant(p.lease_ttl.count());
  if (!lease) return skip_or_error(lease.error(), "granting a fleet lease");
  ClaimTxn t = claim_txn(p, lease->id);
  auto r = client_.txn(t.compare, t.success, t.failure);
  if (r && !r->succeeded)
    if (auto fence = own_lock_fence(p, *r, lease->id)) return ClaimOutcome{Claim{lease->id, *fence, sent}};
  if (!r || !r->succeeded) {
    // Without the lock the lease holds nothing; revoked so that it does not
    // linger. A failed revoke leaves it to expire after the TTL, holding nothing.
    if (auto gone = client_.lease_revoke(lease->id); !gone)
      log::info(fmt::format("revoking the unused fleet lease {:x}: {} (it expires on its own)", lease->id,
                            gone.error().error.message()));
  }
  // A transaction that no endpoint answered may still have been applied: then
  // the lease just revoked released the lock, and the tick stays claimed by this
  // skipped run. That tick is lost; it never runs twice.
  if (!r) return skip_or_error(r.error(), "claiming " + lock_key(p.prefix, p.job));
  if (!r->succeeded) return ClaimOutcome{skip_of_failed_claim(p, *r)};
  // The lock was created by this transaction: its create_revision is the
  // transaction's revision.
  return ClaimOutcome{Claim{lease->id, r->header.revision, sent}};
}

Result<void> Claimer::release(const Claim& c) {
  auto r = client_.lease_revoke(c.lease_id);
  if (!r) return std::unexpected(call_error(r.error(), fmt::format("revoking fleet lease {:x}", c.lease_id)));
  return {};
}

// ---- messages ----

std::string encode(const Message& m) {
  switch (m.kind) {
    case Message::Kind::renewed:
      return fmt::format("renewed {}\n", std::chrono::nanoseconds(m.sent.time_since_epoch()).count());
    case Message::Kind::revoked: return "revoked " + one_line(m.text) + "\n";
    case Message::Kind::lost: return "lost " + one_line(m.text) + "\n";
    case Message::Kind::failed: return "failed " + one_line(m.text) + "\n";
  }
  return "failed unknown message\n";
}

std::vector<Message> MessageReader::feed(std::string_view bytes) {
  partial_.append(bytes);
  std::vector<Message> out;
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(partial_.data() + start, nl - start);
    size_t sp = line.find(' ');
    std::string_view word = line.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    Message m;
    if (word == "renewed") {
      int64_t ns = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), ns);
      if (ec == std::errc{} && ptr == rest.data() + rest.size() && !rest.empty()) {
        m.kind = Message::Kind::renewed;
        m.sent = SteadyTime(std::chrono::duration_cast<SteadyTime::duration>(std::chrono::nanoseconds(ns)));
        out.push_back(m);
        continue;
      }
    } else if (word == "revoked" || word == "lost" || word == "failed") {
      m.kind = word == "revoked" ? Message::Kind::revoked : word == "lost" ? Message::Kind::lost : Message::Kind::failed;
      m.text = std::string(rest);
      out.push_back(m);
      continue;
    }
    out.push_back(Message{Message::Kind::failed, {}, fmt::format("unreadable keepalive message: {}", line)});
  }
  partial_.erase(0, start);
  return out;
}

// ---- the keepalive process ----

namespace {

// One message, whole (a line is far below PIPE_BUF). A runner that does not read
// (it is past its loop, stopping us) loses it; nothing here waits for it.
void send(int fd, const Message& m) {
  std::string line = encode(m);
  ssize_t n;
  do n = ::write(fd, line.data(), line.size());
  while (n < 0 && errno == EINTR);
}

struct KeepaliveArgs {
  const Params& p;
  const Claim& c;
  const MemberCheck& is_member;
  const KillJob& kill_job;
  int control_fd;
  int report_fd;
  int runner_pidfd;
};

[[noreturn]] void runner_gone(const KeepaliveArgs& a, std::optional<pid_t> pgid) {
  // The lease is not revoked: it expires after the TTL, after the job's tree is
  // gone, so no other host starts the job while this one's still runs.
  a.kill_job(pgid);
  ::_exit(0);
}

[[noreturn]] void keepalive_main(const KeepaliveArgs& a) {
  ::prctl(PR_SET_NAME, "cronrun-keepalive");
  ::signal(SIGPIPE, SIG_IGN);
  const milliseconds interval = renew_interval(a.p.lease_ttl);
  // One call's bound: short enough that the runner's death is acted on soon even
  // while a call hangs on a black-holed endpoint, long enough for a leader change.
  etcd::Options o;
  o.endpoints = a.p.endpoints;
  o.tls = a.p.tls;
  o.request_timeout = std::clamp(interval / 2, milliseconds(200), milliseconds(2000));
  o.connect_timeout = std::min(o.request_timeout, milliseconds(500));
  const milliseconds retry = std::clamp(interval / 4, milliseconds(100), milliseconds(500));
  std::optional<etcd::Client> client;
  if (auto c = etcd::Client::open(std::move(o)); c)
    client.emplace(std::move(*c));
  else
    send(a.report_fd, Message{Message::Kind::failed, {}, c.error().message()});

  std::optional<pid_t> pgid;
  std::string control;
  bool revoked = false;
  SteadyTime last_renewal = a.c.granted_sent;
  // SteadyTime::max() is "no renewal due" (an optional here draws GCC 12's
  // -Wmaybe-uninitialized false positive in release builds).
  constexpr SteadyTime kNoRenewal = SteadyTime::max();
  SteadyTime next_renewal = a.c.granted_sent + interval;
  for (;;) {
    int timeout_ms = -1;
    if (next_renewal != kNoRenewal) {
      auto left = std::chrono::ceil<milliseconds>(next_renewal - steady_clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
    }
    pollfd fds[2] = {{a.control_fd, POLLIN, 0}, {a.runner_pidfd, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) runner_gone(a, pgid);  // cannot watch the runner: act as if it were gone
    if (n > 0 && (fds[1].revents & POLLIN)) runner_gone(a, pgid);
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
      char buf[256];
      ssize_t got = ::read(a.control_fd, buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) runner_gone(a, pgid);
      if (got > 0) control.append(buf, static_cast<size_t>(got));
      for (size_t nl; (nl = control.find('\n')) != std::string::npos; control.erase(0, nl + 1)) {
        std::string_view line(control.data(), nl);
        if (line == "stop") ::_exit(0);
        if (line.starts_with("job ")) {
          pid_t v = 0;
          auto [ptr, ec] = std::from_chars(line.data() + 4, line.data() + line.size(), v);
          if (ec == std::errc{} && v > 0) pgid = v;
        }
      }
    }
    if (next_renewal == kNoRenewal || steady_clock::now() < next_renewal || !client) {
      if (!client) next_renewal = kNoRenewal;
      continue;
    }
    SteadyTime sent = steady_clock::now();
    // A renewal is worthless once the lease may have expired: no call waits past it.
    client->set_deadline(last_renewal + a.p.lease_ttl);
    auto r = client->lease_keepalive(a.c.lease_id);
    client->set_deadline(std::nullopt);
    if (r && r->ttl_s > 0) {
      send(a.report_fd, Message{Message::Kind::renewed, sent, {}});
      last_renewal = sent;
      next_renewal = sent + interval;
    } else if (r) {
      send(a.report_fd, Message{Message::Kind::lost, {},
                                fmt::format("fleet lease {:x} no longer exists on the server", a.c.lease_id)});
      next_renewal = kNoRenewal;  // nothing left to renew; the runner's deadline has passed or will
    } else {
      send(a.report_fd, Message{Message::Kind::failed, {}, r.error().error.message()});
      next_renewal = steady_clock::now() + retry;
    }
    if (!a.p.group || revoked || next_renewal == kNoRenewal) continue;
    const std::string key = config_key(a.p.prefix);
    auto cfg = client->range(key);
    if (!cfg) {
      send(a.report_fd, Message{Message::Kind::failed, {}, cfg.error().error.message()});
      continue;
    }
    std::optional<std::string> value;
    if (!cfg->kvs.empty()) value = cfg->kvs.front().value;
    auto member = a.is_member(value);
    if (!member) {
      // A config that does not parse revokes nothing: the job goes on.
      send(a.report_fd, Message{Message::Kind::failed, {}, fmt::format("etcd key {}: {}", key, member.error().message())});
    } else if (*member != Membership::member) {
      revoked = true;
      send(a.report_fd, Message{Message::Kind::revoked, {},
                                *member == Membership::no_such_group
                                    ? no_such_group_reason(*a.p.group, key, value.has_value())
                                    : not_in_group_reason(a.p.host, *a.p.group)});
    }
  }
}

}  // namespace

Result<Keepalive> Keepalive::start(const Params& p, const Claim& c, MemberCheck is_member, KillJob kill_job) {
  int report[2], control[2];
  if (::pipe2(report, O_CLOEXEC | O_NONBLOCK) != 0) return fail_sys("pipe2", "keepalive report pipe");
  UniqueFd report_r(report[0]), report_w(report[1]);
  if (::pipe2(control, O_CLOEXEC) != 0) return fail_sys("pipe2", "keepalive control pipe");
  UniqueFd control_r(control[0]), control_w(control[1]);
  int hello_pipe[2];
  if (::pipe2(hello_pipe, O_CLOEXEC) != 0) return fail_sys("pipe2", "keepalive hello pipe");
  UniqueFd hello_r(hello_pipe[0]), hello_w(hello_pipe[1]);
  UniqueFd self(sys::pidfd_open(::getpid()));
  if (!self) return fail_sys("pidfd_open", "the runner itself");

  pid_t middle = ::fork();
  if (middle < 0) return fail_sys("fork", "keepalive process");
  if (middle == 0) {
    pid_t k = ::fork();
    if (k != 0) {
      // The keepalive's pid, said by the middle process on a pipe of its own
      // before it exits: the runner goes on without waiting for the keepalive to
      // be scheduled, and no keepalive message can come before it.
      if (k < 0) ::_exit(1);
      std::string hello = fmt::format("pid {}\n", k);
      ::_exit(::write(hello_w.get(), hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()) ? 0 : 1);
    }
    // The keepalive: its own session, so that a terminal's signals to the
    // runner's process group do not stop the renewals.
    ::setsid();
    ::close(hello_r.release());
    ::close(hello_w.release());
    ::close(report_r.release());
    ::close(control_w.release());
    keepalive_main(KeepaliveArgs{p, c, is_member, kill_job, control_r.get(), report_w.get(), self.get()});
  }
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0)
    if (errno != EINTR) return fail_sys("waitpid", "keepalive's middle process");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail("forking the keepalive process failed", ErrorKind::system);
  report_w.reset();
  control_r.reset();
  hello_w.reset();
  // From here a failure leaves a keepalive behind: "stop" makes it exit quietly
  // (an EOF alone would read as this runner's death and kill the job's cgroup).
  struct StopOnFailure {
    int fd;
    bool armed = true;
    ~StopOnFailure() {
      // Best effort on a path that already fails; an EOF is the keepalive's fallback.
      if (!armed) return;
      [[maybe_unused]] ssize_t n = ::write(fd, "stop\n", 5);
    }
  } stop_on_failure{control_w.get()};

  // The keepalive's pid: the middle process wrote it whole (a pipe write far
  // below PIPE_BUF) before it exited with 0, so one read gets it.
  char buf[64];
  ssize_t got;
  do got = ::read(hello_r.get(), buf, sizeof buf);
  while (got < 0 && errno == EINTR);
  if (got < 0) return fail_sys("read", "keepalive hello pipe");
  const std::string hello(buf, static_cast<size_t>(got));
  pid_t pid = 0;
  if (!hello.ends_with('\n') || !hello.starts_with("pid ") ||
      std::from_chars(hello.data() + 4, hello.data() + hello.size() - 1, pid).ec != std::errc{} || pid <= 0)
    return fail("unreadable pid from the keepalive's middle process: " + one_line(hello), ErrorKind::system);

  UniqueFd pidfd(sys::pidfd_open(pid));
  if (!pidfd) return fail_sys("pidfd_open", fmt::format("keepalive process {}", pid));
  stop_on_failure.armed = false;
  Keepalive k;
  k.pid_ = pid;
  k.pidfd_ = std::move(pidfd);
  k.control_ = std::move(control_w);
  k.report_ = std::move(report_r);
  return k;
}

Keepalive::~Keepalive() {
  // The normal end calls stop() and says its failure; this is an early return.
  if (pid_ > 0)
    if (auto r = stop(milliseconds(1000)); !r) log::warn(r.error().message());
}

Result<void> Keepalive::tell_job(pid_t pgid) {
  return write_all(control_.get(), fmt::format("job {}\n", pgid), "keepalive control pipe");
}

Result<void> Keepalive::stop(milliseconds bound) {
  if (pid_ <= 0) return {};
  const pid_t pid = std::exchange(pid_, -1);
  auto said = write_all(control_.get(), "stop\n", "keepalive control pipe");
  control_.reset();
  pollfd pfd{pidfd_.get(), POLLIN, 0};
  int n;
  do n = ::poll(&pfd, 1, static_cast<int>(bound.count()));
  while (n < 0 && errno == EINTR);
  if (n > 0) return said;
  if (sys::pidfd_send_signal(pidfd_.get(), SIGKILL) != 0 && errno != ESRCH)
    return fail_sys("pidfd_send_signal", fmt::format("keepalive process {}", pid));
  return fail(fmt::format("the keepalive process {} did not stop within {}ms; killed", pid, bound.count()),
              ErrorKind::system);
}

}  // namespace cronrun::fleet
