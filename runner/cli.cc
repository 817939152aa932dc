// cronrun's command line. Every option that sets something records (key, value)
// and is applied after the job config file, which gives "defaults < config file <
// command line" without a second copy of the parsing rules (see job_spec.cc).
#include "runner/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/fd.h"

namespace cronrun {
namespace {

constexpr const char* kDescription =
    "Run one cron job in its own cgroup with limits, a pid-file lock and a measured, recorded profile.\n"
    "Exit status: the job's own (0-123), 124 timeout, 125 cronrun failed, 126/127 not executable/not found,\n"
    "128+N killed by signal N (OOM: 137), 75 lock busy with --on-locked fail.";

// CLI11 2.1 has no usage override; the command after `--` is the part people miss.
class UsageFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override {
    return "Usage: cronrun [OPTIONS] -- COMMAND [ARG...]\n";
  }
};

std::string json_scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return {};
}

// The command line cut in two: argv[0] with the options and their values (for
// CLI11), and the COMMAND with its arguments (never looked at).
struct SplitArgs {
  std::vector<std::string> options;
  std::vector<std::string> command;
};

enum class Arity { none, one, optional_one, many };

Arity arity_of(const CLI::Option& opt) {
  if (opt.get_type_size_max() == 0 || opt.get_expected_max() == 0) return Arity::none;  // flags
  if (opt.get_expected_min() == 0) return Arity::optional_one;  // --lock [PATH]
  if (opt.get_expected_max() > 1) return Arity::many;            // --env A=1 B=2
  return Arity::one;
}

bool looks_like_option(std::string_view arg) { return arg.size() > 1 && arg.front() == '-'; }

// "--env A=1 B=2 -- job" has always set both: the words after --env's first value
// that read as KEY=VALUE are its values too. The first word that does not ends
// the options, so "--env A=1 job" runs job.
bool looks_like_env_value(std::string_view arg) {
  auto eq = arg.find('=');
  if (eq == 0 || eq == std::string_view::npos) return false;
  if (std::isdigit(static_cast<unsigned char>(arg.front()))) return false;
  return std::all_of(arg.begin(), arg.begin() + static_cast<std::ptrdiff_t>(eq),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

Error unknown_option(const CLI::App& app, std::string_view arg) {
  std::string name(arg.substr(0, arg.find('=')));
  std::string best;
  size_t best_distance = 3;  // suggest only close misspellings
  for (const CLI::Option* opt : app.get_options())
    for (const auto& lname : opt->get_lnames())
      if (size_t d = edit_distance(name, "--" + lname); d < best_distance) {
        best_distance = d;
        best = "--" + lname;
      }
  return Error(fmt::format("unknown option '{}'{} (options go before COMMAND; see cronrun --help)", name,
                           best.empty() ? "" : fmt::format(", did you mean {}?", best)));
}

// Options end at `--` or at the first argument that does not look like an option;
// an option takes its value from the next argument (or after `=`, or the rest of a
// short option group like -nNAME). Anything that looks like an option but is not
// one is an error: it must never slide into the COMMAND.
Result<SplitArgs> split_command_line(const CLI::App& app, int argc, char** argv) {
  SplitArgs out;
  out.options.emplace_back(argc > 0 ? argv[0] : "cronrun");
  int i = 1;
  auto take_value = [&](std::string_view name) -> Result<void> {
    if (i + 1 >= argc) return fail(fmt::format("{}: expected a value after it", name));
    out.options.emplace_back(argv[++i]);
    return {};
  };
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (!looks_like_option(arg)) break;
    out.options.emplace_back(arg);
    if (arg.starts_with("--")) {
      auto eq = arg.find('=');
      const CLI::Option* opt = app.get_option_no_throw(std::string(arg.substr(0, eq)));
      if (opt == nullptr) return std::unexpected(unknown_option(app, arg));
      Arity a = arity_of(*opt);
      // CLI11 gives a bare --lock as "", so an explicit empty PATH is refused
      // here: `--lock "$UNSET"` must not quietly mean the default lock.
      auto empty_optional = [&](std::string_view v) {
        return fail(fmt::format("{}: expected a path after it, got '{}'", arg.substr(0, eq), v));
      };
      if (eq != std::string_view::npos) {  // --name=value
        if (a == Arity::optional_one && eq + 1 == arg.size()) return empty_optional("");
        continue;
      }
      if (a == Arity::one || a == Arity::many) {
        if (auto r = take_value(arg); !r) return std::unexpected(r.error());
        while (a == Arity::many && i + 1 < argc && looks_like_env_value(argv[i + 1])) out.options.emplace_back(argv[++i]);
      } else if (a == Arity::optional_one && i + 1 < argc && !looks_like_option(argv[i + 1])) {
        if (*argv[i + 1] == '\0') return empty_optional("");
        out.options.emplace_back(argv[++i]);
      }
      continue;
    }
    // A group of short options: flags, the last of which may take a value, which is
    // the rest of the group or else the next argument (-vq, -n NAME, -nNAME).
    for (size_t k = 1; k < arg.size(); ++k) {
      const CLI::Option* opt = app.get_option_no_throw(std::string("-") + arg[k]);
      if (opt == nullptr)
        return std::unexpected(unknown_option(app, k == 1 ? arg : std::string("-") + arg[k]));
      if (arity_of(*opt) == Arity::none) continue;
      if (k + 1 == arg.size())
        if (auto r = take_value(std::string("-") + arg[k]); !r) return std::unexpected(r.error());
      break;
    }
  }
  for (; i < argc; ++i) out.command.emplace_back(argv[i]);
  return out;
}

// A job config is small and read before anything else: open it without blocking
// (a FIFO would otherwise hang the runner in open), take regular files only
// (/dev/zero would be read without end), and read at most kMaxConfigBytes.
// Symlinks are followed on purpose: configs in /etc are often links into a
// package or a checkout, and the file's owner is the admin who named it.
constexpr size_t kMaxConfigBytes = 1u << 20;

Result<std::string> read_config_file(const std::string& path) {
  auto fd = open_fd(path, O_RDONLY | O_NONBLOCK);
  if (!fd) return std::unexpected(fd.error());
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail(fmt::format("{}: expected a regular file", path));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_sys("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxConfigBytes)
      return fail(fmt::format("{}: larger than the {}-byte cap for a job config", path, kMaxConfigBytes));
  }
  return out;
}

}  // namespace

