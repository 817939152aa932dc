// The escalation state machine (runner/escalation.h) on made-up times: every
// transition, with no process and no clock.
#include "runner/escalation.h"

#include <gtest/gtest.h>

#include <csignal>

namespace cronrun::escalation {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const SteadyTime t0 = SteadyTime{} + seconds(1000);

Config with_timeout(seconds timeout, seconds kill_after = seconds(10), bool keep = false) {
  return Config{milliseconds(timeout), milliseconds(kill_after), keep};
}

TEST(Escalation, WithoutTimeoutThereIsNoDeadlineAndMainExitCollects) {
  Machine m(Config{}, t0);
  Actions a = m.begin();
  EXPECT_FALSE(a.deadline);
  EXPECT_FALSE(a.collect);
  a = m.on(Event::tick(), t0 + seconds(100000));
  EXPECT_EQ(a, Actions{});
  a = m.on(Event::main_exit(), t0 + seconds(100001));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.check_tree);
  EXPECT_FALSE(m.timed_out());
  EXPECT_FALSE(m.escalated_to_kill());
  EXPECT_EQ(m.phase(), Phase::running);
}

TEST(Escalation, TheFirstDeadlineIsTheTimeoutFromTheStart) {
  Machine m(with_timeout(seconds(50)), t0);
  EXPECT_EQ(m.begin().deadline, t0 + seconds(50));
}

TEST(Escalation, AWakeUpBeforeTheDeadlineChangesNothing) {
  Machine m(with_timeout(seconds(50)), t0);
  Actions a = m.on(Event::tick(), t0 + seconds(49));
  EXPECT_FALSE(a.terminate);
  EXPECT_EQ(a.deadline, t0 + seconds(50));
  EXPECT_EQ(m.phase(), Phase::running);
}

TEST(Escalation, TimeoutSendsTermAndGivesKillAfterOfGraceFromThen) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  SteadyTime late = t0 + seconds(50) + milliseconds(3);  // the loop woke a little late
  Actions a = m.on(Event::tick(), late);
  EXPECT_TRUE(a.terminate);
  EXPECT_FALSE(a.kill);
  EXPECT_EQ(a.deadline, late + seconds(10));
  EXPECT_EQ(m.phase(), Phase::terminating);
  EXPECT_TRUE(m.timed_out());
  EXPECT_FALSE(m.escalated_to_kill());
}

TEST(Escalation, KillAfterExpiringWhileTheMainProcessRunsKills) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  m.on(Event::tick(), t0 + seconds(50));
  Actions a = m.on(Event::tick(), t0 + seconds(59));
  EXPECT_FALSE(a.kill) << "still in the grace";
  a = m.on(Event::tick(), t0 + seconds(60));
  EXPECT_TRUE(a.kill);
  EXPECT_FALSE(a.terminate);
  EXPECT_FALSE(a.deadline) << "nothing comes after the kill but the main process's exit";
  EXPECT_FALSE(a.collect);
  EXPECT_EQ(m.phase(), Phase::killing);
  EXPECT_TRUE(m.escalated_to_kill());
  // The kill is sent once; the killed main process then ends the loop.
  EXPECT_FALSE(m.on(Event::tick(), t0 + seconds(70)).kill);
  a = m.on(Event::main_exit(), t0 + seconds(70));
  EXPECT_TRUE(a.collect);
  EXPECT_TRUE(m.timed_out());
}

TEST(Escalation, MainExitingOfTheTermStillGivesTheRestOfTheTreeItsGrace) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  m.on(Event::tick(), t0 + seconds(50));
  Actions a = m.on(Event::main_exit(), t0 + seconds(51));
  EXPECT_TRUE(a.check_tree);
  EXPECT_FALSE(a.collect);
  a = m.on(Event::tree(false), t0 + seconds(51));
  EXPECT_FALSE(a.collect) << "orphans remain: wait for them";
  EXPECT_TRUE(a.watch_tree);
  EXPECT_EQ(a.deadline, t0 + seconds(60));
  // Every wake-up in the grace looks at the tree again.
  a = m.on(Event::tick(), t0 + seconds(52));
  EXPECT_TRUE(a.check_tree);
  a = m.on(Event::tree(true), t0 + seconds(52));
  EXPECT_TRUE(a.collect) << "the tree is gone before kill-after: no kill at all";
  EXPECT_FALSE(m.escalated_to_kill());
  EXPECT_EQ(m.phase(), Phase::terminating);
}

