// The run journal (common/journal.h) and its fold into the history
// (HistoryStore::fold_journal / read-only merge): the frame format, the reader's
// handling of torn and garbled records, idempotent folding, rotation with an
// appender still holding the old file, a replaced journal, and read-only readers
// that see the unfolded tail.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <fstream>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "common/history.h"
#include "common/journal.h"

namespace cronrun {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cronrun-journal-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

RunRecord record(int i, RunStatus status = RunStatus::running) {
  RunRecord r;
  char id[64];
  std::snprintf(id, sizeof id, "0193f1c2-0000-7000-8000-%012d", i);
  r.run_id = id;
  r.job = "job" + std::to_string(i % 3);
  r.host = "box1";
  r.user = "root";
  r.command = {"/bin/true", std::to_string(i)};
  r.started_at = "2026-11-23T02:10:00.123Z";
  r.status = status;
  r.runner_pid = 999999999;  // never a live pid
  r.boot_id = current_boot_id();
  if (status != RunStatus::running) {
    r.finished_at = "2026-11-23T02:10:01.123Z";
    r.wall_s = 1.0;
    r.exit_code = status == RunStatus::ok ? 0 : 1;
  }
  return r;
}

// A store whose runners are all gone unless told otherwise.
RunnerProbe all_gone() {
  RunnerProbe p;
  p.boot_id = current_boot_id();
  p.runner_alive = [](int64_t, uint64_t) { return false; };
  return p;
}

journal::Writer writer(const std::string& history) {
  UniqueFd dir(::open(std::filesystem::path(history).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto w = journal::Writer::open(std::move(dir), history, 0644);
  EXPECT_TRUE(w.has_value()) << (w ? "" : w.error().message());
  return std::move(*w);
}

HistoryStore make_history(const std::string& path) {
  HistoryOpenOptions o;
  o.journal = HistoryOpenOptions::Journal::ignore;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, o);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return std::move(*s);
}

// Every row as "run_id status record", sorted: what two histories are compared by.
std::string dump(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT run_id, status, record FROM runs ORDER BY run_id", -1, &st, nullptr);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int c = 0; c < 3; ++c) {
      out += reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      out += c == 2 ? "\n" : " ";
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::map<std::string, RunStatus> statuses(HistoryStore& s) {
  s.set_runner_probe(all_gone());
  std::map<std::string, RunStatus> out;
  auto runs = s.runs(RunFilter{});
  EXPECT_TRUE(runs.has_value()) << (runs ? "" : runs.error().message());
  if (runs)
    for (const auto& r : *runs) out[r.run_id] = r.status;
  return out;
}

void append_raw(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// ---------- format ----------

TEST(JournalFormat, Crc32IsTheStandardOne) { EXPECT_EQ(journal::crc32("123456789"), 0xCBF43926u); }

TEST(JournalFormat, HeaderRoundTripAndDamage) {
  auto gen = journal::new_generation();
  ASSERT_EQ(gen.size(), 32u);
  std::string h = journal::encode_header(gen);
  ASSERT_EQ(h.size(), journal::kHeaderBytes);
  EXPECT_EQ(journal::decode_header(h).value(), gen);
  std::string bad = h;
  bad[10] ^= 1;
  EXPECT_FALSE(journal::decode_header(bad).has_value());
  EXPECT_FALSE(journal::decode_header(h.substr(0, 20)).has_value());
  EXPECT_NE(journal::new_generation(), gen);
}

TEST(JournalFormat, RecordsRoundTripWithRunnerFields) {
  RunRecord r = record(7, RunStatus::ok);
  r.runner_start = 4242;
  auto bytes = journal::encode_record(journal::RecordType::finish, r);
  ASSERT_TRUE(bytes.has_value());
  auto p = journal::parse(*bytes, 100, true);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_TRUE(p.damage.empty());
  EXPECT_FALSE(p.tail);
  EXPECT_EQ(p.entries[0].type, journal::RecordType::finish);
  EXPECT_EQ(p.entries[0].offset, 100u);
  EXPECT_EQ(p.entries[0].end, 100u + bytes->size());
  EXPECT_EQ(p.entries[0].record.run_id, r.run_id);
  EXPECT_EQ(p.entries[0].record.runner_pid, r.runner_pid);
  EXPECT_EQ(p.entries[0].record.runner_start, 4242u);
  EXPECT_EQ(p.entries[0].record.boot_id, r.boot_id);
  EXPECT_EQ(p.entries[0].record.status, RunStatus::ok);
}

// The payload is written as text without a JSON DOM (to_json_text): it must be the
// DOM's dump byte for byte, on every branch of the record, so the fold, the
// forwarder and older readers see what they always saw.
std::string dom_payload(const RunRecord& r) {
  nlohmann::json j = to_json(r);
  j["runner_pid"] = r.runner_pid;
  j["runner_start"] = r.runner_start;
  j["boot_id"] = valid_utf8(r.boot_id);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

RunRecord full_record() {
  RunRecord r = record(3, RunStatus::failed);
  r.command = {"/bin/sh", "-c", "echo \"a\\b\"\t\n\r\b\f\x01\x1f\x7f end", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
               "bad \xff\xfe \xc3 \xed\xa0\x80", ""};
  r.user = "us\"er";
  r.finished_at = "2026-11-23T02:10:01.456Z";
  r.wall_s = 1.333;
  r.start_delay_s = 0.0004;
  r.exit_code = -3;
  r.signal = 9;
  r.skip_reason = "lock busy \x02";
  r.isolation = {"v2", "/cronrun/job/run", "cgroup", "note \xff", "cronrun-x.scope"};
  r.limits = {1ull << 30, 1ull << 29, 0, 150.5, 100, 64, 1e-7};
  Usage& u = r.usage;
  u.cpu_user_s = 0.1;
  u.cpu_system_s = 1.0;
  u.memory_peak_bytes = 18446744073709551615ull;
  u.max_rss_bytes = 4096;
  u.io_read_bytes = 0;
  u.io_write_bytes = 12;
  u.io_source = "cgroup";
  u.pids_peak = 3;
  u.pids_max_events = 6;
  u.oom_kills = 1;
  u.memory_max_events = 2;
  u.memory_high_events = 5;
  u.cpu_throttled_s = 1e20;
  u.cpu_nr_throttled = 7;
  u.pressure_some_s = {0.25, std::numeric_limits<double>::quiet_NaN(), -0.0};
  u.orphans_killed = 2;
  u.not_measured = {"pids_peak", "io_read_bytes"};
  r.counters = {{"rows", 1200.0}, {"ratio", 0.5}, {"big", 1e300}, {"neg", -3.0}, {"inf", HUGE_VAL},
                {"b\xffx", 1.0}, {"b\xfex", 2.0}, {"\x01key\"", 3.25}};
  r.lock = {"/run/lock \"x\"", 0.0125, 12345};
  r.log = {"/var/log/x.log", 99, 1};
  r.output.dropped_bytes = 77;
  SeccompRecord sc;
  sc.profile = "strict";
  sc.action = "continue";
  sc.violations_total = 3;
  sc.violations = {{"ptrace", 2, 41, "gdb"}, {"syscall_999", 1, 42, ""}};
  sc.answers_lost = 1;
  sc.note = "listener broke";
  sc.failed_by = "denied syscalls";
  r.seccomp = sc;
  PingsRecord p;
  p.url_host = "hc.example";
  p.sent = 1;
  p.failed = 1;
  p.pings = {{"start", "/start", true, 1, 200, std::nullopt, 0.01},
             {"failure", "/3", false, 3, std::nullopt, "timeout \xff", 2.5}};
  r.pings = p;
  FleetRecord f;
  f.group = "g";
  f.host = "h1";
  f.tick = "2026-12-06T12:00:00Z";
  f.fence = 42;
  f.holder = FleetHolder{"h2", -1};
  f.lease_ttl_s = 30;
  f.note = "revoked";
  r.fleet = f;
  r.forwarded_signal = ForwardedSignal{15, 4321, 1000, 3};
  r.runner_pid = -1;
  r.runner_start = 18446744073709551615ull;
  r.boot_id = "boot\xff";
  return r;
}

TEST(JournalFormat, PayloadTextIsTheDomDumpByteForByte) {
  RunRecord full = full_record();
  EXPECT_EQ(journal::record_payload(full).value(), dom_payload(full));
  EXPECT_EQ(to_json_text(full), to_json(full).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  // The optional branches the full record does not take.
  RunRecord other = full;
  other.seccomp->action = "EPERM";  // no "seen" key
  other.fleet->holder.reset();
  other.isolation.unit.reset();
  other.counters.clear();
  other.pings->pings.clear();
  other.seccomp->violations.clear();
  other.forwarded_signal->sender_pid.reset();
  other.forwarded_signal->sender_uid.reset();
  EXPECT_EQ(journal::record_payload(other).value(), dom_payload(other));
  other.forwarded_signal.reset();
  EXPECT_EQ(journal::record_payload(other).value(), dom_payload(other));
  other.seccomp->seen = {"ptrace", "kexec_load"};
  EXPECT_EQ(journal::record_payload(other).value(), dom_payload(other));
  RunRecord empty;  // every optional null, every list empty
  EXPECT_EQ(journal::record_payload(empty).value(), dom_payload(empty));
  EXPECT_EQ(to_json_text(empty), to_json(empty).dump());
  for (int i = 0; i < 20; ++i) {
    RunRecord r = record(i, static_cast<RunStatus>(i % 9));
    r.wall_s = i / 7.0;
    std::string name = "c";  // appended: g++ 12 -O3 warns falsely (-Wrestrict) on "c" + to_string(i)
    name += std::to_string(i);
    r.counters[name] = i * 0.1;
    EXPECT_EQ(journal::record_payload(r).value(), dom_payload(r)) << i;
  }
}

// The fast reader (run_record_from_text_fast, used for every journal payload and
// history row) returns what the DOM reader returns, and leaves to the DOM reader
// every text it could not mirror exactly.
TEST(RunRecordFast, ReadsTheRunnersRecordsAsTheDomReaderDoes) {
  RunRecord r = full_record();
  r.seccomp.reset();
  r.pings.reset();
  r.fleet.reset();
  r.forwarded_signal.reset();
  r.counters.erase("inf");  // written as null, read back as absent (by both readers)
  std::string payload = journal::record_payload(r).value();
  auto fast = run_record_from_text_fast(payload, /*runner_fields=*/true);
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(to_json_text(*fast, true), payload);
  EXPECT_EQ(fast->runner_pid, -1);
  EXPECT_EQ(fast->runner_start, 18446744073709551615ull);
  auto dom = run_record_from_json(nlohmann::json::parse(payload));
  ASSERT_TRUE(dom.has_value());
  auto plain = run_record_from_text_fast(payload, /*runner_fields=*/false);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(to_json(*plain), to_json(*dom));
  EXPECT_EQ(plain->runner_pid, 0);
  EXPECT_EQ(plain->boot_id, "");
  for (int i = 0; i < 20; ++i) {
    RunRecord x = record(i, static_cast<RunStatus>(i % 9));
    x.counters["c" + std::to_string(i)] = i * 0.1;
    std::string text = to_json_text(x, true);
    auto y = run_record_from_text_fast(text, true);
    ASSERT_TRUE(y.has_value()) << text;
    EXPECT_EQ(to_json_text(*y, true), text);
  }
  // What the runner does not write but the DOM reader takes: unknown members (any
  // depth), null objects, integral floats for integers.
  std::string odd = R"({"future":{"a":[1,{"b":null}],"c":"d"},"run_id":"r","job":"j","status":"ok",)"
                    R"("started_at":"2026-12-06T12:00:00.000Z","isolation":null,"limits":{"memory_max_bytes":1.5e9,)"
                    R"("new_limit":[true]},"counters":{"rows":3,"gone":null},"usage":{"pressure_some_s":null},)"
                    R"("command":null,"seccomp":null,"pings":null,"fleet":null,"forwarded_signal":null,"lock":{"waited_s":null}})";
  auto a = run_record_from_text_fast(odd, false);
  ASSERT_TRUE(a.has_value());
  auto b = run_record_from_json(nlohmann::json::parse(odd));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(to_json(*a), to_json(*b));
  EXPECT_EQ(a->limits.memory_max_bytes, 1500000000u);
  EXPECT_EQ(a->isolation.cgroup, "none");
  EXPECT_EQ(a->counters.size(), 1u);
}

TEST(RunRecordFast, LeavesToTheDomReaderWhatItCannotMirror) {
  const std::string head = R"({"run_id":"r","job":"j","status":"ok","started_at":"2026-12-06T12:00:00.000Z")";
  const char* tails[] = {
      R"(,"host":"x","host":"y"})",                     // a repeated key: the DOM keeps the last
      R"(,"counters":{"c":1,"c":null}})",               // ... a repeated counter too
      R"(,"isolation":{"cgroup":"v2"},"isolation":null})",
      R"(,"exit_code":1.5})",                           // type errors
      R"(,"exit_code":4294967296})",
      R"(,"limits":{"pids_max":-1}})",
      R"(,"counters":{"c":"1"}})",
      R"(,"command":["a",1]})",
      R"(,"usage":{"not_measured":"x"}})",
      R"(,"schema":"cronrun.run/2"})",
      R"(,"status":"finished"})",
      R"(,"seccomp":{"profile":"strict","action":"EPERM"}})",  // deep objects: the DOM's
      R"(,"pings":{"sent":1}})",
      R"(,"fleet":{"host":"h"}})",
      R"(,"forwarded_signal":{"signal":15}})",            // not skipped as unknown: kept by the DOM
      R"(})" "x",                                        // not JSON
  };
  for (const char* tail : tails) {
    std::string text = head + tail;
    EXPECT_FALSE(run_record_from_text_fast(text, true).has_value()) << text;
  }
  EXPECT_FALSE(run_record_from_text_fast(R"({"job":"j","status":"ok","started_at":"x"})", false).has_value());
  EXPECT_FALSE(run_record_from_text_fast("[]", false).has_value());
  EXPECT_FALSE(run_record_from_text_fast("", false).has_value());
  // The payload reader still takes a record the fast reader left: through the DOM.
  RunRecord full = full_record();
  full.counters.erase("inf");
  std::string payload = journal::record_payload(full).value();
  EXPECT_FALSE(run_record_from_text_fast(payload, true).has_value());
  auto decoded = journal::decode_payload(payload);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(journal::record_payload(*decoded).value(), payload);
  auto repeated = journal::decode_payload(head + R"(,"host":"x","host":"y"})");
  ASSERT_TRUE(repeated.has_value());
  EXPECT_EQ(repeated->host, "y");
}

// The records' timestamps come from the calendar types, not gmtime_r (which loads
// /etc/localtime): the same text, leap days and century years included.
TEST(JournalFormat, Rfc3339TimestampsFromTheCalendar) {
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  auto at = [](int64_t ms) { return format_rfc3339(system_clock::time_point(milliseconds(ms))); };
  EXPECT_EQ(at(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(at(951782400123), "2000-02-29T00:00:00.123Z");
  EXPECT_EQ(at(4107542400000), "2100-03-01T00:00:00.000Z");
  EXPECT_EQ(at(1764978123456), "2025-12-05T23:42:03.456Z");
  for (int64_t ms = 0; ms < 4102444800000; ms += 86399999 * 7 + 12345) {
    time_t secs = static_cast<time_t>(ms / 1000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char want[80];
    std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    ASSERT_EQ(at(ms), want) << ms;
  }
}

TEST(JournalFormat, OversizedCommandIsCutAndSaidSo) {
  RunRecord r = record(1);
  r.command.assign(3000, std::string(1000, 'x'));
  auto bytes = journal::encode_record(journal::RecordType::start, r);
  ASSERT_TRUE(bytes.has_value()) << bytes.error().message();
  EXPECT_LE(bytes->size(), journal::kFrameBytes + journal::kMaxRecordBytes);
  auto p = journal::parse(*bytes, 0, true);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].record.command.size(), 1u);
  ASSERT_TRUE(p.entries[0].record.isolation.note);
  EXPECT_NE(p.entries[0].record.isolation.note->find("3000 arguments"), std::string::npos);
}

TEST(JournalParse, TornLastRecordIsATailNotConsumed) {
  std::string a = journal::encode_record(journal::RecordType::start, record(1)).value();
  std::string b = journal::encode_record(journal::RecordType::finish, record(1, RunStatus::ok)).value();
  std::string data = a + b.substr(0, b.size() / 2);
  auto p = journal::parse(data, 0, true);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.consumed, a.size());
  ASSERT_TRUE(p.tail);
  EXPECT_EQ(p.tail->offset, a.size());
  EXPECT_EQ(p.tail->length, b.size() / 2);
  // Not at the end yet: no tail, just "read more".
  auto q = journal::parse(data, 0, false);
  EXPECT_EQ(q.entries.size(), 1u);
  EXPECT_FALSE(q.tail);
  EXPECT_EQ(q.consumed, a.size());
}

TEST(JournalParse, TornRecordFollowedByRecordsIsSkippedAndResynced) {
  std::string a = journal::encode_record(journal::RecordType::start, record(1)).value();
  std::string b = journal::encode_record(journal::RecordType::finish, record(1, RunStatus::ok)).value();
  std::string c = journal::encode_record(journal::RecordType::start, record(2)).value();
  std::string data = a + b.substr(0, 40) + c;
  auto p = journal::parse(data, 0, true);
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_EQ(p.entries[1].record.run_id, record(2).run_id);
  ASSERT_EQ(p.damage.size(), 1u);
  EXPECT_EQ(p.damage[0].offset, a.size());
  EXPECT_EQ(p.damage[0].length, 40u);
  EXPECT_FALSE(p.tail);
  EXPECT_EQ(p.consumed, data.size());
}

TEST(JournalParse, GarbledLengthAndChecksumAreNeverTrusted) {
  std::string a = journal::encode_record(journal::RecordType::start, record(1)).value();
  std::string c = journal::encode_record(journal::RecordType::start, record(2)).value();
  // A length far past the data (and past the limit), then a valid record.
  std::string huge = a;
  huge[8] = '\xff', huge[9] = '\xff', huge[10] = '\xff', huge[11] = '\x7f';
  auto p = journal::parse(huge + c, 0, true);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].record.run_id, record(2).run_id);
  ASSERT_EQ(p.damage.size(), 1u);
  EXPECT_NE(p.damage[0].why.find("above the limit"), std::string::npos);
  // A length within the limit but past the end of the file, then a valid record:
  // damage, not an incomplete tail that would hide the record after it.
  std::string longer = a;
  longer[8] = 0, longer[9] = 0, longer[10] = 0x08, longer[11] = 0;  // 512 KiB
  p = journal::parse(longer + c, 0, true);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.damage.size(), 1u);
  EXPECT_FALSE(p.tail);
  // A flipped payload byte.
  std::string flipped = a;
  flipped[journal::kFrameBytes + 5] ^= 0x20;
  p = journal::parse(flipped + c, 0, true);
  ASSERT_EQ(p.entries.size(), 1u);
  ASSERT_EQ(p.damage.size(), 1u);
  EXPECT_NE(p.damage[0].why.find("checksum"), std::string::npos);
}

// ---------- fold ----------

TEST(JournalFold, FoldsIdempotentlyAndNeverRegresses) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::start, record(1)));
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(1, RunStatus::ok)));
  ASSERT_TRUE(w.append(journal::RecordType::start, record(2)));  // never finishes: lost
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(3, RunStatus::failed)));  // no start (skipped-like)
  // A start read after its finish (a rewrite across a rotation) does not regress it.
  ASSERT_TRUE(w.append(journal::RecordType::start, record(1)));

  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value()) << rep.error().message();
  EXPECT_EQ(rep->records, 5u);
  EXPECT_TRUE(rep->notes.empty());
  auto st = statuses(store);
  EXPECT_EQ(st.size(), 3u);
  EXPECT_EQ(st[record(1).run_id], RunStatus::ok);
  EXPECT_EQ(st[record(2).run_id], RunStatus::lost);
  EXPECT_EQ(st[record(3).run_id], RunStatus::failed);
  std::string first = dump(db);

  // Folding again reads nothing new and changes nothing.
  rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 0u);
  EXPECT_EQ(dump(db), first);

  // The finish of the running row completes it.
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(2, RunStatus::ok)));
  rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 1u);
  EXPECT_EQ(statuses(store)[record(2).run_id], RunStatus::ok);
}

