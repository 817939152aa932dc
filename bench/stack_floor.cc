// stack_floor: bench/floor.c's kernel work of one cronrun run, plus only the
// user-space work the project's mandated stack makes unavoidable on the run
// path, built with the release cronrun's compiler flags, link options and
// libraries (bench/CMakeLists.txt: cronrun_runner_target, -Os, header-only fmt
// and spdlog, static libstdc++). It answers "how close to floor.c can a C++20
// runner on CLI11 + nlohmann/json + spdlog get", so that cronrun is compared
// with that (bench/stack_floor.sh) and not only with a C program.
//
// The stack work, and nothing more:
//   - CLI11 parses cronrun's command line (the words after --cronrun) with a
//     CLI::App set up as runner/cli.cc sets it up (TakeLast, the usage
//     formatter, help and version flags) and one option registered per option
//     the line gives, as cronrun does now; the settings come back through
//     callbacks into a vector, the COMMAND is what follows `--`;
//   - one spdlog logger on a stderr sink, pattern and level as runner/log.cc's
//     setup() on a non-interactive run (no journald, no /dev/log here: nothing
//     else is set up, and at -q nothing is logged);
//   - the two journal records (`started`, `finished`): a record of the keys
//     common/run_record.cc's to_json writes, built as an nlohmann::json DOM,
//     dumped as common/journal.cc does and framed (magic, type, length, CRC-32),
//     each appended with one write(2), in the place of floor.c's --jpre/--jpost
//     filler of the same count.
// The kernel work is floor.c's, ported line for line (same system calls in the
// same order); only the SQLite --history variant is left out (the runner
// journals now).
//
//   stack_floor [--journal FILE [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post]]
//               [--counters DIR] LOCKFILE (--leaf JOBDIR [--set F=V]... [--join F]...
//               [--open F]... [--get F]...)... --cronrun CRONRUN_ARGS... -- COMMAND [ARGS]
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int kMaxLeaves = 8;
constexpr int kMaxFiles = 24;
constexpr int kMaxRecords = 8;

struct LeafSpec {
  const char* dir = nullptr;
  const char* set_name[kMaxFiles] = {};
  const char* set_value[kMaxFiles] = {};
  int nset = 0;
  const char* join[kMaxFiles] = {};
  int njoin = 0;
  const char* open_only[kMaxFiles] = {};
  int nopen = 0;
  const char* get[kMaxFiles] = {};
  int nget = 0;
  int job_fd = -1, fd = -1, join_fd[kMaxFiles] = {}, open_fd[kMaxFiles] = {};
  bool v2 = false;
};

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(125);
}

void drain_fd(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

void read_file_at(int dir, const char* name) {
  int fd = ::openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(name);
  drain_fd(fd);
  ::close(fd);
}

// --- logging: runner/log.cc's stderr sink and setup(), nothing else.
class StderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    const char* p = buf.data();
    size_t len = buf.size();
    while (len > 0) {
      ssize_t n = ::write(2, p, len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      p += n;
      len -= static_cast<size_t>(n);
    }
  }
  void flush_() override {}
};

std::shared_ptr<spdlog::logger> setup_log(int verbosity) {
  auto logger = std::make_shared<spdlog::logger>("cronrun", std::make_shared<StderrSink>());
  logger->set_pattern("cronrun: %v");
  logger->set_level(verbosity >= 2   ? spdlog::level::debug
                    : verbosity >= 1 ? spdlog::level::info
                    : verbosity < 0  ? spdlog::level::err
                                     : spdlog::level::warn);
  return logger;
}

// --- the command line, through CLI11 as runner/cli.cc drives it.
class UsageFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override {
    return "Usage: cronrun [OPTIONS] -- COMMAND [ARG...]\n";
  }
};

struct Parsed {
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::string> command;
  int verbosity = 0;
  std::string lock_path;
  uint64_t memory_max = 0;
};

// An option word's long name: "--memory=1G" -> "--memory"; "-q" stays "-q".
std::string option_name(const std::string& word) { return word.substr(0, word.find('=')); }

