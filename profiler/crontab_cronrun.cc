// Reading a cronrun call out of crontab shell text. The shell split is the part of
// sh(1) that decides word boundaries (quotes, backslashes, operators, redirections);
// the option table mirrors runner/cli.cc so "--memory 2G" is known to take a value
// and "--env A=1 B=2" to take all values up to the next option or "--".
#include "profiler/crontab_cronrun.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "common/units.h"

namespace cronrun::crontab {

namespace {

bool is_op_char(char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')'; }

// Options of cronrun that take a value (runner/cli.cc); everything else is a flag.
const std::set<std::string, std::less<>>& valued_options() {
  static const std::set<std::string, std::less<>> k = {
      "-n",          "--name",      "-c",         "--config",        "--env",        "--nice",
      "--ionice",    "--timeout",   "--kill-after", "--memory",      "--memory-high", "--swap",
      "--cpu",       "--cpu-weight", "--pids",    "--io-weight",     "--cgroup-parent", "--cgroup",
      "--seccomp",   "--lock-wait", "--on-locked", "--history",      "--summary",    "--output",
      "--log-dir",   "--log-max"};
  return k;
}

bool is_assignment(const std::string& w) {
  size_t eq = w.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  if (std::isdigit(static_cast<unsigned char>(w[0]))) return false;
  return std::all_of(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(eq),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Reserved words that may open a simple command: "test -x X || { cronrun ...; }",
// "if ...; then cronrun ...; fi".
bool is_reserved(const std::string& w) {
  static const std::set<std::string, std::less<>> k = {"{", "}", "!", "if", "then", "else", "elif", "do", "while", "until"};
  return k.contains(w);
}

std::string basename_of(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

bool valid_job_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// Same rule as the runner's default_job_name() (runner/job_spec.cc): basename,
// characters outside the name alphabet mapped to '_'. Both must agree, or history
// rows and crontab entries would not join.
std::string default_job_name(const std::string& command0) {
  std::string out;
  for (char c : basename_of(command0)) out += valid_job_name(std::string_view(&c, 1)) ? c : '_';
  if (out.size() > 64) out.resize(64);
  if (out.empty() || out == "." || out == "..") out = "job";
  return out;
}

// Wrappers that run their arguments as a command, with the options of theirs that
// take a separate value. `positional` counts leading non-option arguments that are
// not the command (timeout's DURATION, flock's lock file).
struct Wrapper {
  const char* name;
  std::array<const char*, 4> valued;
  int positional;
};
constexpr Wrapper kWrappers[] = {
    {"exec", {"-a"}, 0},          {"nice", {"-n"}, 0},          {"ionice", {"-c", "-n"}, 0},
    {"nohup", {}, 0},             {"chronic", {}, 0},           {"setsid", {}, 0},
    {"env", {"-u", "-C"}, 0},     {"sudo", {"-u", "-g"}, 0},    {"time", {}, 0},
    {"command", {}, 0},           {"timeout", {"-s", "-k"}, 1}, {"flock", {"-w", "-E"}, 1},
    {"runuser", {"-u", "-g"}, 0}, {"systemd-cat", {"-t", "-p"}, 0},
};

const Wrapper* wrapper_for(const std::string& word) {
  std::string base = basename_of(word);
  for (const auto& w : kWrappers)
    if (base == w.name) return &w;
  return nullptr;
}

// Index just past the wrapper's own options and positionals, starting at `i` (the
// word after the wrapper name).
size_t skip_wrapper_args(const Wrapper& w, const std::vector<std::string>& words, size_t i) {
  int positional = w.positional;
  while (i < words.size()) {
    const std::string& a = words[i];
    if (a == "--") return i + 1 + static_cast<size_t>(positional);
    if (a.size() > 1 && a[0] == '-') {
      bool valued = std::any_of(w.valued.begin(), w.valued.end(), [&](const char* v) { return v && a == v; });
      i += valued ? 2 : 1;
      continue;
    }
    if (std::string_view(w.name) == "env" && is_assignment(a)) {
      ++i;
      continue;
    }
    if (positional > 0) {
      --positional;
      ++i;
      continue;
    }
    break;
  }
  return i;
}

Result<CronrunCall> parse_call(const std::vector<std::string>& args) {
  CronrunCall call;
  size_t i = 0;
  std::optional<std::string> memory_text;
  auto value_of = [&](const std::string& opt, const std::optional<std::string>& inline_value) -> Result<std::string> {
    if (inline_value) return *inline_value;
    if (i + 1 >= args.size()) return fail(fmt::format("cronrun option {} needs a value", opt));
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;  // first word of COMMAND without "--"
    std::string opt = a;
    std::optional<std::string> inline_value;  // "--name=" is an empty value, not a missing one
    if (a.starts_with("--")) {
      if (size_t eq = a.find('='); eq != std::string::npos) {
        opt = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
      }
    } else if (a.size() > 2 && (a[1] == 'n' || a[1] == 'c')) {
      opt = a.substr(0, 2);  // -nNAME, -cFILE
      inline_value = a.substr(2);
    }
    if (opt == "--lock") {
      // Optional value: a following word that is not an option is the path.
      if (inline_value) {
        call.lock_path = *inline_value;
      } else if (i + 1 < args.size() && !args[i + 1].starts_with("-")) {
        call.lock_path = args[++i];
      }
      call.lock = true;
      continue;
    }
    if (opt == "--no-lock") {
      call.lock = false;
      continue;
    }
    if (!valued_options().contains(opt)) continue;  // a flag (-q, --report, ...)
    auto v = value_of(opt, inline_value);
    if (!v) return std::unexpected(v.error());
    if (opt == "-n" || opt == "--name") {
      call.job = *v;
      call.name_given = true;
    } else if (opt == "-c" || opt == "--config") {
      call.config = *v;
    } else if (opt == "--memory") {
      memory_text = *v;
    } else if (opt == "--history") {
      call.history = *v;
    } else if (opt == "--env") {
      // take_all: every following word up to the next option or "--".
      while (i + 1 < args.size() && !args[i + 1].starts_with("-")) ++i;
    }
  }
  call.command.assign(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())), args.end());
  if (call.command.empty()) return fail("cronrun call without a COMMAND (expected 'cronrun [OPTIONS] -- COMMAND')");
  if (call.name_given && !valid_job_name(call.job))
    return fail(fmt::format("cronrun --name '{}' is not a valid job name ([A-Za-z0-9_.-]{{1,64}})", call.job));
  if (!call.name_given) call.job = default_job_name(call.command.front());
  if (memory_text) {
    auto bytes = units::parse_size(*memory_text);
    if (!bytes) return std::unexpected(std::move(bytes.error()).context("cronrun --memory"));
    call.memory_max_bytes = *bytes;
  }
  return call;
}

}  // namespace

std::vector<ShellToken> shell_split(std::string_view s) {
  std::vector<ShellToken> out;
  std::string word;
  bool in_word = false;
  auto flush = [&] {
    if (in_word) out.push_back({ShellToken::Type::word, std::move(word)});
    word.clear();
    in_word = false;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      flush();
    } else if (c == '\\' && i + 1 < s.size()) {
      word += s[++i];
      in_word = true;
    } else if (c == '\'') {
      size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) end = s.size();
      word += s.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '"') {
      ++i;
      for (; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && std::string_view("\"\\$`\n").find(s[i + 1]) != std::string_view::npos)
          ++i;
        word += s[i];
      }
      in_word = true;
    } else if (c == '#' && !in_word) {
      break;  // a shell comment to the end of the line
    } else if (c == '>' || c == '<') {
      // "2>&1", ">>log", "<in": an all-digit word just before is the fd number.
      if (in_word && std::all_of(word.begin(), word.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); }))
        word.clear(), in_word = false;
      flush();
      std::string op(1, c);
      while (i + 1 < s.size() && (s[i + 1] == '>' || s[i + 1] == '&' || s[i + 1] == '|')) op += s[++i];
      out.push_back({ShellToken::Type::redirect, op});
    } else if (is_op_char(c)) {
      flush();
      std::string op(1, c);
      if (i + 1 < s.size() && (s[i + 1] == c) && (c == '&' || c == '|' || c == ';')) op += s[++i];
      out.push_back({ShellToken::Type::op, op});
    } else {
      word += c;
      in_word = true;
    }
  }
  flush();
  return out;
}

