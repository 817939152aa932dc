// parse_counters() on hand-built counter file images: the file is written by job
// processes, so every malformed or forged shape must be refused or neutralized,
// and "no client library seen" must produce no query keys (not observed != 0).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "runner/db_counter.h"

extern "C" {
#include "preload/cronrun_db_shm.h"
}

using cronrun::dbcount::parse_counters;

namespace {

cronrun_db_shm fresh() {
  cronrun_db_shm s{};
  s.magic = CRONRUN_DB_MAGIC;
  s.version = CRONRUN_DB_VERSION;
  s.total_size = sizeof s;
  s.backend_count = CRONRUN_DB_NBACKENDS;
  s.proc_slot_count = CRONRUN_DB_PROC_SLOTS;
  return s;
}

std::string bytes(const cronrun_db_shm& s) { return std::string(reinterpret_cast<const char*>(&s), sizeof s); }

void set_slot(cronrun_db_shm& s, int i, const char* name, size_t name_len, uint64_t queries) {
  s.proc[i].state = CRONRUN_DB_SLOT_READY;
  std::memcpy(s.proc[i].name, name, name_len);
  s.proc[i].queries = queries;
}

}  // namespace

TEST(DbcountParse, NotObservedHasOnlyCoverageKeys) {
  auto s = fresh();
  s.processes = 3;
  auto c = parse_counters(bytes(s));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->size(), 3u);
  EXPECT_EQ(c->at("db.processes"), 3);
  EXPECT_EQ(c->at("db.processes_with_client"), 0);
  EXPECT_EQ(c->at("db.resolve_failures"), 0);
  EXPECT_FALSE(c->contains("db.queries"));
  EXPECT_FALSE(c->contains("db.time_s"));
}

TEST(DbcountParse, SumsBackendsAndReportsOnlySeenOnes) {
  auto s = fresh();
  s.processes = 2;
  s.processes_with_client = 1;
  s.backend[CRONRUN_DB_PG] = {.queries = 10, .prepares = 2, .busy_ns = 1'500'000'000, .busy_ticks = 0, .processes = 1};
  s.backend[CRONRUN_DB_SQLITE] = {.queries = 5, .prepares = 1, .busy_ns = 500'000'000, .busy_ticks = 0, .processes = 1};
  auto c = parse_counters(bytes(s));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->at("db.queries"), 15);
  EXPECT_EQ(c->at("db.prepares"), 3);
  EXPECT_DOUBLE_EQ(c->at("db.time_s"), 2.0);
  EXPECT_EQ(c->at("db.pg.queries"), 10);
  EXPECT_DOUBLE_EQ(c->at("db.pg.time_s"), 1.5);
  EXPECT_EQ(c->at("db.pg.prepares"), 2);
  EXPECT_EQ(c->at("db.sqlite.queries"), 5);
  EXPECT_FALSE(c->contains("db.mysql.queries"));  // never loaded: not observed
}

TEST(DbcountParse, ProgramSlotsAreSanitizedSummedAndBounded) {
  auto s = fresh();
  s.processes_with_client = 1;
  s.backend[CRONRUN_DB_PG].processes = 1;
  set_slot(s, 0, "report", 6, 7);
  set_slot(s, 1, "report", 6, 3);                       // a second claimer of the same name
  set_slot(s, 2, "../evil name", 12, 1);                 // forged: separators become '_'
  char unterminated[CRONRUN_DB_PROC_NAME];
  std::memset(unterminated, 'x', sizeof unterminated);  // forged: no NUL within the field
  set_slot(s, 3, unterminated, sizeof unterminated, 2);
  set_slot(s, 4, "idle", 4, 0);                          // no queries: left out
  s.proc[5].state = CRONRUN_DB_SLOT_CLAIMING;            // half-claimed: ignored
  s.proc[5].queries = 99;
  s.proc_overflow = 4;
  auto c = parse_counters(bytes(s));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->at("db.proc.report.queries"), 10);
  EXPECT_EQ(c->at("db.proc..._evil_name.queries"), 1);  // [A-Za-z0-9_.-] kept, the rest "_"
  EXPECT_EQ(c->at("db.proc." + std::string(CRONRUN_DB_PROC_NAME - 1, 'x') + ".queries"), 2);
  EXPECT_FALSE(c->contains("db.proc.idle.queries"));
  EXPECT_EQ(c->at("db.proc._other.queries"), 4);
  for (const auto& [k, v] : *c) {
    EXPECT_EQ(k.find('/'), std::string::npos) << k;
    EXPECT_EQ(k.find(' '), std::string::npos) << k;
  }
}

TEST(DbcountParse, TscTicksConvertWithTheRunnersFrequencyOnly) {
  auto s = fresh();
  s.processes_with_client = 1;
  s.backend[CRONRUN_DB_PG] = {.queries = 1, .prepares = 0, .busy_ns = 250'000'000, .busy_ticks = 3'000'000'000, .processes = 1};
  auto c = parse_counters(bytes(s), 1.0 / 3e9);  // a 3 GHz TSC: 3e9 ticks = 1 s
  ASSERT_TRUE(c);
  EXPECT_DOUBLE_EQ(c->at("db.pg.time_s"), 1.25);
  c = parse_counters(bytes(s));  // TSC not offered: ticks can only be forged
  ASSERT_TRUE(c);
  EXPECT_DOUBLE_EQ(c->at("db.pg.time_s"), 0.25);
}

TEST(DbcountParse, RefusesWrongSizeMagicVersionAndLayout) {
  auto s = fresh();
  std::string ok = bytes(s);
  EXPECT_FALSE(parse_counters(""));
  EXPECT_FALSE(parse_counters(ok.substr(0, ok.size() - 1)));
  EXPECT_FALSE(parse_counters(ok + "x"));
  auto bad = s;
  bad.magic ^= 1;
  EXPECT_FALSE(parse_counters(bytes(bad)));
  bad = s;
  bad.version = CRONRUN_DB_VERSION + 1;
  auto r = parse_counters(bytes(bad));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("version"), std::string::npos) << r.error().message();
  bad = s;
  bad.proc_slot_count = 1000;
  EXPECT_FALSE(parse_counters(bytes(bad)));
  bad = s;
  bad.backend_count = 2;
  EXPECT_FALSE(parse_counters(bytes(bad)));
  bad = s;
  bad.total_size = 1;
  EXPECT_FALSE(parse_counters(bytes(bad)));
}

TEST(DbcountParse, HugeForgedValuesDoNotOverflow) {
  auto s = fresh();
  s.processes_with_client = 1;
  for (auto& b : s.backend) b = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, 1};
  auto c = parse_counters(bytes(s));
  ASSERT_TRUE(c);
  EXPECT_GT(c->at("db.queries"), 1e19);  // summed in double, not wrapped to a small number
}