// The fold does not write a start whose finish follows in the same batch (the
// finish writes the whole row) -- but when that finish cannot be made into a row,
// the start is written after all: the run is still there, lost, not missing.
TEST(JournalFold, AStartIsKeptWhenItsFinishInTheSameBatchCannotBeARow) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  RunRecord bad = record(4, RunStatus::ok);
  bad.finished_at = "yesterday";
  ASSERT_TRUE(w.append(journal::RecordType::start, record(4)));
  ASSERT_TRUE(w.append(journal::RecordType::start, record(5)));
  ASSERT_TRUE(w.append(journal::RecordType::finish, bad));
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(5, RunStatus::failed)));
  {  // A read-only reader merges the unfolded journal by the same rules.
    auto ro = HistoryStore::open(db, HistoryStore::Mode::read_only);
    ASSERT_TRUE(ro.has_value()) << ro.error().message();
    auto st = statuses(*ro);
    EXPECT_EQ(st.size(), 2u);
    EXPECT_EQ(st[record(4).run_id], RunStatus::lost);
    EXPECT_EQ(st[record(5).run_id], RunStatus::failed);
  }
  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value()) << rep.error().message();
  EXPECT_EQ(rep->records, 4u);
  ASSERT_EQ(rep->notes.size(), 1u);
  EXPECT_NE(rep->notes[0].find("skipped the finish record"), std::string::npos) << rep->notes[0];
  auto st = statuses(store);
  EXPECT_EQ(st.size(), 2u);
  EXPECT_EQ(st[record(4).run_id], RunStatus::lost);
  EXPECT_EQ(st[record(5).run_id], RunStatus::failed);
}

