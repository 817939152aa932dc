// spdlog wiring: a stderr logger for errors/verbose output, and where events go
// when stderr is not a terminal: the journal (sd_journal_sendv, one datagram per
// message on a socket opened O_CLOEXEC, so it never reaches the job) or, without
// journald, a syslog logger. All loggers are the _st (single-threaded) variants;
// cronrun never starts a thread.
//
// The journal gets each event's figures as fields (journalctl CRONRUN_JOB=x,
// CRONRUN_STATUS=oom) and a fixed MESSAGE_ID per event kind; syslog gets the same
// text and priority, which is all it can carry.
//
// The stderr sink is ours, not spdlog's stderr_sink (a blocking fwrite): once
// switched to non-blocking it writes through a private non-blocking description
// of fd 2 (runner/nonblocking_fd.h) and drops what would wait.
#include "runner/libsystemd.h"
#include "runner/log.h"

#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>


#include <cerrno>
#include <cstring>
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
std::shared_ptr<spdlog::logger> g_syslog;  // events, warnings, errors: not interactive, no journald
bool g_journal = false;                    // ... the same to the journal: not interactive, journald listens
bool g_interactive = false;
int g_verbosity = 0;
std::string g_run_job;
std::string g_run_id;

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";
constexpr const char* kSyslogSocket = "/dev/log";  // _PATH_LOG, where syslog(3) sends
// MESSAGE_ID of START and FINISH (journalctl MESSAGE_ID=...); fixed for good.
constexpr const char* kStartMessageId = "a7c4c3166936428d80c376efe4da6100";
constexpr const char* kFinishMessageId = "d84252ef428647e6868944f57373ede2";
constexpr int kFacilityCron = LOG_CRON >> 3;

// Sends "NAME=value" fields as one journal entry; a failure is said on stderr
// once per process (the message itself is not lost when stderr takes it).
void journal_send(const std::vector<std::string>& fields) {
  std::vector<struct iovec> iov;
  iov.reserve(fields.size());
  for (const auto& f : fields) iov.push_back({const_cast<char*>(f.data()), f.size()});
  static bool said = false;
  auto api = sd::api();
  if (!api) {
    if (!said && g_console) g_console->warn("warning: writing to the journal: {}", api.error().message());
    said = true;
    return;
  }
  int r = (*api)->journal_sendv(iov.data(), static_cast<int>(iov.size()));
  if (r < 0 && !said) {
    said = true;
    if (g_console) g_console->warn("warning: writing to the journal ({}): {}", kJournalSocket, std::strerror(-r));
  }
}

void journal_message(int priority, const std::string& msg) {
  std::vector<std::string> f{"MESSAGE=" + msg, fmt::format("PRIORITY={}", priority), "SYSLOG_IDENTIFIER=cronrun",
                             fmt::format("SYSLOG_FACILITY={}", kFacilityCron)};
  if (!g_run_job.empty()) {
    f.push_back("CRONRUN_JOB=" + g_run_job);
    f.push_back("CRONRUN_RUN_ID=" + g_run_id);
  }
  journal_send(f);
}

spdlog::level::level_enum level_of(int priority) {
  return priority <= LOG_ERR ? spdlog::level::err : priority == LOG_WARNING ? spdlog::level::warn : spdlog::level::info;
}

bool plain_word(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (c <= ' ' || c == 0x7f || c == '"' || c == '\\' || c == '=' || c == '\'') return false;
  return true;
}

std::string figure(double v) { return fmt::format("{:.3f}", v); }

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
  g_interactive = isatty(2);
  g_journal = false;
  g_syslog.reset();
  if (g_interactive) return;
  if (::access(kJournalSocket, F_OK) == 0) {
    g_journal = true;
  } else if (::access(kSyslogSocket, F_OK) != 0) {
    // No syslog daemon either: glibc's syslog(3) would try to connect for every
    // message, fail, and drop it. Events go nowhere but to stderr at -v.
    g_console->info(fmt::format("neither {} nor {}: events are not logged", kJournalSocket, kSyslogSocket));
  } else {
    auto sys = std::make_shared<spdlog::sinks::syslog_sink_st>("cronrun", LOG_PID, LOG_CRON, false);
    g_syslog = std::make_shared<spdlog::logger>("cronrun-syslog", sys);
    g_syslog->set_pattern("%v");
  }
}

void event(const std::string& msg) {
  if (!g_console) setup(0);
  if (g_interactive) {
    if (g_verbosity >= 0) g_console->log(spdlog::level::err, msg);  // always shown unless -q
    return;
  }
  if (g_journal) journal_message(LOG_INFO, msg);
  if (g_syslog) g_syslog->info(msg);
  if (g_verbosity >= 1) g_console->info(msg);
}

