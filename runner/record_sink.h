// Where a run's record goes: the seam between the run pipeline (runner/run.cc)
// and what stores it (the run journal of DESIGN.md section 5; fakes in tests).
//
// A run hands its sink at most two records: started() just before the job is
// exec'd (evidence if the runner dies), then finished() exactly once with the
// whole record (ok, failed, skipped, error, ...). A run that ends before its job
// starts (skipped, refused) calls finished() without started().
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/run_record.h"

namespace cronrun {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // The job is about to start. An error here means the run must not start the
  // job: nothing would be left to prove it ran if this runner died.
  virtual Result<void> started(const RunRecord& r) = 0;
  // The complete record. Called once per run; an error is reported by the caller
  // (the job has ended, the record is all that is left).
  virtual Result<void> finished(const RunRecord& r) = 0;
  // A fact about the store itself that every record of this run should carry
  // (a damaged history moved aside, ...); nullopt when there is none.
  virtual std::optional<std::string> note() const { return std::nullopt; }
  // Whether finished() did the store's housekeeping (folded the journal, about
  // one run in a hundred): the run then sweeps what killed runners left behind.
  virtual bool housekept() const { return false; }
  // Where records go, for messages ("history /var/lib/cronrun/history.db").
  virtual std::string where() const = 0;
};

// --no-history: records go nowhere, and that never fails.
class NullSink final : public RecordSink {
 public:
  Result<void> started(const RunRecord&) override { return {}; }
  Result<void> finished(const RunRecord&) override { return {}; }
  std::string where() const override { return "no history"; }
};

}  // namespace cronrun
