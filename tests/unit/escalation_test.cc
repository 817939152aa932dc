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
  EXPECT_EQ(m.forwarded_signal(), SIGHUP);
  EXPECT_EQ(m.phase(), Phase::running);
  m.on(Event::tick(), t0 + seconds(50));
  Actions a = m.on(Event::signal_received(SIGTERM), t0 + seconds(51));
  EXPECT_EQ(a.forward, SIGTERM);
  EXPECT_EQ(a.deadline, t0 + seconds(60)) << "nor the grace";
  EXPECT_EQ(m.phase(), Phase::terminating);
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

}  // namespace
}  // namespace cronrun::escalation