Parsed parse_cronrun_line(int argc, char** argv) {
  Parsed out;
  std::vector<std::string> words;
  int k = 0;
  for (; k < argc && std::strcmp(argv[k], "--") != 0; ++k) words.emplace_back(argv[k]);
  if (k + 1 >= argc) {
    std::fprintf(stderr, "stack_floor: expected -- COMMAND after the cronrun options\n");
    std::exit(125);
  }
  for (++k; k < argc; ++k) out.command.emplace_back(argv[k]);

  CLI::App app("Run one cron job in its own cgroup with limits, a pid-file lock and a measured, recorded profile.",
               "cronrun");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.formatter(std::make_shared<UsageFormatter>());
  app.get_formatter()->column_width(34);
  app.set_help_flag("-h,--help", "Print this help and exit")->group("Other");
  app.set_version_flag("-V,--version", std::string("cronrun stack_floor"), "Print the version and exit")->group("Other");
  // One row per option on the line. The arity is read off the line (a word
  // that is not an option follows it: a value) where cronrun reads its table.
  std::vector<std::string> registered;
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i].size() < 2 || words[i][0] != '-') continue;
    std::string name = option_name(words[i]);
    if (std::find(registered.begin(), registered.end(), name) != registered.end()) continue;
    registered.push_back(name);
    bool has_value = words[i].find('=') != std::string::npos ||
                     (i + 1 < words.size() && (words[i + 1].empty() || words[i + 1][0] != '-'));
    std::string key = name;
    CLI::Option* o;
    if (has_value) {
      o = app.add_option_function<std::string>(
          name, [&out, key](const std::string& v) { out.settings.emplace_back(key, v); }, "an option of the line");
      o->type_name("VALUE");
    } else {
      o = app.add_flag_function(
          name, [&out, key](int64_t n) { out.settings.emplace_back(key, n < 0 ? "false" : "true"); },
          "a flag of the line");
    }
    o->group("Options");
  }
  std::vector<std::string> option_words = words;
  option_words.insert(option_words.begin(), "cronrun");
  std::vector<char*> option_argv;
  for (auto& a : option_words) option_argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(option_argv.size()), option_argv.data());
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cronrun: %s\n", e.what());
    std::exit(125);
  }
  for (const auto& [name, value] : out.settings) {
    if (name == "-q" || name == "--quiet") out.verbosity = -1;
    if (name == "-v" || name == "--verbose") ++out.verbosity;
    if (name == "--lock") out.lock_path = value;
    if (name == "--memory") {
      char* end = nullptr;
      uint64_t n = std::strtoull(value.c_str(), &end, 10);
      switch (end && *end ? *end : 'B') {
        case 'K': n <<= 10; break;
        case 'M': n <<= 20; break;
        case 'G': n <<= 30; break;
        default: break;
      }
      out.memory_max = n;
    }
  }
  return out;
}

// --- the run record and its journal frame.
struct Facts {
  std::string run_id, job, host, user, started_at, boot_id, cgroup_path, lock_path;
  std::vector<std::string> command;
  uint64_t memory_max = 0;
  int64_t runner_pid = 0;
  uint64_t runner_start = 0;
};

