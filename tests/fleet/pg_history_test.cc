// The central history against the real PostgreSQL of the fleet fixture
// (CRONRUN_FLEET_PG, tests/fleet/cluster.sh): the schema is created and migrated,
// a replayed batch changes nothing, a stale fence is refused into the dead
// letters, a poisoned record is set aside while the rest of its batch is stored,
// lost rows are completed by a late finish, and a database newer than this build
// is refused; a batch is applied as a set, not record by record; a v1 database
// (the per-record schema) is migrated and keeps its rows and rules; two
// forwarders migrating a fresh database at once both succeed. Tests share the
// database with the other fleet tests: each uses job names of its own; the
// schema tests use databases of their own.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/pg_history.h"
#include "common/pg_schema.h"
#include "common/run_record.h"

using namespace cronrun;
using namespace cronrun::pg;
using nlohmann::json;

namespace {

std::string pg_uri() {
  const char* u = std::getenv("CRONRUN_FLEET_PG");
  return u ? u : "";
}

// `uri` with its database replaced by `db` (postgresql://user@host:port/db?...).
std::string with_database(const std::string& uri, const std::string& db) {
  size_t scheme = uri.find("://");
  size_t slash = uri.find('/', scheme + 3);
  size_t q = uri.find('?', slash);
  return uri.substr(0, slash + 1) + db + (q == std::string::npos ? "" : uri.substr(q));
}

// The cluster's superuser (`postgres`, trust on loopback in the fixture) on its
// `postgres` database: creates and drops the databases and roles of some tests.
std::string admin_uri() {
  std::string u = with_database(pg_uri(), "postgres");
  size_t scheme = u.find("://") + 3;
  size_t at = u.find('@', scheme);
  return u.substr(0, scheme) + "postgres" + (at == std::string::npos ? "@" + u.substr(scheme) : u.substr(at));
}

// psql on `uri` running the SQL file `file`, in one transaction; its output
// (unaligned, tuples only), nullopt when it failed.
std::optional<std::string> psql_file(const std::string& uri, const std::string& file) {
  FILE* p = ::popen(("psql -X -q -At -1 -v ON_ERROR_STOP=1 '" + uri + "' -f '" + file + "' 2>&1").c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) {
    ADD_FAILURE() << "psql -f " << file << ": " << out;
    return std::nullopt;
  }
  return out;
}

// `sql` in a temporary file (removed by the destructor).
struct SqlFile {
  std::string path;
  explicit SqlFile(const std::string& sql) {
    char tmpl[] = "/tmp/cronrun-pgtest-XXXXXX.sql";
    int fd = ::mkstemps(tmpl, 4);
    path = tmpl;
    if (fd >= 0) ::close(fd);
    std::ofstream(path) << sql;
  }
  ~SqlFile() { std::remove(path.c_str()); }
};

// A database of its own, owned by the fixture's role, dropped at the end.
struct OwnDatabase {
  std::string name, uri;
  explicit OwnDatabase(const std::string& tag) : name("cronrun_" + tag + "_" + std::to_string(getpid())) {
    const std::string u = pg_uri();
    const std::string role = u.substr(u.find("://") + 3, u.find('@') - u.find("://") - 3);
    EXPECT_EQ(std::system(("psql -q -X '" + admin_uri() + "' -c 'DROP DATABASE IF EXISTS " + name + "' -c 'CREATE DATABASE " +
                           name + " OWNER " + role + "' >/dev/null")
                              .c_str()),
              0);
    uri = with_database(u, name);
  }
  ~OwnDatabase() {
    EXPECT_EQ(std::system(("psql -q -X '" + admin_uri() + "' -c 'DROP DATABASE " + name + " WITH (FORCE)' >/dev/null").c_str()),
              0);
  }
};

class PgHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(pg_uri().empty()) << "CRONRUN_FLEET_PG is not set: run under the fleet fixture";
    auto h = PgHistory::open(pg_uri());
    ASSERT_TRUE(h) << h.error().message();
    auto m = h->migrate();
    ASSERT_TRUE(m) << m.error().message();
    db_.emplace(std::move(*h));
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    job_ = std::string("pgh-") + info->name() + "-" + std::to_string(getpid());
  }

  // A run record of job_ (or `job`) with a fleet object.
  json record(const std::string& run_id, const std::string& status, std::optional<int64_t> fence,
              const std::string& tick = "2026-12-06T12:00:00Z", const std::string& host = "box1") {
    json r = to_json(RunRecord{});
    r["run_id"] = run_id;
    r["job"] = job_;
    r["host"] = host;
    r["started_at"] = "2026-12-06T12:00:00.250Z";
    r["status"] = status;
    if (status != "running") {
      r["finished_at"] = "2026-12-06T12:00:01.250Z";
      r["wall_s"] = 1.0;
      r["exit_code"] = status == "ok" ? 0 : 1;
    }
    r["fleet"] = {{"group", "g"}, {"host", host}, {"tick", tick}, {"lease_ttl_s", 15}, {"holder", nullptr},
                  {"note", nullptr}};
    r["fleet"]["fence"] = fence ? json(*fence) : json(nullptr);
    return r;
  }
  static BatchRecord start(const json& r) { return {BatchRecord::Kind::start, r.dump()}; }
  static BatchRecord finish(const json& r) { return {BatchRecord::Kind::finish, r.dump()}; }

  std::vector<RunRecord> rows() {
    std::vector<RunRecord> out;
    RunFilter f;
    f.job = job_;
    auto r = db_->each_run(f, [&](const RunRecord& rec) { out.push_back(rec); });
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return out;
  }
  std::vector<DeadLetter> my_dead_letters() {
    std::vector<DeadLetter> out;
    auto all = db_->dead_letters();
    EXPECT_TRUE(all) << (all ? "" : all.error().message());
    if (all)
      for (auto& d : *all)
        if (d.payload.find(job_) != std::string::npos) out.push_back(d);
    return out;
  }
  static std::vector<RecordOutcome::Kind> kinds(const std::vector<RecordOutcome>& o) {
    std::vector<RecordOutcome::Kind> k;
    for (const auto& x : o) k.push_back(x.kind);
    return k;
  }

  // `batch` stored by the cluster's superuser in one transaction with
  // track_functions on: "outcome,outcome,...\n<apply_record calls>\n".
  std::string put_counting_calls(const std::string& host, const std::vector<BatchRecord>& batch) {
    std::string lines;
    for (const auto& r : batch)
      lines += std::string(lines.empty() ? "" : "\n") + (r.kind == BatchRecord::Kind::start ? "{\"type\":\"start\",\"record\":"
                                                                                           : "{\"type\":\"finish\",\"record\":") +
               r.record_json + "}";
    SqlFile sql("SET track_functions = 'pl';\n"
                "SELECT string_agg(outcome, ',' ORDER BY ord) FROM cronrun.put_batch('" + host + "', $batch$" + lines +
                "$batch$);\n"
                "SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'apply_record'), 0);\n");
    auto out = psql_file(with_database(admin_uri(), pg_uri().substr(pg_uri().rfind('/') + 1)), sql.path);
    return out.value_or("psql failed");
  }
  // `n` runs (start and finish) of job_ with ticks and fences of their own, from `base`.
  std::vector<BatchRecord> plain_runs(int n, int base) {
    std::vector<BatchRecord> out;
    for (int i = 0; i < n; ++i) {
      const int k = base + i;
      const std::string tick = fmt_tick(k);
      json st = record(job_ + "-run" + std::to_string(k), "running", 1000 + k, tick);
      json fi = record(job_ + "-run" + std::to_string(k), "ok", 1000 + k, tick);
      out.push_back(start(st));
      out.push_back(finish(fi));
    }
    return out;
  }
  static std::string fmt_tick(int k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "2026-12-07T%02d:%02d:00Z", (k / 60) % 24, k % 60);
    return buf;
  }

  std::optional<PgHistory> db_;
  std::string job_;
};

