// Output capture. Pipes are non-blocking on the read side so a chatty job cannot
// stall the supervisor's poll loop; the log is capped (with a final marker line)
// so a runaway job cannot fill the disk.
//
// Copying to cronrun's own stdout/stderr must not block either: a reader that
// stops reading (`cronrun ... | (sleep 30)`) would otherwise stop the loop, and
// with it the timeout. Setting O_NONBLOCK on fd 1/2 is not an option: the flag
// lives in the open file description, which cron (or the shell) shares with us
// and would see change under it. Instead, per target:
//   regular file, block device: written directly (such writes do not wait for a
//     reader; a full disk fails them, and the failure is counted);
//   socket: send(MSG_DONTWAIT), a per-call non-blocking write;
//   pipe, FIFO, tty: reopened through /proc/self/fd/N with O_NONBLOCK, a private
//     description of the same pipe or terminal, so only our writes are
//     non-blocking; where that open is refused (a pipe created by root before
//     cron dropped privileges is mode 0600 root), each write waits for poll to
//     report POLLOUT (a free pipe slot) and is at most PIPE_BUF bytes, which a
//     pipe with a free slot takes without blocking.
// What the target cannot take at once waits in a bounded queue the poll loop
// flushes on POLLOUT; what does not fit is dropped and counted. The job is never
// slowed by cronrun's reader: its pipes are always drained, so the log stays
// complete even when the copy to stdout is not.
#include "runner/output.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "common/safe_file.h"
#include "runner/lock.h"
#include "runner/log.h"

namespace cronrun {
namespace {

using Clock = std::chrono::steady_clock;

// Reads per wakeup: a job that writes as fast as we read must not keep the loop
// from its timer and signals.
constexpr int kReadsPerPump = 16;

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1000));
}

}  // namespace

Result<OutputCapture> OutputCapture::create(OutputMode mode, std::optional<std::string> log_path,
                                            uint64_t log_max_bytes, size_t tail_max) {
  OutputCapture c;
  c.mode_ = mode;
  c.log_max_ = log_max_bytes;
  c.tail_max_ = tail_max;
  c.out_.name = "stdout";
  c.err_.name = "stderr";
  if (mode == OutputMode::passthrough && !log_path && tail_max == 0) return c;  // inherit, nothing to do
  if (mode == OutputMode::discard && !log_path && tail_max == 0) {
    auto null = open_fd("/dev/null", O_WRONLY);
    if (!null) return std::unexpected(null.error());
    int dup = ::fcntl(null->get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return fail_sys("fcntl", "/dev/null");
    c.child_out_ = std::move(*null);
    c.child_err_.reset(dup);
    return c;
  }
  if (log_path) {
    // DIR/NAME/RUN-ID.log: DIR must exist and pass the directory check; NAME is
    // ours (made 0750, or an existing one of ours that is not a symlink, not
    // writable by others and not setgid to a foreign group); the log is new (O_EXCL).
    auto [job_dir, file] = split_path(*log_path);
    auto [log_dir, job] = split_path(job_dir);
    auto dir = CheckedDir::open(log_dir);
    if (!dir) return std::unexpected(std::move(dir.error()).context("--log-dir"));
    auto sub = dir->make_subdir(job, 0750);
    if (!sub) return std::unexpected(std::move(sub.error()).context("--log-dir"));
    auto fd = sub->create_file(file, O_WRONLY, 0640);
    if (!fd) return std::unexpected(std::move(fd.error()).context("--log-dir"));
    c.log_ = std::move(*fd);
    c.log_path_ = log_path;
  }
  auto setup = [&](Stream& s, UniqueFd& child_end, int own_fd, const char* name) -> Result<void> {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail_sys("pipe2", name);
    s.read.reset(fds[0]);
    child_end.reset(fds[1]);
    if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) return fail_sys("fcntl O_NONBLOCK", name);
    s.open = true;
    if (mode == OutputMode::passthrough) s.copies = true;
    if (mode == OutputMode::passthrough || mode == OutputMode::on_failure) c.open_target(s, own_fd);
    if (mode == OutputMode::on_failure) {
      int m = ::memfd_create(name, MFD_CLOEXEC);
      if (m < 0) return fail_sys("memfd_create", name);
      s.buffer.reset(m);
    }
    return {};
  };
  if (auto r = setup(c.out_, c.child_out_, 1, "cronrun-stdout"); !r) return std::unexpected(r.error());
  if (auto r = setup(c.err_, c.child_err_, 2, "cronrun-stderr"); !r) return std::unexpected(r.error());
  return c;
}

