// The run record JSON (schema cronrun.run/1) and the SQLite history store:
// round trips, nulls, times and ids; creation, migration from an older schema,
// refusal of a newer one, running -> finish, lost detection, many concurrent
// writer processes, corrupt / missing / unreadable files, retention, O_CLOEXEC.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "common/history.h"
#include "common/run_record.h"

namespace cronrun {
namespace {

using nlohmann::json;

// ---------- fixtures ----------

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cronrun-history-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

RunRecord full_record() {
  RunRecord r;
  r.run_id = "0193f1c2-7d3a-7c1e-9f00-123456789abc";
  r.job = "nightly-report";
  r.host = "box1";
  r.user = "report";
  r.command = {"/usr/local/bin/report", "--full"};
  r.started_at = "2026-11-23T02:10:00.123Z";
  r.finished_at = "2026-11-23T02:23:32.523Z";
  r.wall_s = 812.4;
  r.status = RunStatus::ok;
  r.exit_code = 0;
  r.isolation = {"v2", "/cronrun/nightly-report/0193f1c2", "cgroup", std::nullopt};
  r.limits.memory_max_bytes = 2147483648ULL;
  r.limits.cpu_quota_pct = 150;
  r.limits.timeout_s = 3000;
  r.usage.cpu_user_s = 512.1;
  r.usage.cpu_system_s = 33.0;
  r.usage.memory_peak_bytes = 1610612736ULL;
  r.usage.max_rss_bytes = 1207959552ULL;
  r.usage.io_read_bytes = 0;
  r.usage.io_write_bytes = 0;
  r.usage.pids_peak = 9;
  r.usage.oom_kills = 0;
  r.usage.memory_max_events = 0;
  r.usage.memory_high_events = 0;
  r.usage.cpu_throttled_s = 4.2;
  r.usage.cpu_nr_throttled = 88;
  r.usage.pressure_some_s = {1.1, 0.0, 0.3};
  r.counters = {{"db.queries", 18234}, {"db.time_s", 301.5}, {"db.pg.queries", 18234}, {"rows_exported", 1200}};
  r.lock.path = "/run/cronrun/locks/nightly-report.pid";
  r.forwarded_signal = ForwardedSignal{SIGTERM, 4321, 0, 2};
  return r;
}

// A minimal record for store tests: `n` seconds after a fixed base time.
RunRecord make_run(const std::string& job, int n, RunStatus status = RunStatus::ok) {
  RunRecord r;
  r.run_id = new_run_id();
  r.job = job;
  r.host = "box1";
  r.user = "root";
  r.command = {"/bin/true"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "2026-11-%02dT%02d:%02d:%02d.000Z", 1 + n / 86400, (n / 3600) % 24, (n / 60) % 60,
                n % 60);
  r.started_at = buf;
  r.status = status;
  if (status != RunStatus::running) {
    r.finished_at = r.started_at;
    r.wall_s = 10.0 + n % 7;
    r.exit_code = status == RunStatus::ok ? 0 : 1;
    r.usage.cpu_user_s = 1.0;
    r.usage.cpu_system_s = 0.5;
    r.usage.memory_peak_bytes = 100u << 20;
  }
  r.runner_pid = ::getpid();
  r.boot_id = current_boot_id();
  return r;
}

// A probe under the test's control: pids in `dead` are gone; boot is "this-boot".
RunnerProbe fake_probe(std::set<int64_t> dead) {
  RunnerProbe p;
  p.boot_id = "this-boot";
  p.runner_alive = [dead](int64_t pid, uint64_t) { return !dead.count(pid); };
  return p;
}

HistoryStore open_rw(const std::string& path) {
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return std::move(*s);
}

int user_version(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// ---------- run record ----------

TEST(RunRecordJson, RoundTripKeepsEveryField) {
  RunRecord r = full_record();
  json j = to_json(r);
  auto back = run_record_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(to_json(*back), j);
  EXPECT_EQ(back->usage.memory_peak_bytes, 1610612736ULL);
  EXPECT_EQ(back->counters.at("rows_exported"), 1200);
  ASSERT_TRUE(back->forwarded_signal);
  EXPECT_EQ(back->forwarded_signal->sender_pid, 4321);
  EXPECT_EQ(back->forwarded_signal->count, 2u);
  // Absent when no signal was forwarded, not null: records stay as they were.
  RunRecord plain = full_record();
  plain.forwarded_signal.reset();
  EXPECT_FALSE(to_json(plain).contains("forwarded_signal"));
  // A signal from the kernel has no sender.
  plain.forwarded_signal = ForwardedSignal{SIGHUP, std::nullopt, std::nullopt, 1};
  EXPECT_EQ(forwarded_signal_text(*plain.forwarded_signal), "SIGHUP from the kernel, forwarded to the job");
  auto kernel = run_record_from_json(json::parse(to_json(plain).dump()));
  ASSERT_TRUE(kernel && kernel->forwarded_signal);
  EXPECT_FALSE(kernel->forwarded_signal->sender_pid);
  // Through text too, as the history stores it.
  auto again = run_record_from_json(json::parse(j.dump()));
  ASSERT_TRUE(again);
  EXPECT_EQ(to_json(*again), j);
}

TEST(RunRecordJson, HasEverySchemaKeyAndNullsForUnmeasured) {
  RunRecord r;
  r.run_id = "x";
  r.job = "j";
  r.started_at = "2026-11-23T02:10:00.123Z";
  json j = to_json(r);
  EXPECT_EQ(j["schema"], "cronrun.run/1");
  for (const char* k : {"run_id", "job", "host", "user", "command", "started_at", "finished_at", "wall_s", "status",
                        "exit_code", "signal", "skip_reason", "isolation", "limits", "usage", "counters", "lock",
                        "log"})
    EXPECT_TRUE(j.contains(k)) << k;
  for (const char* k : {"finished_at", "wall_s", "exit_code", "signal", "skip_reason"}) EXPECT_TRUE(j[k].is_null()) << k;
  for (const char* k : {"memory_max_bytes", "memory_high_bytes", "swap_max_bytes", "cpu_quota_pct", "cpu_weight",
                        "pids_max", "timeout_s"})
    EXPECT_TRUE(j["limits"].contains(k) && j["limits"][k].is_null()) << k;
  for (const char* k : {"cpu_user_s", "cpu_system_s", "memory_peak_bytes", "max_rss_bytes", "io_read_bytes",
                        "io_write_bytes", "pids_peak", "pids_max_events", "oom_kills", "memory_max_events",
                        "memory_high_events",
                        "cpu_throttled_s", "cpu_nr_throttled"})
    EXPECT_TRUE(j["usage"].contains(k) && j["usage"][k].is_null()) << k;
  for (const char* k : {"cpu", "memory", "io"}) EXPECT_TRUE(j["usage"]["pressure_some_s"][k].is_null()) << k;
  for (const char* k : {"cgroup", "path", "accounting", "note"}) EXPECT_TRUE(j["isolation"].contains(k)) << k;
  EXPECT_TRUE(j["lock"]["holder_pid"].is_null());
  EXPECT_EQ(j["lock"]["waited_s"], 0.0);
  EXPECT_TRUE(j["log"]["path"].is_null());
  EXPECT_EQ(j["status"], "running");
  EXPECT_FALSE(j.contains("runner_pid"));  // history-only, not schema
  // Null reads back as nullopt, not 0.
  auto back = run_record_from_json(j);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->usage.memory_peak_bytes.has_value());
  EXPECT_FALSE(back->wall_s.has_value());
}

TEST(RunRecordJson, ZeroIsNotNull) {
  RunRecord r = full_record();
  json j = to_json(r);
  EXPECT_TRUE(j["usage"]["io_read_bytes"].is_number());
  EXPECT_EQ(j["usage"]["io_read_bytes"], 0);
}

TEST(RunRecordJson, StrictTypesNameTheKey) {
  json j = to_json(full_record());
  j["usage"]["memory_peak_bytes"] = "1.5G";
  auto r = run_record_from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("usage.memory_peak_bytes"), std::string::npos) << r.error().message();

