// Files in places another user may write. Root's runner writes summaries, logs,
// locks and per-run files into directories an admin names, some of them shared
// (/tmp) or owned by someone else. A path is a promise only at the moment it is
// resolved, so everything here works from directory fds:
//
//  - A directory is opened component by component with O_NOFOLLOW|O_DIRECTORY. A
//    symlink on the way is followed only when nobody but root or the caller could
//    have placed it: the link is owned by root or the caller and sits in a
//    directory only they can change (not group/other-writable, or sticky).
//  - A directory we write into is "checked": owned by root or the caller, and not
//    writable by group or others unless it is sticky. In a sticky shared directory
//    (/tmp) only a NEW entry (O_CREAT|O_EXCL) is safe; an existing one is used only
//    if the caller owns it.
//  - Files are opened O_NOFOLLOW|O_NONBLOCK relative to the checked fd and fstat'ed:
//    regular files only, so a FIFO never blocks us and a device is never written.
//  - Reads are bounded.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace cronrun {

// "dir/name" → {"dir", "name"}; "name" → {".", "name"}; "/name" → {"/", "name"}.
std::pair<std::string, std::string> split_path(const std::string& path);

// "FIFO", "block device", "symlink", ... for messages.
const char* file_type_name(mode_t mode);

class CheckedDir {
 public:
  // Opens an existing directory (see the rules above) and checks it. Nothing is
  // created. Errors name the path and the component at fault.
  static Result<CheckedDir> open(const std::string& path);
  // cronrun's own directories (runtime dir, default lock dir): missing components
  // are created with `mode`; every component must pass the directory check, and
  // the last one must be owned by the caller with no group/other write (its mode
  // is narrowed to `mode` when it is wider).
  static Result<CheckedDir> make(const std::string& path, mode_t mode);

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Group/other-writable and sticky: an existing entry is trusted only if ours.
  bool shared() const { return shared_; }
  std::string child(const std::string& name) const;

  // A NEW regular file: O_CREAT|O_EXCL|O_NOFOLLOW; fails with EEXIST if anything
  // is there.
  Result<UniqueFd> create_file(const std::string& name, int flags, mode_t mode) const;
  // An existing entry: O_NOFOLLOW|O_NONBLOCK|O_NOCTTY, then fstat: regular files
  // only; in a shared directory only one owned by the caller.
  Result<UniqueFd> open_regular(const std::string& name, int flags) const;
  // A subdirectory of ours: created with `mode` if missing (group set to ours and
  // setgid cleared, so a setgid parent cannot hand the contents to its group);
  // an existing one must not be a symlink, must be owned by the caller, not
  // group/other-writable, and not setgid to a group other than ours.
  Result<CheckedDir> make_subdir(const std::string& name, mode_t mode) const;

 private:
  CheckedDir(UniqueFd fd, std::string path, bool shared) : fd_(std::move(fd)), path_(std::move(path)), shared_(shared) {}
  UniqueFd fd_;
  std::string path_;
  bool shared_ = false;
};

// Per-run files in cronrun's own directories ($CRONRUN_COUNTERS, the DB-query
// counters) are held by their runner with flock(LOCK_EX) from creation to removal:
// the kernel drops the lock when the runner dies, whatever killed it. hold_file()
// takes that lock (never waits; a fresh file nobody else knows of).
Result<void> hold_file(int fd, const std::string& path_for_errors);

// What remove_if_left() found at a name.
enum class Leftover {
  removed,  // a regular file of ours nobody held, older than the minimum age: unlinked
  held,     // its runner (or a process it started) still holds it
  young,    // changed less than the minimum age ago: its runner may not hold it yet
  other,    // gone, not a regular file, or not ours: left alone
};
// Removes `name` in `dirfd` if it is a regular file owned by the caller, last
// modified at least `min_age_s` seconds before `now`, and nobody
// holds it (flock LOCK_EX|LOCK_NB succeeds on the very file that was checked).
// Errors carry errno and `dir_path`/name.
Result<Leftover> remove_if_left(int dirfd, const std::string& dir_path, const std::string& name, time_t now,
                                time_t min_age_s);

// The names in the directory `dirfd` (not "." and ".."), at most `max_entries`
// of them, read through a duplicate of the fd (the caller's fd is not moved).
Result<std::vector<std::string>> list_dir(int dirfd, const std::string& path_for_errors, size_t max_entries);

// A sweep's view of one of cronrun's own directories: the checked directory and
// its names (at most 100,000); nullopt when the directory does not exist.
struct DirListing {
  CheckedDir dir;
  std::vector<std::string> names;
};
Result<std::optional<DirListing>> list_checked_dir(const std::string& path);

// Files older than this that nobody holds are left by dead runners.
inline constexpr time_t kLeftoverMinAgeS = 60;

// Owner root or the caller; group/other write only with the sticky bit.
Result<void> check_dir_stat(const struct stat& st, const std::string& path);

// Reads at most `max_bytes` from `fd` (EINTR retried; EAGAIN ends the read, so
// it never waits). `truncated` says more was there.
struct BoundedRead {
  std::string data;
  bool truncated = false;
};
Result<BoundedRead> read_bounded(int fd, size_t max_bytes, const std::string& path_for_errors);

}  // namespace cronrun

namespace cronrun {

// A file a user named on the command line, read whole: opened O_NONBLOCK|O_NOCTTY
// so a FIFO never blocks and no terminal is acquired, regular files only (a FIFO or
// device is an error naming the file), at most `max_bytes` (a larger file is an
// error naming the cap). Symlinks are followed: the user chose the path and only
// reading is at stake.
Result<std::string> read_regular_file(const std::string& path, size_t max_bytes);

// A file whose content a run obeys (a job config: the job's environment, command
// and limits; a seccomp profile), read whole as read_regular_file does, but only
// if nobody other than root or the caller could have written it or put it there:
// the directories on the way pass the CheckedDir rules, a symlink (last component
// included) is followed only when CheckedDir would follow it, and the file itself
// is owned by root or the caller and not writable by others (nor by its group when
// the caller is root). `what` names the file in errors ("job config").
Result<std::string> read_obeyed_file(const std::string& path, size_t max_bytes, std::string_view what);

}  // namespace cronrun
