// Textual edit of JSON-with-comments config files (see config_edit.h for why
// textual), and the atomic replace that writes them.
#include "profiler/config_edit.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/safe_file.h"
#include "common/job_options.h"
#include "common/job_paths.h"

namespace cronrun::prof {

namespace {

// A tiny scanner over JSON with comments: only what is needed to find the spans of
// top-level values.
class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}
  size_t pos() const { return p_; }
  bool at_end() { skip_space(); return p_ >= t_.size(); }
  char peek() { skip_space(); return p_ < t_.size() ? t_[p_] : '\0'; }
  void advance() { ++p_; }

  // Skips whitespace and comments.
  void skip_space() {
    for (;;) {
      while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
      if (t_.substr(p_, 2) == "//") {
        while (p_ < t_.size() && t_[p_] != '\n') ++p_;
      } else if (t_.substr(p_, 2) == "/*") {
        size_t end = t_.find("*/", p_ + 2);
        p_ = end == std::string_view::npos ? t_.size() : end + 2;
      } else {
        return;
      }
    }
  }
  // At '"': returns the raw string (quotes included) and moves past it.
  std::optional<std::string_view> string() {
    if (peek() != '"') return std::nullopt;
    size_t start = p_++;
    while (p_ < t_.size() && t_[p_] != '"') p_ += t_[p_] == '\\' ? 2 : 1;
    if (p_ >= t_.size()) return std::nullopt;
    ++p_;
    return t_.substr(start, p_ - start);
  }
  // Skips one value of any kind; returns its [start, end) span.
  std::optional<std::pair<size_t, size_t>> value() {
    char c = peek();
    size_t start = p_;
    if (c == '"') {
      if (!string()) return std::nullopt;
      return std::pair{start, p_};
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (p_ < t_.size()) {
        skip_space();
        if (p_ >= t_.size()) break;
        char d = t_[p_];
        if (d == '"') {
          if (!string()) return std::nullopt;
          continue;
        }
        ++p_;
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') {
          if (--depth == 0) return std::pair{start, p_};
        }
      }
      return std::nullopt;
    }
    // number, true, false, null: up to a delimiter
    while (p_ < t_.size() && t_[p_] != ',' && t_[p_] != '}' && t_[p_] != ']' && t_[p_] != ' ' && t_[p_] != '\n' &&
           t_[p_] != '\t' && t_[p_] != '\r' && t_.substr(p_, 2) != "//" && t_.substr(p_, 2) != "/*")
      ++p_;
    if (p_ == start) return std::nullopt;
    return std::pair{start, p_};
  }

 private:
  std::string_view t_;
  size_t p_ = 0;
};

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

// A value as the config file spells it (cronrun.json(5)): flags as JSON booleans,
// everything else as a string, the way a person writes "2G" or "50%".
std::string json_value(const job_options::Option& o, const std::string& v) {
  if (o.arity == job_options::Arity::flag) return std::get<bool>(*o.parse(v)) ? "true" : "false";
  return quoted(v);
}

// Each key must be one the job config may carry, each value one cronrun parses:
// the option table decides, as it does for the runner's config loader.
Result<std::vector<std::pair<std::string, std::string>>> checked_values(
    const std::vector<std::pair<std::string, std::string>>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : values) {
    const job_options::Option* o = job_options::find_config_key(k);
    if (o == nullptr) return fail(fmt::format("'{}' is not a job config key (cronrun.json(5))", k));
    if (auto parsed = o->parse(v); !parsed) return fail(fmt::format("key '{}': {}", k, parsed.error().message()));
    out.emplace_back(k, json_value(*o, v));
  }
  return out;
}

}  // namespace

