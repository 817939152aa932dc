// Rows of the fleet's central history as `cronprof --history postgresql://...`
// reads them: the `host`, `status` and `record` columns of cronrun.runs, written
// by every host's forwarder (a host's admin, or anyone with the forwarding role,
// writes what they like there), turned into a run record (pg::run_from_row, as
// PgHistory::each_run does) and copied into the private SQLite history
// (prof::LocalCopy, as prepare_history does), then read back through that
// history. Input: the host line, the status line, then the record JSON.
// A row the reader accepts must be stored by the copy (one that is not fails the
// whole cronprof command for every user of the central history) and read back
// with the row's status and host, without another host's runner pid or boot id.
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <string>

#include "common/history.h"
#include "common/pg_history.h"
#include "profiler/central_history.h"
#include "tests/fuzz/fuzz.h"

namespace {

struct Fixture {
  std::optional<cronrun::prof::LocalCopy> copy;
  std::optional<cronrun::HistoryStore> reader;
  sqlite3* raw = nullptr;

  Fixture() {
    auto c = cronrun::prof::LocalCopy::create();
    FUZZ_CHECK_MSG(c.has_value(), c ? "" : c.error().message());
    copy.emplace(std::move(*c));
    auto r = cronrun::HistoryStore::open(copy->path(), cronrun::HistoryStore::Mode::read_only);
    FUZZ_CHECK_MSG(r.has_value(), r ? "" : r.error().message());
    reader.emplace(std::move(*r));
    FUZZ_CHECK(sqlite3_open_v2(copy->path().c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  }
  ~Fixture() {
    sqlite3_close(raw);
    reader.reset();
    copy.reset();  // removes the directory
  }
};

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

int cronrun_fuzz_central_row(const uint8_t* data, size_t size) {
  using namespace cronrun;
  static Fixture fx;
  std::string_view text = fuzz::as_text(data, size);
  size_t nl1 = text.find('\n');
  if (nl1 == std::string_view::npos) return 0;
  size_t nl2 = text.find('\n', nl1 + 1);
  if (nl2 == std::string_view::npos) return 0;
  const std::string host(text.substr(0, nl1)), status(text.substr(nl1 + 1, nl2 - nl1 - 1)),
      record(text.substr(nl2 + 1));

  auto r = pg::run_from_row(host, status, record);
  if (!r) {
    FUZZ_CHECK(!r.error().message().empty());
    return 0;
  }
  FUZZ_CHECK(r->host == host);
  auto st = parse_run_status(status);
  FUZZ_CHECK(st.has_value() && *st == r->status);

  RunRecord copied = prof::as_copied(*r);
  FUZZ_CHECK(copied.runner_pid == 0 && copied.runner_start == 0 && copied.boot_id.empty());
  auto added = fx.copy->add(*r);
  FUZZ_CHECK_MSG(added.has_value(), added ? "" : added.error().message());
  // add() buffers rows for one transaction per batch; flush() writes them.
  auto flushed = fx.copy->flush();
  FUZZ_CHECK_MSG(flushed.has_value(), flushed ? "" : flushed.error().message());

  bool found = false;
  auto read = fx.reader->each_run(RunFilter{}, [&](const RunRecord& back) {
    if (back.run_id != r->run_id) return;
    found = true;
    FUZZ_CHECK_MSG(back.status == r->status, to_string(back.status));
    // PostgreSQL's text is valid UTF-8 (a UTF8 database); other bytes are
    // written back into the copy's record JSON replaced, so only valid host
    // names must come back as they were.
    if (valid_utf8(r->host)) FUZZ_CHECK_MSG(back.host == r->host, back.host);
    FUZZ_CHECK(back.job == r->job);
    FUZZ_CHECK(back.runner_pid == 0 && back.boot_id.empty());
  });
  FUZZ_CHECK_MSG(read.has_value(), read ? "" : read.error().message());
  FUZZ_CHECK_MSG(found, r->run_id);
  // The next input starts from an empty copy.
  FUZZ_CHECK(sqlite3_exec(fx.raw, "DELETE FROM runs", nullptr, nullptr, nullptr) == SQLITE_OK);
  return 0;
}
