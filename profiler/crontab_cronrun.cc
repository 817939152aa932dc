// Reading a cronrun call out of crontab shell text. The shell split is the part of
// sh(1) that decides word boundaries (quotes, backslashes, operators, redirections);
// the cronrun words are then read with cronrun's own option table and grammar
// (common/job_options.h), so "--memory 2G" is known to take a value, "--env A=1
// B=2" both values, and a line the runner refuses is refused here too.
#include "profiler/crontab_cronrun.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "common/job_options.h"

namespace cronrun::crontab {

namespace {

bool is_op_char(char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')'; }

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

// cronrun's own grammar and checks (common/job_options.h): the words are cut
// where the runner cuts them, and a line the runner would refuse is an error
// here too, never a job with an invented name.
Result<std::optional<CronrunCall>> parse_call(const std::vector<std::string>& args) {
  namespace jo = job_options;
  auto line = jo::split_command_line(args);
  if (!line) return std::unexpected(std::move(line.error()));
  auto name = jo::check_command_line(*line);
  if (!name) return std::unexpected(std::move(name.error()));
  if (name->empty()) return std::optional<CronrunCall>();  // --flush: folds the journal, runs no job
  CronrunCall call;
  call.job = std::move(*name);
  call.command = std::move(line->command);
  for (const jo::Given& g : line->given) {
    const std::string* value = g.values.empty() ? nullptr : &g.values.back();
    switch (g.option->id) {
      case jo::Id::name: call.name_given = true; break;
      case jo::Id::config: call.config = *value; break;
      case jo::Id::history: call.history = *value; break;
      case jo::Id::memory: call.memory_max_bytes = std::get<uint64_t>(*g.option->parse(*value)); break;
      case jo::Id::no_lock: call.lock = false; break;
      case jo::Id::lock:
        call.lock = true;
        if (value) call.lock_path = *value;
        break;
      default: break;
    }
  }
  return std::optional<CronrunCall>(std::move(call));
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
    return parse_call(args);
  }
  return std::optional<CronrunCall>();
}

std::string cron_home(const Entry& e) {
  constexpr std::string_view kSpool = "/var/spool/cron/crontabs/";
  const passwd* pw = nullptr;
  if (e.user)
    pw = ::getpwnam(e.user->c_str());
  else if (e.file.starts_with(kSpool))
    pw = ::getpwnam(e.file.substr(kSpool.size()).c_str());
  else
    pw = ::getpwuid(::geteuid());
  return pw && pw->pw_dir ? std::string(pw->pw_dir) : std::string();
}

bool same_history(const std::string& named, const std::string& home, const std::string& read) {
  namespace fs = std::filesystem;
  if (named.empty() || read.empty()) return named == read;
  fs::path a(named);
  if (a.is_relative()) {
    if (home.empty()) return named == read;
    a = fs::path(home) / a;
  }
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(read.c_str(), &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ec;
  fs::path b = fs::absolute(fs::path(read), ec);
  if (ec) b = fs::path(read);
  return a.lexically_normal() == b.lexically_normal();
}

}  // namespace cronrun::crontab