  j = to_json(full_record());
  j["usage"]["oom_kills"] = -1;
  EXPECT_FALSE(run_record_from_json(j));
  j = to_json(full_record());
  j["status"] = "exploded";
  EXPECT_FALSE(run_record_from_json(j));
  j = to_json(full_record());
  j.erase("run_id");
  EXPECT_FALSE(run_record_from_json(j));
  j = to_json(full_record());
  j["schema"] = "cronrun.run/2";
  EXPECT_FALSE(run_record_from_json(j));
  EXPECT_FALSE(run_record_from_json(json::array()));
}

TEST(RunRecordJson, UnknownKeysIgnoredMissingOptionalKeysNull) {
  json j = {{"schema", "cronrun.run/1"}, {"run_id", "a"},          {"job", "j"}, {"status", "ok"},
            {"started_at", "2026-01-01T00:00:00Z"}, {"future_field", {1, 2}}, {"usage", {{"new_metric", 3}}}};
  auto r = run_record_from_json(j);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, RunStatus::ok);
  EXPECT_FALSE(r->usage.cpu_user_s);
  EXPECT_EQ(r->isolation.cgroup, "none");
}

TEST(RunStatusText, RoundTrips) {
  for (RunStatus s : {RunStatus::running, RunStatus::ok, RunStatus::failed, RunStatus::killed, RunStatus::timeout,
                      RunStatus::oom, RunStatus::skipped, RunStatus::error, RunStatus::lost}) {
    auto p = parse_run_status(to_string(s));
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, s);
  }
  EXPECT_FALSE(parse_run_status("OK"));
  EXPECT_FALSE(parse_run_status(""));
}

