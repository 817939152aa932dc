// cronrun's command line. The options are the table in common/job_options.h:
// CLI11 is built from its rows (names, arity, help, groups), where the options
// end is decided by the table's grammar (job_options::split_command_line, which
// the planner uses too), and every value is parsed and applied by the same
// apply_setting the job config file goes through. Settings from the command line
// are applied after the config file: "defaults < config file < command line".
#include "runner/cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/safe_file.h"

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

// Options whose value is a path or URL: a JSON number is never one.
bool takes_a_path(const job_options::Option& o) {
  for (std::string_view word : {"PATH", "FILE", "DIR", "URL"})
    if (o.value_name.find(word) != std::string_view::npos) return true;
  return false;
}

std::string json_scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return {};
}

// A job config sets the job's environment, command and limits, so it is read only
// from a file nobody but root or the caller could have written or planted
// (read_obeyed_file: a symlink is followed when CheckedDir would follow it, as
// configs in /etc are often links into a package or a checkout). It is opened
// without blocking, regular files only, at most kMaxConfigBytes.
constexpr size_t kMaxConfigBytes = 1u << 20;

// Fleet mode (DESIGN §10): --group or --fleet-config engages it, and the fleet
// config is read here, once, so a bad file or a grace that does not fit the lease
// is a usage error before anything is locked or created. The fleet-only flags
// mean nothing without it and are refused rather than ignored.
Result<void> resolve_fleet(JobSpec& spec, const std::vector<std::pair<const job_options::Option*, std::string>>& settings,
                           const Invoker& who) {
  namespace jo = job_options;
  if (!fleet_mode(spec)) {
    for (const auto& [o, v] : settings)
      if (o->id == jo::Id::host || o->id == jo::Id::tick || o->id == jo::Id::on_revoke)
        return fail(fmt::format("{}: only in fleet mode (with --group NAME or --fleet-config FILE)", o->flag()));
    return {};
  }
  auto config = fleet::load_config(spec.fleet_config_path, spec.fleet_host, who);
  if (!config) return std::unexpected(std::move(config.error()).with_kind(ErrorKind::usage));
  // --flush runs no job, so no kill grace has to fit the lease.
  if (!spec.flush)
    if (auto r = fleet::check_grace(spec.kill_after, config->lease_ttl, config->path); !r)
      return std::unexpected(std::move(r.error()).with_kind(ErrorKind::usage));
  spec.fleet = std::move(*config);
  return {};
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
      const job_options::Option* option = job_options::find_config_key(key);
      if (option == nullptr)
        return fail(fmt::format("config {}: unknown key '{}' (keys are cronrun's long option names)", path, key));
      std::vector<std::string> values;
      if (option->arity == job_options::Arity::many && value.is_object()) {
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) return fail(fmt::format("config {}: key 'env.{}': expected a string", path, k));
          values.push_back(k + "=" + v.get<std::string>());
        }
      } else if (option->arity == job_options::Arity::many && value.is_array()) {
        for (const auto& v : value) {
          if (!v.is_string()) return fail(fmt::format("config {}: key 'env': expected strings KEY=VALUE", path));
          values.push_back(v.get<std::string>());
        }
      } else if (value.is_number() && takes_a_path(*option)) {
        // {"lock": 5} is a mistake, not a lock file named "5".
        return fail(fmt::format("config {}: key '{}': expected a path as a string{}, got {}", path, key,
                                option->id == job_options::Id::lock ? ", or true / false" : "", value.dump()));
      } else if (value.is_string() || value.is_boolean() || value.is_number()) {
        values.push_back(json_scalar(value));
      } else {
        return fail(fmt::format("config {}: key '{}': expected a string, number or boolean", path, key));
      }
      for (const auto& v : values)
        if (auto r = apply_setting(spec, *option, v); !r)
          return fail(fmt::format("config {}: key '{}': {}", path, key, r.error().message()));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(fmt::format("config {}: {}", path, e.what()));
  }
  spec.config_path = path;
  return {};
}