Result<void> parse_job_config(std::string_view text, const std::string& path, JobSpec& spec) {
  // Every nlohmann exception stops here: a number out of range ("1e999") is an
  // out_of_range, not a parse_error, and used to escape as SIGABRT. The callback
  // remembers the last top-level key so such errors can name it.
  std::string current_key;
  auto track_key = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string())
      current_key = parsed.get<std::string>();
    return true;
  };
  auto where = [&] { return current_key.empty() ? std::string() : fmt::format(": key '{}'", current_key); };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end(), track_key, true, /*ignore_comments=*/true);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is the offset; give a line number, which is what people look for.
    size_t line = 1 + static_cast<size_t>(std::count(text.begin(),
                          text.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(e.byte, text.size())), '\n'));
    std::string what = e.what();
    auto colon = what.find(": ");
    return fail(fmt::format("config {}: line {}: invalid JSON ({})", path, line,
                            colon == std::string::npos ? what : what.substr(colon + 2)));
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    auto bracket = what.find("] ");
    return fail(fmt::format("config {}{}: {}", path, where(),
                            bracket == std::string::npos ? what : what.substr(bracket + 2)));
  }
  if (!doc.is_object()) return fail(fmt::format("config {}: expected a JSON object of settings", path));
  try {
    for (const auto& [key, value] : doc.items()) {
      if (!is_config_key(key) || key == "no-lock" || key == "no-history")
        return fail(fmt::format("config {}: unknown key '{}' (keys are cronrun's long option names)", path, key));
      std::vector<std::string> values;
      if (key == "env" && value.is_object()) {
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) return fail(fmt::format("config {}: key 'env.{}': expected a string", path, k));
          values.push_back(k + "=" + v.get<std::string>());
        }
      } else if (key == "env" && value.is_array()) {
        for (const auto& v : value) {
          if (!v.is_string()) return fail(fmt::format("config {}: key 'env': expected strings KEY=VALUE", path));
          values.push_back(v.get<std::string>());
        }
      } else if (value.is_string() || value.is_boolean() || value.is_number()) {
        values.push_back(json_scalar(value));
      } else {
        return fail(fmt::format("config {}: key '{}': expected a string, number or boolean", path, key));
      }
      for (const auto& v : values)
        if (auto r = apply_setting(spec, key, v); !r)
          return fail(fmt::format("config {}: key '{}': {}", path, key, r.error().message()));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(fmt::format("config {}: {}", path, e.what()));
  }
  spec.config_path = path;
  return {};
}