Result<std::string> set_config_keys(std::string_view text,
                                    const std::vector<std::pair<std::string, std::string>>& given) {
  auto values_or = checked_values(given);
  if (!values_or) return std::unexpected(std::move(values_or.error()));
  const auto& values = *values_or;  // JSON text of each value
  // Validate first with the same reader cronrun uses (comments allowed).
  bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) {
    std::string out = "{\n";
    for (size_t i = 0; i < values.size(); ++i)
      out += "  " + quoted(values[i].first) + ": " + values[i].second + (i + 1 < values.size() ? ",\n" : "\n");
    out += "}\n";
    return out;
  }
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (parsed.is_discarded()) return fail("not valid JSON (// comments are allowed); not changed");
  if (!parsed.is_object()) return fail(std::string("expected a JSON object, found ") + parsed.type_name());

  // Spans of the top-level values, and where the last member ends.
  Scanner s(text);
  if (s.peek() != '{') return fail("expected '{' at the start");
  s.advance();
  std::map<std::string, std::pair<size_t, size_t>> spans;
  std::optional<size_t> last_value_end;
  size_t close = std::string_view::npos;
  for (;;) {
    char c = s.peek();
    if (c == '}') {
      close = s.pos();
      break;
    }
    if (c == ',') {
      s.advance();
      continue;
    }
    auto key = s.string();
    if (!key) return fail("could not read a key");
    if (s.peek() != ':') return fail("expected ':' after a key");
    s.advance();
    auto span = s.value();
    if (!span) return fail("could not read a value");
    std::string k = nlohmann::json::parse(*key).get<std::string>();
    spans[k] = *span;
    last_value_end = span->second;
  }

  // Edits, applied from the end of the text backwards so offsets stay valid.
  struct Edit {
    size_t at, len;
    std::string with;
  };
  std::vector<Edit> edits;
  std::string appended;
  for (const auto& [k, v] : values) {
    if (auto it = spans.find(k); it != spans.end()) {
      edits.push_back({it->second.first, it->second.second - it->second.first, v});
    } else {
      appended += "  " + quoted(k) + ": " + v;
      appended += ",\n";
    }
  }
  if (!appended.empty()) {
    appended.resize(appended.size() - 2);  // no comma after the last new member
    appended += "\n";
    // Closing brace on a line of its own: insert the members on lines before it.
    size_t line_start = text.rfind('\n', close);
    bool own_line = line_start != std::string_view::npos &&
                    text.substr(line_start + 1, close - line_start - 1).find_first_not_of(" \t") ==
                        std::string_view::npos;
    if (own_line)
      edits.push_back({line_start + 1, 0, appended});
    else
      edits.push_back({close, 0, "\n" + appended});
    if (last_value_end) edits.push_back({*last_value_end, 0, ","});
  }
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.at > b.at; });
  std::string out(text);
  for (const Edit& e : edits) out.replace(e.at, e.len, e.with);

  auto check = nlohmann::json::parse(out, nullptr, false, true);
  if (check.is_discarded() || !check.is_object()) return fail("internal error: the edited config would not parse");
  for (const auto& [k, v] : values) {
    if (!check.contains(k) || check[k] != nlohmann::json::parse(v))
      return fail("internal error: the edit did not set '" + k + "'");
  }
  return out;
}

// The runner's own rule (common/job_paths.h), so the two can never disagree on
// which file a job reads.
std::string default_job_config_path(const std::string& job) { return default_config_path(Invoker::current(), job); }

namespace {

// The one directory --write may create: where cronrun looks for job configs. An
// explicit path's directory must exist, so a typo or a planted path never makes
// root build directories somewhere else.
std::string default_job_config_dir() { return job_config_dir(Invoker::current()); }

// A temp name beside `name` that nobody could have prepared: random suffix,
// O_CREAT|O_EXCL|O_NOFOLLOW relative to the checked directory, retried on EEXIST.
Result<std::pair<UniqueFd, std::string>> create_temp(const CheckedDir& dir, const std::string& name, mode_t mode) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  constexpr int kAttempts = 100;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    unsigned char rnd[8];
    if (::getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd))
      return fail_sys("getrandom", dir.child(name));
    std::string tmp = name + ".";
    for (unsigned char c : rnd) tmp += kChars[c % (sizeof kChars - 1)];
    auto fd = dir.create_file(tmp, O_WRONLY, mode);
    if (fd) return std::pair{std::move(*fd), tmp};
    if (fd.error().err() != EEXIST) return std::unexpected(std::move(fd.error()));
  }
  return fail_sys("create", dir.child(name + ".*"), EEXIST);
}

}  // namespace

