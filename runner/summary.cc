// --summary: resolving the target once by directory fd, then writing it the one
// way that cannot touch another user's file (rules in summary.h). A regular file
// is never opened for writing: a fresh temp file (O_EXCL, in the same checked
// directory) is renamed over it, so a hard link or an open reader of the old file
// sees the old content. A target that did not exist is renamed with
// RENAME_NOREPLACE, so an entry a neighbour slips in meanwhile is not replaced.
#include "runner/summary.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/fd.h"
#include "common/safe_file.h"

namespace cronrun {
namespace {

constexpr int kMaxSymlinks = 8;
constexpr int kTempAttempts = 8;

struct Target {
  enum class Kind { stream, null, file } kind = Kind::file;
  int stream_fd = -1;               // Kind::stream
  std::optional<CheckedDir> dir;    // Kind::file
  std::string name;
  bool exists = false;              // a regular file of ours is there (replaced)
};

// The names people pass for the runner's own stdout/stderr. Resolving them by walking
// /proc/self/fd would end at "pipe:[…]" or a tty, so they are recognised by name.
std::optional<int> std_stream(const std::string& path) {
  if (path == "-") return 1;
  for (int fd : {1, 2}) {
    for (const std::string& name :
         {fmt::format("/dev/fd/{}", fd), fmt::format("/proc/self/fd/{}", fd), fmt::format("/proc/{}/fd/{}", getpid(), fd)})
      if (path == name) return fd;
  }
  if (path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  return std::nullopt;
}

bool is_fd(const struct stat& st, int fd) {
  struct stat o {};
  return ::fstat(fd, &o) == 0 && o.st_dev == st.st_dev && o.st_ino == st.st_ino;
}

Result<Target> resolve(const std::string& path, int depth) {
  if (auto fd = std_stream(path)) return Target{Target::Kind::stream, *fd, std::nullopt, "", false};
  auto [dir_path, name] = split_path(path);
  if (name.empty() || name == "." || name == "..") return fail(fmt::format("{}: not a file name", path));
  auto dir = CheckedDir::open(dir_path);
  if (!dir) return std::unexpected(std::move(dir.error()));
  struct stat st {};
  if (::fstatat(dir->fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return fail_sys("lstat", path);
    return Target{Target::Kind::file, -1, std::move(*dir), name, false};
  }
  if (S_ISLNK(st.st_mode)) {
    // The directory is checked: only root or we could have put a link here, or, in
    // a sticky shared directory, the link's owner. Follow root's and ours.
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
      return fail(fmt::format("{}: is a symlink owned by uid {} in a directory others can write; refusing to follow it",
                              path, st.st_uid));
    if (depth >= kMaxSymlinks) return fail_sys("open", path, ELOOP);
    std::string target(4096, '\0');
    ssize_t n = ::readlinkat(dir->fd(), name.c_str(), target.data(), target.size());
    if (n < 0) return fail_sys("readlink", path);
    if (static_cast<size_t>(n) >= target.size()) return fail_sys("readlink", path, ENAMETOOLONG);
    target.resize(static_cast<size_t>(n));
    if (target.empty() || target[0] != '/') target = dir_path + "/" + target;
    return resolve(target, depth + 1);
  }
  if (S_ISREG(st.st_mode)) {
    if (dir->shared() && st.st_uid != ::geteuid())
      return fail(fmt::format("{}: owned by uid {} in a directory others can write; refusing to replace another "
                              "user's file",
                              path, st.st_uid));
    return Target{Target::Kind::file, -1, std::move(*dir), name, true};
  }
  if (S_ISCHR(st.st_mode)) {
    if (st.st_rdev == makedev(1, 3)) return Target{Target::Kind::null, -1, std::nullopt, "", false};
    for (int fd : {1, 2})
      if (is_fd(st, fd)) return Target{Target::Kind::stream, fd, std::nullopt, "", false};
  }
  return fail(fmt::format("{}: is a {}; --summary writes only a regular file, /dev/null or the runner's own "
                          "stdout/stderr",
                          path, file_type_name(st.st_mode)));
}

// Moves the written temp file into place. A new target must still be absent.
Result<void> install(const Target& t, const std::string& tmp, const std::string& path) {
  int dfd = t.dir->fd();
  if (t.exists) {
    if (::renameat(dfd, tmp.c_str(), dfd, t.name.c_str()) != 0) return fail_sys("rename", path);
    return {};
  }
  if (::renameat2(dfd, tmp.c_str(), dfd, t.name.c_str(), RENAME_NOREPLACE) == 0) return {};
  if (errno != EINVAL) return fail_sys("rename", path);
  // A filesystem without RENAME_NOREPLACE: link(2) does not replace either.
  if (::linkat(dfd, tmp.c_str(), dfd, t.name.c_str(), 0) != 0) return fail_sys("link", path);
  if (::unlinkat(dfd, tmp.c_str(), 0) != 0) return fail_sys("unlink", t.dir->child(tmp));
  return {};
}

}  // namespace

Result<void> check_summary_target(const std::string& path) {
  auto t = resolve(path, 0);
  if (!t) return std::unexpected(std::move(t.error()));
  return {};
}

Result<void> write_summary(const std::string& path, const RunRecord& r) {
  std::string text = to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  auto t = resolve(path, 0);
  if (!t) return std::unexpected(std::move(t.error()));
  switch (t->kind) {
    case Target::Kind::null: return {};
    case Target::Kind::stream: return write_all(t->stream_fd, text, path);
    case Target::Kind::file: break;
  }
  std::string tmp;
  Result<UniqueFd> fd = fail("no temp file");
  for (int i = 0; i < kTempAttempts; i++) {
    // Unpredictable, so a neighbour cannot occupy the names in a shared directory.
    uint64_t nonce = 0;
    if (::getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce)) nonce ^= static_cast<uint64_t>(i);
    tmp = fmt::format(".{}.tmp.{}.{:016x}", t->name, getpid(), nonce);
    fd = t->dir->create_file(tmp, O_WRONLY, 0644);
    if (fd || fd.error().err() != EEXIST) break;
  }
  if (!fd) return std::unexpected(std::move(fd.error()));
  auto written = write_all(fd->get(), text, t->dir->child(tmp));
  fd->reset();
  if (written) written = install(*t, tmp, path);
  if (!written) {
    ::unlinkat(t->dir->fd(), tmp.c_str(), 0);  // ours, made O_EXCL above; nothing else to say
    return written;
  }
  return {};
}

}  // namespace cronrun
