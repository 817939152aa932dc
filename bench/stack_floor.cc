// stack_floor: bench/floor.c's kernel work of one cronrun run, plus only the
// user-space work the project's mandated stack makes unavoidable on the run
// path, built with the release cronrun's compiler flags, link options and
// libraries (bench/CMakeLists.txt: cronrun_runner_target, -Os, header-only fmt
// and spdlog, static libstdc++). It answers "how close to floor.c can a C++20
// runner on CLI11 + spdlog get", so that cronrun is compared
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
//     common/run_record.cc's to_json writes, written as text into one buffer
//     (no DOM, as cronrun writes them) and framed (magic, type, length, CRC-32),
//     each appended with one write(2), in the place of floor.c's --jpre/--jpost
//     filler of the same count.
// The kernel work is floor.c's, ported line for line (same system calls in the
// same order); only the SQLite --history variant is left out (the runner
// journals now).
//
//   stack_floor [--journal FILE [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post]]
//               [--cpu-online] [--config PATH] [--drain PATH] [--systemd-probe] [--statfs PATH]
//               [--pwd-again] [--scan JOBDIR]... [--counters DIR] LOCKFILE
//               (--leaf JOBDIR [--hold F]... [--access F]... [--set F=V]... [--join F]...
//                [--open F]...)... [--check L:F]... [--get L:F]...
//               --cronrun CRONRUN_ARGS... -- COMMAND [ARGS]
// (floor.c's options; see there.)
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
#include <sys/random.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <iterator>
#include <memory>
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

enum class Op { kHold, kAccess, kSet };

struct LeafSpec {
  const char* dir = nullptr;
  // setup, in order: --hold (open O_RDONLY, kept), --access (faccessat2), --set (write)
  Op op[kMaxFiles] = {};
  const char* op_name[kMaxFiles] = {};
  const char* op_value[kMaxFiles] = {};
  int nop = 0;
  const char* join[kMaxFiles] = {};
  int njoin = 0;
  const char* open_only[kMaxFiles] = {};
  int nopen = 0;
  int job_fd = -1, fd = -1, join_fd[kMaxFiles] = {}, open_fd[kMaxFiles] = {}, hold_fd[kMaxFiles] = {};
  int nhold = 0;
};