TEST(Escalation, OrphansOutlivingTheGraceAreCollectedAsTheEscalation) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  m.on(Event::tick(), t0 + seconds(50));
  m.on(Event::main_exit(), t0 + seconds(51));
  m.on(Event::tree(false), t0 + seconds(51));
  Actions a = m.on(Event::tick(), t0 + seconds(60));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.kill) << "the main process is gone: the leftovers are killed when collecting";
  EXPECT_EQ(m.phase(), Phase::killing);
  EXPECT_FALSE(m.escalated_to_kill());
}

TEST(Escalation, KeepOrphansEndsTheGraceWithTheMainProcess) {
  Machine m(with_timeout(seconds(50), seconds(10), /*keep=*/true), t0);
  m.on(Event::tick(), t0 + seconds(50));
  Actions a = m.on(Event::main_exit(), t0 + seconds(51));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.check_tree);
}

TEST(Escalation, MainExitBeforeTheTimeoutEndsTheLoopWithoutATreeCheck) {
  Machine m(with_timeout(seconds(50)), t0);
  Actions a = m.on(Event::main_exit(), t0 + seconds(5));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.check_tree);
  EXPECT_FALSE(m.timed_out());
  // Nothing after collecting: a late tick sends nothing.
  a = m.on(Event::tick(), t0 + seconds(60));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.terminate);
}

TEST(Escalation, ReceivedSignalsAreForwardedInEveryPhaseAndEscalateNothing) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    Actions a = m.on(Event::signal_received(sig), t0 + seconds(1));
    EXPECT_EQ(a.forward, sig);
    EXPECT_FALSE(a.terminate);
    EXPECT_FALSE(a.kill);
    EXPECT_EQ(a.deadline, t0 + seconds(50)) << "a forwarded SIGTERM does not move the timeout";
  }
  EXPECT_EQ(m.phase(), Phase::running);
  m.on(Event::tick(), t0 + seconds(50));
  Actions a = m.on(Event::signal_received(SIGTERM), t0 + seconds(51));
  EXPECT_EQ(a.forward, SIGTERM);
  EXPECT_EQ(a.deadline, t0 + seconds(60)) << "nor the grace";
  EXPECT_EQ(m.phase(), Phase::terminating);
}

TEST(Escalation, AJobStoppedByAForwardedTermGivesWhatItLeftTheGraceNotAnImmediateKill) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  m.on(Event::signal_received(SIGTERM), t0 + seconds(1));
  Actions a = m.on(Event::main_exit(), t0 + seconds(2));
  EXPECT_TRUE(a.terminate) << "SIGTERM to the rest: outside the process group it never got the forwarded one";
  EXPECT_TRUE(a.check_tree);
  EXPECT_FALSE(a.collect);
  EXPECT_EQ(a.deadline, t0 + seconds(12));
  EXPECT_EQ(m.phase(), Phase::terminating);
  EXPECT_FALSE(m.timed_out());
  // Gone within the grace: collected, nothing killed.
  a = m.on(Event::tree(true), t0 + seconds(3));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(m.escalated_to_kill());
}

TEST(Escalation, WhatIsLeftAfterAForwardedStopIsKilledWhenTheGraceEnds) {
  Machine m(Config{}, t0);  // no timeout
  m.on(Event::signal_received(SIGINT), t0 + seconds(1));
  m.on(Event::main_exit(), t0 + seconds(1));
  m.on(Event::tree(false), t0 + seconds(1));
  Actions a = m.on(Event::tick(), t0 + seconds(11));
  EXPECT_TRUE(a.collect) << "the loop ends and kills the leftovers";
  EXPECT_EQ(m.phase(), Phase::killing);
}

TEST(Escalation, NoGraceAfterASignalThatAsksNoStopOrWithKeepOrphans) {
  for (int sig : {SIGHUP, SIGUSR1}) {
    Machine m(with_timeout(seconds(50)), t0);
    m.on(Event::signal_received(sig), t0 + seconds(1));
    Actions a = m.on(Event::main_exit(), t0 + seconds(2));
    EXPECT_TRUE(a.collect) << sig;
    EXPECT_FALSE(a.terminate) << sig;
  }
  Machine kept(with_timeout(seconds(50), seconds(10), /*keep=*/true), t0);
  kept.on(Event::signal_received(SIGTERM), t0 + seconds(1));
  Actions a = kept.on(Event::main_exit(), t0 + seconds(2));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.terminate);
}