using K = RecordOutcome::Kind;

std::vector<RecordOutcome::Kind> kinds_of(const std::vector<RecordOutcome>& o) {
  std::vector<RecordOutcome::Kind> k;
  for (const auto& x : o) k.push_back(x.kind);
  return k;
}

TEST_F(PgHistoryTest, MigrateIsRepeatableAndReadersAcceptTheCurrentSchema) {
  ASSERT_TRUE(db_->migrate());
  auto v = db_->schema_version();
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, kSchemaVersion);
  EXPECT_TRUE(db_->require_current());
}

TEST_F(PgHistoryTest, AReplayedBatchChangesNothing) {
  json s = record(job_ + "-r1", "running", 10);
  json f = record(job_ + "-r1", "ok", 10);
  json skipped = record(job_ + "-r2", "skipped", std::nullopt, "2026-12-06T12:01:00Z", "box2");
  std::vector<BatchRecord> batch = {start(s), finish(f), finish(skipped)};
  auto first = db_->put_batch("box1", batch);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(kinds(*first), (std::vector<K>{K::stored, K::stored, K::stored}));
  auto before = rows();
  ASSERT_EQ(before.size(), 2u);

  for (int replay = 0; replay < 2; ++replay) {
    auto again = db_->put_batch("box1", batch);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(kinds(*again), (std::vector<K>{K::unchanged, K::unchanged, K::unchanged}));
  }
  // The start alone, read after its finish (a rotated journal read twice): the
  // finished row does not go back to running.
  auto late_start = db_->put_batch("box1", {start(s)});
  ASSERT_TRUE(late_start);
  EXPECT_EQ(kinds(*late_start), std::vector<K>{K::unchanged});

  auto after = rows();
  ASSERT_EQ(after.size(), 2u);
  for (const auto& r : after) {
    if (r.run_id == job_ + "-r1") {
      EXPECT_EQ(r.status, RunStatus::ok);
      EXPECT_EQ(r.host, "box1");
    } else {
      EXPECT_EQ(r.status, RunStatus::skipped);
      EXPECT_EQ(r.host, "box2");
    }
  }
  EXPECT_TRUE(my_dead_letters().empty());
}