TEST(JournalFold, TornLastRecordIsReportedLeftAndSkippedOnceFollowed) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(1, RunStatus::ok)));
  std::string b = journal::encode_record(journal::RecordType::finish, record(2, RunStatus::ok)).value();
  append_raw(journal::journal_path(db), b.substr(0, b.size() - 10));
  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 1u);
  ASSERT_EQ(rep->notes.size(), 1u);
  EXPECT_NE(rep->notes[0].find("incomplete last record"), std::string::npos) << rep->notes[0];
  // The next record after it: the torn one is skipped and reported as damage.
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(3, RunStatus::ok)));
  rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 1u);
  EXPECT_EQ(rep->damaged, 1u);
  auto st = statuses(store);
  EXPECT_EQ(st.size(), 2u);
  EXPECT_TRUE(st.contains(record(3).run_id));
}

TEST(JournalFold, RotatesAndAnAppenderOnTheOldFileWritesAgain) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  int n = 0;
  uint64_t size = 0;
  while (size < journal::kFoldThresholdBytes) {
    ++n;
    size = w.append(journal::RecordType::finish, record(n, RunStatus::ok)).value();
  }
  struct stat before {};
  ASSERT_EQ(::stat(journal::journal_path(db).c_str(), &before), 0);
  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value()) << rep.error().message();
  EXPECT_TRUE(rep->rotated);
  EXPECT_EQ(rep->records, static_cast<uint64_t>(n));
  struct stat after {};
  ASSERT_EQ(::stat(journal::journal_path(db).c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_size, static_cast<off_t>(journal::kHeaderBytes));
  EXPECT_EQ(after.st_mode & 0777, before.st_mode & 0777);
  EXPECT_NE(::access(journal::retired_path(db).c_str(), F_OK), 0);  // removed once folded
  // `w` still holds the old (now unlinked, sticky) file: its next record lands
  // in the new journal.
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(n + 1, RunStatus::ok)));
  struct stat grown {};
  ASSERT_EQ(::stat(journal::journal_path(db).c_str(), &grown), 0);
  EXPECT_GT(grown.st_size, after.st_size);
  rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 1u);
  EXPECT_EQ(statuses(store).size(), static_cast<size_t>(n + 1));
}