TEST(Escalation, SignalsDuringTheGraceAfterMainExitAreStillForwardedToTheTree) {
  Machine m(with_timeout(seconds(50), seconds(10)), t0);
  m.on(Event::tick(), t0 + seconds(50));
  m.on(Event::main_exit(), t0 + seconds(51));
  m.on(Event::tree(false), t0 + seconds(51));
  Actions a = m.on(Event::signal_received(SIGINT), t0 + seconds(52));
  EXPECT_EQ(a.forward, SIGINT);
  EXPECT_TRUE(a.watch_tree);
  EXPECT_FALSE(a.collect);
}

TEST(Escalation, ATimeoutDuringTheGraceIsTheKillNotASecondTerm) {
  // Woken once, long after both the timeout and kill-after: the first tick terms,
  // the next (at once, the deadline being in the past) kills.
  Machine m(with_timeout(seconds(1), seconds(1)), t0);
  SteadyTime late = t0 + seconds(30);
  Actions a = m.on(Event::tick(), late);
  EXPECT_TRUE(a.terminate);
  a = m.on(Event::tick(), late + seconds(1));
  EXPECT_TRUE(a.kill);
  EXPECT_FALSE(a.terminate);
  a = m.on(Event::tick(), late + seconds(2));
  EXPECT_FALSE(a.kill);
  EXPECT_FALSE(a.terminate);
}

TEST(Escalation, ZeroKillAfterKillsOnTheNextWakeUp) {
  Machine m(Config{milliseconds(100), milliseconds(0), false}, t0);
  Actions a = m.on(Event::tick(), t0 + milliseconds(100));
  EXPECT_TRUE(a.terminate);
  EXPECT_EQ(a.deadline, t0 + milliseconds(100));
  a = m.on(Event::tick(), t0 + milliseconds(100));
  EXPECT_TRUE(a.kill);
}

TEST(Escalation, ATreeThatIsNotEmptyChangesNothingOutsideTheGrace) {
  Machine m(with_timeout(seconds(50)), t0);
  Actions a = m.on(Event::tree(false), t0 + seconds(1));
  EXPECT_FALSE(a.collect);
  EXPECT_EQ(m.phase(), Phase::running);
}


// ---- fleet mode: the lease deadline and the revoke ----

// TTL 5s, margin 1s, kill-after 1s: TERM 3s and KILL 4s after the last renewal was sent.
Config with_lease(bool term_on_revoke = false, std::optional<milliseconds> timeout = std::nullopt) {
  Config c{timeout, milliseconds(seconds(1)), false};
  c.lease = Lease{seconds(5), milliseconds(1000), t0, term_on_revoke};
  return c;
}

TEST(EscalationLease, TheLeaseDeadlineCountsFromTheGrantAndIsNotThePollDeadline) {
  Machine m(with_lease(), t0);
  Actions a = m.begin();
  EXPECT_EQ(a.lease_deadline, t0 + seconds(3));
  EXPECT_FALSE(a.deadline) << "the lease rides on its own timer, not on poll's timeout";
}

TEST(EscalationLease, NoRenewalTermsAtTermAtAndKillsAtKillAtBeforeTheLeaseCouldExpire) {
  Machine m(with_lease(), t0);
  Actions a = m.on(Event::tick(), t0 + seconds(3) - milliseconds(1));
  EXPECT_FALSE(a.terminate);
  a = m.on(Event::tick(), t0 + seconds(3));
  EXPECT_TRUE(a.terminate);
  EXPECT_EQ(m.phase(), Phase::terminating);
  EXPECT_TRUE(m.stopped_by_lease());
  EXPECT_FALSE(m.timed_out());
  EXPECT_EQ(a.lease_deadline, t0 + seconds(4));
  a = m.on(Event::tick(), t0 + seconds(4));
  EXPECT_TRUE(a.kill);
  EXPECT_TRUE(m.escalated_to_kill());
  EXPECT_FALSE(a.lease_deadline) << "nothing after the kill";
  // The kill is due a full margin before the lease's end (t0 + 5s).
  EXPECT_LT(t0 + seconds(4), t0 + seconds(5));
}

TEST(EscalationLease, EachRenewalMovesTheDeadlineFromItsSendInstant) {
  Machine m(with_lease(), t0);
  Actions a = m.on(Event::renewal(t0 + milliseconds(1666)), t0 + milliseconds(1670));
  EXPECT_EQ(a.lease_deadline, t0 + milliseconds(4666));
  a = m.on(Event::tick(), t0 + seconds(4));
  EXPECT_FALSE(a.terminate) << "renewed in time: the job runs on";
  EXPECT_EQ(m.phase(), Phase::running);
  EXPECT_EQ(m.last_renewal(), t0 + milliseconds(1666));
}