TEST(Rfc3339, ParsesKnownInstants) {
  EXPECT_DOUBLE_EQ(*parse_rfc3339("1970-01-01T00:00:00Z"), 0.0);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2026-11-23T02:10:00Z"), 1795399800.0);  // date -u -d ... +%s
  EXPECT_NEAR(*parse_rfc3339("2026-11-23T02:10:00.123Z"), 1795399800.123, 1e-6);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2026-11-23T03:10:00+01:00"), 1795399800.0);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2024-02-29T00:00:00Z"), 1709164800.0);
  for (const char* bad : {"", "2026-11-23", "2026-11-23T02:10:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-11-23T24:00:00Z", "2026-11-23T02:10:00.Z", "2026-11-23T02:10:00Zjunk",
                          "20261123T021000Z"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(Rfc3339, NowHasMillisecondsAndParses) {
  std::string now = now_rfc3339();
  EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"))) << now;
  auto t = parse_rfc3339(now);
  ASSERT_TRUE(t);
  EXPECT_NEAR(*t, static_cast<double>(::time(nullptr)), 2.0);
}

TEST(RunId, IsUuidV7OrderedAndUnique) {
  std::set<std::string> seen;
  std::string prev;
  const std::regex uuid7("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 2000; ++i) {
    std::string id = new_run_id();
    if (i % 100 == 0) {  // std::regex is slow under ASan
      ASSERT_TRUE(std::regex_match(id, uuid7)) << id;
    }
    ASSERT_EQ(id.size(), 36u);
    ASSERT_EQ(id[14], '7');
    EXPECT_TRUE(seen.insert(id).second);
    // The first 48 bits are milliseconds: never decreasing.
    if (!prev.empty()) {
      EXPECT_LE(prev.substr(0, 13), id.substr(0, 13));
    }
    prev = id;
  }
  uint64_t ms = std::stoull(prev.substr(0, 8) + prev.substr(9, 4), nullptr, 16);
  EXPECT_NEAR(static_cast<double>(ms) / 1000.0, static_cast<double>(::time(nullptr)), 5.0);
}

TEST(BootId, ReadsTheKernelsBootId) {
  std::string id = current_boot_id();
  EXPECT_EQ(id.size(), 36u) << id;
}

// ---------- store: open, schema ----------

TEST(HistoryOpen, ReadWriteCreatesDirsAndCurrentSchema) {
  TempDir d;
  std::string path = d.path() + "/a/b/history.db";
  {
    HistoryOpenOptions opts;
    opts.default_location = true;
    auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, opts);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->schema_version(), HistoryStore::kSchemaVersion);
  }
  struct stat st {};
  ASSERT_EQ(::stat((d.path() + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, ::geteuid() == 0 ? 0755u : 0700u);
  EXPECT_EQ(user_version(path), HistoryStore::kSchemaVersion);
  // WAL, persistent: the -wal and -shm files stay for read-only readers.
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
  EXPECT_TRUE(std::filesystem::exists(path + "-shm"));
}

TEST(HistoryOpen, ReadOnlyNeverCreates) {
  TempDir d;
  HistoryFault fault = HistoryFault::none;
  auto s = HistoryStore::open(d.file("nope.db"), HistoryStore::Mode::read_only, &fault);
  ASSERT_FALSE(s);
  EXPECT_EQ(fault, HistoryFault::missing);
  EXPECT_FALSE(std::filesystem::exists(d.file("nope.db")));
  EXPECT_NE(s.error().message().find(d.file("nope.db")), std::string::npos);
}

TEST(HistoryOpen, EmptyFileReadsAsNoHistoryYet) {
  TempDir d;
  std::ofstream(d.file("empty.db")).close();
  HistoryFault fault = HistoryFault::none;
  auto s = HistoryStore::open(d.file("empty.db"), HistoryStore::Mode::read_only, &fault);
  ASSERT_FALSE(s);
  EXPECT_EQ(fault, HistoryFault::missing);
}

TEST(HistoryOpen, CorruptFileIsAnErrorNotACrash) {
  std::string fixture = std::string(CRONRUN_FIXTURES) + "/history/corrupt.db";
  for (auto mode : {HistoryStore::Mode::read_only, HistoryStore::Mode::read_write}) {
    TempDir d;
    std::filesystem::copy_file(fixture, d.file("h.db"));
    HistoryFault fault = HistoryFault::none;
    auto s = HistoryStore::open(d.file("h.db"), mode, &fault);
    ASSERT_FALSE(s);
    EXPECT_EQ(fault, HistoryFault::corrupt) << s.error().message();
    EXPECT_EQ(slurp(d.file("h.db")), slurp(fixture));  // not "repaired" by overwriting
  }
}

TEST(HistoryOpen, DamagedPagesFailTheQueryAsCorrupt) {
  TempDir d;
  std::string path = d.file("h.db");
  {
    auto s = open_rw(path);
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(s.record(make_run("job", i)));
  }
  // Checkpoint the WAL into the main file, then clobber pages after the header.
  exec_sql(path, "PRAGMA wal_checkpoint(TRUNCATE)");
  {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::string junk(4096 * 8, '\x5a');
    ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 4096), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  HistoryFault fault = HistoryFault::none;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_only, &fault);
  if (!s) {
    EXPECT_EQ(fault, HistoryFault::corrupt) << s.error().message();
    return;
  }
  uint64_t n = 0;
  auto r = s->scan({}, [&](const RunFigures&) { ++n; });
  ASSERT_FALSE(r);
  EXPECT_EQ(s->last_fault(), HistoryFault::corrupt) << r.error().message();
}

TEST(HistoryOpen, ForeignSqliteDatabaseIsNotOurs) {
  TempDir d;
  exec_sql(d.file("other.db"), "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  for (auto mode : {HistoryStore::Mode::read_only, HistoryStore::Mode::read_write}) {
    HistoryFault fault = HistoryFault::none;
    auto s = HistoryStore::open(d.file("other.db"), mode, &fault);
    ASSERT_FALSE(s);
    EXPECT_EQ(fault, HistoryFault::corrupt) << s.error().message();
  }
}

TEST(HistoryOpen, RefusesNewerSchemaInBothModes) {
  TempDir d;
  std::string path = d.file("h.db");
  { open_rw(path); }
  exec_sql(path, "PRAGMA user_version = 99; ALTER TABLE runs ADD COLUMN from_the_future TEXT;");
  for (auto mode : {HistoryStore::Mode::read_only, HistoryStore::Mode::read_write}) {
    HistoryFault fault = HistoryFault::none;
    auto s = HistoryStore::open(path, mode, &fault);
    ASSERT_FALSE(s);
    EXPECT_EQ(fault, HistoryFault::newer_schema);
    EXPECT_NE(s.error().message().find("99"), std::string::npos) << s.error().message();
  }
  EXPECT_EQ(user_version(path), 99);  // untouched
}

// What cronprof meets after an upgrade, before any cronrun has migrated the file: a
// schema 3 history, read-only. runner_start reads as 0 and a running row is judged
// by pid and boot id as before.
TEST(HistoryOpen, ReadsVersion3ReadOnly) {
  TempDir d;
  std::string path = d.file("h.db");
  {
    auto s = open_rw(path);
    ASSERT_TRUE(s.record(make_run("done", 10)));
    RunRecord live = make_run("live", 20, RunStatus::running);
    live.runner_start = 12345;  // not this process's: dropped with the column below
    ASSERT_TRUE(s.begin_run(live));
  }
  // Back to schema 3's shape: the 3 -> 4 step only added the column.
  exec_sql(path, "ALTER TABLE runs DROP COLUMN runner_start; PRAGMA user_version = 3");
  ASSERT_EQ(user_version(path), 3);
  auto ro = HistoryStore::open(path, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro) << ro.error().message();
  EXPECT_EQ(ro->schema_version(), 3);
  std::map<std::string, RunStatus> scanned;
  ASSERT_TRUE(ro->scan({}, [&](const RunFigures& f) { scanned[f.job] = f.status; }));
  EXPECT_EQ(scanned["done"], RunStatus::ok);
  EXPECT_EQ(scanned["live"], RunStatus::running);  // this process, this boot
  auto runs = ro->runs({});
  ASSERT_TRUE(runs) << runs.error().message();
  ASSERT_EQ(runs->size(), 2u);
  for (const auto& r : *runs) EXPECT_EQ(r.runner_start, 0u) << r.job;
  EXPECT_EQ(user_version(path), 3);  // read-only: not migrated
}

TEST(HistoryOpen, MigratesVersion1Forward) {
  TempDir d;
  std::string path = d.file("h.db");
  exec_sql(path, slurp(std::string(CRONRUN_FIXTURES) + "/history/v1.sql"));
  ASSERT_EQ(user_version(path), 1);

  // Read-only: no migration, but the v2 columns are there through the compat view.
  {
    auto ro = HistoryStore::open(path, HistoryStore::Mode::read_only);
    ASSERT_TRUE(ro) << ro.error().message();
    EXPECT_EQ(ro->schema_version(), 1);
    std::vector<RunFigures> rows;
    ASSERT_TRUE(ro->scan({}, [&](const RunFigures& f) { rows.push_back(f); }));
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[2].job, "nightly-report");
    EXPECT_EQ(rows[2].db_queries, 18234);
    EXPECT_EQ(rows[2].cpu_throttled_s, 4.2);
    EXPECT_EQ(rows[2].memory_max_bytes, 2147483648ULL);
    // Schema 4's runner_start reads as 0 (unknown) through the view.
    auto rec = ro->find_run("0193f1c2-0000-7000-8000-000000000001");
    ASSERT_TRUE(rec && *rec) << (rec ? "not found" : rec.error().message());
    EXPECT_EQ((*rec)->runner_pid, 4242);
    EXPECT_EQ((*rec)->runner_start, 0u);
  }
  EXPECT_EQ(user_version(path), 1);

  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->schema_version(), HistoryStore::kSchemaVersion);
  EXPECT_EQ(user_version(path), HistoryStore::kSchemaVersion);
  s->set_runner_probe(fake_probe({}));
  std::vector<RunFigures> rows;
  ASSERT_TRUE(s->scan({}, [&](const RunFigures& f) { rows.push_back(f); }));
  ASSERT_EQ(rows.size(), 3u);
  // Newest first; the backfilled columns equal the JSON.
  EXPECT_EQ(rows[0].job, "backup");
  EXPECT_EQ(rows[0].status, RunStatus::lost);  // written in "old-boot"
  EXPECT_EQ(rows[1].status, RunStatus::oom);
  EXPECT_EQ(rows[1].oom_kills, 1u);
  EXPECT_EQ(rows[2].db_queries, 18234);
  EXPECT_EQ(rows[2].db_time_s, 301.5);
  EXPECT_EQ(rows[2].cpu_quota_pct, 150);
  EXPECT_EQ(rows[2].timeout_s, 3000);
  std::multiset<uint64_t> pids;
  for (const auto& r : rows)
    if (r.pids_peak) pids.insert(*r.pids_peak);
  EXPECT_EQ(pids, (std::multiset<uint64_t>{3, 9}));  // as the records say
  auto rec = s->find_run("0193f1c2-0000-7000-8000-000000000001");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->counters.at("rows_exported"), 1200);
  EXPECT_EQ((*rec)->runner_pid, 4242);
  EXPECT_EQ((*rec)->runner_start, 0u);
  // And it takes new rows.
  ASSERT_TRUE(s->record(make_run("new-job", 5)));
}

