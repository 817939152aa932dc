// The job's stdout/stderr under --output and --log-dir.
//
// passthrough without a log (and without --ping, which keeps the output's tail):
// the job inherits cronrun's fds, no copying at all.
// Otherwise the job writes to pipes the supervisor drains from its poll loop into
// the log file (capped at --log-max), straight through (passthrough), or into
// anonymous memory files replayed only if the run failed (on-failure, like chronic).
//
// No sink may block the poll loop: copies to cronrun's own stdout/stderr go through
// a bounded per-stream queue that the loop flushes when poll says the reader made
// room, the on-failure buffer keeps only the tail of each stream, and what is
// dropped is counted for the run record (output.dropped_bytes, log.dropped_bytes).
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/run_record.h"
#include "runner/job_spec.h"
#include "runner/nonblocking_fd.h"

namespace cronrun {

class OutputCapture {
 public:
  // Per stream: passthrough bytes waiting for a slow reader, and the tail of the
  // output the on-failure buffer keeps (the front is dropped and counted).
  static constexpr size_t kQueueMax = 256 * 1024;
  static constexpr uint64_t kOnFailureTail = 4 * 1024 * 1024;

  // `log_path` is DIR/NAME/RUN-ID.log when --log-dir is set (directories created).
  // `tail_max` > 0 keeps the last that many bytes of stdout and stderr together,
  // in the order they came (the body of --ping's finish ping); the job then writes
  // to pipes in every mode.
  static Result<OutputCapture> create(OutputMode mode, std::optional<std::string> log_path, uint64_t log_max_bytes,
                                      size_t tail_max = 0);

  // fds to hand the child as 1 and 2 (-1: inherit cronrun's).
  int child_stdout() const { return child_out_.valid() ? child_out_.get() : -1; }
  int child_stderr() const { return child_err_.valid() ? child_err_.get() : -1; }
  // Closes the parent's copies of the child ends; call right after spawning.
  void close_child_ends();

  // The supervisor's poll loop: add_poll() appends what output wants polled (the
  // pipes for POLLIN while open, cronrun's stdout/stderr for POLLOUT while bytes
  // are queued for them); on_poll() takes those entries back with their revents.
  void add_poll(std::vector<pollfd>& fds) const;
  void on_poll(std::span<const pollfd> fds);
  // A job pipe is still open (not at EOF).
  bool reading() const { return out_.open || err_.open; }

  // After the job: drains the pipes, flushes queued passthrough bytes and, with
  // on-failure and `failed`, replays the kept tails to 1 and 2. Waits only while
  // the reader makes progress (a reader that takes nothing for `stall` loses the
  // rest, counted).
  void finish(bool failed, std::chrono::milliseconds stall = std::chrono::seconds(1));
  LogRecord log_record() const;
  // The last `tail_max` bytes the job wrote (see create()); empty without one.
  std::string tail() const;
  OutputRecord output_record() const;

 private:
  // How bytes reach cronrun's own stdout/stderr without blocking (see output.cc).
  using How = WriteHow;
  struct Stream {
    const char* name = "";
    UniqueFd read;
    bool open = false;
    bool copies = false;      // passthrough: every byte is copied to `target`
    int target = -1;          // 1 or 2 (passthrough and on-failure)
    How how = How::dead;
    int write_fd = -1;        // target, or `own_target` when reopened
    UniqueFd own_target;      // a private non-blocking open of the target
    std::string queue;        // bytes waiting for the target
    size_t queue_off = 0;
    UniqueFd buffer;          // memfd ring of the last kOnFailureTail bytes (on-failure)
    uint64_t buffered = 0;    // bytes ever put into the ring
    bool buffer_failed = false;
  };
  void open_target(Stream& s, int fd);
  size_t try_write(Stream& s, const char* data, size_t len);
  void deliver(Stream& s, const char* data, size_t len);
  void flush(Stream& s);
  size_t queued(const Stream& s) const { return s.queue.size() - s.queue_off; }
  void drop_queue(Stream& s);
  void write_bounded(Stream& s, const char* data, size_t len, std::chrono::milliseconds stall);
  void buffer_put(Stream& s, const char* data, size_t len);
  void replay(Stream& s, std::chrono::milliseconds stall);
  void sink(Stream& s, const char* data, size_t len);
  bool pump(Stream& s);

  OutputMode mode_ = OutputMode::passthrough;
  UniqueFd child_out_, child_err_;
  Stream out_, err_;
  UniqueFd log_;
  std::optional<std::string> log_path_;
  uint64_t log_max_ = 0;
  uint64_t log_bytes_ = 0;
  bool log_truncated_ = false;
  uint64_t log_dropped_ = 0;
  bool log_failed_ = false;
  uint64_t dropped_ = 0;
  size_t tail_max_ = 0;
  std::string tail_;  // grows to twice tail_max_, then its front is cut
};

}  // namespace cronrun