void run_event(Event kind, const RunRecord& r) {
  if (!g_console) setup(0);
  std::string text = event_text(kind, r);
  if (g_interactive) {
    if (g_verbosity >= 0) g_console->log(spdlog::level::err, text);  // always shown unless -q
    return;
  }
  if (g_journal) journal_send(event_fields(kind, r));
  if (g_syslog) g_syslog->log(level_of(event_priority(kind, r)), text);
  if (g_verbosity >= 1) g_console->info(text);
}

void set_run(const std::string& job, const std::string& run_id) {
  g_run_job = job;
  g_run_id = run_id;
}

int event_priority(Event kind, const RunRecord& r) {
  if (kind == Event::start) return LOG_INFO;
  switch (r.status) {
    case RunStatus::running:
    case RunStatus::ok:
    case RunStatus::skipped:
      return LOG_INFO;
    case RunStatus::failed:
    case RunStatus::killed:
    case RunStatus::timeout:
    case RunStatus::oom:
    case RunStatus::lost:
      return LOG_WARNING;
    case RunStatus::error:
      return LOG_ERR;
  }
  return LOG_WARNING;
}

std::string kv_value(std::string_view v) {
  if (plain_word(v)) return std::string(v);
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += fmt::format("\\x{:02x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                                   "@%+=:,./_-") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

std::string event_text(Event kind, const RunRecord& r) {
  std::string out = fmt::format("{} job={} run_id={}", kind == Event::start ? "START" : "FINISH", kv_value(r.job),
                                kv_value(r.run_id));
  auto add = [&](const char* key, const std::string& value) { out += fmt::format(" {}={}", key, kv_value(value)); };
  // Fleet mode: which host ran (or skipped) which tick, under which fence.
  auto add_fleet = [&] {
    if (!r.fleet) return;
    add("host", r.fleet->host);
    add("tick", r.fleet->tick);
    if (r.fleet->fence) add("fence", std::to_string(*r.fleet->fence));
  };
  if (kind == Event::start) {
    add("pid", std::to_string(r.runner_pid));
    add("cgroup", r.isolation.path.value_or(r.isolation.cgroup));
    if (r.isolation.unit) add("unit", *r.isolation.unit);
    add_fleet();
  } else {
    const Usage& u = r.usage;
    add("status", to_string(r.status));
    if (r.exit_code) add("exit", std::to_string(*r.exit_code));
    if (r.signal) add("signal", std::to_string(*r.signal));
    if (r.wall_s) add("wall_s", figure(*r.wall_s));
    if (auto peak = u.memory_peak_bytes ? u.memory_peak_bytes : u.max_rss_bytes) add("peak_bytes", std::to_string(*peak));
    if (u.cpu_user_s || u.cpu_system_s) add("cpu_s", figure(u.cpu_user_s.value_or(0) + u.cpu_system_s.value_or(0)));
    // What cronrun did beyond the job's own exit is said only when it happened.
    if (u.orphans_killed.value_or(0) > 0) add("orphans_killed", std::to_string(*u.orphans_killed));
    if (r.forwarded_signal) {
      add("forwarded_signal", std::to_string(r.forwarded_signal->signal));
      if (r.forwarded_signal->sender_pid) add("signal_sender_pid", std::to_string(*r.forwarded_signal->sender_pid));
    }
    if (u.oom_kills.value_or(0) > 0) add("oom_kills", std::to_string(*u.oom_kills));
    if (u.pids_max_events.value_or(0) > 0) add("pids_max_events", std::to_string(*u.pids_max_events));
    if (r.output.dropped_bytes > 0) add("output_dropped", std::to_string(r.output.dropped_bytes));
    if (r.log.dropped_bytes > 0) add("log_dropped", std::to_string(r.log.dropped_bytes));
    if (r.seccomp) {
      // A failure the filter caused is named as such, not left to read as the job's own.
      const bool learn = r.seccomp->action == "continue";
      if (r.seccomp->violations_total > 0)
        add(learn ? "seccomp_seen" : "seccomp_denied", std::to_string(r.seccomp->violations_total));
      if (r.seccomp->failed_by) add("seccomp_failed_by", *r.seccomp->failed_by);
    }
    if (r.pings && r.pings->failed > 0) add("pings_failed", std::to_string(r.pings->failed));
    add_fleet();
    if (r.fleet && r.fleet->holder) {
      add("holder", r.fleet->holder->host);
      add("holder_revision", std::to_string(r.fleet->holder->revision));
    }
    if (r.skip_reason) add("reason", *r.skip_reason);
  }
  add("command", command_line(r.command));
  return out;
}

std::vector<std::string> event_fields(Event kind, const RunRecord& r) {
  const bool finish = kind == Event::finish;
  std::vector<std::string> f{
      "MESSAGE=" + event_text(kind, r),
      fmt::format("PRIORITY={}", event_priority(kind, r)),
      "SYSLOG_IDENTIFIER=cronrun",
      fmt::format("SYSLOG_FACILITY={}", kFacilityCron),
      std::string("MESSAGE_ID=") + (finish ? kFinishMessageId : kStartMessageId),
      std::string("CRONRUN_EVENT=") + (finish ? "finish" : "start"),
      "CRONRUN_JOB=" + r.job,
      "CRONRUN_RUN_ID=" + r.run_id,
      "CRONRUN_USER=" + r.user,
      "CRONRUN_COMMAND=" + command_line(r.command),
      std::string("CRONRUN_STATUS=") + to_string(r.status),
  };
  if (r.isolation.path) f.push_back("CRONRUN_CGROUP=" + *r.isolation.path);
  if (r.isolation.unit) f.push_back("CRONRUN_UNIT=" + *r.isolation.unit);
  if (r.fleet) {
    f.push_back("CRONRUN_FLEET_HOST=" + r.fleet->host);
    f.push_back("CRONRUN_TICK=" + r.fleet->tick);
    if (r.fleet->group) f.push_back("CRONRUN_GROUP=" + *r.fleet->group);
    if (r.fleet->fence) f.push_back(fmt::format("CRONRUN_FENCE={}", *r.fleet->fence));
  }
  if (!finish) {
    f.push_back(fmt::format("CRONRUN_PID={}", r.runner_pid));
    return f;
  }
  const Usage& u = r.usage;
  if (r.exit_code) f.push_back(fmt::format("CRONRUN_EXIT={}", *r.exit_code));
  if (r.signal) f.push_back(fmt::format("CRONRUN_SIGNAL={}", *r.signal));
  if (r.wall_s) f.push_back("CRONRUN_WALL_S=" + figure(*r.wall_s));
  if (u.memory_peak_bytes) f.push_back(fmt::format("CRONRUN_MEMORY_PEAK_BYTES={}", *u.memory_peak_bytes));
  if (u.max_rss_bytes) f.push_back(fmt::format("CRONRUN_MAX_RSS_BYTES={}", *u.max_rss_bytes));
  if (u.cpu_user_s || u.cpu_system_s)
    f.push_back("CRONRUN_CPU_S=" + figure(u.cpu_user_s.value_or(0) + u.cpu_system_s.value_or(0)));
  if (u.oom_kills) f.push_back(fmt::format("CRONRUN_OOM_KILLS={}", *u.oom_kills));
  if (u.pids_max_events) f.push_back(fmt::format("CRONRUN_PIDS_MAX_EVENTS={}", *u.pids_max_events));
  if (r.skip_reason) f.push_back("CRONRUN_SKIP_REASON=" + *r.skip_reason);
  if (r.isolation.note) f.push_back("CRONRUN_NOTE=" + *r.isolation.note);
  if (r.fleet && r.fleet->holder) {
    f.push_back("CRONRUN_HOLDER=" + r.fleet->holder->host);
    f.push_back(fmt::format("CRONRUN_HOLDER_REVISION={}", r.fleet->holder->revision));
  }
  if (r.fleet && r.fleet->note) f.push_back("CRONRUN_FLEET_NOTE=" + *r.fleet->note);
  if (r.seccomp) {
    f.push_back("CRONRUN_SECCOMP=" + r.seccomp->profile);
    f.push_back(fmt::format("CRONRUN_SECCOMP_VIOLATIONS={}", r.seccomp->violations_total));
    if (r.seccomp->failed_by) f.push_back("CRONRUN_SECCOMP_FAILED_BY=" + *r.seccomp->failed_by);
  }
  return f;
}

void info(const std::string& msg) { console().info(msg); }
void debug(const std::string& msg) { console().debug(msg); }

void warn(const std::string& msg) {
  console().warn("warning: " + msg);
  if (g_journal) journal_message(LOG_WARNING, "warning: " + msg);
  if (g_syslog) g_syslog->warn("warning: " + msg);
}

void error(const std::string& msg) {
  console().error(msg);
  if (g_journal) journal_message(LOG_ERR, msg);
  if (g_syslog) g_syslog->error(msg);
}

void set_nonblocking(bool on) { g_nonblocking = on; }
uint64_t dropped_messages() { return g_dropped; }

}  // namespace cronrun::log
