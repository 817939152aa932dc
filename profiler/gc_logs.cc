// Removing the logs of deleted runs. The paths come from the history, but the
// directories on the way may be writable by the job's user (a --log-dir an admin
// shared): a path is resolved once, its directory opened with the rules of
// common/safe_file.h (no symlink someone else planted, owner root or us), and the
// file unlinked relative to that fd after an lstat-like check, so a swapped
// directory or a symlink in the log's place cannot redirect the unlink. The
// name must be the run's own RUN-ID.log: a record naming any other file (edited
// by hand, or damaged) does not get that file deleted.
#include "profiler/gc_logs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "common/safe_file.h"

namespace cronrun::prof {

Result<std::vector<RunLog>> logs_of_runs_before(const HistoryStore& store, double cutoff_unix_s) {
  std::vector<RunLog> logs;
  RunFilter filter;
  filter.before_unix_s = cutoff_unix_s;
  auto done = store.each_run(filter, [&](const RunRecord& r) {
    if (r.status != RunStatus::running && r.log.path && !r.log.path->empty())
      logs.push_back({r.run_id, *r.log.path});
  });
  if (!done) return std::unexpected(done.error());
  return logs;
}

namespace {

enum class Outcome { removed, already_gone };

Result<Outcome> remove_one(const RunLog& log) {
  auto [dir_path, name] = split_path(log.path);
  if (name != log.run_id + ".log")
    return fail(fmt::format("{}: not the log of run {} (expected a file named {}.log); kept", log.path, log.run_id,
                            log.run_id));
  auto dir = CheckedDir::open(dir_path);
  if (!dir) {
    if (dir.error().err() == ENOENT) return Outcome::already_gone;  // the job's directory went with it
    return std::unexpected(std::move(dir.error()));
  }
  struct stat st {};
  if (::fstatat(dir->fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Outcome::already_gone;
    return std::unexpected(Error::sys("fstatat", log.path));
  }
  if (!S_ISREG(st.st_mode)) return fail(fmt::format("{}: a {}, not a log file; kept", log.path, file_type_name(st.st_mode)));
  if (::unlinkat(dir->fd(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return Outcome::already_gone;
    return std::unexpected(Error::sys("unlinkat", log.path));
  }
  return Outcome::removed;
}

}  // namespace

LogRemoval remove_run_logs(const HistoryStore& store, const std::vector<RunLog>& logs) {
  LogRemoval out;
  for (const RunLog& log : logs) {
    auto still_there = store.find_run(log.run_id);
    if (!still_there) {
      out.failures.push_back(fmt::format("{}: kept, could not check its run: {}", log.path, still_there.error().message()));
      continue;
    }
    if (*still_there) continue;
    auto r = remove_one(log);
    if (!r) out.failures.push_back(r.error().message());
    else if (*r == Outcome::removed) ++out.removed;
    else ++out.already_gone;
  }
  return out;
}

}  // namespace cronrun::prof
