// $CRONRUN_COUNTERS parsing. Names follow the metric-name convention
// [A-Za-z0-9_.:-], at most 128 characters; values are finite decimals.
#include "runner/counters.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

#include "common/fd.h"
#include "runner/lock.h"

namespace cronrun {
namespace {

constexpr size_t kMaxBytes = 4u << 20;
constexpr size_t kMaxNames = 1000;

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-'))
      return false;
  return true;
}

bool parse_value(std::string_view v, double& out) {
  if (v.empty() || v.size() > 64) return false;
  std::string s(v);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

ParsedCounters parse_counters(std::string_view text) {
  ParsedCounters out;
  if (text.size() > kMaxBytes) {
    text = text.substr(0, kMaxBytes);
    out.truncated = true;
  }
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    std::string_view name, value;
    if (auto colon = line.find(':'); colon != std::string_view::npos && line.find('|') != std::string_view::npos) {
      // StatsD: name:value|c  (only counters are summed; |g, |ms ... are not ours)
      name = line.substr(0, colon);
      std::string_view rest = line.substr(colon + 1);
      size_t bar = rest.find('|');
      if (trim(rest.substr(bar + 1)) != "c") {
        ++out.invalid_lines;
        continue;
      }
      value = rest.substr(0, bar);
    } else {
      size_t sp = line.find_first_of(" \t");
      if (sp == std::string_view::npos) {
        ++out.invalid_lines;
        continue;
      }
      name = line.substr(0, sp);
      value = trim(line.substr(sp + 1));
    }
    double v = 0;
    if (!valid_name(name) || !parse_value(value, v) || name.starts_with("db.")) {
      ++out.invalid_lines;  // db.* is reserved for the query counter
      continue;
    }
    auto it = out.values.find(std::string(name));
    if (it == out.values.end()) {
      if (out.values.size() >= kMaxNames) {
        ++out.invalid_lines;
        continue;
      }
      out.values.emplace(std::string(name), v);
    } else if (std::isfinite(it->second + v)) {
      it->second += v;
    } else {
      ++out.invalid_lines;  // a sum past a double's range would be recorded as null
    }
  }
  return out;
}

std::string runtime_dir() {
  if (geteuid() == 0) return "/run/cronrun/runs";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg == '/') return std::string(xdg) + "/cronrun/runs";
  return fmt::format("/tmp/cronrun-{}/runs", geteuid());
}

Result<CountersFile> CountersFile::create(const std::string& dir, const std::string& run_id) {
  if (geteuid() != 0) {
    if (auto r = ensure_private_dir(dir.substr(0, dir.find_last_of('/'))); !r) return std::unexpected(r.error());
  }
  if (auto r = ensure_private_dir(dir); !r) return std::unexpected(r.error());
  std::string path = dir + "/" + run_id + ".counters";
  // The job runs as the same user, so 0600 is enough for it to append.
  auto fd = open_fd(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  if (!fd) return std::unexpected(std::move(fd.error()).context("creating $CRONRUN_COUNTERS"));
  return CountersFile(path);
}

CountersFile::~CountersFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

Result<ParsedCounters> CountersFile::read() const {
  auto fd = open_fd(path_, O_RDONLY | O_NOFOLLOW);
  if (!fd) return std::unexpected(fd.error());
  std::string text;
  char buf[65536];
  ssize_t n;
  while (text.size() <= kMaxBytes && (n = ::read(fd->get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  return parse_counters(text);
}

}  // namespace cronrun
