// Directory-fd based file access for paths other users may control (rules in
// safe_file.h). The walk resolves symlinks itself, with readlinkat, so it can
// judge each link by who could have put it there before following it; the kernel's
// protected_symlinks only covers sticky world-writable directories and is off on
// some hosts.
#include "common/safe_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <fmt/format.h>
#include <vector>

#include "common/units.h"

namespace cronrun {
namespace {

// The target of the symlink `name` in `dirfd` (`where` names it in errors).
Result<std::string> read_link(int dirfd, const std::string& name, const std::string& where) {
  std::string target(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
  if (n < 0) return fail_sys("readlink", where);
  if (static_cast<size_t>(n) >= target.size()) return fail_sys("readlink", where, ENAMETOOLONG);
  target.resize(static_cast<size_t>(n));
  return target;
}

constexpr int kMaxSymlinks = 40;  // the kernel's own limit (MAXSYMLINKS)

bool trusted_uid(uid_t uid) { return uid == 0 || uid == ::geteuid(); }

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(pos, slash - pos);
    if (!part.empty() && part != ".") out.emplace_back(part);
    pos = slash + 1;
  }
  return out;
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == "/") return "/" + name;
  return dir + "/" + name;
}

// Why a symlink in `parent` may not be followed, or "" when it may: only root or
// the caller may have created it, and nobody else could have replaced it.
std::string distrust(const struct stat& link, const struct stat& parent) {
  if (!trusted_uid(link.st_uid)) return fmt::format("is a symlink owned by uid {}", link.st_uid);
  if (!trusted_uid(parent.st_uid)) return fmt::format("is a symlink in a directory owned by uid {}", parent.st_uid);
  if ((parent.st_mode & (S_IWGRP | S_IWOTH)) && !(parent.st_mode & S_ISVTX))
    return "is a symlink in a directory others can write";
  return "";
}

// Opens `path` as a directory. With `create_mode`, missing components are made
// with that mode and every component must pass check_dir_stat (cronrun's own
// directories); without, only symlinks are judged and the caller checks the end.
Result<UniqueFd> walk(const std::string& path, std::optional<mode_t> create_mode) {
  if (path.empty()) return fail("empty directory path");
  auto cur = open_fd(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY);
  if (!cur) return std::unexpected(std::move(cur.error()));
  auto parts = components(path);
  std::deque<std::string> todo(parts.begin(), parts.end());
  std::string at = path[0] == '/' ? "/" : ".";
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    std::string where = join(at, name);
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(cur->get(), name.c_str(), kFlags);
    if (fd < 0 && errno == ENOENT && create_mode) {
      if (::mkdirat(cur->get(), name.c_str(), *create_mode) != 0 && errno != EEXIST) return fail_sys("mkdir", where);
      fd = ::openat(cur->get(), name.c_str(), kFlags);
    }
    if (fd >= 0) {
      UniqueFd next(fd);
      if (create_mode) {
        struct stat st {};
        if (::fstat(next.get(), &st) != 0) return fail_sys("fstat", where);
        if (auto ok = check_dir_stat(st, where); !ok) return std::unexpected(std::move(ok.error()));
      }
      *cur = std::move(next);
      at = where;
      continue;
    }
    int err = errno;
    if (err != ELOOP && err != ENOTDIR) return fail_sys("open", where, err);
    struct stat link {}, parent {};
    if (::fstatat(cur->get(), name.c_str(), &link, AT_SYMLINK_NOFOLLOW) != 0) return fail_sys("lstat", where);
    if (!S_ISLNK(link.st_mode)) return fail(fmt::format("{}: is a {}, not a directory", where, file_type_name(link.st_mode)));
    if (::fstat(cur->get(), &parent) != 0) return fail_sys("fstat", at);
    if (auto why = distrust(link, parent); !why.empty())
      return fail(fmt::format("{}: {}; refusing to follow it", where, why));
    if (++links > kMaxSymlinks) return fail_sys("open", where, ELOOP);
    auto target = read_link(cur->get(), name, where);
    if (!target) return std::unexpected(std::move(target.error()));
    auto more = components(*target);
    todo.insert(todo.begin(), more.begin(), more.end());
    if (!target->empty() && (*target)[0] == '/') {
      cur = open_fd("/", O_RDONLY | O_DIRECTORY);
      if (!cur) return std::unexpected(std::move(cur.error()));
      at.assign(1, '/');  // (not `= "/"`: g++ 12 -O2 warns falsely, -Wrestrict)
    }
  }
  return cur;
}

}  // namespace

