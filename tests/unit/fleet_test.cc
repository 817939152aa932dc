// Fleet mode's pure parts (runner/fleet.h): keys and ticks, the claim
// transaction as built, the skip reasons a failed claim reads as, the deadline
// arithmetic and the refusal of a grace that does not fit, and the keepalive's
// message protocol. The claim against a real etcd is tests/fleet/fleet_run_test.cc.
#include "runner/fleet.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cronrun::fleet {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// 2026-12-06T12:00:00Z
constexpr int64_t kNoon = 1796558400;

Params params() {
  Params p;
  p.job = "report";
  p.host = "box1";
  p.prefix = "/t";
  p.lease_ttl = seconds(5);
  p.kill_after = milliseconds(1000);
  p.tick_s = kNoon;
  p.run_id = "run-1";
  p.pid = 4242;
  p.started_at = "2026-12-06T12:00:00.010Z";
  return p;
}

TEST(FleetClaim, TheTransactionComparesBothKeysAbsentAndPutsLockOnTheLeaseAndClaimWithout) {
  ClaimTxn t = claim_txn(params(), 0x1234);
  ASSERT_EQ(t.compare.size(), 2u);
  for (const auto& c : t.compare) {
    EXPECT_EQ(c.target, etcd::Compare::Target::create_revision);
    EXPECT_EQ(c.op, etcd::Compare::Op::equal);
    EXPECT_EQ(c.number, 0);
  }
  EXPECT_EQ(t.compare[0].key, "/t/locks/report");
  EXPECT_EQ(t.compare[1].key, "/t/runs/report/2026-12-06T12:00:00Z");

  ASSERT_EQ(t.success.size(), 3u);
  EXPECT_EQ(t.success[0].kind, etcd::Op::Kind::put);
  EXPECT_EQ(t.success[0].key, "/t/locks/report");
  EXPECT_EQ(t.success[0].lease, 0x1234) << "the lock goes with the lease";
  auto lock = nlohmann::json::parse(t.success[0].value);
  EXPECT_EQ(lock["run_id"], "run-1");
  EXPECT_EQ(lock["host"], "box1");
  EXPECT_EQ(lock["pid"], 4242);
  EXPECT_EQ(lock["tick"], "2026-12-06T12:00:00Z");
  EXPECT_EQ(lock["started_at"], "2026-12-06T12:00:00.010Z");

  EXPECT_EQ(t.success[1].kind, etcd::Op::Kind::put);
  EXPECT_EQ(t.success[1].key, "/t/runs/report/2026-12-06T12:00:00Z");
  EXPECT_EQ(t.success[1].lease, 0) << "the tick claim outlives the run";
  auto claim = nlohmann::json::parse(t.success[1].value);
  EXPECT_EQ(claim["run_id"], "run-1");
  EXPECT_EQ(claim["host"], "box1");

  // The prune: this job's claims before tick - 7 days, and never this tick's.
  EXPECT_EQ(t.success[2].kind, etcd::Op::Kind::delete_range);
  EXPECT_EQ(t.success[2].key, "/t/runs/report/");
  EXPECT_EQ(t.success[2].range_end, "/t/runs/report/2026-11-29T12:00:00Z");
  EXPECT_LT(t.success[2].range_end, t.success[1].key);
  EXPECT_LT(t.success[2].key, t.success[2].range_end);

  ASSERT_EQ(t.failure.size(), 2u);
  EXPECT_EQ(t.failure[0].kind, etcd::Op::Kind::range);
  EXPECT_EQ(t.failure[0].key, "/t/locks/report");
  EXPECT_EQ(t.failure[1].kind, etcd::Op::Kind::range);
  EXPECT_EQ(t.failure[1].key, "/t/runs/report/2026-12-06T12:00:00Z");
}

TEST(FleetClaim, ThePruneNeverReachesAnotherJobWhoseNameExtendsThisOne) {
  Params p = params();
  ClaimTxn t = claim_txn(p, 1);
  // "report2"'s claims live under "/t/runs/report2/", which sorts after the range's end.
  EXPECT_GT(runs_prefix("/t", "report2"), t.success[2].range_end);
}

etcd::KeyValue kv(std::string key, std::string value, int64_t rev) {
  etcd::KeyValue k;
  k.key = std::move(key);
  k.value = std::move(value);
  k.create_revision = rev;
  k.mod_revision = rev;
  return k;
}

TEST(FleetSkip, AHeldLockNamesItsHostAndRevision) {
  etcd::TxnResult r;
  r.responses.resize(2);
  r.responses[0].kvs.push_back(kv("/t/locks/report", R"({"run_id":"r0","host":"box2","pid":1})", 41));
  r.responses[1].kvs.push_back(kv("/t/runs/report/2026-12-06T12:00:00Z", R"({"run_id":"r0","host":"box2"})", 41));
  Skip s = skip_of_failed_claim(params(), r);
  EXPECT_EQ(s.why, Skip::Why::lock_held);
  EXPECT_EQ(s.reason, "fleet lock of report held by host box2 (revision 41)");
  ASSERT_TRUE(s.holder);
  EXPECT_EQ(s.holder->host, "box2");
  EXPECT_EQ(s.holder->revision, 41);
}