TEST_F(PgHistoryTest, AStaleFenceIsRefusedAndKeptAsADeadLetter) {
  const std::string tick = "2026-12-06T12:05:00Z";
  auto a = db_->put_batch("box1", {start(record(job_ + "-a", "running", 20, tick, "box1"))});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(kinds(*a), std::vector<K>{K::stored});

  // Another holder of the same tick with an older lock: refused, set aside.
  json stale = record(job_ + "-b", "ok", 19, tick, "box2");
  auto b = db_->put_batch("box2", {start(stale), finish(stale)});
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(kinds(*b), (std::vector<K>{K::refused, K::refused}));
  EXPECT_NE((*b)[0].detail.find("stale fence"), std::string::npos) << (*b)[0].detail;
  auto dead = my_dead_letters();
  ASSERT_EQ(dead.size(), 2u);
  for (const auto& d : dead) {
    EXPECT_EQ(d.host, "box2");
    EXPECT_EQ(d.run_id, job_ + "-b");
    EXPECT_EQ(d.reason.rfind("stale fence", 0), 0u) << d.reason;
  }
  // Replaying the refused records does not set them aside twice.
  ASSERT_TRUE(db_->put_batch("box2", {start(stale), finish(stale)}));
  EXPECT_EQ(my_dead_letters().size(), 2u);

  auto kept = rows();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].run_id, job_ + "-a");
  EXPECT_EQ(kept[0].status, RunStatus::running);

  // The same tick claimed by a newer lock: the newer row wins, the older goes to
  // the dead letters, whichever arrived first.
  auto c = db_->put_batch("box3", {finish(record(job_ + "-c", "ok", 25, tick, "box3"))});
  ASSERT_TRUE(c);
  EXPECT_EQ(kinds(*c), std::vector<K>{K::stored});
  auto now = rows();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].run_id, job_ + "-c");
  EXPECT_EQ(my_dead_letters().size(), 3u);

  auto fences = db_->job_fences();
  ASSERT_TRUE(fences);
  bool found = false;
  for (const auto& f : *fences)
    if (f.job == job_) {
      found = true;
      EXPECT_EQ(f.fence, 25);
      EXPECT_EQ(f.host, "box3");
      EXPECT_EQ(f.tick, tick);
    }
  EXPECT_TRUE(found);
}

TEST_F(PgHistoryTest, OutOfOrderHostsAreNotStale) {
  // Host 2 ran tick 2 with fence 30 and forwarded first; host 1's run of tick 1
  // with fence 28 arrives later: a legitimate earlier run, stored.
  auto two = db_->put_batch("box2", {finish(record(job_ + "-t2", "ok", 30, "2026-12-06T12:02:00Z", "box2"))});
  ASSERT_TRUE(two);
  auto one = db_->put_batch("box1", {finish(record(job_ + "-t1", "ok", 28, "2026-12-06T12:01:00Z", "box1"))});
  ASSERT_TRUE(one);
  EXPECT_EQ(kinds(*one), std::vector<K>{K::stored});
  EXPECT_EQ(rows().size(), 2u);
  EXPECT_TRUE(my_dead_letters().empty());
}