void OutputCapture::open_target(Stream& s, int fd) {
  s.target = fd;
  NonblockingTarget t = open_nonblocking(fd);
  s.how = t.how;
  s.write_fd = t.write_fd;
  s.own_target = std::move(t.own);
  if (s.how == How::dead) {
    // cronrun was started with this fd closed: there is nowhere to copy to.
    log::warn(fmt::format("--output: cronrun's {} (fd {}) is not open ({}); the job's {} there is dropped", s.name,
                          fd, std::strerror(t.open_errno), s.name));
  } else if (s.how == How::gated) {
    // Still non-blocking, only less efficient: said at -v, not on every cron run.
    log::info(fmt::format("--output: reopening {} non-blocking: {}; writes to {} wait for POLLOUT instead", t.proc,
                          std::strerror(t.open_errno), s.name));
  }
}

// Bytes the target took now (0: it would block). A target that fails for good
// is marked dead; the caller then counts everything as dropped.
size_t OutputCapture::try_write(Stream& s, const char* data, size_t len) {
  if (len == 0) return 0;
  ssize_t n = write_nonblocking(s.how, s.write_fd, data, len);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  log::warn(fmt::format("--output: writing the job's {} to cronrun's {}: {}; the rest is dropped (counted in "
                        "output.dropped_bytes)",
                        s.name, s.name, std::strerror(errno)));
  s.how = How::dead;
  return 0;
}

void OutputCapture::drop_queue(Stream& s) {
  dropped_ += queued(s);
  s.queue.clear();
  s.queue_off = 0;
}

void OutputCapture::deliver(Stream& s, const char* data, size_t len) {
  size_t done = queued(s) == 0 ? try_write(s, data, len) : 0;
  if (s.how == How::dead) {
    dropped_ += len - done;
    drop_queue(s);
    return;
  }
  size_t rest = len - done;
  if (rest == 0) return;
  if (s.queue_off > 0) {
    s.queue.erase(0, s.queue_off);
    s.queue_off = 0;
  }
  size_t take = std::min(rest, kQueueMax - std::min(kQueueMax, s.queue.size()));
  s.queue.append(data + done, take);
  dropped_ += rest - take;
}

void OutputCapture::flush(Stream& s) {
  while (queued(s) > 0) {
    size_t n = try_write(s, s.queue.data() + s.queue_off, queued(s));
    if (s.how == How::dead) return drop_queue(s);
    if (n == 0) return;
    s.queue_off += n;
  }
  s.queue.clear();
  s.queue_off = 0;
}

// Writes `data` to the target, waiting in poll only while the reader keeps taking
// bytes; what is left when it stalls for `stall` is dropped and counted.
void OutputCapture::write_bounded(Stream& s, const char* data, size_t len, std::chrono::milliseconds stall) {
  auto deadline = Clock::now() + stall;
  while (len > 0 && s.how != How::dead) {
    size_t n = try_write(s, data, len);
    if (n > 0) {
      data += n;
      len -= n;
      deadline = Clock::now() + stall;
      continue;
    }
    if (s.how == How::dead || Clock::now() >= deadline) break;
    pollfd p{s.write_fd, POLLOUT, 0};
    if (::poll(&p, 1, std::max(ms_until(deadline), 1)) < 0 && errno != EINTR) break;
  }
  dropped_ += len;
}

void OutputCapture::buffer_put(Stream& s, const char* data, size_t len) {
  if (s.buffer_failed) {
    s.buffered += len;
    return;
  }
  if (len > kOnFailureTail) {  // only this chunk's tail can survive in the ring
    s.buffered += len - kOnFailureTail;
    data += len - kOnFailureTail;
    len = kOnFailureTail;
  }
  while (len > 0) {
    uint64_t at = s.buffered % kOnFailureTail;
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, kOnFailureTail - at));
    ssize_t w = ::pwrite(s.buffer.get(), data, n, static_cast<off_t>(at));
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      log::warn(fmt::format("--output on-failure: buffering the job's {}: {}; it cannot be replayed", s.name,
                            w < 0 ? std::strerror(errno) : "short write"));
      s.buffer_failed = true;
      s.buffered += len;
      return;
    }
    s.buffered += static_cast<uint64_t>(w);
    data += w;
    len -= static_cast<size_t>(w);
  }
}