TEST(EscalationLease, AStaleRenewalNeverMovesTheDeadlineBack) {
  Machine m(with_lease(), t0);
  m.on(Event::renewal(t0 + seconds(2)), t0 + seconds(2));
  Actions a = m.on(Event::renewal(t0 + seconds(1)), t0 + seconds(2));
  EXPECT_EQ(a.lease_deadline, t0 + seconds(5));
}

TEST(EscalationLease, ARenewalAfterTheTermDoesNotTakeItBackAndTheGraceStillEnds) {
  Machine m(with_lease(), t0);
  m.on(Event::tick(), t0 + seconds(3));
  Actions a = m.on(Event::renewal(t0 + milliseconds(3200)), t0 + milliseconds(3300));
  EXPECT_FALSE(a.terminate);
  EXPECT_EQ(m.phase(), Phase::terminating);
  a = m.on(Event::tick(), t0 + seconds(4));
  EXPECT_TRUE(a.kill) << "kill-after of grace from the TERM, whatever renewals came since";
}

TEST(EscalationLease, WokenAfterKillAtTheTermIsFollowedByTheKillAtOnce) {
  Machine m(with_lease(), t0);
  Actions a = m.on(Event::tick(), t0 + seconds(10));
  EXPECT_TRUE(a.terminate);
  a = m.on(Event::tick(), t0 + seconds(10));
  EXPECT_TRUE(a.kill) << "the lease's kill deadline has passed: no grace left";
}

TEST(EscalationLease, TheTimeoutStillWinsWhenItComesFirst) {
  Machine m(with_lease(false, milliseconds(2000)), t0);
  Actions a = m.on(Event::tick(), t0 + seconds(2));
  EXPECT_TRUE(a.terminate);
  EXPECT_TRUE(m.timed_out());
  EXPECT_FALSE(m.stopped_by_lease());
}

TEST(EscalationLease, MainExitBeforeTheDeadlineCollectsWithoutATerm) {
  Machine m(with_lease(), t0);
  Actions a = m.on(Event::main_exit(), t0 + seconds(1));
  EXPECT_TRUE(a.collect);
  EXPECT_FALSE(a.lease_deadline);
  EXPECT_FALSE(m.stopped_by_lease());
}

TEST(EscalationLease, RevokeWithFinishIsOnlyNoted) {
  Machine m(with_lease(/*term_on_revoke=*/false), t0);
  Actions a = m.on(Event::revoke(), t0 + seconds(1));
  EXPECT_FALSE(a.terminate);
  EXPECT_TRUE(m.revoked());
  EXPECT_FALSE(m.stopped_by_revoke());
  EXPECT_EQ(m.phase(), Phase::running);
}

TEST(EscalationLease, RevokeWithTermSendsTermThenKillsAfterTheGrace) {
  Machine m(with_lease(/*term_on_revoke=*/true), t0);
  m.on(Event::renewal(t0 + seconds(1)), t0 + seconds(1));
  Actions a = m.on(Event::revoke(), t0 + milliseconds(1500));
  EXPECT_TRUE(a.terminate);
  EXPECT_EQ(a.deadline, t0 + milliseconds(2500));
  EXPECT_TRUE(m.stopped_by_revoke());
  EXPECT_FALSE(m.stopped_by_lease());
  a = m.on(Event::tick(), t0 + milliseconds(2500));
  EXPECT_TRUE(a.kill);
}

TEST(EscalationLease, ALostLeaseTermsAtOnce) {
  Machine m(with_lease(), t0);
  Actions a = m.on(Event::lost(), t0 + seconds(1));
  EXPECT_TRUE(a.terminate);
  EXPECT_TRUE(m.lease_lost());
  EXPECT_TRUE(m.stopped_by_lease());
}

TEST(EscalationLease, WithoutALeaseRenewalsAndRevokesChangeNothing) {
  Machine m(with_timeout(seconds(50)), t0);
  EXPECT_FALSE(m.begin().lease_deadline);
  Actions a = m.on(Event::revoke(), t0 + seconds(1));
  EXPECT_FALSE(a.terminate);
  a = m.on(Event::lost(), t0 + seconds(1));
  EXPECT_FALSE(a.terminate);
  a = m.on(Event::renewal(t0 + seconds(1)), t0 + seconds(1));
  EXPECT_EQ(a.deadline, t0 + seconds(50));
}

}  // namespace
}  // namespace cronrun::escalation