// Every row of a query's first column, as text (NULL: "null").
std::vector<std::string> column_texts(const std::string& path, const std::string& sql) {
  std::vector<std::string> out;
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) out.push_back(sqlite3_errmsg(db));
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    auto* t = sqlite3_column_text(st, sqlite3_column_count(st) - 1);
    out.emplace_back(t ? reinterpret_cast<const char*>(t) : "null");
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Schema 7 added the pids figures `suggest` reads. A schema 6 file reads them
// from the JSON while read-only, and gets them as columns (in the covering index
// the window scans read) once a writer migrates it.
TEST(HistoryOpen, Version6GetsThePidsFiguresReadOnlyAndMigrated) {
  TempDir d;
  std::string path = d.file("h.db");
  {
    auto s = open_rw(path);
    RunRecord limited = make_run("limited", 10);
    limited.usage.pids_peak = 12;
    limited.usage.pids_max_events = 3;
    limited.limits.pids_max = 16;
    ASSERT_TRUE(s.record(limited));
    ASSERT_TRUE(s.record(make_run("free", 20)));
  }
  // Back to schema 6's shape: the 6 -> 7 step added three columns and widened the index.
  exec_sql(path,
           "DROP INDEX runs_figures; ALTER TABLE runs DROP COLUMN pids_peak; ALTER TABLE runs DROP COLUMN "
           "pids_max_events; ALTER TABLE runs DROP COLUMN pids_max; CREATE INDEX runs_figures ON runs(started_at, "
           "run_id, job, status, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, max_rss_bytes, oom_kills, "
           "cpu_throttled_s, db_queries, db_time_s, memory_max_bytes, cpu_quota_pct, timeout_s, runner_pid, boot_id); "
           "PRAGMA user_version = 6");
  auto check = [](const HistoryStore& h) {
    std::map<std::string, RunFigures> by_job;
    ASSERT_TRUE(h.scan({}, [&](const RunFigures& f) { by_job[f.job] = f; }));
    ASSERT_EQ(by_job.size(), 2u);
    EXPECT_EQ(by_job["limited"].pids_peak, 12u);
    EXPECT_EQ(by_job["limited"].pids_max_events, 3u);
    EXPECT_EQ(by_job["limited"].pids_max, 16u);
    EXPECT_FALSE(by_job["free"].pids_peak);
    EXPECT_FALSE(by_job["free"].pids_max);
  };
  {
    auto ro = HistoryStore::open(path, HistoryStore::Mode::read_only);
    ASSERT_TRUE(ro) << ro.error().message();
    EXPECT_EQ(ro->schema_version(), 6);
    check(*ro);
  }
  EXPECT_EQ(user_version(path), 6);
  {
    auto rw = HistoryStore::open(path, HistoryStore::Mode::read_write);
    ASSERT_TRUE(rw) << rw.error().message();
    check(*rw);
  }
  EXPECT_EQ(user_version(path), 7);
  EXPECT_EQ(column_texts(path, "SELECT job, pids_peak FROM runs ORDER BY job"),
            (std::vector<std::string>{"null", "12"}));
  // The scans' columns still come from the index alone.
  auto plan = column_texts(path,
                           "EXPLAIN QUERY PLAN SELECT run_id, job, status, started_at, finished_at, wall_s, exit_code, "
                           "cpu_s, memory_peak_bytes, max_rss_bytes, oom_kills, cpu_throttled_s, db_queries, db_time_s, "
                           "memory_max_bytes, cpu_quota_pct, timeout_s, pids_peak, pids_max_events, pids_max, "
                           "runner_pid, boot_id FROM runs WHERE started_at >= 0 ORDER BY started_at DESC");
  ASSERT_FALSE(plan.empty());
  EXPECT_NE(plan[0].find("COVERING INDEX runs_figures"), std::string::npos) << plan[0];
}

// ---------- store: writes and reads ----------

TEST(HistoryStore, BeginThenFinish) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  s.set_runner_probe(fake_probe({}));
  RunRecord r = make_run("job-a", 100, RunStatus::running);
  r.boot_id = "this-boot";
  ASSERT_TRUE(s.begin_run(r));
  auto runs = s.runs({});
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().status, RunStatus::running);
  EXPECT_FALSE(runs->front().wall_s);
  auto live = s.in_progress();
  ASSERT_TRUE(live);
  EXPECT_EQ(live->size(), 1u);

  // A second begin for the same id is refused.
  EXPECT_FALSE(s.begin_run(r));

  r.status = RunStatus::ok;
  r.finished_at = "2026-11-02T03:00:00.000Z";
  r.wall_s = 42.5;
  r.exit_code = 0;
  r.usage.memory_peak_bytes = 123456789;
  r.usage.cpu_user_s = 1.0;
  r.usage.cpu_system_s = 0.5;
  r.counters["db.queries"] = 7;
  ASSERT_TRUE(s.finish_run(r));
  RunFilter f;
  std::vector<RunFigures> rows;
  ASSERT_TRUE(s.scan(f, [&](const RunFigures& x) { rows.push_back(x); }));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, RunStatus::ok);
  EXPECT_EQ(rows[0].wall_s, 42.5);
  EXPECT_EQ(rows[0].memory_peak_bytes, 123456789u);
  EXPECT_EQ(rows[0].db_queries, 7);
  EXPECT_EQ(rows[0].cpu_s, 1.5);
  auto rec = s.find_run(r.run_id);
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ(to_json(**rec), to_json(r));
  EXPECT_TRUE(s.in_progress()->empty());
}

