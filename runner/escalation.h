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
// start no escalation of their own: the job decides what they mean.
#pragma once

#include <chrono>
#include <optional>

#include "runner/clock.h"

namespace cronrun::escalation {

struct Config {
  std::optional<std::chrono::milliseconds> timeout;  // counted from the start instant
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};
  bool keep_orphans = false;  // what the main process leaves behind is not waited for
};

enum class Phase { running, terminating, killing };

struct Event {
  enum class Kind {
    signal,        // cronrun received `sig` (SIGCHLD is not an event: reaping is I/O)
    tick,          // the loop woke up (its deadline, or anything else): `now` is the time
    main_exited,   // the main process was reaped
    tree_checked,  // answer to Actions::check_tree: `tree_empty` says what is left
  };
  Kind kind = Kind::tick;
  int sig = 0;
  bool tree_empty = false;

  static Event signal_received(int s) { return {Kind::signal, s, false}; }
  static Event tick() { return {Kind::tick, 0, false}; }
  static Event main_exit() { return {Kind::main_exited, 0, false}; }
  static Event tree(bool empty) { return {Kind::tree_checked, 0, empty}; }
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
  std::optional<int> forwarded_signal() const { return forwarded_; }
  bool main_exited() const { return main_exited_; }

 private:
  Actions current() const;
  Actions on_tick(SteadyTime now);
  Actions on_main_exit();

  Config cfg_;
  Phase phase_ = Phase::running;
  std::optional<SteadyTime> deadline_;
  bool main_exited_ = false;
  bool collecting_ = false;
  bool timed_out_ = false;
  bool escalated_ = false;
  std::optional<int> forwarded_;
};

}  // namespace cronrun::escalation