TEST_F(PgHistoryTest, APoisonedRecordBecomesADeadLetterAndTheRestIsStored) {
  json good1 = record(job_ + "-g1", "ok", 40, "2026-12-06T12:10:00Z");
  json bad_time = record(job_ + "-p1", "ok", 41, "2026-12-06T12:11:00Z");
  bad_time["started_at"] = "not a time";
  json bad_status = record(job_ + "-p2", "ok", 42, "2026-12-06T12:12:00Z");
  bad_status["status"] = "exploded";
  json nul = record(job_ + "-p3", "ok", 43, "2026-12-06T12:13:00Z");
  nul["command"] = {std::string("a\0b", 3)};  // \u0000: not storable in jsonb
  json good2 = record(job_ + "-g2", "failed", 44, "2026-12-06T12:14:00Z");
  std::vector<BatchRecord> batch = {finish(good1), finish(bad_time), finish(bad_status), finish(nul),
                                    {BatchRecord::Kind::finish, "{\"run_id\": \"" + job_ + "-p4\", "},
                                    finish(good2)};
  auto out = db_->put_batch("box1", batch);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(kinds(*out), (std::vector<K>{K::stored, K::dead, K::dead, K::dead, K::dead, K::stored}));
  for (size_t i = 1; i <= 4; ++i) EXPECT_FALSE((*out)[i].detail.empty());

  auto stored = rows();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(my_dead_letters().size(), 4u);
  // Replayed: still two rows and four dead letters.
  auto again = db_->put_batch("box1", batch);
  ASSERT_TRUE(again);
  EXPECT_EQ(kinds(*again), (std::vector<K>{K::unchanged, K::dead, K::dead, K::dead, K::dead, K::unchanged}));
  EXPECT_EQ(rows().size(), 2u);
  EXPECT_EQ(my_dead_letters().size(), 4u);
  auto count = db_->dead_letter_count();
  ASSERT_TRUE(count);
  EXPECT_GE(*count, 4u);
}

TEST_F(PgHistoryTest, ABatchIsAppliedAsASetNotRecordByRecord) {
  // The forwarder's common batch: starts and finishes of runs of distinct ticks.
  // Applied by one set-based statement: the per-record function is not called
  // (schema v1 called it once per record). Counted by PostgreSQL itself
  // (track_functions, a superuser setting: the cluster's superuser runs it).
  std::string stored;
  for (int i = 0; i < 40; ++i) stored += i ? ",stored" : "stored";
  EXPECT_EQ(put_counting_calls("box1", plain_runs(20, 0)), stored + "\n0\n") << "outcomes, then apply_record calls";
  auto r = rows();
  ASSERT_EQ(r.size(), 20u);
  for (const auto& x : r) EXPECT_EQ(x.status, RunStatus::ok);
}

TEST_F(PgHistoryTest, ASetBatchGivesTheOutcomesOfRecordByRecord) {
  // State left by small batches (applied record by record): a finished run, a
  // lost one, a holder of a tick.
  const std::string t0 = "2026-12-06T15:00:00Z", t1 = "2026-12-06T15:01:00Z", t2 = "2026-12-06T15:02:00Z";
  json x_start = record(job_ + "-x", "running", 90, t0), x_fin = record(job_ + "-x", "ok", 90, t0);
  ASSERT_TRUE(db_->put_batch("box1", {start(x_start), finish(x_fin)}));
  json l_start = record(job_ + "-l", "running", 91, t1);
  ASSERT_TRUE(db_->put_batch("box1", {start(l_start)}));
  ASSERT_TRUE(db_->mark_lost(job_ + "-l", 91, "lock gone").value_or(false));
  json h_start = record(job_ + "-h", "running", 95, t2, "box3");
  ASSERT_TRUE(db_->put_batch("box3", {start(h_start)}));

  // One batch, large enough for the set path, with every case of a record (not
  // the holder's finish: two runs of one tick in a batch are applied in order).
  json s_start = record(job_ + "-s", "running", 94, t2, "box1"), s_fin = record(job_ + "-s", "ok", 94, t2, "box1");
  json k = record(job_ + "-k", "skipped", std::nullopt, "2026-12-06T15:03:00Z", "box2");
  std::vector<BatchRecord> batch = {start(x_start), finish(x_fin),                                // replayed
                                    start(s_start), finish(s_fin),                                // stale fence
                                    finish(record(job_ + "-l", "ok", 91, t1)), start(l_start),    // lost, completed
                                    finish(k),                                                    // no fence
                                    finish(record(job_ + "-m", "failed", 96, "2026-12-06T15:04:00Z"))};
  for (auto& r : plain_runs(6, 100)) batch.push_back(r);
  std::string want = "unchanged,unchanged,refused,refused,stored,unchanged,stored,stored";
  for (int i = 0; i < 12; ++i) want += ",stored";
  EXPECT_EQ(put_counting_calls("box1", batch), want + "\n0\n") << "outcomes, then apply_record calls";

  std::map<std::string, RunStatus> st;
  for (const auto& r : rows()) st[r.run_id] = r.status;
  EXPECT_EQ(st.size(), 11u);
  EXPECT_EQ(st[job_ + "-x"], RunStatus::ok);
  EXPECT_EQ(st[job_ + "-l"], RunStatus::ok);
  EXPECT_EQ(st[job_ + "-h"], RunStatus::running);
  EXPECT_EQ(st[job_ + "-m"], RunStatus::failed);
  EXPECT_EQ(st[job_ + "-k"], RunStatus::skipped);
  EXPECT_EQ(st.count(job_ + "-s"), 0u);
  auto dead = my_dead_letters();
  ASSERT_EQ(dead.size(), 2u);
  for (const auto& d : dead) {
    EXPECT_EQ(d.run_id, job_ + "-s");
    EXPECT_EQ(d.reason, "stale fence: tick " + t2 + " of job " + job_ + " is held by fence 95 (host box3, run " + job_ +
                            "-h); this record has fence 94");
  }
  // The same batch again: everything unchanged but the refused.
  std::string again = "unchanged,unchanged,refused,refused";
  for (int i = 0; i < 16; ++i) again += ",unchanged";
  EXPECT_EQ(put_counting_calls("box1", batch), again + "\n0\n");
  EXPECT_EQ(my_dead_letters().size(), 2u);
  auto fences = db_->job_fences();
  ASSERT_TRUE(fences);
  for (const auto& f : *fences)
    if (f.job == job_) {
      EXPECT_EQ(f.fence, 1105);
    }
  // No running row left behind for the lost marking of other fleet tests.
  ASSERT_TRUE(db_->put_batch("box3", {finish(record(job_ + "-h", "failed", 95, t2, "box3"))}));
}