TEST(HistoryStore, FinishWithoutBeginStillLands) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  RunRecord r = make_run("job-a", 100);
  ASSERT_TRUE(s.finish_run(r));
  EXPECT_EQ(*s.count({}), 1u);
}

TEST(HistoryStore, RunningRowOfAGoneRunnerReadsAsLost) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  RunRecord alive = make_run("a", 10, RunStatus::running);
  alive.runner_pid = 1001;
  alive.boot_id = "this-boot";
  RunRecord dead_pid = make_run("b", 20, RunStatus::running);
  dead_pid.runner_pid = 1002;
  dead_pid.boot_id = "this-boot";
  RunRecord other_boot = make_run("c", 30, RunStatus::running);
  other_boot.runner_pid = 1001;  // same pid number, but in an earlier boot
  other_boot.boot_id = "earlier-boot";
  for (const auto& r : {alive, dead_pid, other_boot}) ASSERT_TRUE(s.begin_run(r));
  s.set_runner_probe(fake_probe({1002}));

  std::map<std::string, RunStatus> seen;
  auto all = s.runs({});
  ASSERT_TRUE(all);
  for (const auto& r : *all) seen[r.job] = r.status;
  EXPECT_EQ(seen["a"], RunStatus::running);
  EXPECT_EQ(seen["b"], RunStatus::lost);
  EXPECT_EQ(seen["c"], RunStatus::lost);

  RunFilter lost;
  lost.status = RunStatus::lost;
  EXPECT_EQ(*s.count(lost), 2u);
  RunFilter running;
  running.status = RunStatus::running;
  EXPECT_EQ(*s.count(running), 1u);
  auto live = s.in_progress();
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ(live->front().job, "a");
  auto counts = s.status_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)["b"][RunStatus::lost], 1u);
  EXPECT_EQ((*counts)["a"][RunStatus::running], 1u);
}

TEST(ProcStat, StartTimeIsField22CountedFromTheLastParenthesis) {
  // A line as the kernel writes it (6.18, `cat`): starttime 1914458.
  const std::string line =
      "30541 (cat) R 30537 30537 17641 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 1914458 3133440 392 "
      "18446744073709551615 94543657848832 94543657868713 140729634938432 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
  EXPECT_EQ(parse_stat_start_ticks(line), 1914458u);
  // A command name with spaces and parentheses in it.
  std::string odd = line;
  odd.replace(odd.find("(cat)"), 5, "(a) b (c))");
  EXPECT_EQ(parse_stat_start_ticks(odd), 1914458u);
  EXPECT_FALSE(parse_stat_start_ticks("30541 (cat) R 30537 30537"));
  EXPECT_FALSE(parse_stat_start_ticks("30541 cat R"));
  std::string bad = line;
  bad.replace(bad.find(" 1914458 "), 9, " 19x4458 ");
  EXPECT_FALSE(parse_stat_start_ticks(bad));
}

TEST(HistoryStore, RealProbeSeesThisProcessAliveAndAReapedChildGone) {
  RunnerProbe p = RunnerProbe::system();
  auto self_start = process_start_ticks(::getpid());
  ASSERT_TRUE(self_start) << self_start.error().message();
  EXPECT_FALSE(p.gone(::getpid(), 0, p.boot_id));
  EXPECT_FALSE(p.gone(::getpid(), *self_start, p.boot_id));
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(p.gone(child, 0, p.boot_id));
  EXPECT_TRUE(p.gone(::getpid(), *self_start, "some-other-boot"));
  EXPECT_FALSE(p.gone(0, 0, ""));  // unknown runner: not declared lost
}

// A crashed runner's pid given by the kernel to another process: the pid is alive,
// but its start time is not the runner's.
TEST(HistoryStore, RealProbeTellsAReusedPidFromTheRunner) {
  RunnerProbe p = RunnerProbe::system();
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  auto child_start = process_start_ticks(child);
  ASSERT_TRUE(child_start) << child_start.error().message();
  auto self_start = process_start_ticks(::getpid());
  ASSERT_TRUE(self_start);
  EXPECT_FALSE(p.gone(child, *child_start, p.boot_id));
  // The row of a runner that started earlier (this test process did) with that pid.
  if (*self_start != *child_start) {
    EXPECT_TRUE(p.gone(child, *self_start, p.boot_id));
  }
  EXPECT_TRUE(p.gone(child, *child_start + 1, p.boot_id));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST(HistoryStore, ARunningRowWhosePidWasReusedReadsAsLost) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));  // the real probe
  auto self_start = process_start_ticks(::getpid());
  ASSERT_TRUE(self_start);
  RunRecord live = make_run("live", 100, RunStatus::running);
  live.runner_start = *self_start;
  RunRecord reused = make_run("reused", 101, RunStatus::running);
  reused.runner_start = *self_start + 1;  // this pid, but not the process that wrote the row
  RunRecord old = make_run("old", 102, RunStatus::running);
  old.runner_start = 0;  // written before schema 4: judged by pid alone
  for (auto* r : {&live, &reused, &old}) ASSERT_TRUE(s.begin_run(*r));

  std::map<std::string, RunStatus> scanned;
  ASSERT_TRUE(s.scan({}, [&](const RunFigures& f) { scanned[f.job] = f.status; }));
  EXPECT_EQ(scanned["live"], RunStatus::running);
  EXPECT_EQ(scanned["reused"], RunStatus::lost);
  EXPECT_EQ(scanned["old"], RunStatus::running);
  auto runs = s.runs({});
  ASSERT_TRUE(runs);
  for (const auto& r : *runs) {
    EXPECT_EQ(r.status, scanned[r.job]) << r.job;
    if (r.job == "reused") {
      EXPECT_EQ(r.runner_start, *self_start + 1);
    }
  }
  auto progress = s.in_progress();
  ASSERT_TRUE(progress);
  EXPECT_EQ(progress->size(), 2u);
  auto counts = s.status_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)["reused"][RunStatus::lost], 1u);
  EXPECT_EQ((*counts)["live"][RunStatus::running], 1u);
  // Retention removes the reused pid's row like any lost run, and keeps the live one.
  auto deleted = s.delete_before(1e12, /*dry_run=*/false);
  ASSERT_TRUE(deleted) << deleted.error().message();
  auto left = s.runs({});
  ASSERT_TRUE(left);
  std::set<std::string> jobs;
  for (const auto& r : *left) jobs.insert(r.job);
  EXPECT_EQ(jobs, (std::set<std::string>{"live", "old"}));
}