TEST(JournalFold, UnfinishedRotationIsCompletedByTheNextFold) {
  // A fold killed after swapping the files: the retired file still holds records
  // past the cursor (appended before the swap). The next fold reads them.
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(1, RunStatus::ok)));
  ASSERT_TRUE(store.fold_journal(true).has_value());
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(2, RunStatus::ok)));
  // What the killed fold left: the journal under the retired name, a new one in place.
  std::string jpath = journal::journal_path(db), rpath = journal::retired_path(db);
  ASSERT_EQ(::rename(jpath.c_str(), rpath.c_str()), 0);
  UniqueFd dir(::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(journal::create_new(dir.get(), "h.db.journal", jpath, 0644, nullptr).has_value());
  auto w2 = writer(db);
  ASSERT_TRUE(w2.append(journal::RecordType::finish, record(3, RunStatus::ok)));
  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value()) << rep.error().message();
  EXPECT_EQ(rep->records, 2u);
  EXPECT_TRUE(rep->notes.empty()) << rep->notes.front();
  EXPECT_EQ(statuses(store).size(), 3u);
  EXPECT_NE(::access(rpath.c_str(), F_OK), 0);
}

TEST(JournalFold, AReplacedJournalIsRecognisedByItsGeneration) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  {
    auto w = writer(db);
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(w.append(journal::RecordType::finish, record(i, RunStatus::ok)));
  }
  ASSERT_TRUE(store.fold_journal(true).has_value());
  // Deleted and grown again, shorter than the folded offset or not: a new
  // generation, read from its start.
  ASSERT_EQ(::unlink(journal::journal_path(db).c_str()), 0);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(6, RunStatus::ok)));
  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 1u);
  ASSERT_EQ(rep->notes.size(), 1u);
  EXPECT_NE(rep->notes[0].find("is gone"), std::string::npos);
  EXPECT_EQ(statuses(store).size(), 6u);
}

