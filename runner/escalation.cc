// The escalation state machine (escalation.h). Every transition is here, and
// nothing here touches a process or a clock.
#include "runner/escalation.h"

namespace cronrun::escalation {

Machine::Machine(const Config& cfg, SteadyTime start) : cfg_(cfg) {
  if (cfg_.timeout) deadline_ = start + *cfg_.timeout;
}

Actions Machine::current() const {
  Actions a;
  a.collect = collecting_;
  if (collecting_) return a;
  a.deadline = deadline_;
  a.watch_tree = main_exited_ && phase_ == Phase::terminating;
  return a;
}

Actions Machine::begin() const { return current(); }

Actions Machine::on(const Event& e, SteadyTime now) {
  if (collecting_) return current();
  switch (e.kind) {
    case Event::Kind::signal: {
      forwarded_ = e.sig;
      Actions a = current();
      a.forward = e.sig;
      return a;
    }
    case Event::Kind::tick:
      return on_tick(now);
    case Event::Kind::main_exited:
      return on_main_exit();
    case Event::Kind::tree_checked:
      // Only asked in the grace; an empty tree ends it early.
      if (e.tree_empty) collecting_ = true;
      return current();
  }
  return current();
}

Actions Machine::on_tick(SteadyTime now) {
  if (!deadline_ || now < *deadline_) {
    // Woken early: in the grace every wake-up is a reason to look at the tree.
    Actions a = current();
    a.check_tree = a.watch_tree;
    return a;
  }
  if (phase_ == Phase::running) {
    phase_ = Phase::terminating;
    timed_out_ = true;
    deadline_ = now + cfg_.kill_after;
    Actions a = current();
    a.terminate = true;
    return a;
  }
  // kill-after expired (terminating → killing); there is no deadline after it.
  phase_ = Phase::killing;
  deadline_.reset();
  if (main_exited_) {
    // Only leftovers remain: the loop ends and kills them (as the escalation).
    collecting_ = true;
    return current();
  }
  escalated_ = true;
  Actions a = current();
  a.kill = true;
  return a;
}

Actions Machine::on_main_exit() {
  main_exited_ = true;
  // After a timeout's SIGTERM the rest of the tree keeps its grace, unless what is
  // left is to be kept anyway.
  if (phase_ == Phase::terminating && !cfg_.keep_orphans) {
    Actions a = current();
    a.check_tree = true;
    return a;
  }
  collecting_ = true;
  return current();
}

}  // namespace cronrun::escalation