TEST_F(PgHistoryTest, RecordsOfOneBatchThatDependOnEachOtherAreAppliedInOrder) {
  // Two holders of one tick in one batch (the newer first, then a stale one), a
  // run whose finish moves it to another tick, and a plain run: the batch falls
  // back to applying in order, with the outcomes record by record.
  const std::string t1 = "2026-12-06T14:00:00Z", t2 = "2026-12-06T14:01:00Z", t3 = "2026-12-06T14:02:00Z";
  json newer = record(job_ + "-new", "ok", 71, t1, "box2");
  json stale = record(job_ + "-old", "ok", 70, t1, "box1");
  json plain = record(job_ + "-plain", "ok", 72, t2);
  // Padded with plain runs: large enough that the set path is tried first.
  std::vector<BatchRecord> batch = {start(newer), finish(newer), start(stale), finish(stale), finish(plain)};
  for (auto& r : plain_runs(8, 200)) batch.push_back(r);
  auto out = db_->put_batch("box1", batch);
  ASSERT_TRUE(out) << out.error().message();
  std::vector<K> want = {K::stored, K::stored, K::refused, K::refused, K::stored};
  want.resize(batch.size(), K::stored);
  EXPECT_EQ(kinds(*out), want);
  // The stale one first: the newer replaces it (the older row becomes a dead letter).
  json newer2 = record(job_ + "-new2", "ok", 81, t3, "box2");
  json stale2 = record(job_ + "-old2", "ok", 80, t3, "box1");
  std::vector<BatchRecord> batch2 = {finish(stale2), finish(newer2)};
  for (auto& r : plain_runs(8, 300)) batch2.push_back(r);
  auto out2 = db_->put_batch("box1", batch2);
  ASSERT_TRUE(out2) << out2.error().message();
  EXPECT_EQ(kinds(*out2), std::vector<K>(batch2.size(), K::stored));
  std::vector<std::string> ids;
  for (const auto& r : rows())
    if (r.run_id.find("-run") == std::string::npos) ids.push_back(r.run_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{job_ + "-new", job_ + "-new2", job_ + "-plain"}));
  EXPECT_EQ(my_dead_letters().size(), 3u);  // -old's start and finish, -old2's row
}

