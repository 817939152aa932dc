// The run's records go to the run journal (common/journal.h): a RecordSink that
// appends the start and finish records to `<history>.journal` and, when the
// journal has grown past journal::kFoldThresholdBytes, folds it into the SQLite
// history after the finish record (without waiting: if another fold holds the
// journal, this run leaves it to that one). The per-run path opens no SQLite.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/journal.h"
#include "runner/record_sink.h"

namespace cronrun {

class JournalSink : public RecordSink {
 public:
  JournalSink(journal::Writer writer, std::string history_path, bool default_location, std::optional<std::string> note)
      : writer_(std::move(writer)), history_path_(std::move(history_path)), default_location_(default_location),
        note_(std::move(note)) {}
  Result<void> started(const RunRecord& r) override;
  Result<void> finished(const RunRecord& r) override;
  std::optional<std::string> note() const override { return note_; }
  bool housekept() const override { return folded_; }
  std::string where() const override { return "history " + history_path_ + " (journal " + writer_.path() + ")"; }

 private:
  journal::Writer writer_;
  std::string history_path_;
  bool default_location_ = false;
  std::optional<std::string> note_;
  bool folded_ = false;
};

// Opens the journal of the history at `history_path` for one run. The default
// location's missing directories are created (0755 as root, 0700 otherwise); an
// explicit path's directory must exist. The directory is opened as a checked
// directory (common/safe_file.h) and the journal relative to it. A new journal
// gets the history's file mode; when the history itself does not exist yet it is
// created here (once), so readers find one.
Result<std::unique_ptr<RecordSink>> open_journal_sink(const std::string& history_path, bool default_location);

}  // namespace cronrun
