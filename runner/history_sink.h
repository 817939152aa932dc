// The run's records into the SQLite history (common/history.h), behind the
// RecordSink seam: started() is the `running` row (begin_run), finished() the
// final one (finish_run, or one complete row for a run that never started). A
// damaged history moved aside at open is the sink's note, carried by every record
// of the run. The run journal's sink replaces this one; until then it keeps the
// history's behaviour as it was.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/history.h"
#include "runner/record_sink.h"

namespace cronrun {

class HistorySink final : public RecordSink {
 public:
  // Opens `path` for writing (its directories created only when it is cronrun's
  // default location; a damaged history moved aside). Errors are kind `history`.
  static Result<std::unique_ptr<RecordSink>> open(const std::string& path, bool default_location);

  Result<void> started(const RunRecord& r) override;
  Result<void> finished(const RunRecord& r) override;
  std::optional<std::string> note() const override { return store_.damage_note(); }
  std::string where() const override { return "history " + store_.path(); }

 private:
  explicit HistorySink(HistoryStore store) : store_(std::move(store)) {}
  HistoryStore store_;
  bool row_started_ = false;
};

// --no-history: records go nowhere, and that never fails.
class NullSink final : public RecordSink {
 public:
  Result<void> started(const RunRecord&) override { return {}; }
  Result<void> finished(const RunRecord&) override { return {}; }
  std::string where() const override { return "no history"; }
};

}  // namespace cronrun
