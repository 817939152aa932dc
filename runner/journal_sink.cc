// The journal sink: two O_APPEND writes per run, a fold now and then (see
// journal_sink.h).
#include "runner/journal_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/history.h"
#include "common/safe_file.h"
#include "runner/log.h"

namespace cronrun {

namespace {

// mkdir -p of `dir`; existing directories keep their permissions (an admin may
// have chosen them), as the history's own open does.
Result<void> make_dirs(const std::string& dir, mode_t mode) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) return fail_sys("mkdir", prefix);
  }
  return {};
}

}  // namespace

Result<void> JournalSink::started(const RunRecord& r) {
  journal::test_pause("start");
  auto size = writer_.append(journal::RecordType::start, r);
  if (!size) return std::unexpected(std::move(size.error()).with_kind(ErrorKind::history));
  return {};
}

Result<void> JournalSink::finished(const RunRecord& r) {
  journal::test_pause("finish");
  auto size = writer_.append(journal::RecordType::finish, r);
  if (!size) return std::unexpected(std::move(size.error()).with_kind(ErrorKind::history));
  if (*size < journal::kFoldThresholdBytes) return {};
  // The record is safe in the journal; folding is housekeeping. A fold that fails
  // is said once here and retried by the next run.
  HistoryOpenOptions opts{.default_location = default_location_, .move_damaged_aside = true};
  folded_ = true;  // tried, at least: the housekeeping of this run
  auto rep = HistoryStore::fold(history_path_, /*wait_for_lock=*/false, opts);
  if (!rep) {
    log::warn(fmt::format("folding {} into the history: {}; the next run retries", writer_.path(), rep.error().message()));
    return {};
  }
  for (const auto& n : rep->notes) log::warn(n);
  return {};
}

namespace {

Result<std::unique_ptr<RecordSink>> open_sink(const std::string& history_path, bool default_location) {
  auto [dir, name] = split_path(history_path);
  struct stat dir_st {};
  if (::stat(dir.c_str(), &dir_st) != 0) {
    int err = errno;
    if (err == ENOENT && default_location) {
      if (auto made = make_dirs(dir, ::geteuid() == 0 ? 0755 : 0700); !made) return std::unexpected(made.error());
    } else if (err == ENOENT) {
      return std::unexpected(Error::sys("stat", dir, err)
                                 .context("its directory must exist (cronrun creates only its default history directory)"));
    } else {
      return fail_sys("stat", dir, err);
    }
  }
  auto checked = CheckedDir::open(dir);
  if (!checked) return std::unexpected(checked.error());
  // The journal is read by whoever may read the history: the same mode.
  mode_t mode = 0644;
  struct stat db_st {};
  bool have_db = ::fstatat(checked->fd(), name.c_str(), &db_st, AT_SYMLINK_NOFOLLOW) == 0;
  if (have_db) {
    // The run never opens the history, but a path that cannot be one (a symlink,
    // a FIFO) is a mistake or a plant: refused before anything starts, as when
    // the run wrote SQLite itself. Deeper checks (-wal/-shm, damage) are the
    // fold's, which opens it; records wait in the journal until then.
    if (!S_ISREG(db_st.st_mode))
      return fail(history_path + " is " +
                  (S_ISLNK(db_st.st_mode) ? std::string("a symbolic link") : std::string("a ") + file_type_name(db_st.st_mode)) +
                  ", not a regular file" +
                  (S_ISLNK(db_st.st_mode) ? " (history files are never followed through symlinks)" : ""));
    // The journal is this runner's, and the fold takes a journal only from the
    // history's owner: another user's history (planted in /tmp, or chowned) would
    // keep every record of this run out of it, and its owner could rewrite them.
    if (db_st.st_uid != ::geteuid())
      return fail(fmt::format("{} is owned by uid {}, not by this runner's uid {}{}: a run records only into its "
                              "own history",
                              history_path, db_st.st_uid, ::geteuid(),
                              checked->shared() ? " (in a directory others can write)" : ""));
    mode = db_st.st_mode & 0666;
  }
  std::optional<std::string> note;
  if (!have_db) {
    // The first run: make the history now, so a reader finds one to merge the
    // journal into (later runs never open SQLite until the threshold), and before
    // the journal, so that a history that cannot be made leaves no journal behind.
    HistoryOpenOptions opts{.default_location = default_location, .move_damaged_aside = true,
                            .journal = HistoryOpenOptions::Journal::ignore};
    auto store = HistoryStore::open(history_path, HistoryStore::Mode::read_write, nullptr, opts);
    if (!store) return std::unexpected(store.error());
    if (store->damage_note()) {
      note = store->damage_note();
      log::warn(*note);
    }
  }
  UniqueFd dirfd(::fcntl(checked->fd(), F_DUPFD_CLOEXEC, 0));
  if (!dirfd) return fail_sys("dup", dir);
  auto writer = journal::Writer::open(std::move(dirfd), history_path, mode);
  if (!writer) return std::unexpected(writer.error());
  return std::unique_ptr<RecordSink>(
      std::make_unique<JournalSink>(std::move(*writer), history_path, default_location, std::move(note)));
}

}  // namespace

// Every way the sink cannot be opened is a history fault to the run (kind
// `history`): it exits 125 before anything starts.
Result<std::unique_ptr<RecordSink>> open_journal_sink(const std::string& history_path, bool default_location) {
  auto sink = open_sink(history_path, default_location);
  if (!sink) return std::unexpected(std::move(sink.error()).with_kind(ErrorKind::history));
  return sink;
}

}  // namespace cronrun