std::string rfc3339(const struct timespec& ts) {
  struct tm tm;
  ::gmtime_r(&ts.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

// The keys and nesting of common/run_record.cc's to_json plus the journal's
// runner fields; figures the run has are numbers, the rest null.
nlohmann::json record_json(const Facts& f, bool finished, const struct rusage* ru, int status, double wall) {
  using nlohmann::json;
  auto num_or_null = [finished](auto v) { return finished ? json(v) : json(nullptr); };
  json j = json::object();
  j["schema"] = 1;
  j["run_id"] = f.run_id;
  j["job"] = f.job;
  j["host"] = f.host;
  j["user"] = f.user;
  json command = json::array();
  for (const auto& a : f.command) command.push_back(a);
  j["command"] = std::move(command);
  j["started_at"] = f.started_at;
  j["finished_at"] = finished ? json(rfc3339([] { struct timespec t; ::clock_gettime(CLOCK_REALTIME, &t); return t; }()))
                              : json(nullptr);
  j["wall_s"] = num_or_null(wall);
  j["start_delay_s"] = 0.0001;
  j["status"] = finished ? "ok" : "running";
  j["exit_code"] = num_or_null(WIFEXITED(status) ? WEXITSTATUS(status) : 0);
  j["signal"] = nullptr;
  j["skip_reason"] = nullptr;
  j["isolation"] = {{"cgroup", "v2"}, {"path", f.cgroup_path}, {"accounting", "full"}, {"note", nullptr}};
  j["limits"] = {{"memory_max_bytes", f.memory_max}, {"memory_high_bytes", nullptr}, {"swap_max_bytes", nullptr},
                 {"cpu_quota_pct", nullptr},         {"cpu_weight", nullptr},        {"pids_max", nullptr},
                 {"timeout_s", nullptr}};
  double user_s = ru ? static_cast<double>(ru->ru_utime.tv_sec) + static_cast<double>(ru->ru_utime.tv_usec) / 1e6 : 0;
  double sys_s = ru ? static_cast<double>(ru->ru_stime.tv_sec) + static_cast<double>(ru->ru_stime.tv_usec) / 1e6 : 0;
  j["usage"] = {{"cpu_user_s", num_or_null(user_s)},
                {"cpu_system_s", num_or_null(sys_s)},
                {"memory_peak_bytes", num_or_null(262144)},
                {"max_rss_bytes", num_or_null(ru ? ru->ru_maxrss * 1024 : 0)},
                {"io_read_bytes", num_or_null(0)},
                {"io_write_bytes", num_or_null(0)},
                {"io_source", finished ? json("cgroup") : json(nullptr)},
                {"pids_peak", num_or_null(1)},
                {"oom_kills", num_or_null(0)},
                {"memory_max_events", num_or_null(0)},
                {"memory_high_events", num_or_null(0)},
                {"cpu_throttled_s", nullptr},
                {"cpu_nr_throttled", nullptr},
                {"pressure_some_s", {{"cpu", num_or_null(0.0)}, {"memory", num_or_null(0.0)}, {"io", num_or_null(0.0)}}}};
  j["usage"]["orphans_killed"] = num_or_null(0);
  j["usage"]["not_measured"] = json::array();
  j["counters"] = json::object();
  j["lock"] = {{"path", f.lock_path}, {"waited_s", 0.0}, {"holder_pid", nullptr}};
  j["log"] = {{"path", nullptr}, {"bytes", 0}, {"dropped_bytes", 0}};
  j["output"] = {{"dropped_bytes", 0}};
  j["seccomp"] = nullptr;
  j["pings"] = nullptr;
  j["fleet"] = nullptr;
  j["runner_pid"] = f.runner_pid;
  j["runner_start"] = f.runner_start;
  j["boot_id"] = f.boot_id;
  return j;
}

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t crc32(std::string_view data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (unsigned char c : data) crc = table[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_le32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// common/journal.cc's frame: "\xffCRJ", type, 3 spare, le32 length, le32 CRC of
// type..length and payload, then the payload; one write(2) on O_APPEND.
void append_record(int fd, const char* path, char type, const nlohmann::json& j) {
  std::string payload = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out(16, '\0');
  std::memcpy(out.data(), "\xff" "CRJ", 4);
  out[4] = type;
  put_le32(out.data() + 8, static_cast<uint32_t>(payload.size()));
  put_le32(out.data() + 12, crc32(payload, crc32(std::string_view(out.data() + 4, 8), 0)));
  out += payload;
  ssize_t n;
  do n = ::write(fd, out.data(), out.size());
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(out.size())) die(path);
}

int usage() {
  std::fprintf(stderr,
               "usage: stack_floor [--journal FILE [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post]]\n"
               "                   [--counters DIR] LOCKFILE (--leaf JOBDIR [--set F=V]... [--join F]... [--open F]...\n"
               "                   [--get F]...)... --cronrun CRONRUN_ARGS... -- COMMAND [ARGS]\n");
  return 125;
}

double now_s() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const char* journal = nullptr;
  const char* counters_dir = nullptr;
  const char* lock_path = nullptr;
  int njpre = 0, njpost = 0;
  bool jsync_pre = false, jsync_post = false;
  static LeafSpec leaves[kMaxLeaves];
  int nleaves = 0;
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--cronrun") != 0; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    LeafSpec* cur = nleaves ? &leaves[nleaves - 1] : nullptr;
    auto takes = [&] {
      if (!v) return false;
      ++i;
      return true;
    };
    if (std::strcmp(a, "--journal") == 0) {
      if (!takes()) return usage();
      journal = v;
    } else if (std::strcmp(a, "--jpre") == 0) {
      if (!takes()) return usage();
      if (njpre < kMaxRecords) ++njpre;
    } else if (std::strcmp(a, "--jpost") == 0) {
      if (!takes()) return usage();
      if (njpost < kMaxRecords) ++njpost;
    } else if (std::strcmp(a, "--jsync-pre") == 0) {
      jsync_pre = true;
    } else if (std::strcmp(a, "--jsync-post") == 0) {
      jsync_post = true;
    } else if (std::strcmp(a, "--counters") == 0) {
      if (!takes()) return usage();
      counters_dir = v;
    } else if (std::strcmp(a, "--leaf") == 0) {
      if (!takes() || nleaves == kMaxLeaves) return usage();
      leaves[nleaves++].dir = v;
    } else if (cur && std::strcmp(a, "--set") == 0 && cur->nset < kMaxFiles) {
      if (!takes()) return usage();
      char* eq = std::strchr(argv[i], '=');
      if (!eq) return usage();
      *eq = '\0';
      cur->set_name[cur->nset] = argv[i];
      cur->set_value[cur->nset++] = eq + 1;
    } else if (cur && std::strcmp(a, "--join") == 0 && cur->njoin < kMaxFiles) {
      if (!takes()) return usage();
      cur->join[cur->njoin++] = v;
    } else if (cur && std::strcmp(a, "--open") == 0 && cur->nopen < kMaxFiles) {
      if (!takes()) return usage();
      cur->open_only[cur->nopen++] = v;
    } else if (cur && std::strcmp(a, "--get") == 0 && cur->nget < kMaxFiles) {
      if (!takes()) return usage();
      cur->get[cur->nget++] = v;
    } else if (!lock_path && a[0] != '-') {
      lock_path = a;
    } else {
      return usage();
    }
  }
  if (i >= argc || !lock_path) return usage();
  // The stack's share of a run starts where cronrun's does: parse, then log setup.
  Parsed line = parse_cronrun_line(argc - i - 1, argv + i + 1);
  auto logger = setup_log(line.verbosity);
  std::vector<char*> command;
  for (auto& a : line.command) command.push_back(a.data());
  command.push_back(nullptr);

  // The record's facts.
  Facts facts;
  struct passwd* pw = ::getpwuid(::geteuid());
  if (!pw) die("getpwuid");
  facts.user = pw->pw_name;
  time_t t = ::time(nullptr);
  struct tm tm;
  ::localtime_r(&t, &tm);
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("/proc/self/stat");
  drain_fd(fd);
  ::close(fd);
  fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("boot_id");
  drain_fd(fd);
  ::close(fd);
  facts.boot_id = "00000000-0000-0000-0000-000000000000";
  facts.runner_pid = ::getpid();
  facts.runner_start = 1;
  facts.host = "host";
  facts.job = line.command[0].substr(line.command[0].rfind('/') + 1);
  facts.command = line.command;
  facts.lock_path = line.lock_path.empty() ? lock_path : line.lock_path;
  facts.memory_max = line.memory_max;

  double started = now_s();
  struct timespec start_ts;
  ::clock_gettime(CLOCK_REALTIME, &start_ts);
  facts.started_at = rfc3339(start_ts);
  facts.run_id = fmt::format("{:x}{:08x}", static_cast<uint64_t>(start_ts.tv_sec) * 1000000000ull +
                                               static_cast<uint64_t>(start_ts.tv_nsec),
                             static_cast<uint32_t>(::getpid()));

  int lock = ::open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (lock < 0) die(lock_path);
  char text[32];
  if (::pread(lock, text, sizeof text, 0) < 0) die(lock_path);
  if (::flock(lock, LOCK_EX | LOCK_NB) != 0) return 75;
  int len = std::snprintf(text, sizeof text, "%d\n", ::getpid());
  if (::pwrite(lock, text, static_cast<size_t>(len), 0) != len || ::ftruncate(lock, len) != 0) die(lock_path);

  fd = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("mountinfo");
  drain_fd(fd);
  ::close(fd);
  fd = ::open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("/proc/self/cgroup");
  drain_fd(fd);
  ::close(fd);

  char run[32];
  // Not floor.c's "floor-PID": a floor that valgrind stops at clone3 leaves its
  // counters file behind, and a later stack_floor with that pid would trip on it.
  std::snprintf(run, sizeof run, "stack-floor-%d", ::getpid());
  int unified = -1;
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    s->job_fd = ::open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->job_fd < 0) die(s->dir);
    if (::mkdirat(s->job_fd, run, 0755) != 0) die("mkdir");
    s->fd = ::openat(s->job_fd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->fd < 0) die("open leaf");
    struct statfs fs;
    if (::fstatfs(s->fd, &fs) != 0) die("statfs");
    s->v2 = fs.f_type == CGROUP2_SUPER_MAGIC;
    if (s->v2 && unified < 0) unified = l;
  }
  if (nleaves) facts.cgroup_path = fmt::format("{}/{}", leaves[unified < 0 ? 0 : unified].dir, run);
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    for (int f = 0; f < s->nset; ++f) {
      int w = ::openat(s->fd, s->set_name[f], O_WRONLY | O_CLOEXEC);
      size_t n = std::strlen(s->set_value[f]);
      if (w < 0 || ::write(w, s->set_value[f], n) != static_cast<ssize_t>(n)) die(s->set_name[f]);
      ::close(w);
    }
  }
  int counters = -1;
  char counters_name[48];
  if (counters_dir) {
    counters = ::open(counters_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (counters < 0) die(counters_dir);
    std::snprintf(counters_name, sizeof counters_name, "%s.counters", run);
    int c = ::openat(counters, counters_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (c < 0) die(counters_name);
    ::close(c);
  }
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD}) sigaddset(&mask, s);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f)
      if ((s->open_fd[f] = ::openat(s->fd, s->open_only[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->open_only[f]);
    for (int f = 0; f < s->njoin; ++f)
      if ((s->join_fd[f] = ::openat(s->fd, s->join[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->join[f]);
  }

  int jfd = -1;
  if (journal) {
    jfd = ::open(journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (jfd < 0) die(journal);
    for (int r = 0; r < njpre; ++r) append_record(jfd, journal, 1, record_json(facts, false, nullptr, 0, 0));
    if (jsync_pre && ::fdatasync(jfd) != 0) die(journal);
  }

  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) die("pipe2");
  int pidfd = -1;
  struct clone_args ca;
  std::memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_PIDFD | (unified >= 0 ? CLONE_INTO_CGROUP : 0);
  ca.pidfd = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&pidfd));
  ca.exit_signal = SIGCHLD;
  ca.cgroup = unified >= 0 ? static_cast<uint64_t>(leaves[unified].fd) : 0;
  long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
  // Only under valgrind (3.19 has no clone3): fork, so that callgrind counts the
  // whole run, both records included, as it does for cronrun (which falls back
  // the same way). The pidfd then stays -1 and poll() wakes on SIGCHLD.
  if (pid < 0 && errno == ENOSYS) pid = ::fork();
  if (pid < 0) die("clone3");
  if (pid == 0) {
    ::close(status_pipe[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int l = 0; l < nleaves; ++l)
      for (int f = 0; f < leaves[l].njoin; ++f)
        if (::write(leaves[l].join_fd[f], "0", 1) != 1) ::_exit(125);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setsid();
    ::execv(command[0], command.data());
    int err = errno;
    if (::write(status_pipe[1], &err, sizeof err) < 0) ::_exit(127);
    ::_exit(127);
  }
  ::close(status_pipe[1]);
  int err;
  if (::read(status_pipe[0], &err, sizeof err) != 0) {
    logger->error("exec {} failed", command[0]);
    return 127;
  }
  ::close(status_pipe[0]);
  int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  struct pollfd p[3] = {{sfd, POLLIN, 0}, {timer, POLLIN, 0}, {pidfd, POLLIN, 0}};
  while (::poll(p, 3, -1) < 0) {
  }
  int status = 0;
  struct rusage ru;
  if (::wait4(static_cast<pid_t>(pid), &status, __WALL, &ru) < 0) die("wait4");
  ::getrusage(RUSAGE_CHILDREN, &ru);
  ::close(timer);

  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    for (int f = 0; f < s->nget; ++f) read_file_at(s->fd, s->get[f]);
  }
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f) ::close(s->open_fd[f]);
    for (int f = 0; f < s->njoin; ++f) ::close(s->join_fd[f]);
    ::close(s->fd);
    if (::unlinkat(s->job_fd, run, AT_REMOVEDIR) != 0) die("rmdir");
    ::close(s->job_fd);
  }
  if (counters >= 0) {
    read_file_at(counters, counters_name);
    if (::unlinkat(counters, counters_name, 0) != 0) die("unlink counters");
    ::close(counters);
  }
  if (jfd >= 0) {
    double wall = now_s() - started;
    for (int r = 0; r < njpost; ++r) append_record(jfd, journal, 2, record_json(facts, true, &ru, status, wall));
    if (jsync_post && ::fdatasync(jfd) != 0) die(journal);
    ::close(jfd);
  }
  ::close(sfd);
  ::close(pidfd);
  ::close(lock);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