void OutputCapture::replay(Stream& s, std::chrono::milliseconds stall) {
  if (s.buffer_failed) {
    std::string line = fmt::format("[cronrun: the job's {} ({} bytes) could not be buffered]\n", s.name, s.buffered);
    write_bounded(s, line.data(), line.size(), stall);
    dropped_ += s.buffered;
    return;
  }
  uint64_t kept = std::min(s.buffered, kOnFailureTail);
  uint64_t cut = s.buffered - kept;
  if (cut > 0) {
    std::string line = fmt::format("[cronrun: {} bytes of the job's {} dropped before this; the last {} follow]\n",
                                   cut, s.name, kept);
    write_bounded(s, line.data(), line.size(), stall);
    dropped_ += cut;
  }
  uint64_t start = cut > 0 ? s.buffered % kOnFailureTail : 0;
  char buf[16384];
  for (uint64_t done = 0; done < kept;) {
    uint64_t at = (start + done) % kOnFailureTail;
    size_t want = static_cast<size_t>(std::min<uint64_t>({sizeof buf, kept - done, kOnFailureTail - at}));
    ssize_t n = ::pread(s.buffer.get(), buf, want, static_cast<off_t>(at));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      log::warn(fmt::format("--output on-failure: reading back the job's {}: {}", s.name,
                            n < 0 ? std::strerror(errno) : "unexpected end"));
      dropped_ += kept - done;
      return;
    }
    uint64_t before = dropped_;
    write_bounded(s, buf, static_cast<size_t>(n), stall);
    done += static_cast<uint64_t>(n);
    if (dropped_ != before) {  // the reader stalled: the rest cannot go either
      dropped_ += kept - done;
      return;
    }
  }
}

void OutputCapture::close_child_ends() {
  child_out_.reset();
  child_err_.reset();
}

void OutputCapture::add_poll(std::vector<pollfd>& fds) const {
  for (const Stream* s : {&out_, &err_}) {
    if (s->open) fds.push_back({s->read.get(), POLLIN, 0});
    if (queued(*s) > 0 && s->how != How::dead) fds.push_back({s->write_fd, POLLOUT, 0});
  }
}

void OutputCapture::on_poll(std::span<const pollfd> fds) {
  for (const pollfd& p : fds) {
    if (p.revents == 0) continue;
    for (Stream* s : {&out_, &err_}) {
      if ((p.events & POLLIN) && s->open && p.fd == s->read.get()) pump(*s);
      if ((p.events & POLLOUT) && p.fd == s->write_fd) flush(*s);
    }
  }
}

void OutputCapture::sink(Stream& s, const char* data, size_t len) {
  if (s.copies) deliver(s, data, len);
  if (tail_max_ > 0) {
    size_t keep = std::min(len, tail_max_);
    tail_.append(data + len - keep, keep);
    if (tail_.size() > 2 * tail_max_) tail_.erase(0, tail_.size() - tail_max_);
  }
  if (s.buffer) buffer_put(s, data, len);
  if (log_ && !log_truncated_) {
    size_t room = log_bytes_ < log_max_ ? static_cast<size_t>(log_max_ - log_bytes_) : 0;
    size_t n = std::min(room, len);
    if (n > 0 && !log_failed_) {
      if (auto w = write_all(log_.get(), std::string(data, n), *log_path_); w) {
        log_bytes_ += n;
      } else {
        log::warn(fmt::format("--log-dir: {}; the rest of the output is not logged (counted in log.dropped_bytes)",
                              w.error().message()));
        log_failed_ = true;
      }
    }
    if (log_failed_) log_dropped_ += n;
    if (n < len) {
      log_truncated_ = true;
      std::string marker = fmt::format("\n[cronrun: log truncated at --log-max {} bytes]\n", log_max_);
      if (!log_failed_)
        if (auto w = write_all(log_.get(), marker, *log_path_); !w) {
          log::warn(fmt::format("--log-dir: {}", w.error().message()));
          log_failed_ = true;
        }
    }
  }
}

// Drains what is readable (a bounded amount per call); false at EOF or error.
bool OutputCapture::pump(Stream& s) {
  char buf[65536];
  for (int i = 0; i < kReadsPerPump; ++i) {
    ssize_t n = ::read(s.read.get(), buf, sizeof buf);
    if (n > 0) {
      sink(s, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0) log::warn(fmt::format("reading the job's {}: {}", s.name, std::strerror(errno)));
    s.open = false;  // EOF or a real error: stop polling this stream
    return false;
  }
  return true;
}

void OutputCapture::finish(bool failed, std::chrono::milliseconds stall) {
  for (Stream* s : {&out_, &err_}) {
    // Whatever the job wrote last is still in the pipe (bounded: the job is gone,
    // or with --keep-orphans what is there now).
    for (int i = 0; i < 64 && s->open && pump(*s); ++i) {
      pollfd p{s->read.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
    }
    if (queued(*s) > 0) {
      std::string rest = s->queue.substr(s->queue_off);
      s->queue.clear();
      s->queue_off = 0;
      write_bounded(*s, rest.data(), rest.size(), stall);
    }
    if (failed && s->buffer) replay(*s, stall);
  }
}

LogRecord OutputCapture::log_record() const {
  LogRecord r;
  r.path = log_path_;
  r.bytes = log_bytes_;
  r.dropped_bytes = log_dropped_;
  return r;
}

std::string OutputCapture::tail() const {
  return tail_.size() > tail_max_ ? tail_.substr(tail_.size() - tail_max_) : tail_;
}

OutputRecord OutputCapture::output_record() const {
  OutputRecord r;
  r.dropped_bytes = dropped_;
  return r;
}

}  // namespace cronrun
