// spdlog wiring: a stderr logger for errors/verbose output, and an event logger
// whose sink is stderr (interactive) or syslog (under cron). Both are the _st
// (single-threaded) variants; cronrun never starts a thread.
//
// The stderr sink is ours, not spdlog's stderr_sink (a blocking fwrite): once
// switched to non-blocking it writes through a private non-blocking description
// of fd 2 (runner/nonblocking_fd.h) and drops what would wait.
#include "runner/log.h"

#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include "runner/nonblocking_fd.h"

namespace cronrun::log {
namespace {

uint64_t g_dropped = 0;
bool g_nonblocking = false;

class StderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (!g_nonblocking) {
      write_all(buf.data(), buf.size());
      return;
    }
    if (!target_) target_ = open_nonblocking(2);
    // One message is one write (a line under PIPE_BUF reaches a pipe whole);
    // the rest of a partly taken one is dropped, not waited for.
    ssize_t n = write_nonblocking(target_->how, target_->write_fd, buf.data(), buf.size());
    if (n < 0 || static_cast<size_t>(n) < buf.size()) ++g_dropped;
  }
  void flush_() override {}

 private:
  // Before the job: wait for the reader, as stdio would.
  static void write_all(const char* p, size_t len) {
    while (len > 0) {
      ssize_t n = ::write(2, p, len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // stderr closed or failing: there is nowhere to say so
      p += n;
      len -= static_cast<size_t>(n);
    }
  }
  std::optional<NonblockingTarget> target_;
};

std::shared_ptr<spdlog::logger> g_console;
std::shared_ptr<spdlog::logger> g_events;
std::shared_ptr<spdlog::logger> g_syslog;  // errors also go here when not interactive
int g_verbosity = 0;

spdlog::logger& console() {
  if (!g_console) setup(0);
  return *g_console;
}

}  // namespace

void setup(int verbosity) {
  g_verbosity = verbosity;
  auto err_sink = std::make_shared<StderrSink>();
  g_console = std::make_shared<spdlog::logger>("cronrun", err_sink);
  g_console->set_pattern("cronrun: %v");
  g_console->set_level(verbosity >= 2 ? spdlog::level::debug
                       : verbosity >= 1 ? spdlog::level::info
                       : verbosity < 0 ? spdlog::level::err
                                       : spdlog::level::warn);
  if (isatty(2)) {
    g_events = g_console;
  } else {
    auto sys = std::make_shared<spdlog::sinks::syslog_sink_st>("cronrun", LOG_PID, LOG_CRON, false);
    g_syslog = std::make_shared<spdlog::logger>("cronrun-syslog", sys);
    g_syslog->set_pattern("%v");
    g_events = g_syslog;
  }
}

void event(const std::string& msg) {
  if (!g_events) setup(0);
  if (g_events == g_console) {
    if (g_verbosity >= 0) g_console->log(spdlog::level::err, msg);  // always shown unless -q
  } else {
    g_events->info(msg);
    if (g_verbosity >= 1) g_console->info(msg);
  }
}

void info(const std::string& msg) { console().info(msg); }
void debug(const std::string& msg) { console().debug(msg); }

void warn(const std::string& msg) {
  console().warn("warning: " + msg);
  if (g_syslog) g_syslog->warn("warning: " + msg);
}

void error(const std::string& msg) {
  console().error(msg);
  if (g_syslog) g_syslog->error(msg);
}

void set_nonblocking(bool on) { g_nonblocking = on; }
uint64_t dropped_messages() { return g_dropped; }

}  // namespace cronrun::log