// Appends run n's finish (ok) to the journal of `db`, through a writer of its own.
void append_finished(const std::string& db, int n) {
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(n, RunStatus::ok)));
}

// A reader that may not write (a read-only open) sees run `run_id`, and the first
// note of its journal report says `note`.
void expect_reader_sees(const std::string& db, const std::string& run_id, const std::string& note) {
  auto ro = HistoryStore::open(db, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro) << ro.error().message();
  EXPECT_TRUE(statuses(*ro).contains(run_id));
  ASSERT_FALSE(ro->journal_report().notes.empty());
  EXPECT_NE(ro->journal_report().notes[0].find(note), std::string::npos) << ro->journal_report().notes[0];
}

// A damaged header (bad magic, a torn file, a bad checksum) does not make the
// history unreadable: its records are read past it by readers and the fold, the
// damage is reported, appenders go on, and the fold replaces the file with a
// fresh journal once it has read it. A header of another format version stays
// an error (a newer build's journal is not this one's to rewrite).
TEST(JournalFold, ADamagedHeaderIsReadPastReportedAndReplaced) {
  for (int how = 0; how < 3; ++how) {
    SCOPED_TRACE(how);
    TempDir t;
    std::string db = t.file("h.db");
    const std::string jpath = journal::journal_path(db);
    auto store = make_history(db);
    append_finished(db, 1);
    if (how == 0) {
      int fd = ::open(jpath.c_str(), O_WRONLY);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::pwrite(fd, "XXXX", 4, 0), 4);  // the magic
      ::close(fd);
    } else if (how == 1) {
      ASSERT_EQ(::truncate(jpath.c_str(), 12), 0);  // torn header, its record gone
    } else {
      int fd = ::open(jpath.c_str(), O_WRONLY);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::pwrite(fd, "\x01", 1, 20), 1);  // the generation: checksum fails
      ::close(fd);
    }
    // An appender after the damage still records.
    append_finished(db, 2);
    // A reader that may not write sees the run and is told of the damage.
    expect_reader_sees(db, record(2).run_id, "damaged header");
    // The fold takes every record it can read and swaps in a sound journal.
    auto rep = store.fold_journal(true);
    ASSERT_TRUE(rep.has_value()) << rep.error().message();
    EXPECT_TRUE(rep->rotated);
    EXPECT_GE(rep->damaged, 1u);
    auto st = statuses(store);
    EXPECT_TRUE(st.contains(record(2).run_id));
    EXPECT_EQ(st.contains(record(1).run_id), how != 1);
    rep = store.fold_journal(true);
    ASSERT_TRUE(rep.has_value()) << rep.error().message();
    EXPECT_EQ(rep->damaged, 0u);
    EXPECT_TRUE(rep->notes.empty());
  }
  // Another format version: an error naming the file, the file left as it is.
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  append_finished(db, 1);
  int fd = ::open(journal::journal_path(db).c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "\x02", 1, 7), 1);
  ::close(fd);
  auto rep = store.fold_journal(true);
  ASSERT_FALSE(rep.has_value());
  EXPECT_NE(rep.error().message().find("format version 2"), std::string::npos) << rep.error().message();
}