TEST(HistoryStore, FiltersLimitAndOrder) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(s.record(make_run(i % 2 ? "odd" : "even", i * 60, i % 5 ? RunStatus::ok : RunStatus::failed)));
  RunFilter f;
  f.job = "odd";
  EXPECT_EQ(*s.count(f), 10u);
  f.limit = 3;
  auto r = s.runs(f);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_GT((*r)[0].started_at, (*r)[1].started_at);
  RunFilter failed;
  failed.status = RunStatus::failed;
  EXPECT_EQ(*s.count(failed), 4u);
  RunFilter since;
  since.since_unix_s = *parse_rfc3339("2026-11-01T00:10:00Z");
  EXPECT_EQ(*s.count(since), 10u);
  auto jobs = s.jobs();
  ASSERT_TRUE(jobs);
  EXPECT_EQ(*jobs, (std::vector<std::string>{"even", "odd"}));
  auto last = s.last_success_by_job();
  ASSERT_TRUE(last);
  EXPECT_DOUBLE_EQ((*last)["odd"], *parse_rfc3339("2026-11-01T00:19:00Z"));
  auto latest = s.latest_run("even");
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->started_at, "2026-11-01T00:18:00.000Z");
  EXPECT_FALSE(*s.latest_run("nope"));
}

TEST(HistoryStore, FindRunByPrefix) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  RunRecord a = make_run("a", 1);
  a.run_id = "0193aaaa-0000-7000-8000-000000000001";
  RunRecord b = make_run("b", 2);
  b.run_id = "0193aaaa-0000-7000-8000-000000000002";
  ASSERT_TRUE(s.record(a));
  ASSERT_TRUE(s.record(b));
  EXPECT_EQ((*s.find_run("0193aaaa-0000-7000-8000-000000000002"))->job, "b");
  EXPECT_FALSE(s.find_run("0193aaaa"));                  // ambiguous
  EXPECT_FALSE(*s.find_run("0193bbbb"));                 // none
  EXPECT_FALSE(*s.find_run("019"));                      // too short to be an id
  EXPECT_FALSE(s.find_run("0193aaaa-0000-7000-8000-00000000000"));  // a prefix of both
  EXPECT_EQ((*s.find_run("0193aaaa-0000-7000-8000-000000000001"))->job, "a");
}

TEST(HistoryStore, ReadOnlyStoreRefusesWrites) {
  TempDir d;
  { open_rw(d.file("h.db")); }
  auto s = HistoryStore::open(d.file("h.db"), HistoryStore::Mode::read_only);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->record(make_run("a", 1)));
  EXPECT_FALSE(s->delete_before(1e12));
}

TEST(HistoryStore, RetentionDeletesOldFinishedAndLostKeepsLive) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.record(make_run("j", i * 3600)));
  RunRecord old_live = make_run("j", 0, RunStatus::running);
  old_live.runner_pid = 1;
  old_live.boot_id = "this-boot";
  RunRecord old_lost = make_run("j", 1, RunStatus::running);
  old_lost.runner_pid = 2;
  old_lost.boot_id = "this-boot";
  ASSERT_TRUE(s.begin_run(old_live));
  ASSERT_TRUE(s.begin_run(old_lost));
  s.set_runner_probe(fake_probe({2}));
  double cutoff = *parse_rfc3339("2026-11-01T05:00:00Z");
  auto dry = s.delete_before(cutoff, true);
  ASSERT_TRUE(dry);
  EXPECT_EQ(*dry, 6u);  // 5 finished (hours 0-4) + the lost one
  EXPECT_EQ(*s.count({}), 12u);
  auto n = s.delete_before(cutoff);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(*s.count({}), 6u);
  EXPECT_TRUE(*s.find_run(old_live.run_id));
  EXPECT_FALSE(*s.find_run(old_lost.run_id));
}

TEST(HistoryStore, FiftyConcurrentWriterProcessesAllLand) {
  TempDir d;
  std::string path = d.file("h.db");  // not created yet: the writers race to create it too
  constexpr int kWriters = 50;
  std::vector<pid_t> kids;
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  for (int i = 0; i < kWriters; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char c;
      (void)!::read(go[0], &c, 1);  // start together
      auto s = HistoryStore::open(path, HistoryStore::Mode::read_write);
      if (!s) {
        std::fprintf(stderr, "writer %d: %s\n", i, s.error().message().c_str());
        ::_exit(1);
      }
      RunRecord r = make_run("job-" + std::to_string(i % 7), i, RunStatus::running);
      if (!s->begin_run(r)) ::_exit(2);
      r.status = RunStatus::ok;
      r.finished_at = r.started_at;
      r.wall_s = 1;
      auto f = s->finish_run(r);
      if (!f) {
        std::fprintf(stderr, "writer %d: %s\n", i, f.error().message().c_str());
        ::_exit(3);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);  // EOF releases all writers at once
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_only);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(*s->count({}), static_cast<uint64_t>(kWriters));
  RunFilter ok;
  ok.status = RunStatus::ok;
  EXPECT_EQ(*s->count(ok), static_cast<uint64_t>(kWriters));
}

TEST(HistoryStore, EveryDatabaseFdIsCloseOnExec) {
  TempDir d;
  std::string path = d.file("h.db");
  auto s = open_rw(path);
  ASSERT_TRUE(s.record(make_run("j", 1)));
  auto ro = HistoryStore::open(path, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro);
  ASSERT_TRUE(ro->count({}));
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (ec || target.string().rfind(path, 0) != 0) continue;
    std::string info = slurp("/proc/self/fdinfo/" + e.path().filename().string());
    auto pos = info.find("flags:");
    ASSERT_NE(pos, std::string::npos);
    unsigned long flags = std::stoul(info.substr(pos + 6), nullptr, 8);
    EXPECT_TRUE(flags & O_CLOEXEC) << target << " flags " << std::oct << flags;
    ++checked;
  }
  EXPECT_GE(checked, 3) << "expected fds of the db, -wal and -shm";
}

