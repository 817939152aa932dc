// HistorySink (history_sink.h): the runner's two writes to the SQLite history.
#include "runner/history_sink.h"

namespace cronrun {

Result<std::unique_ptr<RecordSink>> HistorySink::open(const std::string& path, bool default_location) {
  HistoryOpenOptions opts{.default_location = default_location, .move_damaged_aside = true};
  auto h = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, opts);
  if (!h) return std::unexpected(std::move(h.error()).with_kind(ErrorKind::history));
  return std::unique_ptr<RecordSink>(new HistorySink(std::move(*h)));
}

Result<void> HistorySink::started(const RunRecord& r) {
  auto ok = store_.begin_run(r);
  if (!ok) return std::unexpected(std::move(ok.error()).with_kind(ErrorKind::history));
  row_started_ = true;
  return {};
}

Result<void> HistorySink::finished(const RunRecord& r) {
  auto ok = row_started_ ? store_.finish_run(r) : store_.record(r);
  if (!ok) return std::unexpected(std::move(ok.error()).with_kind(ErrorKind::history));
  return {};
}

}  // namespace cronrun