TEST_F(PgHistoryTest, ALostRowIsCompletedByALateFinish) {
  json s = record(job_ + "-l", "running", 50, "2026-12-06T12:20:00Z");
  ASSERT_TRUE(db_->put_batch("box1", {start(s)}));
  auto running = db_->running_rows();
  ASSERT_TRUE(running);
  bool seen = false;
  for (const auto& r : *running)
    if (r.run_id == job_ + "-l") {
      seen = true;
      EXPECT_EQ(r.fence, 50);
      EXPECT_EQ(r.job, job_);
      EXPECT_EQ(r.tick, "2026-12-06T12:20:00Z");
    }
  EXPECT_TRUE(seen);

  auto wrong = db_->mark_lost(job_ + "-l", 49, "lock gone");
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(*wrong);
  auto lost = db_->mark_lost(job_ + "-l", 50, "fleet lock of job gone");
  ASSERT_TRUE(lost);
  EXPECT_TRUE(*lost);
  auto r = rows();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, RunStatus::lost);
  // A replayed start leaves it lost; the finish completes it.
  auto st = db_->put_batch("box1", {start(s)});
  ASSERT_TRUE(st);
  EXPECT_EQ(kinds(*st), std::vector<K>{K::unchanged});
  auto fin = db_->put_batch("box1", {finish(record(job_ + "-l", "ok", 50, "2026-12-06T12:20:00Z"))});
  ASSERT_TRUE(fin);
  EXPECT_EQ(kinds(*fin), std::vector<K>{K::stored});
  r = rows();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, RunStatus::ok);
}

TEST_F(PgHistoryTest, FiltersSelectJobHostStatusAndWindow) {
  ASSERT_TRUE(db_->put_batch("box1", {finish(record(job_ + "-1", "ok", 60, "2026-12-06T12:30:00Z", "box1")),
                                      finish(record(job_ + "-2", "failed", 61, "2026-12-06T12:31:00Z", "box2"))}));
  RunFilter f;
  f.job = job_;
  f.host = "box2";
  std::vector<std::string> ids;
  ASSERT_TRUE(db_->each_run(f, [&](const RunRecord& r) { ids.push_back(r.run_id); }));
  EXPECT_EQ(ids, std::vector<std::string>{job_ + "-2"});
  f.host.reset();
  f.status = RunStatus::ok;
  ids.clear();
  ASSERT_TRUE(db_->each_run(f, [&](const RunRecord& r) { ids.push_back(r.run_id); }));
  EXPECT_EQ(ids, std::vector<std::string>{job_ + "-1"});
  f.status.reset();
  f.since_unix_s = *parse_rfc3339("2026-12-06T12:00:01Z");
  ids.clear();
  ASSERT_TRUE(db_->each_run(f, [&](const RunRecord& r) { ids.push_back(r.run_id); }));
  EXPECT_TRUE(ids.empty());
}

TEST_F(PgHistoryTest, ADatabaseNewerThanThisBuildIsRefused) {
  const std::string name = "cronrun_pgnewer_" + std::to_string(getpid());
  // A database of its own: the shared one's version is every other test's.
  const std::string role = pg_uri().substr(pg_uri().find("://") + 3,
                                           pg_uri().find('@') - pg_uri().find("://") - 3);
  ASSERT_EQ(std::system(("psql -q -X '" + admin_uri() + "' -c 'CREATE DATABASE " + name + " OWNER " + role +
                         "' >/dev/null")
                            .c_str()),
            0);
  const std::string uri = with_database(pg_uri(), name);
  {
    auto h = PgHistory::open(uri);
    ASSERT_TRUE(h) << h.error().message();
    auto missing = h->require_current();
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind(), ErrorKind::not_found);
    ASSERT_TRUE(h->migrate());
    ASSERT_EQ(std::system(("psql -q -X '" + uri +
                           "' -c \"UPDATE cronrun.cronrun_meta SET value = '" + std::to_string(kSchemaVersion + 1) +
                           "' WHERE key = 'schema_version'\" >/dev/null")
                              .c_str()),
              0);
    auto m = h->migrate();
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().kind(), ErrorKind::newer);
    EXPECT_NE(m.error().message().find("newer than this cronrun"), std::string::npos) << m.error().message();
    auto r = h->require_current();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::newer);
  }
  EXPECT_EQ(std::system(("psql -q -X '" + admin_uri() + "' -c 'DROP DATABASE " + name + "' >/dev/null").c_str()), 0);
}

