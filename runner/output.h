// The job's stdout/stderr under --output and --log-dir.
//
// passthrough without a log: the job inherits cronrun's fds, no copying at all.
// Otherwise the job writes to pipes the supervisor drains from its poll loop into
// the log file (capped at --log-max), straight through (passthrough), or into
// anonymous memory files replayed only if the run failed (on-failure, like chronic).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/run_record.h"
#include "runner/job_spec.h"

namespace cronrun {

class OutputCapture {
 public:
  // `log_path` is DIR/NAME/RUN-ID.log when --log-dir is set (directories created).
  static Result<OutputCapture> create(OutputMode mode, std::optional<std::string> log_path, uint64_t log_max_bytes);

  // fds to hand the child as 1 and 2 (-1: inherit cronrun's).
  int child_stdout() const { return child_out_.valid() ? child_out_.get() : -1; }
  int child_stderr() const { return child_err_.valid() ? child_err_.get() : -1; }
  // Closes the parent's copies of the child ends; call right after spawning.
  void close_child_ends();

  // Pipe read ends the supervisor polls (empty when nothing is captured).
  std::vector<int> poll_fds() const;
  // Drains what is readable on `fd`; returns false at EOF (stop polling it).
  bool pump(int fd);
  // After the job: with on-failure, replays stdout to 1 and stderr to 2 if `failed`.
  void finish(bool failed);
  LogRecord log_record() const;

 private:
  struct Stream {
    UniqueFd read;
    int passthrough_fd = -1;  // 1 or 2 when copying straight through
    UniqueFd buffer;          // memfd for on-failure
    bool open = false;
  };
  void sink(Stream& s, const char* data, size_t len);

  OutputMode mode_ = OutputMode::passthrough;
  UniqueFd child_out_, child_err_;
  Stream out_, err_;
  UniqueFd log_;
  std::optional<std::string> log_path_;
  uint64_t log_max_ = 0;
  uint64_t log_bytes_ = 0;
  bool log_truncated_ = false;
};

}  // namespace cronrun
