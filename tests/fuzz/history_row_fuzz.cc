// History rows as cronprof reads them: a real history file whose one row has a
// `status` column and a `record` column from the input (first line: status, the
// rest: record JSON), read through every HistoryStore query cronprof uses. A
// history is shared by every run of a user's jobs, so a damaged or forged row must
// come back as an error naming the row, never as a crash.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/history.h"
#include "tests/fuzz/fuzz.h"

namespace {

struct Fixture {
  std::string dir;
  std::optional<cronrun::HistoryStore> store;
  sqlite3* raw = nullptr;
  sqlite3_stmt* update = nullptr;

  Fixture() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/cronrun-fuzz-history.XXXXXX";
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    auto s = cronrun::HistoryStore::open(dir + "/h.db", cronrun::HistoryStore::Mode::read_write);
    FUZZ_CHECK_MSG(s.has_value(), s ? "" : s.error().message());
    store.emplace(std::move(*s));
    // No runner is ever alive: `running` rows read as lost, without probing pids.
    cronrun::RunnerProbe probe;
    probe.runner_alive = [](int64_t, uint64_t) { return false; };
    store->set_runner_probe(probe);
    cronrun::RunRecord r;
    r.run_id = "0193f1c2-0000-7000-8000-000000000001";
    r.job = "fuzz";
    r.started_at = "2026-11-28T02:10:00.123Z";
    r.status = cronrun::RunStatus::ok;
    FUZZ_CHECK(store->record(r).has_value());
    FUZZ_CHECK(sqlite3_open_v2((dir + "/h.db").c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    // The fuzzer's own writes need no durability; an fsync per input would be most of the time.
    FUZZ_CHECK(sqlite3_exec(raw, "PRAGMA synchronous = OFF", nullptr, nullptr, nullptr) == SQLITE_OK);
    FUZZ_CHECK(sqlite3_prepare_v2(raw, "UPDATE runs SET status = ?1, record = ?2", -1, &update, nullptr) ==
               SQLITE_OK);
  }
  ~Fixture() {
    sqlite3_finalize(update);
    sqlite3_close(raw);
    store.reset();
    for (const char* f : {"/h.db", "/h.db-wal", "/h.db-shm"}) ::unlink((dir + f).c_str());
    ::rmdir(dir.c_str());
  }
};

}  // namespace

int cronrun_fuzz_history_row(const uint8_t* data, size_t size) {
  using namespace cronrun;
  static Fixture fx;
  std::string_view text = fuzz::as_text(data, size);
  size_t nl = text.find('\n');
  std::string_view status = text.substr(0, nl);
  std::string_view record = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  // std::string: an empty view may have no data pointer, which sqlite binds as NULL.
  const std::string status_col(status), record_col(record);
  sqlite3_reset(fx.update);
  sqlite3_bind_text(fx.update, 1, status_col.c_str(), static_cast<int>(status_col.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(fx.update, 2, record_col.c_str(), static_cast<int>(record_col.size()), SQLITE_TRANSIENT);
  FUZZ_CHECK_MSG(sqlite3_step(fx.update) == SQLITE_DONE, sqlite3_errmsg(fx.raw));

  const HistoryStore& h = *fx.store;
  RunFilter all;
  (void)h.runs(all);
  (void)h.each_run(all, [](const RunRecord& r) { FUZZ_CHECK(!r.run_id.empty()); });
  (void)h.scan(all, [](const RunFigures&) {});
  RunFilter newest;
  newest.limit = 1;
  (void)h.scan(newest, [](const RunFigures&) {});
  (void)h.count(all);
  (void)h.find_run("0193");
  (void)h.latest_run("fuzz");
  (void)h.last_success_by_job();
  (void)h.jobs();
  (void)h.status_counts();
  (void)h.in_progress();
  return 0;
}
