// The escalation state machine (escalation.h). Every transition is here, and
// nothing here touches a process or a clock.
#include "runner/escalation.h"

#include <algorithm>
#include <csignal>

#include "runner/fleet.h"

namespace cronrun::escalation {

Machine::Machine(const Config& cfg, SteadyTime start) : cfg_(cfg) {
  if (cfg_.timeout) deadline_ = start + *cfg_.timeout;
  if (cfg_.lease) last_renewal_ = cfg_.lease->granted_sent;
}

Actions Machine::current() const {
  Actions a;
  a.collect = collecting_;
  if (collecting_) return a;
  a.deadline = deadline_;
  a.watch_tree = main_exited_ && phase_ == Phase::terminating;
  if (cfg_.lease && phase_ != Phase::killing) {
    auto d = fleet::deadlines(*last_renewal_, cfg_.lease->ttl, cfg_.kill_after, cfg_.lease->margin);
    a.lease_deadline = phase_ == Phase::running ? d.term_at : d.kill_at;
  }
  return a;
}

Actions Machine::begin() const { return current(); }

Actions Machine::on(const Event& e, SteadyTime now) {
  if (collecting_) return current();
  switch (e.kind) {
    case Event::Kind::signal: {
      if (e.sig == SIGTERM || e.sig == SIGINT || e.sig == SIGQUIT) stop_forwarded_ = true;
      Actions a = current();
      a.forward = e.sig;
      return a;
    }
    case Event::Kind::tick:
      return on_tick(now);
    case Event::Kind::main_exited:
      return on_main_exit(now);
    case Event::Kind::tree_checked:
      // Only asked in the grace; an empty tree ends it early.
      if (e.tree_empty) collecting_ = true;
      return current();
    case Event::Kind::renewed:
      // Messages come in order; a stale one never moves the deadline back.
      if (cfg_.lease) last_renewal_ = std::max(*last_renewal_, e.at);
      return current();
    case Event::Kind::revoked:
      revoked_ = true;
      if (cfg_.lease && cfg_.lease->term_on_revoke && phase_ == Phase::running) {
        stopped_by_revoke_ = true;
        return terminate(now);
      }
      return current();
    case Event::Kind::lease_lost:
      // Another host may claim the job at any moment: stop it now, as the
      // deadline would.
      lease_lost_ = true;
      if (cfg_.lease && phase_ == Phase::running) {
        stopped_by_lease_ = true;
        return terminate(now);
      }
      return current();
  }
  return current();
}

// SIGTERM to the whole job and kill-after of grace from now; in fleet mode the
// lease's kill deadline may end the grace sooner (grace_over()).
Actions Machine::terminate(SteadyTime now) {
  phase_ = Phase::terminating;
  deadline_ = now + cfg_.kill_after;
  Actions a = current();
  a.terminate = true;
  return a;
}

bool Machine::grace_over(SteadyTime now) const {
  if (deadline_ && now >= *deadline_) return true;
  if (!cfg_.lease) return false;
  return now >= fleet::deadlines(*last_renewal_, cfg_.lease->ttl, cfg_.kill_after, cfg_.lease->margin).kill_at;
}

Actions Machine::on_tick(SteadyTime now) {
  if (phase_ == Phase::running) {
    const bool timeout_due = deadline_ && now >= *deadline_;
    const bool lease_due =
        cfg_.lease &&
        now >= fleet::deadlines(*last_renewal_, cfg_.lease->ttl, cfg_.kill_after, cfg_.lease->margin).term_at;
    if (timeout_due || lease_due) {
      if (timeout_due)
        timed_out_ = true;
      else
        stopped_by_lease_ = true;
      return terminate(now);
    }
  } else if (phase_ == Phase::terminating && grace_over(now)) {
    // kill-after expired, or the lease's kill deadline came first (terminating →
    // killing); there is no deadline after it.
    if (!(deadline_ && now >= *deadline_)) stopped_by_lease_ = true;
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
  // Woken early: in the grace every wake-up is a reason to look at the tree.
  Actions a = current();
  a.check_tree = a.watch_tree;
  return a;
}

Actions Machine::on_main_exit(SteadyTime now) {
  main_exited_ = true;
  // Stopped as asked: the rest of the tree gets SIGTERM and the grace too.
  if (phase_ == Phase::running && stop_forwarded_ && !cfg_.keep_orphans) {
    Actions a = terminate(now);
    a.check_tree = true;
    return a;
  }
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