TEST(FleetSkip, AClaimedTickWithoutALockNamesTheTickItsHostAndRevision) {
  etcd::TxnResult r;
  r.responses.resize(2);
  r.responses[1].kvs.push_back(kv("/t/runs/report/2026-12-06T12:00:00Z", R"({"run_id":"r0","host":"box3"})", 77));
  Skip s = skip_of_failed_claim(params(), r);
  EXPECT_EQ(s.why, Skip::Why::tick_claimed);
  EXPECT_EQ(s.reason, "tick 2026-12-06T12:00:00Z of report already claimed by host box3 (revision 77)");
  EXPECT_EQ(s.holder->revision, 77);
}

TEST(FleetSkip, AValueThatIsNotOursNamesAnUnknownHost) {
  etcd::TxnResult r;
  r.responses.resize(2);
  r.responses[0].kvs.push_back(kv("/t/locks/report", "not json", 9));
  EXPECT_EQ(skip_of_failed_claim(params(), r).reason, "fleet lock of report held by host unknown (revision 9)");
}

// Anyone who can write the prefix writes the holder's "host": a megabyte of it
// must not make the skipped run's record too large for the journal.
TEST(FleetSkip, AHolderThatIsNotAHostNameIsShownCutShort) {
  etcd::TxnResult r;
  r.responses.resize(2);
  nlohmann::json v = {{"host", std::string(1000000, 'h')}, {"pid", 1}};
  r.responses[0].kvs.push_back(kv("/t/locks/report", v.dump(), 9));
  Skip s = skip_of_failed_claim(params(), r);
  EXPECT_LT(s.reason.size(), 200u) << s.reason.substr(0, 200);
  EXPECT_LT(s.holder->host.size(), 100u);
  EXPECT_NE(s.reason.find("(not a host name)"), std::string::npos) << s.reason.substr(0, 200);
}

TEST(FleetSkip, AClaimRetriedAfterItsFirstAttemptWasAppliedIsThisRunsOwn) {
  etcd::TxnResult r;
  r.responses.resize(2);
  auto lock = kv("/t/locks/report", lock_value(params()), 55);
  lock.lease = 0x1234;
  r.responses[0].kvs.push_back(lock);
  EXPECT_EQ(own_lock_fence(params(), r, 0x1234), 55);
  EXPECT_FALSE(own_lock_fence(params(), r, 0x9999)) << "another lease: another attempt's lock";
  Params other = params();
  other.run_id = "run-2";
  EXPECT_FALSE(own_lock_fence(other, r, 0x1234)) << "another run's lock";
  r.responses[0].kvs.clear();
  EXPECT_FALSE(own_lock_fence(params(), r, 0x1234));
}

TEST(FleetSkip, TheOtherReasonsReadAsTheDesignSays) {
  EXPECT_EQ(not_in_group_reason("box1", "scripts"), "host box1 not in group scripts");
  EXPECT_EQ(no_such_group_reason("scirpts", "/cronrun/config", true), "group scirpts is not defined in etcd key /cronrun/config");
  EXPECT_EQ(no_such_group_reason("scripts", "/cronrun/config", false),
            "group scripts is not defined: etcd key /cronrun/config does not exist");
  EXPECT_EQ(unavailable_reason("no endpoint answered:\nrefused"), "etcd unavailable: no endpoint answered: refused");
}

TEST(FleetDeadline, TermAndKillFallKillAfterAndMarginBeforeTheLeaseEnds) {
  SteadyTime sent = SteadyTime{} + seconds(100);
  Deadlines d = deadlines(sent, seconds(15), milliseconds(10000));
  EXPECT_EQ(d.kill_at, sent + seconds(14));
  EXPECT_EQ(d.term_at, sent + seconds(4));
  d = deadlines(sent, seconds(4), milliseconds(1000));
  EXPECT_EQ(d.term_at, sent + seconds(2));
  EXPECT_EQ(d.kill_at, sent + seconds(3));
  EXPECT_EQ(renew_interval(seconds(15)), milliseconds(5000));
  EXPECT_EQ(renew_interval(seconds(4)), milliseconds(1333));
}

TEST(FleetMessages, EveryMessageRoundTripsThroughItsLine) {
  SteadyTime sent = SteadyTime{} + std::chrono::nanoseconds(123456789012345);
  std::vector<Message> all = {{Message::Kind::renewed, sent, {}},
                              {Message::Kind::revoked, {}, "host box1 not in group g"},
                              {Message::Kind::lost, {}, "lease gone"},
                              {Message::Kind::failed, {}, "no endpoint answered"}};
  std::string wire;
  for (const auto& m : all) wire += encode(m);
  MessageReader r;
  EXPECT_EQ(r.feed(wire), all);
}

TEST(FleetMessages, APartialLineWaitsForItsRest) {
  std::string line = encode(Message{Message::Kind::renewed, SteadyTime{} + seconds(7), {}});
  MessageReader r;
  EXPECT_TRUE(r.feed(line.substr(0, 5)).empty());
  auto got = r.feed(line.substr(5));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sent, SteadyTime{} + seconds(7));
}

TEST(FleetMessages, ATextWithANewlineStaysOneMessage) {
  MessageReader r;
  auto got = r.feed(encode(Message{Message::Kind::failed, {}, "a\nb"}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "a b");
}

TEST(FleetMessages, AnUnreadableLineComesBackAsAFailureNamingIt) {
  MessageReader r;
  auto got = r.feed("renewed soon\nhello\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind, Message::Kind::failed);
  EXPECT_EQ(got[0].text, "unreadable keepalive message: renewed soon");
  EXPECT_EQ(got[1].text, "unreadable keepalive message: hello");
}

}  // namespace
}  // namespace cronrun::fleet
