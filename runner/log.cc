// spdlog wiring: a stderr logger for errors/verbose output, and an event logger
// whose sink is stderr (interactive) or syslog (under cron). Both are the _st
// (single-threaded) variants; cronrun never starts a thread.
#include "runner/log.h"

#include <syslog.h>
#include <unistd.h>

#include <memory>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

namespace cronrun::log {
namespace {

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
  auto err_sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
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

}  // namespace cronrun::log
