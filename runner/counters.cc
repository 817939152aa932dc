// $CRONRUN_COUNTERS parsing. Names follow the metric-name convention
// [A-Za-z0-9_.:-], at most 128 characters; values are finite decimals.
#include "runner/counters.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

#include "common/fd.h"
#include "common/job_paths.h"
#include "runner/db_counter.h"
#include "runner/log.h"

namespace cronrun {
namespace {

constexpr size_t kMaxBytes = 4u << 20;

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
      if (out.values.size() >= kMaxCounterNames) {
        ++out.over_cap;
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

// The rule is common/job_paths.h's; callers with a resolved JobSpec use
// runs_dir() of its Invoker instead (see the issue 15 notes).
std::string runtime_dir() { return runs_dir(Invoker::current()); }

Result<CountersFile> CountersFile::create(const std::string& dir, const std::string& run_id) {
  // cronrun's own directory: made 0700 if missing; every component checked, the
  // last one ours with no access for anyone else.
  auto checked = CheckedDir::make(dir, 0700);
  if (!checked) return std::unexpected(std::move(checked.error()).context("creating $CRONRUN_COUNTERS"));
  std::string name = run_id + ".counters";
  // The job runs as the same user, so 0600 is enough for it to append.
  auto fd = checked->create_file(name, O_WRONLY, 0600);
  if (!fd) return std::unexpected(std::move(fd.error()).context("creating $CRONRUN_COUNTERS"));
  std::string path = checked->child(name);
  CountersFile file(std::move(*checked), std::move(name), std::move(path), std::move(*fd));
  // Held until the destructor removes it; a runner killed before that leaves it
  // unheld for sweep().
  if (auto held = hold_file(file.hold_.get(), file.path_); !held)
    return std::unexpected(std::move(held.error()).context("creating $CRONRUN_COUNTERS"));
  return file;
}

Result<size_t> CountersFile::sweep(const std::string& dir, time_t now) {
  // The directory is private to this user: only its own runs fill it.
  auto listing = list_checked_dir(dir);
  if (!listing) return std::unexpected(std::move(listing.error()));
  if (!*listing) return 0;
  size_t removed = 0;
  for (const auto& name : (*listing)->names) {
    if (!name.ends_with(".counters")) continue;
    auto r = remove_if_left((*listing)->dir.fd(), dir, name, now, kLeftoverMinAgeS);
    if (!r) return std::unexpected(std::move(r.error()));
    if (*r == Leftover::removed) ++removed;
  }
  return removed;
}

CountersFile::~CountersFile() {
  // The job may have replaced the file by a directory; either way it is ours to remove.
  if (!name_.empty() && ::unlinkat(dir_.fd(), name_.c_str(), 0) != 0 && errno == EISDIR)
    ::unlinkat(dir_.fd(), name_.c_str(), AT_REMOVEDIR);
}

Result<void> CountersFile::remove_left(const std::string& dir, const std::string& run_id) {
  auto checked = CheckedDir::open(dir);
  if (!checked) return checked.error().err() == ENOENT ? Result<void>{} : std::unexpected(std::move(checked.error()));
  std::string name = run_id + ".counters";
  if (::unlinkat(checked->fd(), name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno == EISDIR && ::unlinkat(checked->fd(), name.c_str(), AT_REMOVEDIR) == 0) return {};
  return fail_sys("unlink", checked->child(name));
}

size_t sweep_leftovers(const std::string& runs_dir, const std::string& db_base_dir, time_t now) {
  size_t removed = 0;
  auto counters = CountersFile::sweep(runs_dir, now);
  auto db = counters ? dbcount::Session::sweep(db_base_dir, now) : Result<size_t>{0};
  for (const auto* r : {&counters, &db}) {
    if (*r) removed += **r;
  }
  if (!counters || !db)
    log::warn(fmt::format("removing files that killed runners left: {}", (!counters ? counters : db).error().message()));
  return removed;
}

Result<ParsedCounters> CountersFile::read() const {
  auto fd = dir_.open_regular(name_, O_RDONLY);
  if (!fd) return std::unexpected(std::move(fd.error()));
  auto text = read_bounded(fd->get(), kMaxBytes, path_);
  if (!text) return std::unexpected(std::move(text.error()));
  ParsedCounters parsed = parse_counters(text->data);
  parsed.truncated = parsed.truncated || text->truncated;
  return parsed;
}

}  // namespace cronrun