TEST(PgSchema, AVersion1DatabaseIsMigratedAndKeepsItsRowsAndRules) {
  ASSERT_FALSE(pg_uri().empty());
  OwnDatabase own("pgv1");
  // The database as a cronrun of schema 1 left it.
  SqlFile v1(std::string(schema::kMigrations[0]) +
             "\nINSERT INTO cronrun.cronrun_meta (key, value) VALUES ('schema_version', '1');\n");
  ASSERT_TRUE(psql_file(own.uri, v1.path));
  auto h = PgHistory::open(own.uri);
  ASSERT_TRUE(h) << h.error().message();
  ASSERT_EQ(h->schema_version().value_or(-1), 1);
  auto older = h->require_current();
  ASSERT_FALSE(older);
  EXPECT_EQ(older.error().kind(), ErrorKind::corrupt);

  auto rec = [](const std::string& run_id, const std::string& status, int64_t fence, const std::string& tick) {
    json r = to_json(RunRecord{});
    r["run_id"] = run_id;
    r["job"] = "v1job";
    r["host"] = "box1";
    r["started_at"] = "2026-12-06T12:00:00.250Z";
    r["status"] = status;
    r["fleet"] = {{"host", "box1"}, {"tick", tick}, {"fence", fence}};
    return BatchRecord{status == "running" ? BatchRecord::Kind::start : BatchRecord::Kind::finish, r.dump()};
  };
  const std::string t1 = "2026-12-06T12:00:00Z", t2 = "2026-12-06T12:01:00Z", t3 = "2026-12-06T12:02:00Z";
  // Written by schema 1's own put_batch (same signature): a finished run, a run
  // still running, a stale record, a poisoned one.
  std::vector<BatchRecord> old_batch = {rec("a", "running", 10, t1), rec("a", "ok", 10, t1), rec("b", "running", 20, t2),
                                        rec("stale", "ok", 15, t2), {BatchRecord::Kind::finish, "{\"run_id\": \"p\""}};
  auto first = h->put_batch("box1", old_batch);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_EQ(kinds_of(*first), (std::vector<RecordOutcome::Kind>{RecordOutcome::Kind::stored, RecordOutcome::Kind::stored,
                                                                 RecordOutcome::Kind::stored, RecordOutcome::Kind::refused,
                                                                 RecordOutcome::Kind::dead}));

  auto m = h->migrate();
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(h->schema_version().value_or(-1), kSchemaVersion);
  EXPECT_TRUE(h->require_current());

  // Replayed after the migration: nothing changes, nothing is set aside twice.
  auto again = h->put_batch("box1", old_batch);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(kinds_of(*again), (std::vector<RecordOutcome::Kind>{RecordOutcome::Kind::unchanged,
                                                                 RecordOutcome::Kind::unchanged,
                                                                 RecordOutcome::Kind::unchanged,
                                                                 RecordOutcome::Kind::refused, RecordOutcome::Kind::dead}));
  EXPECT_EQ(h->dead_letter_count().value_or(0), 2u);
  // The rows schema 1 wrote still fence their ticks; b's finish completes it; a
  // new run is stored and raises the job's fence.
  auto next = h->put_batch("box1", {rec("stale2", "ok", 19, t2), rec("b", "ok", 20, t2), rec("c", "running", 30, t3),
                                    rec("c", "ok", 30, t3)});
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_EQ(kinds_of(*next), (std::vector<RecordOutcome::Kind>{RecordOutcome::Kind::refused, RecordOutcome::Kind::stored,
                                                                RecordOutcome::Kind::stored, RecordOutcome::Kind::stored}));
  std::vector<std::string> seen;
  ASSERT_TRUE(h->each_run({}, [&](const RunRecord& r) {
    seen.push_back(r.run_id + ":" + std::string(to_string(r.status)));
  }));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"a:ok", "b:ok", "c:ok"}));
  auto fences = h->job_fences();
  ASSERT_TRUE(fences);
  ASSERT_EQ(fences->size(), 1u);
  EXPECT_EQ((*fences)[0].fence, 30);
  EXPECT_EQ(h->dead_letter_count().value_or(0), 3u);
}