struct LeafRead {
  int leaf = 0;
  const char* name = nullptr;
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

// floor.c's open_dir_safely: PATH walked from / one component at a time with
// O_NOFOLLOW; fstat of each component when STAT_EACH, else of the last only.
int open_dir_safely(const char* path, bool stat_each) {
  struct stat st;
  int dir = ::open("/", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (dir < 0) die("/");
  std::string buf = path;
  char* save = nullptr;
  for (char* part = ::strtok_r(buf.data(), "/", &save); part; part = ::strtok_r(nullptr, "/", &save)) {
    int next = ::openat(dir, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY);
    if (next < 0) die(path);
    if (stat_each && ::fstat(next, &st) != 0) die(path);
    ::close(dir);
    dir = next;
  }
  if (!stat_each && ::fstat(dir, &st) != 0) die(path);
  return dir;
}

// PATH's directory and last name.
std::pair<std::string, std::string> split_path(const char* path) {
  std::string p = path;
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return {".", p};
  return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

bool parse_read(const char* v, LeafRead* r) {
  char* end;
  long l = std::strtol(v, &end, 10);
  if (end == v || *end != ':') return false;
  r->leaf = static_cast<int>(l);
  r->name = end + 1;
  return true;
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

// As common/run_record.cc's format_rfc3339: the calendar types, not gmtime_r,
// which loads /etc/localtime on first use.
std::string rfc3339(const struct timespec& ts) {
  using namespace std::chrono;
  sys_time<microseconds> us{seconds{ts.tv_sec} + microseconds{ts.tv_nsec / 1000}};
  auto day = floor<days>(us);
  year_month_day ymd{day};
  hh_mm_ss hms{us - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

// A JSON string: quotes, backslashes and control characters escaped.
void put_string(fmt::memory_buffer& out, std::string_view v) {
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// The keys and nesting of common/run_record.cc's to_json plus the journal's
// runner fields; figures the run has are numbers, the rest null. Written as
// text straight into one buffer, as cronrun writes its journal records: the
// stack mandates nlohmann/json, but a record needs no DOM to be written.
std::string record_text(const Facts& f, bool finished, const struct rusage* ru, int status, double wall) {
  fmt::memory_buffer out;
  auto put = [&](std::string_view text) { out.append(text.data(), text.data() + text.size()); };
  auto num = [&](auto v) {
    if (finished) fmt::format_to(std::back_inserter(out), "{}", v);
    else put("null");
  };
  auto str = [&](std::string_view v) { put_string(out, v); };
  put("{\"boot_id\":");
  str(f.boot_id);
  put(",\"command\":[");
  for (size_t i = 0; i < f.command.size(); ++i) {
    if (i) put(",");
    str(f.command[i]);
  }
  put("],\"counters\":{},\"exit_code\":");
  num(WIFEXITED(status) ? WEXITSTATUS(status) : 0);
  put(",\"finished_at\":");
  if (finished) {
    struct timespec t;
    ::clock_gettime(CLOCK_REALTIME, &t);
    str(rfc3339(t));
  } else {
    put("null");
  }
  put(",\"fleet\":null,\"host\":");
  str(f.host);
  put(",\"isolation\":{\"accounting\":\"full\",\"cgroup\":\"v2\",\"note\":null,\"path\":");
  str(f.cgroup_path);
  put("},\"job\":");
  str(f.job);
  fmt::format_to(std::back_inserter(out),
                 ",\"limits\":{{\"cpu_quota_pct\":null,\"cpu_weight\":null,\"memory_high_bytes\":null,"
                 "\"memory_max_bytes\":{},\"pids_max\":null,\"swap_max_bytes\":null,\"timeout_s\":null}},\"lock\":{{"
                 "\"holder_pid\":null,\"path\":",
                 f.memory_max);
  str(f.lock_path);
  put(",\"waited_s\":0.0},\"log\":{\"bytes\":0,\"dropped_bytes\":0,\"path\":null},\"output\":{\"dropped_bytes\":0},"
      "\"pings\":null,\"run_id\":");
  str(f.run_id);
  fmt::format_to(std::back_inserter(out), ",\"runner_pid\":{},\"runner_start\":{},\"schema\":1,\"seccomp\":null,"
                 "\"signal\":null,\"skip_reason\":null,\"start_delay_s\":0.0001,\"started_at\":",
                 f.runner_pid, f.runner_start);
  str(f.started_at);
  put(finished ? ",\"status\":\"ok\"" : ",\"status\":\"running\"");
  double user_s = ru ? static_cast<double>(ru->ru_utime.tv_sec) + static_cast<double>(ru->ru_utime.tv_usec) / 1e6 : 0;
  double sys_s = ru ? static_cast<double>(ru->ru_stime.tv_sec) + static_cast<double>(ru->ru_stime.tv_usec) / 1e6 : 0;
  put(",\"usage\":{\"cpu_nr_throttled\":null,\"cpu_system_s\":");
  num(sys_s);
  put(",\"cpu_throttled_s\":null,\"cpu_user_s\":");
  num(user_s);
  put(",\"io_read_bytes\":");
  num(0);
  put(",\"io_source\":");
  put(finished ? "\"cgroup\"" : "null");
  put(",\"io_write_bytes\":");
  num(0);
  put(",\"max_rss_bytes\":");
  num(ru ? ru->ru_maxrss * 1024 : 0);
  put(",\"memory_high_events\":");
  num(0);
  put(",\"memory_max_events\":");
  num(0);
  put(",\"memory_peak_bytes\":");
  num(262144);
  put(",\"not_measured\":[],\"oom_kills\":");
  num(0);
  put(",\"orphans_killed\":");
  num(0);
  put(",\"pids_peak\":");
  num(1);
  put(",\"pressure_some_s\":{\"cpu\":");
  num(0.0);
  put(",\"io\":");
  num(0.0);
  put(",\"memory\":");
  num(0.0);
  put("}},\"wall_s\":");
  num(wall);
  put("}");
  return fmt::to_string(out);
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
void append_record(int fd, const char* path, char type, const std::string& payload) {
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
  struct stat st;  // cronrun checks the journal's size after each append
  if (::fstat(fd, &st) != 0) die(path);
}

int usage() {
  std::fprintf(stderr,
               "usage: stack_floor [--journal FILE [--jpre N]... [--jpost N]... [--jsync-pre] [--jsync-post]]\n"
               "                   [--cpu-online] [--config PATH] [--drain PATH] [--systemd-probe] [--statfs PATH]\n"
               "                   [--pwd-again] [--scan JOBDIR]... [--counters DIR] LOCKFILE\n"
               "                   (--leaf JOBDIR [--hold F]... [--access F]... [--set F=V]... [--join F]...\n"
               "                   [--open F]...)... [--check L:F]... [--get L:F]...\n"
               "                   --cronrun CRONRUN_ARGS... -- COMMAND [ARGS]\n");
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
  const char* config_path = nullptr;
  const char* drain_path = nullptr;
  const char* statfs_path = nullptr;
  std::vector<const char*> scans;
  bool cpu_online = false, systemd_probe = false, pwd_again = false;
  std::vector<LeafRead> checks, gets;
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
    } else if (std::strcmp(a, "--cpu-online") == 0) {
      cpu_online = true;
    } else if (std::strcmp(a, "--systemd-probe") == 0) {
      systemd_probe = true;
    } else if (std::strcmp(a, "--pwd-again") == 0) {
      pwd_again = true;
    } else if (std::strcmp(a, "--config") == 0) {
      if (!takes()) return usage();
      config_path = v;
    } else if (std::strcmp(a, "--drain") == 0) {
      if (!takes()) return usage();
      drain_path = v;
    } else if (std::strcmp(a, "--statfs") == 0) {
      if (!takes()) return usage();
      statfs_path = v;
    } else if (std::strcmp(a, "--scan") == 0) {
      if (!takes()) return usage();
      scans.push_back(v);
    } else if (std::strcmp(a, "--check") == 0 || std::strcmp(a, "--get") == 0) {
      LeafRead r;
      if (!takes() || !parse_read(v, &r)) return usage();
      (a[2] == 'c' ? checks : gets).push_back(r);
    } else if (std::strcmp(a, "--leaf") == 0) {
      if (!takes() || nleaves == kMaxLeaves) return usage();
      leaves[nleaves++].dir = v;
    } else if (cur && (std::strcmp(a, "--set") == 0 || std::strcmp(a, "--hold") == 0 ||
                       std::strcmp(a, "--access") == 0) && cur->nop < kMaxFiles) {
      if (!takes()) return usage();
      Op k = a[2] == 's' ? Op::kSet : a[2] == 'h' ? Op::kHold : Op::kAccess;
      cur->op[cur->nop] = k;
      cur->op_name[cur->nop] = argv[i];
      if (k == Op::kSet) {
        char* eq = std::strchr(argv[i], '=');
        if (!eq) return usage();
        *eq = '\0';
        cur->op_value[cur->nop] = eq + 1;
      }
      ++cur->nop;
    } else if (cur && std::strcmp(a, "--join") == 0 && cur->njoin < kMaxFiles) {
      if (!takes()) return usage();
      cur->join[cur->njoin++] = v;
    } else if (cur && std::strcmp(a, "--open") == 0 && cur->nopen < kMaxFiles) {
      if (!takes()) return usage();
      cur->open_only[cur->nopen++] = v;
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

  struct stat st;
  uid_t euid = ::geteuid();  // root or not: which defaults apply
  if (cpu_online) {  // one read, as glibc's get_nprocs makes it
    int c = ::open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
    char buf[1024];
    if (c < 0 || ::read(c, buf, sizeof buf) < 0) die("/sys/devices/system/cpu/online");
    ::close(c);
  }
  if (config_path) (void)::stat(config_path, &st);  // the job's config file: a probe

  // The record's facts.
  Facts facts;
  unsigned char random_id[16];
  if (::getrandom(random_id, sizeof random_id, 0) != static_cast<ssize_t>(sizeof random_id)) die("getrandom");
  struct utsname host;
  if (::uname(&host) != 0) die("uname");
  struct passwd* pw = ::getpwuid(euid);
  if (!pw) die("getpwuid");
  facts.user = pw->pw_name;
  pid_t self = ::getpid();
  read_file_at(AT_FDCWD, fmt::format("/proc/{}/stat", self).c_str());
  read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id");
  if (drain_path) (void)::stat(drain_path, &st);  // the drain flag: absent unless draining
  facts.boot_id = "00000000-0000-0000-0000-000000000000";
  facts.runner_pid = self;
  facts.runner_start = 1;
  facts.host = host.nodename;
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
                             static_cast<uint32_t>(random_id[0] | random_id[1] << 8 | random_id[2] << 16));

  int jfd = -1, jdir = -1;
  if (journal) {
    auto [dir_path, name] = split_path(journal);
    if (::stat(dir_path.c_str(), &st) != 0) die(dir_path.c_str());
    int dir = open_dir_safely(dir_path.c_str(), false);
    std::string db_name = name.size() > 8 && name.ends_with(".journal") ? name.substr(0, name.size() - 8) : name;
    (void)::fstatat(dir, db_name.c_str(), &st, AT_SYMLINK_NOFOLLOW);  // the history beside it; absent is fine
    jdir = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);  // kept for the run, as cronrun keeps it
    if (jdir < 0) die("fcntl");
    jfd = ::openat(jdir, name.c_str(), O_WRONLY | O_NOCTTY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC,
                   0644);
    if (jfd < 0 || ::fstat(jfd, &st) != 0) die(journal);
    (void)::geteuid();
    ::close(dir);
  }

  auto [lock_dir_path, lock_name] = split_path(lock_path);
  int lock_dir = open_dir_safely(lock_dir_path.c_str(), false);
  (void)::fstatat(lock_dir, lock_name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
  int lock = ::openat(lock_dir, lock_name.c_str(), O_RDWR | O_CREAT | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC,
                      0644);
  if (lock < 0 || ::fstat(lock, &st) != 0) die(lock_path);
  char text[33];
  if (::pread(lock, text, sizeof text, 0) < 0) die(lock_path);
  if (::flock(lock, LOCK_EX | LOCK_NB) != 0) return 75;
  int len = std::snprintf(text, sizeof text, "%d\n", ::getpid());
  if (::pwrite(lock, text, static_cast<size_t>(len), 0) != len || ::ftruncate(lock, len) != 0) die(lock_path);
  ::close(lock_dir);

  if (systemd_probe) (void)::fstatat(AT_FDCWD, "/run/systemd/system/", &st, AT_SYMLINK_NOFOLLOW);
  if (statfs_path) {
    struct statfs fs;
    if (::statfs(statfs_path, &fs) != 0) die(statfs_path);
    (void)::geteuid();
  }
  if (pwd_again && !::getpwuid(::geteuid())) die("getpwuid");
  read_file_at(AT_FDCWD, "/proc/self/mountinfo");
  read_file_at(AT_FDCWD, "/proc/self/cgroup");
  if (!scans.empty()) {
    (void)::geteuid();
    (void)::getegid();
    (void)::getgroups(0, nullptr);
  }
  for (const char* scan : scans) {
    int a = ::open(scan, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    int d = ::open(scan, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_DIRECTORY);
    if (a < 0 || d < 0 || ::fstat(d, &st) != 0) die(scan);
    std::vector<char> dents(32768);
    long got;
    while ((got = ::syscall(SYS_getdents64, d, dents.data(), dents.size())) > 0) {
    }
    if (got < 0) die(scan);
    ::close(d);
    ::close(a);
  }

  char run[32];
  // Not floor.c's "floor-PID": a floor that valgrind stops at clone3 leaves its
  // counters file behind, and a later stack_floor with that pid would trip on it.
  std::snprintf(run, sizeof run, "stack-floor-%d", self);
  int unified = -1;
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    s->job_fd = ::open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->job_fd < 0) die(s->dir);
    if (::mkdirat(s->job_fd, run, 0755) != 0) die("mkdir");
    s->fd = ::openat(s->job_fd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->fd < 0) die("open leaf");
    if (unified < 0 && std::strstr(s->dir, "/unified/")) unified = l;
    for (int f = 0; f < s->nop; ++f) {
      const char* name = s->op_name[f];
      if (s->op[f] == Op::kHold) {
        if ((s->hold_fd[s->nhold++] = ::openat(s->fd, name, O_RDONLY | O_CLOEXEC)) < 0) die(name);
      } else if (s->op[f] == Op::kAccess) {
        if (::faccessat(s->fd, name, F_OK, 0) != 0) die(name);
      } else {
        int w = ::openat(s->fd, name, O_WRONLY | O_CLOEXEC);
        size_t n = std::strlen(s->op_value[f]);
        if (w < 0 || ::write(w, s->op_value[f], n) != static_cast<ssize_t>(n)) die(name);
        ::close(w);
      }
    }
  }
  if (nleaves) facts.cgroup_path = fmt::format("{}/{}", leaves[unified < 0 ? 0 : unified].dir, run);
  int counters = -1;
  char counters_name[48];
  if (counters_dir) {
    counters = open_dir_safely(counters_dir, true);
    if (::fstat(counters, &st) != 0) die(counters_dir);
    (void)::geteuid();
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
  ::signal(SIGPIPE, SIG_IGN);
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f)
      if ((s->open_fd[f] = ::openat(s->fd, s->open_only[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->open_only[f]);
    for (int f = 0; f < s->njoin; ++f)
      if ((s->join_fd[f] = ::openat(s->fd, s->join[f], O_WRONLY | O_CLOEXEC)) < 0) die(s->join[f]);
  }

  if (jfd >= 0) {
    for (int r = 0; r < njpre; ++r) append_record(jfd, journal, 1, record_text(facts, false, nullptr, 0, 0));
    if (jsync_pre && ::fdatasync(jfd) != 0) die(journal);
  }

  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) die("pipe2");
  pid_t parent = ::getpid();
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
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);  // the runner died before the prctl
    for (int l = 0; l < nleaves; ++l)
      for (int f = 0; f < leaves[l].njoin; ++f)
        if (::write(leaves[l].join_fd[f], "0", 1) != 1) ::_exit(125);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
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
  struct pollfd p[2] = {{sfd, POLLIN, 0}, {pidfd, POLLIN, 0}};
  while (::poll(p, 2, -1) < 0) {
  }
  struct signalfd_siginfo si;  // SIGCHLD, read until the signalfd is empty
  while (::read(sfd, &si, sizeof si) > 0) {
  }
  int status = 0;
  struct rusage ru;
  if (::wait4(static_cast<pid_t>(pid), &status, __WALL, &ru) < 0) die("wait4");
  while (::wait4(-1, nullptr, __WALL | WNOHANG, nullptr) > 0) {
  }
  auto read_leaf = [&](const LeafRead& r) {
    if (r.leaf < 0 || r.leaf >= nleaves) die("no such leaf");
    read_file_at(leaves[r.leaf].fd, r.name);
  };
  for (const LeafRead& r : checks) read_leaf(r);
  if (!checks.empty())
    while (::wait4(-1, nullptr, __WALL | WNOHANG, nullptr) > 0) {
    }
  ::getrusage(RUSAGE_CHILDREN, &ru);
  for (const LeafRead& r : gets) read_leaf(r);

  for (int l = 0; l < nleaves; ++l)
    for (int f = 0; f < leaves[l].nhold; ++f) ::close(leaves[l].hold_fd[f]);
  for (int l = 0; l < nleaves; ++l) {
    LeafSpec* s = &leaves[l];
    for (int f = 0; f < s->nopen; ++f) ::close(s->open_fd[f]);
    for (int f = 0; f < s->njoin; ++f) ::close(s->join_fd[f]);
  }
  for (int l = nleaves - 1; l >= 0; --l)
    if (::unlinkat(leaves[l].job_fd, run, AT_REMOVEDIR) != 0) die("rmdir");
  if (counters >= 0) {
    if (::fstatat(counters, counters_name, &st, AT_SYMLINK_NOFOLLOW) != 0) die(counters_name);
    int c = ::openat(counters, counters_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (c < 0 || ::fstat(c, &st) != 0) die(counters_name);
    drain_fd(c);
    ::close(c);
  }
  if (jfd >= 0) {
    double wall = now_s() - started;
    for (int r = 0; r < njpost; ++r) append_record(jfd, journal, 2, record_text(facts, true, &ru, status, wall));
    if (jsync_post && ::fdatasync(jfd) != 0) die(journal);
  }
  ::close(sfd);
  ::close(pidfd);
  if (counters >= 0) {
    if (::unlinkat(counters, counters_name, 0) != 0) die("unlink counters");
    ::close(counters);
  }
  for (int l = 0; l < nleaves; ++l) {
    ::close(leaves[l].fd);
    ::close(leaves[l].job_fd);
  }
  ::close(lock);
  if (jfd >= 0) ::close(jfd);
  if (jdir >= 0) ::close(jdir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