// Something planted under the retired journal's name (a symlink, in a directory
// other users can write) is named and left alone; it does not stop readers or
// the fold from reading the journal.
TEST(JournalFold, APlantedRetiredNameIsNamedNotReadAndStopsNothing) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  append_finished(db, 1);
  const std::string victim = t.file("victim.txt");
  { std::ofstream(victim) << "not a journal\n"; }
  ASSERT_EQ(::symlink(victim.c_str(), journal::retired_path(db).c_str()), 0);
  expect_reader_sees(db, record(1).run_id, "is a symlink");
  auto rep = store.fold_journal(true);
  ASSERT_TRUE(rep.has_value()) << rep.error().message();
  EXPECT_EQ(rep->records, 1u);
  EXPECT_TRUE(statuses(store).contains(record(1).run_id));
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "not a journal\n");
}

TEST(JournalFold, NonBlockingFoldSkipsWhenAnotherHoldsTheLock) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(1, RunStatus::ok)));
  UniqueFd held(::open(journal::journal_path(db).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::flock(held.get(), LOCK_EX), 0);
  auto rep = HistoryStore::fold(db, /*wait_for_lock=*/false);
  ASSERT_TRUE(rep.has_value()) << rep.error().message();
  EXPECT_TRUE(rep->busy);
  EXPECT_EQ(rep->records, 0u);
  held.reset();
  rep = HistoryStore::fold(db, false);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->records, 1u);
}

// ---------- readers that may not write ----------

TEST(JournalMerge, ReadOnlyOpenSeesUnfoldedRunsWithLostApplied) {
  TempDir t;
  std::string db = t.file("h.db");
  {
    auto store = make_history(db);
    auto w = writer(db);
    ASSERT_TRUE(w.append(journal::RecordType::start, record(1)));
    ASSERT_TRUE(w.append(journal::RecordType::finish, record(1, RunStatus::ok)));
    ASSERT_TRUE(store.fold_journal(true).has_value());
    ASSERT_TRUE(w.append(journal::RecordType::start, record(2)));    // runner gone: lost
    ASSERT_TRUE(w.append(journal::RecordType::start, record(3)));    // finishes below
    ASSERT_TRUE(w.append(journal::RecordType::finish, record(3, RunStatus::failed)));
    ASSERT_TRUE(w.append(journal::RecordType::start, record(1)));    // already finished in the history
  }
  std::string before = dump(db);
  auto ro = HistoryStore::open(db, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro.has_value()) << ro.error().message();
  EXPECT_EQ(ro->journal_report().records, 4u);
  auto st = statuses(*ro);
  EXPECT_EQ(st.size(), 3u);
  EXPECT_EQ(st[record(1).run_id], RunStatus::ok);
  EXPECT_EQ(st[record(2).run_id], RunStatus::lost);
  EXPECT_EQ(st[record(3).run_id], RunStatus::failed);
  // The aggregate paths read the merged rows too.
  auto counts = ro->status_counts();
  ASSERT_TRUE(counts.has_value());
  uint64_t total = 0;
  for (const auto& [job, by] : *counts)
    for (const auto& [s, n] : by) total += n;
  EXPECT_EQ(total, 3u);
  auto found = ro->find_run(record(3).run_id);
  ASSERT_TRUE(found.has_value() && found->has_value());
  uint64_t scanned = 0;
  ASSERT_TRUE(ro->scan(RunFilter{}, [&](const RunFigures&) { ++scanned; }).has_value());
  EXPECT_EQ(scanned, 3u);
  // Nothing was written.
  EXPECT_EQ(dump(db), before);
}

TEST(JournalMerge, EmptyTailLeavesTheHistoryAsIs) {
  TempDir t;
  std::string db = t.file("h.db");
  {
    auto store = make_history(db);
    auto w = writer(db);
    ASSERT_TRUE(w.append(journal::RecordType::finish, record(1, RunStatus::ok)));
    ASSERT_TRUE(store.fold_journal(true).has_value());
  }
  auto ro = HistoryStore::open(db, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro.has_value());
  EXPECT_EQ(ro->journal_report().records, 0u);
  EXPECT_EQ(statuses(*ro).size(), 1u);
}