Result<void> load_job_config(const std::string& path, JobSpec& spec) {
  auto text = read_obeyed_file(path, kMaxConfigBytes, "job config");
  if (!text) return std::unexpected(std::move(text.error()));
  return parse_job_config(*text, path, spec);
}

Result<ParsedArgs> parse_args(int argc, char** argv) {
  return parse_args(argc, argv, host_cpu_count(), Invoker::current());
}

Result<ParsedArgs> parse_args(int argc, char** argv, unsigned host_cpus) {
  return parse_args(argc, argv, host_cpus, Invoker::current());
}

Result<ParsedArgs> parse_args(int argc, char** argv, unsigned host_cpus, const Invoker& who) {
  namespace jo = job_options;
  ParsedArgs out;
  CLI::App app(kDescription, "cronrun");
  // A flag given twice takes its last value, as crontab lines built by scripts expect.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.formatter(std::make_shared<UsageFormatter>());
  app.get_formatter()->column_width(34);

  // Options end at `--` or at the first argument that is not an option; the
  // table's grammar finds that boundary and CLI11 gets the options alone.
  // (CLI11's prefix_command() ended them at the first *unknown* option too, so a
  // typo like --memroy became the COMMAND, and was locked, recorded and run.)
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  auto split = jo::split_command_line(args);
  if (!split) return std::unexpected(split.error());
  // --help and --version answer whatever the other options' values are.
  const bool answers_only = std::ranges::any_of(split->given, [](const jo::Given& g) {
    return g.option == &jo::get(jo::Id::help) || g.option == &jo::get(jo::Id::version);
  });
  if (!answers_only)
    if (auto r = jo::check_values(*split); !r) return std::unexpected(r.error());

  // CLI11 gets the rows of the options this line gives (every row for --help,
  // which lists them all): adding an option compares its names with those of
  // every option added before, so the whole table cost each run about a third
  // of the runner's own instructions (README.md, Benchmarks). The table's grammar
  // has already read the line, so an option it did not find cannot be on it.
  auto on_line = [&](const jo::Option& o) {
    return std::ranges::any_of(split->given, [&](const jo::Given& g) { return g.option == &o; });
  };
  const bool all_rows = on_line(jo::get(jo::Id::help));

  // What CLI11 hands back, in the order it runs its callbacks (the table's).
  std::vector<std::pair<const jo::Option*, std::string>> settings;
  for (const jo::Option& o : jo::all()) {
    // --help and --version too: CLI11's own -h/--help stands until ours replaces it.
    if (!all_rows && !on_line(o)) continue;
    std::string names = o.short_name ? fmt::format("-{},{}", o.short_name, o.flag()) : o.flag();
    CLI::Option* cli = nullptr;
    if (o.id == jo::Id::help) {
      cli = app.set_help_flag(names, std::string(o.help));
    } else if (o.id == jo::Id::version) {
      cli = app.set_version_flag(names, std::string("cronrun ") + CRONRUN_VERSION, std::string(o.help));
    } else switch (o.arity) {
      case jo::Arity::flag:
        // Counted, so -vv is two; "--report=false" counts -1.
        cli = app.add_flag_function(
            names,
            [&settings, &o](int64_t count) {
              for (int64_t k = 0; k < (count < 0 ? 1 : count); ++k) settings.emplace_back(&o, count < 0 ? "false" : "true");
            },
            std::string(o.help));
        break;
      case jo::Arity::one:
        cli = app.add_option_function<std::string>(
            names, [&settings, &o](const std::string& v) { settings.emplace_back(&o, v); }, std::string(o.help));
        break;
      case jo::Arity::optional_one:
        // A bare --lock comes back from CLI11 as "": the table's "true".
        cli = app.add_option_function<std::string>(
                     names, [&settings, &o](const std::string& v) { settings.emplace_back(&o, v.empty() ? "true" : v); },
                     std::string(o.help))
                  ->expected(0, 1);
        break;
      case jo::Arity::many:
        cli = app.add_option_function<std::vector<std::string>>(
                     names,
                     [&settings, &o](const std::vector<std::string>& vs) {
                       for (const auto& v : vs) settings.emplace_back(&o, v);
                     },
                     std::string(o.help))
                  ->take_all();
        break;
    }
    cli->group(std::string(o.group));
    if (!o.value_name.empty()) cli->type_name(std::string(o.value_name));
  }
  if (all_rows || (on_line(jo::get(jo::Id::lock)) && on_line(jo::get(jo::Id::no_lock))))
    app.get_option(jo::get(jo::Id::lock).flag())->excludes(app.get_option(jo::get(jo::Id::no_lock).flag()));
  if (all_rows || (on_line(jo::get(jo::Id::history)) && on_line(jo::get(jo::Id::no_history))))
    app.get_option(jo::get(jo::Id::history).flag())->excludes(app.get_option(jo::get(jo::Id::no_history).flag()));

  std::vector<std::string> option_words = split->option_words;
  option_words.insert(option_words.begin(), argc > 0 ? argv[0] : "cronrun");
  std::vector<char*> option_argv;
  for (auto& a : option_words) option_argv.push_back(a.data());
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
  auto given = [&](jo::Id id) {
    return std::ranges::any_of(settings, [&](const auto& s) { return s.first->id == id && s.second == "true"; });
  };
  out.json = given(jo::Id::json);
  if (out.json && !given(jo::Id::dry_run))
    return fail("--json: only with --dry-run (a run's record is --summary FILE or -)");
  // --dry-run reads only; --flush writes the history.
  if (given(jo::Id::dry_run) && given(jo::Id::flush))
    return fail("--dry-run: not with --flush (a flush writes the history; cronprof runs shows what it would fold)");

  // COMMAND and the job name, by the rules the planner shares.
  auto name = jo::check_command_line(*split);
  if (!name) return std::unexpected(name.error());
  JobSpec& spec = out.spec;
  spec.command = std::move(split->command);
  spec.name = std::move(*name);

  // The name decides which config file is read, so it is settled first.
  std::string config;
  for (const auto& [o, v] : settings)
    if (o->id == jo::Id::config) config = v;
  if (!config.empty()) {
    if (auto r = load_job_config(config, spec); !r) return std::unexpected(r.error());
  } else if (!spec.name.empty()) {
    std::string path = default_config_path(who, spec.name);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (auto r = load_job_config(path, spec); !r) return std::unexpected(r.error());
    } else if (errno != ENOENT && errno != ENOTDIR) {
      return std::unexpected(Error::sys("stat", path).context("job config"));
    }
  }

  for (const auto& [o, v] : settings)
    if (auto r = apply_setting(spec, *o, v); !r) return fail(fmt::format("{}: {}", o->flag(), r.error().message()));

  if (auto r = check_cpu_quota(spec, host_cpus); !r) {
    bool from_flag = std::ranges::any_of(settings, [](const auto& s) { return s.first->id == jo::Id::cpu; });
    return fail(fmt::format("{}: {}", from_flag ? "--cpu" : fmt::format("config {}: key 'cpu'", spec.config_path.value_or("?")),
                            r.error().message()));
  }
  if (spec.limits.swap_max_bytes && !spec.limits.memory_max_bytes)
    return fail("--swap: needs --memory as well (v1 applies swap as memory + swap)");
  if (spec.limits.memory_high_bytes && spec.limits.memory_max_bytes &&
      *spec.limits.memory_high_bytes > *spec.limits.memory_max_bytes)
    return fail("--memory-high: expected a value not above --memory");
  // The profile file is read and checked here, before anything is locked or created.
  if (auto r = resolve_seccomp(spec); !r) {
    bool from_flag = std::ranges::any_of(settings, [](const auto& s) { return s.first->id == jo::Id::seccomp; });
    return fail(fmt::format("{}: {}",
                            from_flag ? "--seccomp" : fmt::format("config {}: key 'seccomp'", spec.config_path.value_or("?")),
                            r.error().message()));
  }
  if (auto r = resolve_fleet(spec, settings, who); !r) return std::unexpected(r.error());
  resolve_job(spec, who);
  return out;
}

}  // namespace cronrun
