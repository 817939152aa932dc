// Textual edit of JSON-with-comments config files (see config_edit.h for why
// textual), and the atomic replace that writes them.
#include "profiler/config_edit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "runner/job_spec.h"

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

}  // namespace

Result<std::string> set_config_keys(std::string_view text,
                                    const std::vector<std::pair<std::string, std::string>>& values) {
  // Validate first with the same reader cronrun uses (comments allowed).
  bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) {
    std::string out = "{\n";
    for (size_t i = 0; i < values.size(); ++i)
      out += "  " + quoted(values[i].first) + ": " + quoted(values[i].second) + (i + 1 < values.size() ? ",\n" : "\n");
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
      edits.push_back({it->second.first, it->second.second - it->second.first, quoted(v)});
    } else {
      appended += "  " + quoted(k) + ": " + quoted(v);
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
    if (!check.contains(k) || check[k] != v) return fail("internal error: the edit did not set '" + k + "'");
  }
  return out;
}

// The runner's own rule, so the two can never disagree on which file a job reads.
std::string default_job_config_path(const std::string& job) { return default_config_path(job); }

Result<void> write_file_atomically(const std::string& path, const std::string& content,
                                   const std::function<Result<void>(const std::string&)>& check) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return fail_sys("mkdir", prefix);
  }
  struct stat old {};
  bool existed = ::stat(path.c_str(), &old) == 0;

  std::string tmpl = path + ".XXXXXX";
  int raw = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (raw < 0) return fail_sys("mkostemp", tmpl);
  UniqueFd fd(raw);
  auto cleanup = [&] { ::unlink(tmpl.c_str()); };
  mode_t mode = existed ? (old.st_mode & 07777) : 0644;
  if (::fchmod(fd.get(), mode) != 0) {
    cleanup();
    return fail_sys("fchmod", tmpl);
  }
  // Keep the owner (root editing a user's file); only root can, others keep theirs.
  if (existed && ::geteuid() == 0 && ::fchown(fd.get(), old.st_uid, old.st_gid) != 0) {
    cleanup();
    return fail_sys("fchown", tmpl);
  }
  if (auto w = write_all(fd.get(), content, tmpl); !w) {
    cleanup();
    return w;
  }
  if (::fsync(fd.get()) != 0) {
    cleanup();
    return fail_sys("fsync", tmpl);
  }
  fd.reset();
  if (check) {
    if (auto ok = check(tmpl); !ok) {
      cleanup();
      return ok;
    }
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    cleanup();
    return fail_sys("rename", path);
  }
  // The rename is durable only once the directory is synced.
  if (auto dfd = open_fd(dir, O_RDONLY | O_DIRECTORY)) ::fsync(dfd->get());
  return {};
}

}  // namespace cronrun::prof