TEST(JournalMerge, ReadWriteOpenFoldsFirst) {
  TempDir t;
  std::string db = t.file("h.db");
  make_history(db);
  append_finished(db, 1);
  auto rw = HistoryStore::open(db, HistoryStore::Mode::read_write);
  ASSERT_TRUE(rw.has_value()) << rw.error().message();
  EXPECT_EQ(rw->journal_report().records, 1u);
  EXPECT_NE(dump(db).find(record(1).run_id), std::string::npos);
}

TEST(JournalMerge, OldSchemaHistoryReadOnlyStillMerges) {
  // A history of schema 3 (no runner_start, no cursors) read by a newer cronprof
  // that may not migrate it: the compatibility view and the journal together.
  TempDir t;
  std::string db = t.file("h.db");
  make_history(db);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "DROP TABLE journal_cursors; ALTER TABLE runs DROP COLUMN runner_start; PRAGMA user_version = 3",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  {
    auto w = writer(db);
    ASSERT_TRUE(w.append(journal::RecordType::start, record(1)));
  }
  auto ro = HistoryStore::open(db, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro.has_value()) << ro.error().message();
  EXPECT_EQ(ro->schema_version(), 3);
  auto st = statuses(*ro);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[record(1).run_id], RunStatus::lost);
}

// A runner that finishes after cronprof read its `running` row, and is gone by
// the time the probe looks, appended its FINISH before it exited: the row is read
// again, not called lost. The probe seam does the runner's part between the read
// and the verdict: it appends the FINISH (and, in the second test, folds and
// rotates the journal), then answers "gone".
struct FinishingRunners {
  std::string db;
  std::map<int64_t, int> run_of_pid = {};  // runner pid -> record number
  std::set<int64_t> finished = {};
  std::function<void()> after_finish = {};  // e.g. a fold

  RunnerProbe probe() {
    RunnerProbe p;
    p.boot_id = current_boot_id();
    p.runner_alive = [this](int64_t pid, uint64_t) {
      auto it = run_of_pid.find(pid);
      if (it != run_of_pid.end() && finished.insert(pid).second) {
        auto w = writer(db);
        RunRecord fin = record(it->second, RunStatus::ok);
        fin.runner_pid = pid;
        EXPECT_TRUE(w.append(journal::RecordType::finish, fin).has_value());
        if (after_finish) after_finish();
      }
      return false;
    };
    return p;
  }
};

RunRecord started(int i, int64_t pid) {
  RunRecord r = record(i);
  r.runner_pid = pid;
  return r;
}

// Run 7 running in the database, 8 in the journal (both finish before their
// probe), 9 whose runner died.
void seed_three_running(const std::string& db) {
  auto store = make_history(db);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::start, started(7, 4000007)));
  ASSERT_TRUE(store.fold_journal(true).has_value());
  ASSERT_TRUE(w.append(journal::RecordType::start, started(8, 4000008)));
  ASSERT_TRUE(w.append(journal::RecordType::start, started(9, 4000009)));
}

TEST(JournalMerge, ARunThatFinishesBetweenTheReadAndTheProbeIsReadAgainNotLost) {
  const std::string r7 = record(7).run_id, r8 = record(8).run_id, r9 = record(9).run_id;
  // `cronprof runs`' table: figures, inside one read snapshot. Rows come newest
  // first (9, 8, 7): the second read opened for 9 is out of date for 8 and 7.
  {
    TempDir t;
    FinishingRunners runners{t.file("h.db"), {{4000007, 7}, {4000008, 8}}};
    seed_three_running(runners.db);
    auto ro = HistoryStore::open(runners.db, HistoryStore::Mode::read_only);
    ASSERT_TRUE(ro.has_value()) << ro.error().message();
    ro->set_runner_probe(runners.probe());
    std::map<std::string, RunStatus> seen;
    ASSERT_TRUE(ro->read_snapshot([&]() -> Result<void> {
                    return ro->scan(RunFilter{}, [&](const RunFigures& f) { seen[f.run_id] = f.status; });
                  }).has_value());
    EXPECT_EQ(seen[r7], RunStatus::ok);
    EXPECT_EQ(seen[r8], RunStatus::ok);
    EXPECT_EQ(seen[r9], RunStatus::lost);
    RunFilter lost;
    lost.status = RunStatus::lost;
    auto n = ro->count(lost);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 1u);
    auto counts = ro->status_counts();
    ASSERT_TRUE(counts.has_value());
    uint64_t ok = 0, lost_n = 0;
    for (const auto& [job, by] : *counts) {
      if (auto it = by.find(RunStatus::ok); it != by.end()) ok += it->second;
      if (auto it = by.find(RunStatus::lost); it != by.end()) lost_n += it->second;
    }
    EXPECT_EQ(ok, 2u);
    EXPECT_EQ(lost_n, 1u);
  }
  // `cronprof runs --json`, `show`, `ps`: full records.
  {
    TempDir t;
    FinishingRunners runners{t.file("h.db"), {{4000007, 7}, {4000008, 8}}};
    seed_three_running(runners.db);
    auto ro = HistoryStore::open(runners.db, HistoryStore::Mode::read_only);
    ASSERT_TRUE(ro.has_value()) << ro.error().message();
    ro->set_runner_probe(runners.probe());
    auto runs = ro->runs(RunFilter{});
    ASSERT_TRUE(runs.has_value()) << runs.error().message();
    std::map<std::string, RunRecord> by_id;
    for (const auto& r : *runs) by_id[r.run_id] = r;
    ASSERT_EQ(by_id.size(), 3u);
    EXPECT_EQ(by_id[r7].status, RunStatus::ok);
    EXPECT_EQ(by_id[r7].finished_at, record(7, RunStatus::ok).finished_at);
    EXPECT_EQ(by_id[r8].status, RunStatus::ok);
    EXPECT_EQ(by_id[r9].status, RunStatus::lost);
    auto live = ro->in_progress();
    ASSERT_TRUE(live.has_value());
    EXPECT_TRUE(live->empty());
  }
}