Result<std::optional<CronrunCall>> find_cronrun(std::string_view shell_command) {
  auto tokens = shell_split(shell_command);
  // Split into simple commands; drop redirections and their targets.
  std::vector<std::vector<std::string>> commands(1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    if (t.type == ShellToken::Type::op) {
      commands.emplace_back();
    } else if (t.type == ShellToken::Type::redirect) {
      // ">&2" and "2>&1" carry their target in the operator only when followed by
      // a digit word; either way the next word is the target.
      if (i + 1 < tokens.size() && tokens[i + 1].type == ShellToken::Type::word) ++i;
    } else {
      commands.back().push_back(t.text);
    }
  }
  for (const auto& words : commands) {
    size_t i = 0;
    while (i < words.size()) {
      if (is_reserved(words[i]) || is_assignment(words[i])) {
        ++i;
      } else if (const Wrapper* w = wrapper_for(words[i])) {
        // "command -v cronrun" only asks whether cronrun exists.
        if (std::string_view(w->name) == "command" && i + 1 < words.size() &&
            (words[i + 1] == "-v" || words[i + 1] == "-V")) {
          i = words.size();
          break;
        }
        i = skip_wrapper_args(*w, words, i + 1);
      } else {
        break;
      }
    }
    if (i >= words.size() || basename_of(words[i]) != "cronrun") continue;
    std::vector<std::string> args(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
    auto call = parse_call(args);
    if (!call) return std::unexpected(call.error());
    return std::optional<CronrunCall>(std::move(*call));
  }
  return std::optional<CronrunCall>();
}

}  // namespace cronrun::crontab