std::pair<std::string, std::string> split_path(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

const char* file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "FIFO";
    case S_IFSOCK: return "socket";
    case S_IFBLK: return "block device";
    case S_IFCHR: return "character device";
    default: return "special file";
  }
}

Result<void> check_dir_stat(const struct stat& st, const std::string& path) {
  if (!S_ISDIR(st.st_mode)) return fail(fmt::format("{}: is a {}, not a directory", path, file_type_name(st.st_mode)));
  if (!trusted_uid(st.st_uid))
    return fail(fmt::format("{}: directory owned by uid {}, expected root or uid {} (another user could swap its files)",
                            path, st.st_uid, ::geteuid()));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return fail(fmt::format("{}: directory writable by group or others and not sticky (mode {:04o})", path,
                            st.st_mode & 07777));
  return {};
}

Result<CheckedDir> CheckedDir::open(const std::string& path) {
  auto fd = walk(path, std::nullopt);
  if (!fd) return std::unexpected(std::move(fd.error()));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  if (auto ok = check_dir_stat(st, path); !ok) return std::unexpected(std::move(ok.error()));
  return CheckedDir(std::move(*fd), path, (st.st_mode & (S_IWGRP | S_IWOTH)) != 0);
}

Result<CheckedDir> CheckedDir::make(const std::string& path, mode_t mode) {
  auto fd = walk(path, mode);
  if (!fd) return std::unexpected(std::move(fd.error()));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  if (st.st_uid != ::geteuid())
    return fail(fmt::format("{}: owned by uid {}, expected {} (refusing a directory someone else made)", path,
                            st.st_uid, ::geteuid()));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(fmt::format("{}: writable by group or others (mode {:04o})", path, st.st_mode & 07777));
  if ((st.st_mode & 07777 & ~mode) != 0 && ::fchmod(fd->get(), st.st_mode & mode & 0777) != 0)
    return fail_sys("fchmod", path);
  return CheckedDir(std::move(*fd), path, false);
}

std::string CheckedDir::child(const std::string& name) const { return join(path_, name); }

Result<UniqueFd> CheckedDir::create_file(const std::string& name, int flags, mode_t mode) const {
  int fd = ::openat(fd_.get(), name.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return fail_sys("create", child(name));
  return UniqueFd(fd);
}

Result<void> hold_file(int fd, const std::string& path_for_errors) {
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return fail_sys("flock", path_for_errors);
  return {};
}

Result<Leftover> remove_if_left(int dirfd, const std::string& dir_path, const std::string& name, time_t now,
                                time_t min_age_s) {
  auto path = [&] { return dir_path + "/" + name; };
  struct stat before {};
  if (::fstatat(dirfd, name.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Leftover::other;
    return fail_sys("lstat", path());
  }
  if (!S_ISREG(before.st_mode) || before.st_uid != ::geteuid()) return Leftover::other;
  // A live run leaves its file unheld only between creating and locking it: a
  // file modified that recently is not judged.
  if (now - before.st_mtime < min_age_s) return Leftover::young;
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP) return Leftover::other;
    return fail_sys("open", path());
  }
  UniqueFd owner(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_sys("fstat", path());
  if (st.st_dev != before.st_dev || st.st_ino != before.st_ino) return Leftover::other;  // replaced meanwhile
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Leftover::held;
    return fail_sys("flock", path());
  }
  // Held by us now; run ids are never reused, so nothing re-creates this name.
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) return fail_sys("unlink", path());
  return Leftover::removed;
}