TEST(JournalMerge, ARunFinishedAndFoldedAwayBeforeTheProbeIsReadAgainNotLost) {
  // The runner's FINISH is folded into the database and the journal rotated
  // before the probe: neither the reader's snapshot nor its merge of the old
  // journal has it; the second read finds it in the database.
  TempDir t;
  FinishingRunners runners{t.file("h.db")};
  {
    auto store = make_history(runners.db);
    auto w = writer(runners.db);
    ASSERT_TRUE(w.append(journal::RecordType::start, started(1, 4000001)));
    ASSERT_TRUE(store.fold_journal(true).has_value());
  }
  runners.run_of_pid = {{4000001, 1}};
  bool rotated = false;
  runners.after_finish = [&] {
    // Other runs fill the journal past the fold threshold, then a runner folds.
    auto w = writer(runners.db);
    for (int n = 100; w.append(journal::RecordType::finish, record(n, RunStatus::ok)).value() <
                      journal::kFoldThresholdBytes;
         ++n) {
    }
    auto rep = HistoryStore::fold(runners.db, true);
    ASSERT_TRUE(rep.has_value()) << rep.error().message();
    rotated = rep->rotated;
  };
  struct stat before {};
  ASSERT_EQ(::stat(journal::journal_path(runners.db).c_str(), &before), 0);
  auto ro = HistoryStore::open(runners.db, HistoryStore::Mode::read_only);
  ASSERT_TRUE(ro.has_value()) << ro.error().message();
  ro->set_runner_probe(runners.probe());
  RunFilter one;
  one.job = record(1).job;
  std::optional<RunStatus> status;
  ASSERT_TRUE(ro->read_snapshot([&]() -> Result<void> {
                  return ro->scan(one, [&](const RunFigures& f) {
                    if (f.run_id == record(1).run_id) status = f.status;
                  });
                }).has_value());
  struct stat after {};
  ASSERT_EQ(::stat(journal::journal_path(runners.db).c_str(), &after), 0);
  EXPECT_TRUE(rotated && after.st_ino != before.st_ino) << "the test's fold should have rotated the journal";
  EXPECT_EQ(status, RunStatus::ok);
}

TEST(JournalMerge, GcKeepsARunWhoseFinishIsStillInTheJournal) {
  // gc folds when it opens; a runner that finishes after that and is gone when
  // gc probes has its FINISH in the journal only. Deleted as lost, the row would
  // come back with the next fold and the run be counted twice.
  TempDir t;
  std::string db = t.file("h.db");
  {
    auto store = make_history(db);
    auto w = writer(db);
    ASSERT_TRUE(w.append(journal::RecordType::start, started(5, 4000005)));
    ASSERT_TRUE(w.append(journal::RecordType::start, started(6, 4000006)));  // really lost
    ASSERT_TRUE(store.fold_journal(true).has_value());
  }
  auto gc = HistoryStore::open(db, HistoryStore::Mode::read_write);
  ASSERT_TRUE(gc.has_value()) << gc.error().message();
  {
    auto w = writer(db);
    ASSERT_TRUE(w.append(journal::RecordType::finish, record(5, RunStatus::ok)));
  }
  gc->set_runner_probe(all_gone());
  auto deleted = gc->delete_before(4102444800.0);  // 2100-01-01: everything is old
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message();
  EXPECT_EQ(*deleted, 1u);
  ASSERT_TRUE(gc->fold_journal(true).has_value());
  auto st = statuses(*gc);
  EXPECT_EQ(st.size(), 1u);
  EXPECT_EQ(st[record(5).run_id], RunStatus::ok);
  auto removed = gc->removed_counts();
  ASSERT_TRUE(removed.has_value());
  uint64_t lost = 0;
  for (const auto& [job, by] : *removed)
    if (auto it = by.find(RunStatus::lost); it != by.end()) lost += it->second;
  EXPECT_EQ(lost, 1u);
}

}  // namespace
// Something planted at the journal's path is named for what it is, not by errno
// ("Too many levels of symbolic links", "No such device or address"), and neither
// followed nor written.
TEST(JournalWriter, PlantedSymlinkOrFifoIsNamed) {
  TempDir t;
  const std::string history = t.path() + "/h.db";
  const std::string target = t.path() + "/precious";
  { std::ofstream(target) << "precious\n"; }
  std::filesystem::create_symlink(target, history + ".journal");
  UniqueFd dir(::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto w = journal::Writer::open(std::move(dir), history, 0644);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find(history + ".journal is a symlink, expected the run journal"), std::string::npos)
      << w.error().message();
  std::filesystem::remove(history + ".journal");
  ASSERT_EQ(::mkfifo((history + ".journal").c_str(), 0600), 0);
  UniqueFd dir2(::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  w = journal::Writer::open(std::move(dir2), history, 0644);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find(history + ".journal is a FIFO, expected the run journal"), std::string::npos)
      << w.error().message();
  std::ifstream in(target);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious\n");
}

}  // namespace cronrun
