// How the supervisor answers what happens to a running job, as a pure state
// machine: events and the current time in, actions and the next deadline out. No
// syscalls, no clock reads: the poll loop in supervise.cc does the I/O around it,
// and tests drive it with made-up times.
//
//   running ──timeout──▶ terminating: SIGTERM to every process of the job, and
//                        kill-after of grace for the whole tree
//   terminating ──kill-after──▶ killing: SIGKILL to every process of the job
//
// The grace is the whole tree's: when the main process dies of the SIGTERM before
// kill-after, the machine keeps asking whether the rest is gone (a pipeline's last
// stage flushing) and only kills what is left once kill-after expires. Signals
// cronrun receives (SIGTERM, SIGINT, SIGHUP, ...) are forwarded in every phase and
// start no escalation of their own: the job decides what they mean. Once a
// forwarded SIGTERM, SIGINT or SIGQUIT has been followed by the main process's
// exit, though, the job has stopped as asked, and what it left gets a timeout's
// treatment rather than an immediate kill: SIGTERM (those outside the process
// group never got the forwarded one) and kill-after of grace, so a pipeline's
// last stage that is flushing on the way out is not cut short.
//
// Fleet mode adds the lease (fleet.h): from each renewal's send instant, a TERM
// deadline and a KILL deadline that both fall before the lease could expire
//   running ──lease term_at──▶ terminating (grace: until kill_at at the latest)
//   terminating ──lease kill_at──▶ killing
// A renewal moves both forward, but never takes back a TERM already sent. A
// revoke (this host left the job's group) terminates like a timeout with
// `on-revoke term`, and is only noted with `finish`. The lease's deadline is kept
// apart from the timeout's (Actions::lease_deadline), for the loop's own timer.
#pragma once

#include <chrono>
#include <optional>

#include "runner/clock.h"

namespace cronrun::escalation {

// The fleet lease the job runs under.
struct Lease {
  std::chrono::seconds ttl{15};
  std::chrono::milliseconds margin{1000};  // the job is dead this long before the lease could expire
  SteadyTime granted_sent{};               // the first deadline counts from the grant's send instant
  bool term_on_revoke = false;             // --on-revoke term (else finish)
};

struct Config {
  std::optional<std::chrono::milliseconds> timeout;  // counted from the start instant
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};
  bool keep_orphans = false;  // what the main process leaves behind is not waited for
  std::optional<Lease> lease = std::nullopt;  // fleet mode
};

enum class Phase { running, terminating, killing };

struct Event {
  enum class Kind {
    signal,        // cronrun received `sig` (SIGCHLD is not an event: reaping is I/O)
    tick,          // the loop woke up (its deadline, or anything else): `now` is the time
    main_exited,   // the main process was reaped
    tree_checked,  // answer to Actions::check_tree: `tree_empty` says what is left
    renewed,       // the lease was renewed by a request sent at `at`
    revoked,       // this host left the job's group
    lease_lost,    // the lease no longer exists on the server
  };
  Kind kind = Kind::tick;
  int sig = 0;
  bool tree_empty = false;
  SteadyTime at{};

  static Event signal_received(int s) { return {Kind::signal, s, false, {}}; }
  static Event tick() { return {Kind::tick, 0, false, {}}; }
  static Event main_exit() { return {Kind::main_exited, 0, false, {}}; }
  static Event tree(bool empty) { return {Kind::tree_checked, 0, empty, {}}; }
  static Event renewal(SteadyTime sent) { return {Kind::renewed, 0, false, sent}; }
  static Event revoke() { return {Kind::revoked, 0, false, {}}; }
  static Event lost() { return {Kind::lease_lost, 0, false, {}}; }
};

// What the loop does next, in this order: forward, terminate, kill, check_tree,
// then collect (leave the loop) or wait until `deadline`.
struct Actions {
  std::optional<int> forward;  // send this signal to the job's process group and main process
  bool terminate = false;      // SIGTERM every process of the job
  bool kill = false;           // SIGKILL every process of the job
  bool check_tree = false;     // find out whether anything of the job is left; answer with Event::tree()
  bool collect = false;        // the loop ends: deal with what is left, collect the figures
  // Wake up with Event::tick() at this instant at the latest; nullopt: no timer.
  std::optional<SteadyTime> deadline;
  // The lease's next deadline (TERM while running, KILL in the grace), for the
  // loop's timer of its own; a tick at or after it carries the deadline out.
  std::optional<SteadyTime> lease_deadline;
  // The main process is gone but the tree is waited for: wake up too when it may
  // have changed (SIGCHLD, cgroup.events), and check it with a backstop interval.
  bool watch_tree = false;

  bool operator==(const Actions&) const = default;
};

class Machine {
 public:
  Machine(const Config& cfg, SteadyTime start);

  // The actions before any event: the first deadline (the timeout, if any).
  Actions begin() const;
  Actions on(const Event& e, SteadyTime now);

  Phase phase() const { return phase_; }
  bool collecting() const { return collecting_; }
  bool timed_out() const { return timed_out_; }
  // SIGKILL was sent to the job while its main process still ran. (When the
  // grace runs out after the main process has exited, phase() is `killing` and
  // the leftovers the loop kills are the escalation.)
  bool escalated_to_kill() const { return escalated_; }
  bool main_exited() const { return main_exited_; }
  // Fleet mode: the lease deadline (or the lease's loss) terminated the job.
  bool stopped_by_lease() const { return stopped_by_lease_; }
  // A revoke terminated it (`term_on_revoke`); revoked(): a revoke came at all.
  bool stopped_by_revoke() const { return stopped_by_revoke_; }
  bool revoked() const { return revoked_; }
  // The keepalive said the lease no longer exists.
  bool lease_lost() const { return lease_lost_; }
  // The send instant of the last renewal (the grant's before the first).
  std::optional<SteadyTime> last_renewal() const { return last_renewal_; }

 private:
  Actions current() const;
  Actions on_tick(SteadyTime now);
  Actions on_main_exit(SteadyTime now);
  Actions terminate(SteadyTime now);
  bool grace_over(SteadyTime now) const;

  Config cfg_;
  Phase phase_ = Phase::running;
  std::optional<SteadyTime> deadline_;
  bool main_exited_ = false;
  bool collecting_ = false;
  bool timed_out_ = false;
  bool escalated_ = false;
  bool stop_forwarded_ = false;  // a SIGTERM, SIGINT or SIGQUIT was forwarded
  std::optional<SteadyTime> last_renewal_;
  bool stopped_by_lease_ = false;
  bool stopped_by_revoke_ = false;
  bool revoked_ = false;
  bool lease_lost_ = false;
};

}  // namespace cronrun::escalation