Result<std::vector<std::string>> list_dir(int dirfd, const std::string& path_for_errors, size_t max_entries) {
  int dup_fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return fail_sys("dup", path_for_errors);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(dup_fd), ::closedir);
  if (!d) {
    int err = errno;
    ::close(dup_fd);
    return fail_sys("fdopendir", path_for_errors, err);
  }
  ::rewinddir(d.get());  // the duplicate shares the caller's offset
  std::vector<std::string> out;
  while (out.size() < max_entries) {
    errno = 0;  // readdir's end and its error differ only in errno
    struct dirent* e = ::readdir(d.get());
    if (!e) {
      if (errno != 0) return fail_sys("readdir", path_for_errors);
      break;
    }
    std::string_view name = e->d_name;
    if (name != "." && name != "..") out.emplace_back(name);
  }
  return out;
}

Result<std::optional<DirListing>> list_checked_dir(const std::string& path) {
  auto dir = CheckedDir::open(path);
  if (!dir) {
    if (dir.error().err() == ENOENT) return std::optional<DirListing>{};
    return std::unexpected(std::move(dir.error()));
  }
  auto names = list_dir(dir->fd(), path, 100'000);
  if (!names) return std::unexpected(std::move(names.error()));
  return std::optional<DirListing>(DirListing{std::move(*dir), std::move(*names)});
}

Result<UniqueFd> CheckedDir::open_regular(const std::string& name, int flags) const {
  std::string path = child(name);
  struct stat before {};
  if (::fstatat(fd_.get(), name.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) return fail_sys("lstat", path);
  if (!S_ISREG(before.st_mode))
    return fail(fmt::format("{}: is a {}, expected a regular file", path, file_type_name(before.st_mode)));
  // O_NONBLOCK: should a FIFO be swapped in after the lstat, open returns at once.
  int fd = ::openat(fd_.get(), name.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", path);
  UniqueFd owner(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_sys("fstat", path);
  if (!S_ISREG(st.st_mode))
    return fail(fmt::format("{}: is a {}, expected a regular file", path, file_type_name(st.st_mode)));
  if (shared_ && st.st_uid != ::geteuid())
    return fail(fmt::format("{}: owned by uid {} in a directory others can write; refusing to use another user's file",
                            path, st.st_uid));
  return owner;
}

Result<CheckedDir> CheckedDir::make_subdir(const std::string& name, mode_t mode) const {
  std::string path = child(name);
  bool created = ::mkdirat(fd_.get(), name.c_str(), mode) == 0;
  if (!created && errno != EEXIST) return fail_sys("mkdir", path);
  int fd = ::openat(fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    struct stat lst {};
    if ((err == ELOOP || err == ENOTDIR) && ::fstatat(fd_.get(), name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0)
      return fail(fmt::format("{}: is a {}, expected a directory (refused)", path, file_type_name(lst.st_mode)));
    return fail_sys("open", path, err);
  }
  UniqueFd owner(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_sys("fstat", path);
  if (created) {
    // Under a setgid parent the new directory took the parent's group and setgid.
    if (st.st_gid != ::getegid() && ::fchown(fd, static_cast<uid_t>(-1), ::getegid()) != 0)
      return fail_sys("fchown", path);
    if ((st.st_mode & S_ISGID) && ::fchmod(fd, st.st_mode & 0777) != 0) return fail_sys("fchmod", path);
    return CheckedDir(std::move(owner), path, false);
  }
  if (st.st_uid != ::geteuid())
    return fail(fmt::format("{}: owned by uid {}, expected {} (refusing a directory someone else made)", path,
                            st.st_uid, ::geteuid()));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(fmt::format("{}: writable by group or others (mode {:04o})", path, st.st_mode & 07777));
  if ((st.st_mode & S_ISGID) && st.st_gid != ::getegid())
    return fail(fmt::format("{}: setgid to group {} (its files would belong to that group)", path, st.st_gid));
  return CheckedDir(std::move(owner), path, false);
}

Result<BoundedRead> read_bounded(int fd, size_t max_bytes, const std::string& path_for_errors) {
  BoundedRead out;
  char buf[65536];
  while (out.data.size() <= max_bytes) {
    size_t want = std::min(sizeof buf, max_bytes + 1 - out.data.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return fail_sys("read", path_for_errors);
    if (n == 0) break;
    out.data.append(buf, static_cast<size_t>(n));
  }
  if (out.data.size() > max_bytes) {
    out.data.resize(max_bytes);
    out.truncated = true;
  }
  return out;
}

Result<std::string> read_regular_file(const std::string& path, size_t max_bytes) {
  auto fd = open_fd(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (!fd) return std::unexpected(std::move(fd.error()));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  if (!S_ISREG(st.st_mode))
    return fail(fmt::format("{}: is a {}, expected a regular file", path, file_type_name(st.st_mode)));
  auto r = read_bounded(fd->get(), max_bytes, path);
  if (!r) return std::unexpected(std::move(r.error()));
  if (r->truncated)
    return fail(fmt::format("{}: larger than the {} limit ({} bytes); refusing to read it", path,
                            units::format_size(max_bytes), max_bytes));
  return std::move(r->data);
}

Result<std::string> read_obeyed_file(const std::string& path, size_t max_bytes, std::string_view what) {
  auto where = [&](Error e) { return std::unexpected(std::move(e).context(fmt::format("{} {}", what, path))); };
  std::string at = path;
  for (int links = 0;; links++) {
    auto [dir_path, name] = split_path(at);
    auto dir = CheckedDir::open(dir_path);
    if (!dir) return where(std::move(dir.error()));
    struct stat link {};
    if (::fstatat(dir->fd(), name.c_str(), &link, AT_SYMLINK_NOFOLLOW) != 0) return where(Error::sys("lstat", at));
    if (S_ISLNK(link.st_mode)) {
      struct stat parent {};
      if (::fstat(dir->fd(), &parent) != 0) return where(Error::sys("fstat", dir_path));
      if (auto why = distrust(link, parent); !why.empty())
        return fail(fmt::format("{} {}: {} {}; refusing to follow it", what, path, at, why));
      if (links >= kMaxSymlinks) return where(Error::sys("open", at, ELOOP));
      auto target = read_link(dir->fd(), name, at);
      if (!target) return where(std::move(target.error()));
      at = !target->empty() && (*target)[0] == '/' ? *target : join(dir_path, *target);
      continue;
    }
    auto fd = dir->open_regular(name, O_RDONLY);
    if (!fd) return where(std::move(fd.error()));
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return where(Error::sys("fstat", at));
    if (!trusted_uid(st.st_uid))
      return fail(fmt::format("{} {}: owned by uid {}, expected root or uid {} (a run obeys this file)", what, path,
                              st.st_uid, ::geteuid()));
    mode_t unsafe = ::geteuid() == 0 ? (S_IWGRP | S_IWOTH) : S_IWOTH;
    if (st.st_mode & unsafe)
      return fail(fmt::format("{} {}: writable by {} (mode {:04o}); a run obeys this file, so chmod {} it", what, path,
                              (st.st_mode & unsafe & S_IWOTH) ? "others" : "its group", st.st_mode & 07777,
                              ::geteuid() == 0 ? "go-w" : "o-w"));
    auto r = read_bounded(fd->get(), max_bytes, at);
    if (!r) return where(std::move(r.error()));
    if (r->truncated)
      return fail(fmt::format("{} {}: larger than the {} limit ({} bytes); refusing to read it", what, path,
                              units::format_size(max_bytes), max_bytes));
    return std::move(r->data);
  }
}

}  // namespace cronrun
