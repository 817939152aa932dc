// Output capture. Pipes are non-blocking on the read side so a chatty job cannot
// stall the supervisor's poll loop; the log is capped (with a final marker line)
// so a runaway job cannot fill the disk.
#include "runner/output.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>

#include "common/safe_file.h"

namespace cronrun {

Result<OutputCapture> OutputCapture::create(OutputMode mode, std::optional<std::string> log_path,
                                            uint64_t log_max_bytes) {
  OutputCapture c;
  c.mode_ = mode;
  c.log_max_ = log_max_bytes;
  if (mode == OutputMode::passthrough && !log_path) return c;  // inherit, nothing to do
  if (mode == OutputMode::discard && !log_path) {
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
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    s.open = true;
    if (mode == OutputMode::passthrough) s.passthrough_fd = own_fd;
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

void OutputCapture::close_child_ends() {
  child_out_.reset();
  child_err_.reset();
}

std::vector<int> OutputCapture::poll_fds() const {
  std::vector<int> fds;
  if (out_.open) fds.push_back(out_.read.get());
  if (err_.open) fds.push_back(err_.read.get());
  return fds;
}

void OutputCapture::sink(Stream& s, const char* data, size_t len) {
  // Failures to copy output are not worth failing the run over; the job's exit
  // status and the log record (bytes kept) tell the story.
  if (s.passthrough_fd >= 0) (void)write_all(s.passthrough_fd, std::string(data, len), "stdout");
  if (s.buffer) (void)write_all(s.buffer.get(), std::string(data, len), "output buffer");
  if (log_ && !log_truncated_) {
    size_t room = log_bytes_ < log_max_ ? static_cast<size_t>(log_max_ - log_bytes_) : 0;
    size_t n = std::min(room, len);
    if (n > 0 && write_all(log_.get(), std::string(data, n), *log_path_)) log_bytes_ += n;
    if (n < len) {
      log_truncated_ = true;
      std::string marker = fmt::format("\n[cronrun: log truncated at --log-max {} bytes]\n", log_max_);
      (void)write_all(log_.get(), marker, *log_path_);
    }
  }
}

bool OutputCapture::pump(int fd) {
  Stream& s = fd == out_.read.get() ? out_ : err_;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      sink(s, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    s.open = false;  // EOF or a real error: stop polling this stream
    return false;
  }
}

void OutputCapture::finish(bool failed) {
  for (Stream* s : {&out_, &err_}) {
    if (s->open) pump(s->read.get());
    if (!failed || !s->buffer) continue;
    int target = s == &out_ ? 1 : 2;
    ::lseek(s->buffer.get(), 0, SEEK_SET);
    char buf[16384];
    ssize_t n;
    while ((n = ::read(s->buffer.get(), buf, sizeof buf)) > 0)
      (void)write_all(target, std::string(buf, static_cast<size_t>(n)), "output");
  }
}

LogRecord OutputCapture::log_record() const {
  LogRecord r;
  r.path = log_path_;
  r.bytes = log_bytes_;
  return r;
}

}  // namespace cronrun