TEST(HistoryStore, ReadableByAnotherUserWithoutRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user";
  TempDir d;
  ::chmod(d.path().c_str(), 0755);
  std::string path = d.file("h.db");
  {
    auto s = open_rw(path);
    ASSERT_TRUE(s.record(make_run("j", 1)));
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    HistoryFault fault = HistoryFault::none;
    auto s = HistoryStore::open(path, HistoryStore::Mode::read_only, &fault);
    if (!s) {
      std::fprintf(stderr, "nobody: %s\n", s.error().message().c_str());
      ::_exit(20 + static_cast<int>(fault));
    }
    auto n = s->count({});
    ::_exit(n && *n == 1 ? 0 : 30);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(HistoryStore, ReadableByAnotherUserAfterTheWalFilesWereRemoved) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user";
  TempDir d;
  ::chmod(d.path().c_str(), 0755);
  std::string path = d.file("h.db");
  {
    auto s = open_rw(path);
    ASSERT_TRUE(s.record(make_run("j", 1)));
  }
  // A plain sqlite3 connection (like the sqlite3 shell) deletes -wal and -shm
  // when it closes last.
  exec_sql(path, "SELECT count(*) FROM runs");
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    auto s = HistoryStore::open(path, HistoryStore::Mode::read_only);
    if (!s) {
      std::fprintf(stderr, "nobody: %s\n", s.error().message().c_str());
      ::_exit(20);
    }
    auto n = s->count({});
    ::_exit(n && *n == 1 ? 0 : 30);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(HistoryStore, UnreadableFileIsItsOwnFault) {
  TempDir d;
  ::chmod(d.path().c_str(), 0755);
  std::string path = d.file("h.db");
  { open_rw(path); }
  ::chmod(path.c_str(), 0600);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(10);
    if (::geteuid() != 0) ::chmod(path.c_str(), 0);
    HistoryFault fault = HistoryFault::none;
    auto s = HistoryStore::open(path, HistoryStore::Mode::read_only, &fault);
    ::_exit(!s && fault == HistoryFault::unreadable ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(HistoryStore, DefaultPathForRootAndUsers) {
  if (::geteuid() == 0) {
    EXPECT_EQ(HistoryStore::default_path(), "/var/lib/cronrun/history.db");
  } else {
    ::setenv("XDG_STATE_HOME", "/x/state", 1);
    EXPECT_EQ(HistoryStore::default_path(), "/x/state/cronrun/history.db");
  }
  // Another user's, as cron would run them (cronprof plan's notes).
  EXPECT_EQ(HistoryStore::default_path_for(0, "/x/state", "/root"), "/var/lib/cronrun/history.db");
  EXPECT_EQ(HistoryStore::default_path_for(1000, "/x/state", "/home/u"), "/x/state/cronrun/history.db");
  EXPECT_EQ(HistoryStore::default_path_for(1000, "relative", "/home/u"), "/home/u/.local/state/cronrun/history.db");
  EXPECT_EQ(HistoryStore::default_path_for(1000, nullptr, "/home/u"), "/home/u/.local/state/cronrun/history.db");
}

// ---------- issue 14: records always writable, files checked before SQLite ----------

TEST(RunRecordUtf8, InvalidBytesAreReplacedAndTheRecordAlwaysSerializes) {
  RunRecord r = full_record();
  r.job = "job\xff";
  r.command = {"/bin/sh", "-c", "echo \xc3\x28", "\xff", "caf\xc3\xa9"};
  r.isolation.note = std::string("note \xed\xa0\x80 surrogate");
  r.log.path = std::string("/var/log/\xe2\x82");
  r.counters["rows\xfe"] = 1;
  std::string text;
  ASSERT_NO_THROW(text = to_json(r).dump());
  json j = json::parse(text);
  EXPECT_EQ(j["job"], "job\xEF\xBF\xBD");
  EXPECT_EQ(j["command"][2], "echo \xEF\xBF\xBD(");
  EXPECT_EQ(j["command"][3], "\xEF\xBF\xBD");
  EXPECT_EQ(j["command"][4], "caf\xc3\xa9");  // valid text is kept as it is
  EXPECT_EQ(j["isolation"]["note"], "note \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate");
  EXPECT_EQ(j["log"]["path"], "/var/log/\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(j["counters"]["rows\xEF\xBF\xBD"], 1);
}

TEST(RunRecordUtf8, WellFormedSequencesFollowTheUnicodeTable) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // stray continuation
  EXPECT_EQ(valid_utf8("a\xffz"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(valid_utf8("\xe2\x82\xac\xe2\x82"), "\xe2\x82\xac\xEF\xBF\xBD\xEF\xBF\xBD");
  RunRecord r = make_run("j\xff", 1);
  r.command = {"ok", "\xff"};
  EXPECT_EQ(make_valid_utf8(r), 2u);
  EXPECT_EQ(make_valid_utf8(r), 0u);
  EXPECT_EQ(r.job, "j\xEF\xBF\xBD");
}

TEST(HistoryStore, NonUtf8RecordLandsAndReadsBack) {
  TempDir d;
  auto s = open_rw(d.file("h.db"));
  RunRecord r = make_run("utf8", 1, RunStatus::running);
  r.command = {"/bin/sh", "-c", "sleep 1", "\xff"};
  ASSERT_TRUE(s.begin_run(r));
  r.status = RunStatus::ok;
  r.finished_at = r.started_at;
  ASSERT_TRUE(s.finish_run(r));
  auto runs = s.runs({});
  ASSERT_TRUE(runs) << runs.error().message();
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].status, RunStatus::ok);
  EXPECT_EQ((*runs)[0].command.back(), "\xEF\xBF\xBD");
}

TEST(HistoryOpen, AnExplicitPathsDirectoryIsNeverCreated) {
  TempDir d;
  std::string path = d.path() + "/typo/dir/history.db";
  HistoryFault fault = HistoryFault::none;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, &fault);
  ASSERT_FALSE(s);
  EXPECT_EQ(fault, HistoryFault::missing);
  EXPECT_FALSE(std::filesystem::exists(d.path() + "/typo"));
  EXPECT_NE(s.error().message().find(d.path() + "/typo/dir"), std::string::npos) << s.error().message();
}

TEST(HistoryOpen, SymlinksAreNotFollowed) {
  TempDir d;
  { open_rw(d.file("real.db")); }
  std::filesystem::create_symlink(d.file("real.db"), d.file("link.db"));
  for (auto mode : {HistoryStore::Mode::read_write, HistoryStore::Mode::read_only}) {
    auto s = HistoryStore::open(d.file("link.db"), mode);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("symbolic link"), std::string::npos) << s.error().message();
  }
  // A -wal planted as a symlink would have SQLite write through it.
  std::filesystem::remove(d.file("real.db-wal"));
  std::ofstream(d.file("target")) << "keep\n";
  std::filesystem::create_symlink(d.file("target"), d.file("real.db-wal"));
  auto s = HistoryStore::open(d.file("real.db"), HistoryStore::Mode::read_write);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find(d.file("real.db-wal") + " is a symbolic link"), std::string::npos)
      << s.error().message();
  EXPECT_EQ(slurp(d.file("target")), "keep\n");
}

TEST(HistoryOpen, AWalWithoutItsDatabaseIsNotAdopted) {
  TempDir d;
  std::ofstream(d.file("h.db-wal")) << "planted";
  auto s = HistoryStore::open(d.file("h.db"), HistoryStore::Mode::read_write);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find(d.file("h.db-wal") + " exists without"), std::string::npos)
      << s.error().message();
  EXPECT_FALSE(std::filesystem::exists(d.file("h.db")));
  EXPECT_EQ(slurp(d.file("h.db-wal")), "planted");
}