Result<void> load_job_config(const std::string& path, JobSpec& spec) {
  auto text = read_config_file(path);
  if (!text) return std::unexpected(std::move(text.error()).context("reading job config"));
  return parse_job_config(*text, path, spec);
}

Result<ParsedArgs> parse_args(int argc, char** argv) { return parse_args(argc, argv, host_cpu_count()); }

Result<ParsedArgs> parse_args(int argc, char** argv, unsigned host_cpus) {
  ParsedArgs out;
  CLI::App app(kDescription, "cronrun");
  // A flag given twice takes its last value, as crontab lines built by scripts expect.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", std::string("cronrun ") + CRONRUN_VERSION);
  app.formatter(std::make_shared<UsageFormatter>());
  app.get_formatter()->column_width(34);

  // Settings shared with the config file, applied after it, in this order.
  std::vector<std::pair<std::string, std::string>> flags;
  auto setting = [&](const std::string& names, const std::string& key, const std::string& help,
                     const std::string& group) {
    return app.add_option_function<std::string>(
                  names, [&flags, key](const std::string& v) { flags.emplace_back(key, v); }, help)
        ->group(group);
  };
  auto repeated = [&](const std::string& names, const std::string& key, const std::string& help,
                      const std::string& group) {
    return app.add_option_function<std::vector<std::string>>(
                  names,
                  [&flags, key](const std::vector<std::string>& vs) {
                    for (const auto& v : vs) flags.emplace_back(key, v);
                  },
                  help)
        ->group(group)
        ->take_all();
  };

  const std::string job = "Job", lim = "Limits", lck = "Lock", rec = "Recording", out_g = "Output",
                    misc = "Other";
  setting("-n,--name", "name", "job name [A-Za-z0-9_.-]{1,64} (default: basename of COMMAND)", job)
      ->type_name("NAME");
  std::string config;
  app.add_option("-c,--config", config,
                 "job config (JSON, comments allowed); default /etc/cronrun/jobs.d/NAME.json (root) "
                 "or $XDG_CONFIG_HOME/cronrun/jobs.d/NAME.json")
      ->group(job)
      ->type_name("FILE");
  repeated("--env", "env", "extra environment for the job (repeatable)", job)->type_name("KEY=VALUE");
  setting("--nice", "nice", "scheduling priority of the job (-20..19)", job)->type_name("N");
  setting("--ionice", "ionice", "IO priority: realtime|best-effort|idle[:0-7]", job)->type_name("CLASS[:LEVEL]");
  setting("--timeout", "timeout", "wall limit (90s, 15m, 2h): SIGTERM, then kill the cgroup", job)
      ->type_name("DURATION");
  setting("--kill-after", "kill-after", "grace between SIGTERM and kill on timeout (default 10s)", job)
      ->type_name("DURATION");
  bool keep_orphans = false;
  app.add_flag("--keep-orphans", keep_orphans, "do not kill processes left behind when the job exits")
      ->group(job);

  setting("--memory", "memory", "hard memory limit (512M, 2G, 1.5GiB, bytes)", lim)->type_name("SIZE");
  setting("--memory-high", "memory-high", "soft memory limit / reclaim pressure", lim)->type_name("SIZE");
  setting("--swap", "swap", "swap limit (v1: applied as memory + swap)", lim)->type_name("SIZE");
  setting("--cpu", "cpu", "CPU quota: 50% of one CPU, 250%, or cores (1.5)", lim)->type_name("QUOTA");
  setting("--cpu-weight", "cpu-weight", "relative CPU weight 1-10000", lim)->type_name("N");
  setting("--pids", "pids", "max tasks", lim)->type_name("N");
  setting("--io-weight", "io-weight", "relative IO weight 1-10000, where available", lim)->type_name("N");
  setting("--cgroup-parent", "cgroup-parent", "create job cgroups under this path (relative to the cgroup root)", lim)
      ->type_name("PATH");
  setting("--cgroup", "cgroup",
          "required|auto|off; auto falls back to rlimits + rusage without a writable cgroup (default auto)", lim)
      ->type_name("MODE");
  setting("--seccomp", "seccomp", "syscall filter for the job; only off in this version", lim)
      ->type_name("MODE");

  std::vector<std::string> lock_values;
  auto* lock_opt = app.add_option("--lock", lock_values,
                                  "pid-file lock (on by default); default /run/cronrun/locks/NAME.pid (root) "
                                  "or $XDG_RUNTIME_DIR/cronrun/NAME.pid, else /tmp/cronrun-UID/NAME.pid; an explicit PATH's "
                                  "directory must exist, and a file there must be empty or hold a pid")
                       ->group(lck)
                       ->expected(0, 1)
                       ->type_name("[PATH]");
  bool no_lock = false;
  auto* no_lock_opt = app.add_flag("--no-lock", no_lock, "run without the pid-file lock")->group(lck);
  lock_opt->excludes(no_lock_opt);
  setting("--lock-wait", "lock-wait", "wait up to this long for the lock (default 0)", lck)->type_name("DURATION");
  setting("--on-locked", "on-locked", "lock busy: skip (exit 0, run recorded as skipped) or fail (exit 75)", lck)
      ->type_name("skip|fail");

  setting("--history", "history",
          "SQLite history (default /var/lib/cronrun/history.db as root, else $XDG_STATE_HOME/cronrun/history.db); "
          "an explicit PATH's directory must exist", rec)
      ->type_name("PATH");
  bool no_history = false;
  app.add_flag("--no-history", no_history, "do not record the run in the history")->group(rec);
  setting("--summary", "summary", "also write this run's summary JSON to FILE (- = stdout); its directory must exist, and a "
          "symlink, FIFO or device someone else planted there is refused", rec)->type_name("FILE");
  bool report = false, count_db = false;
  app.add_flag("--report", report, "print a short profile of the run on stderr at the end")->group(rec);
  app.add_flag("--count-db-queries", count_db, "count DB queries (libpq, MySQL/MariaDB client, SQLite) via LD_PRELOAD")
      ->group(rec);

  setting("--output", "output", "job's stdout/stderr: passthrough|on-failure|discard (default passthrough)", out_g)
      ->type_name("MODE");
  setting("--log-dir", "log-dir", "keep each run's output in DIR/NAME/RUN-ID.log (DIR must exist)", out_g)->type_name("DIR");
  setting("--log-max", "log-max", "cap of each kept log (default 16M)", out_g)->type_name("SIZE");

  bool dry_run = false;
  int quiet = 0, verbose = 0;
  app.add_flag("--dry-run", dry_run, "print the resolved spec, cgroup placement and why, then exit 0")->group(misc);
  app.add_flag("-q,--quiet", quiet, "only errors from cronrun itself")->group(misc);
  app.add_flag("-v,--verbose", verbose, "more of cronrun's own messages (repeatable)")->group(misc);

  bool flush = false;
  app.add_flag("--flush", flush, "fold the run journal into the history (--history) now, then exit")->group(misc);

  bool json = false;
  app.add_flag("--json", json, "with --dry-run: print one JSON document instead of text")->group(misc);

  // Options end at `--` or at the first argument that is not an option; we find
  // that boundary ourselves and hand CLI11 the options alone. (CLI11's
  // prefix_command() ended them at the first *unknown* option too, so a typo like
  // --memroy became the COMMAND, and was locked, recorded and run.)
  auto split = split_command_line(app, argc, argv);
  if (!split) return std::unexpected(split.error());
  std::vector<char*> option_argv;
  for (auto& a : split->options) option_argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(option_argv.size()), option_argv.data());
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    out.exit_now = true;
    return out;
  } catch (const CLI::CallForVersion&) {
    std::cout << app.version() << "\n";
    out.exit_now = true;
    return out;
  } catch (const CLI::ParseError& e) {
    return fail(fmt::format("{} (see cronrun --help)", e.what()));
  }
  if (json && !dry_run) return fail("--json: only with --dry-run (a run's record is --summary FILE or -)");

  std::vector<std::string> command = std::move(split->command);
  if (flush) {
    // Only where the history is matters; nothing is run.
    if (!command.empty()) return fail("--flush: takes no COMMAND (it folds the run journal and exits)");
    for (const auto& [key, value] : flags) {
      if (key != "history") return fail(fmt::format("--{}: not with --flush (only --history, --no-history)", key));
      if (auto r = apply_setting(out.spec, key, value); !r) return fail(fmt::format("--history: {}", r.error().message()));
    }
    if (no_history) out.spec.history = false;
    out.spec.flush = true;
    out.spec.verbosity = verbose > 0 ? verbose : (quiet > 0 ? -1 : 0);
    return out;
  }
  if (command.empty())
    return fail("missing COMMAND: usage is cronrun [OPTIONS] -- COMMAND [ARG...]; in a crontab, cron cuts the "
                "line at an unescaped % (write \\% there, or give --cpu in cores, like --cpu 1.5)");
  if (command.front().empty()) return fail("COMMAND: expected a program name or path, got ''");

  JobSpec& spec = out.spec;
  spec.command = command;

  // The name decides which config file is read, so it is settled first.
  for (const auto& [key, value] : flags)
    if (key == "name")
      if (auto r = apply_setting(spec, key, value); !r) return fail(fmt::format("--name: {}", r.error().message()));
  if (spec.name.empty()) spec.name = default_job_name(command.front());

  if (!config.empty()) {
    if (auto r = load_job_config(config, spec); !r) return std::unexpected(r.error());
  } else {
    std::string path = default_config_path(spec.name);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (auto r = load_job_config(path, spec); !r) return std::unexpected(r.error());
    } else if (errno != ENOENT && errno != ENOTDIR) {
      return std::unexpected(Error::sys("stat", path).context("job config"));
    }
  }

  for (const auto& [key, value] : flags) {
    if (key == "name") continue;
    if (auto r = apply_setting(spec, key, value); !r) return fail(fmt::format("--{}: {}", key, r.error().message()));
  }
  if (lock_opt->count() > 0) {
    // A bare --lock (followed by an option, or last) comes back from CLI11 as "".
    if (auto r = apply_setting(spec, "lock", lock_values.empty() || lock_values.back().empty() ? "true" : lock_values.back()); !r)
      return fail(fmt::format("--lock: {}", r.error().message()));
  }
  if (no_lock) spec.lock = false;
  if (no_history) spec.history = false;
  if (keep_orphans) spec.keep_orphans = true;
  if (report) spec.report = true;
  if (count_db) spec.count_db_queries = true;
  spec.dry_run = dry_run;
  out.json = json;
  spec.verbosity = verbose > 0 ? verbose : (quiet > 0 ? -1 : 0);

  if (auto r = check_cpu_quota(spec, host_cpus); !r) {
    bool from_flag = std::ranges::any_of(flags, [](const auto& kv) { return kv.first == "cpu"; });
    return fail(fmt::format("{}: {}", from_flag ? "--cpu" : fmt::format("config {}: key 'cpu'", spec.config_path.value_or("?")),
                            r.error().message()));
  }
  if (spec.limits.swap_max_bytes && !spec.limits.memory_max_bytes)
    return fail("--swap: needs --memory as well (v1 applies swap as memory + swap)");
  if (spec.limits.memory_high_bytes && spec.limits.memory_max_bytes &&
      *spec.limits.memory_high_bytes > *spec.limits.memory_max_bytes)
    return fail("--memory-high: expected a value not above --memory");
  return out;
}

}  // namespace cronrun