Result<void> write_file_atomically(const std::string& path, const std::string& content,
                                   const std::function<Result<void>(const std::string&)>& check) {
  const uid_t me = ::geteuid();  // whose files these are; asked once
  auto [dir_path, name] = split_path(path);
  if (name.empty() || name == "." || name == "..") return fail(path + ": expected a file path, not a directory");
  bool own_dir = dir_path == default_job_config_dir();
  auto dir = own_dir ? CheckedDir::make(dir_path, 0755) : CheckedDir::open(dir_path);
  if (!dir) {
    if (dir.error().err() == ENOENT)
      return fail(fmt::format("{}: directory does not exist; create it first", dir_path));
    return std::unexpected(std::move(dir.error()));
  }

  // The target itself: never followed, never anything but a regular file.
  struct stat old {};
  bool existed = ::fstatat(dir->fd(), name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (!existed && errno != ENOENT) return fail_sys("lstat", path);
  if (existed && S_ISLNK(old.st_mode))
    return fail(fmt::format("{}: is a symlink; refusing to replace it (name the file itself)", path));
  if (existed && !S_ISREG(old.st_mode))
    return fail(fmt::format("{}: is a {}, expected a regular file", path, file_type_name(old.st_mode)));
  if (existed && dir->shared() && old.st_uid != me)
    return fail(fmt::format("{}: owned by uid {} in a directory others can write; refusing to replace another "
                            "user's file",
                            path, old.st_uid));
  // Mode and owner carry over only from a file root or we own; another user's
  // file must not hand its owner (and so write access) to the new one, and its
  // mode may only narrow ours.
  bool ours = existed && (old.st_uid == me || old.st_uid == 0);
  mode_t mode = !existed ? 0644 : ours ? (old.st_mode & 0777) : (old.st_mode & 0644);

  auto tmp = create_temp(*dir, name, mode);
  if (!tmp) return std::unexpected(std::move(tmp.error()));
  auto& [fd, tmp_name] = *tmp;
  std::string tmp_path = dir->child(tmp_name);
  auto cleanup = [&] { ::unlinkat(dir->fd(), tmp_name.c_str(), 0); };
  // create_file's mode went through the umask.
  if (::fchmod(fd.get(), mode) != 0) {
    cleanup();
    return fail_sys("fchmod", tmp_path);
  }
  if (ours && me == 0 && ::fchown(fd.get(), old.st_uid, old.st_gid) != 0) {
    cleanup();
    return fail_sys("fchown", tmp_path);
  }
  if (auto w = write_all(fd.get(), content, tmp_path); !w) {
    cleanup();
    return w;
  }
  if (::fsync(fd.get()) != 0) {
    cleanup();
    return fail_sys("fsync", tmp_path);
  }
  fd.reset();
  if (check) {
    if (auto ok = check(tmp_path); !ok) {
      cleanup();
      return ok;
    }
  }
  // renameat replaces the directory entry: should a symlink be planted at `name`
  // after the check, it is replaced, not followed.
  if (::renameat(dir->fd(), tmp_name.c_str(), dir->fd(), name.c_str()) != 0) {
    int err = errno;
    cleanup();
    return fail_sys("rename", path, err);
  }
  // The rename is durable only once the directory is synced.
  if (::fsync(dir->fd()) != 0) return fail_sys("fsync", dir_path);
  return {};
}

}  // namespace cronrun::prof