TEST(PgSchema, TwoForwardersMigratingAFreshDatabaseAtOnceBothSucceed) {
  ASSERT_FALSE(pg_uri().empty());
  OwnDatabase own("pgrace");
  // Another forwarder's migration, holding the migration lock until it commits.
  std::string all;
  for (const char* m : schema::kMigrations) all += std::string(m) + "\n";
  SqlFile other("SELECT pg_advisory_xact_lock(" + std::to_string(schema::kMigrationLock) + ");\n" + all +
                "INSERT INTO cronrun.cronrun_meta (key, value) VALUES ('schema_version', '" +
                std::to_string(kSchemaVersion) + "');\nSELECT pg_sleep(1.5);\n");
  auto h = PgHistory::open(own.uri);
  ASSERT_TRUE(h) << h.error().message();
  ASSERT_EQ(h->schema_version().value_or(-1), 0);
  std::thread t([&] { EXPECT_TRUE(psql_file(own.uri, other.path)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Finds no schema, waits for the lock, then must see the other's schema.
  auto m = h->migrate();
  t.join();
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(h->schema_version().value_or(-1), kSchemaVersion);
}

// psql on `uri`; true when it succeeded.
bool psql(const std::string& uri, const std::string& args) {
  return std::system(("psql -X -q -v ON_ERROR_STOP=1 '" + uri + "' " + args + " >/dev/null 2>&1").c_str()) == 0;
}

TEST(PgRoles, ContribFleetRoleSqlGivesEachRoleLeastPrivilege) {
  ASSERT_FALSE(pg_uri().empty());
  const std::string tag = "rt" + std::to_string(getpid());
  const std::string db = "cronrun_" + tag, owner = tag + "_owner", fwd = tag + "_forward", rd = tag + "_read";
  auto uri_of = [&](const std::string& role, const std::string& pw) {
    std::string base = with_database(pg_uri(), db);
    size_t scheme = base.find("://") + 3;
    size_t at = base.find('@', scheme);
    size_t host = at == std::string::npos ? scheme : at + 1;
    return base.substr(0, scheme) + role + ":" + pw + "@" + base.substr(host);
  };
  ASSERT_TRUE(psql(admin_uri(), "-v db=" + db + " -v owner=" + owner + " -v forward=" + fwd + " -v read=" + rd +
                                 " -v owner_password=\\'po\\' -v forward_password=\\'pf\\'"
                                 " -v read_password=\\'pr\\' -f " CRONRUN_SOURCE_DIR "/contrib/fleet-role.sql"));
  {
    // The forwarders' role cannot create the schema; the error says who can.
    auto f = PgHistory::open(uri_of(fwd, "pf"));
    ASSERT_TRUE(f) << f.error().message();
    auto m = f->migrate();
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("owner"), std::string::npos) << m.error().message();
    EXPECT_EQ(m.error().message().find("pf@"), std::string::npos) << "password in " << m.error().message();

    auto o = PgHistory::open(uri_of(owner, "po"));
    ASSERT_TRUE(o) << o.error().message();
    auto om = o->migrate();
    ASSERT_TRUE(om) << om.error().message();

    f = PgHistory::open(uri_of(fwd, "pf"));
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->migrate()) << "a current schema needs no privilege";
    json r = to_json(RunRecord{});
    r["run_id"] = tag + "-1";
    r["job"] = "j";
    r["started_at"] = "2026-12-06T12:00:00.000Z";
    r["status"] = "running";
    r["fleet"] = {{"host", "box1"}, {"tick", "2026-12-06T12:00:00Z"}, {"fence", 7}};
    auto put = f->put_batch("box1", {{BatchRecord::Kind::start, r.dump()}});
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ((*put)[0].kind, RecordOutcome::Kind::stored);
    auto lost = f->mark_lost(tag + "-1", 7, "test");
    ASSERT_TRUE(lost) << lost.error().message();
    EXPECT_TRUE(*lost);
    ASSERT_TRUE(f->running_rows());
    // ... but not write the tables itself.
    EXPECT_FALSE(psql(uri_of(fwd, "pf"), "-c \"DELETE FROM cronrun.runs\""));
    EXPECT_FALSE(psql(uri_of(fwd, "pf"), "-c \"UPDATE cronrun.runs SET status = 'ok'\""));
    EXPECT_FALSE(psql(uri_of(fwd, "pf"), "-c \"INSERT INTO cronrun.hosts VALUES ('x', now())\""));

    // cronprof's role reads and nothing else.
    auto rdr = PgHistory::open(uri_of(rd, "pr"));
    ASSERT_TRUE(rdr);
    ASSERT_TRUE(rdr->require_current());
    size_t n = 0;
    ASSERT_TRUE(rdr->each_run({}, [&](const RunRecord&) { ++n; }));
    EXPECT_EQ(n, 1u);
    ASSERT_TRUE(rdr->dead_letters());
    ASSERT_TRUE(rdr->hosts_last_seen());
    EXPECT_FALSE(rdr->put_batch("box1", {}));
    EXPECT_FALSE(rdr->mark_lost(tag + "-1", 7, "x"));
    EXPECT_FALSE(psql(uri_of(rd, "pr"), "-c \"DELETE FROM cronrun.runs\""));
  }
  EXPECT_TRUE(psql(admin_uri(), "-c 'DROP DATABASE " + db + "' -c 'DROP ROLE " + owner + "' -c 'DROP ROLE " + fwd +
                                 "' -c 'DROP ROLE " + rd + "'"));
}

TEST(PgUri, PasswordsAreRedacted) {
  EXPECT_EQ(redact_uri("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(redact_uri("postgresql://u@h/db?password=secret&sslmode=require"),
            "postgresql://u@h/db?password=***&sslmode=require");
  EXPECT_EQ(redact_uri("host=h password=secret dbname=db"), "host=h password=*** dbname=db");
  EXPECT_EQ(redact_uri("postgresql://h/db"), "postgresql://h/db");
}

}  // namespace