TEST(HistoryOpen, FifoIsRefusedWithoutBlocking) {
  TempDir d;
  ASSERT_EQ(::mkfifo(d.file("fifo.db").c_str(), 0644), 0);
  // In a child with an alarm: the old open blocked forever in SQLite's open().
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(10);
    auto s = HistoryStore::open(d.file("fifo.db"), HistoryStore::Mode::read_only);
    if (s || s.error().message().find("is a FIFO") == std::string::npos) ::_exit(1);
    auto w = HistoryStore::open(d.file("fifo.db"), HistoryStore::Mode::read_write);
    ::_exit(w ? 2 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

// Writes `n` runs and closes the store, leaving the persistent -wal and -shm.
void write_runs(const std::string& path, int n) {
  auto s = open_rw(path);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(s.record(make_run("seed", i)));
}

TEST(HistoryOpen, GarbageWalHeaderIsCorruptForReaders) {
  TempDir d;
  std::string path = d.file("h.db");
  write_runs(path, 3);
  {
    std::fstream f(path + "-wal", std::ios::in | std::ios::out | std::ios::binary);
    f.write("this is not a WAL header at all", 32);
  }
  HistoryFault fault = HistoryFault::none;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_only, &fault);
  ASSERT_FALSE(s) << "read as if the WAL's runs did not exist";
  EXPECT_EQ(fault, HistoryFault::corrupt);
  EXPECT_NE(s.error().message().find("not a SQLite WAL"), std::string::npos) << s.error().message();
  // A writer without move_damaged_aside refuses too, and touches nothing.
  auto w = HistoryStore::open(path, HistoryStore::Mode::read_write, &fault);
  ASSERT_FALSE(w);
  EXPECT_EQ(fault, HistoryFault::corrupt);
  EXPECT_TRUE(HistoryStore::damaged_copies(path).empty());
}

TEST(HistoryOpen, WalThatLostCommittedFramesIsMovedAsideByAWriter) {
  TempDir d;
  std::string path = d.file("h.db");
  write_runs(path, 5);
  std::filesystem::resize_file(path + "-wal", 32 + 24 + 100);  // the header and part of a frame
  std::string wal = slurp(path + "-wal");
  HistoryOpenOptions opts;
  opts.move_damaged_aside = true;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, opts);
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_TRUE(s->damage_note());
  EXPECT_NE(s->damage_note()->find("lost committed frames"), std::string::npos) << *s->damage_note();
  auto copies = HistoryStore::damaged_copies(path);
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(slurp(copies[0] + "-wal"), wal);  // kept byte for byte
  EXPECT_TRUE(std::filesystem::exists(copies[0] + "-shm"));
  auto runs = s->runs({});
  ASSERT_TRUE(runs);
  EXPECT_TRUE(runs->empty());  // a new history
}

// After a crash or power cut the -shm may list frames the WAL never got to disk
// (synchronous=NORMAL): losing the last transactions then is the promise, not
// damage. An index last written before this boot is not trusted to tell.
TEST(HistoryOpen, IndexFromAnEarlierBootDoesNotCallAShortWalDamaged) {
  TempDir d;
  std::string path = d.file("h.db");
  write_runs(path, 5);
  std::filesystem::resize_file(path + "-wal", 32);
  struct timeval old_times[2] = {{1000000000, 0}, {1000000000, 0}};  // 2001, before any boot of this host
  ASSERT_EQ(::utimes((path + "-shm").c_str(), old_times), 0);
  HistoryOpenOptions opts;
  opts.move_damaged_aside = true;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, opts);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_FALSE(s->damage_note()) << *s->damage_note();
  EXPECT_TRUE(HistoryStore::damaged_copies(path).empty());
}

TEST(HistoryOpen, NotADatabaseIsMovedAsideOnlyWhenItWasAHistory) {
  TempDir d;
  HistoryOpenOptions opts;
  opts.move_damaged_aside = true;
  // A file that never was a history (no SQLite header, nothing beside it).
  std::ofstream(d.file("notes.db")) << "some admin's notes\n";
  auto s = HistoryStore::open(d.file("notes.db"), HistoryStore::Mode::read_write, nullptr, opts);
  ASSERT_FALSE(s);
  EXPECT_EQ(slurp(d.file("notes.db")), "some admin's notes\n");
  EXPECT_TRUE(HistoryStore::damaged_copies(d.file("notes.db")).empty());
  // A history whose main file was overwritten: its -wal/-shm say what it was.
  write_runs(d.file("h.db"), 2);
  std::ofstream(d.file("h.db"), std::ios::trunc) << std::string(4096, 'x');
  auto h = HistoryStore::open(d.file("h.db"), HistoryStore::Mode::read_write, nullptr, opts);
  ASSERT_TRUE(h) << h.error().message();
  ASSERT_TRUE(h->damage_note());
  auto copies = HistoryStore::damaged_copies(d.file("h.db"));
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(slurp(copies[0]), std::string(4096, 'x'));
}

// Writers in many processes restart and append to the WAL while others open it:
// the WAL check must never take a live history for a damaged one.
TEST(HistoryOpen, ConcurrentWritersNeverSeeDamage) {
  TempDir d;
  std::string path = d.file("h.db");
  write_runs(path, 1);
  std::vector<pid_t> kids;
  for (int k = 0; k < 8; ++k) {
    pid_t pid = ::fork();
    if (pid == 0) {
      HistoryOpenOptions opts;
      opts.move_damaged_aside = true;
      for (int i = 0; i < 25; ++i) {
        auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, opts);
        if (!s) ::_exit(2);
        if (s->damage_note()) ::_exit(3);
        if (!s->record(make_run("many", k * 100 + i))) ::_exit(4);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exit " << WEXITSTATUS(status);
  }
  EXPECT_TRUE(HistoryStore::damaged_copies(path).empty());
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_only);
  ASSERT_TRUE(s) << s.error().message();
  auto n = s->count({});
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 201u);
}

}  // namespace
}  // namespace cronrun
