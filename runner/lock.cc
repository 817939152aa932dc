// flock-based pid-file lock with a bounded wait. Waiting polls LOCK_NB on a short
// interval instead of blocking flock + alarm: no signal handler races, and the
// wait is measured for the run record.
#include "runner/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fmt/format.h>
#include <optional>
#include <thread>

#include "common/safe_file.h"

namespace cronrun {
namespace {

// A pid line is at most 20 digits and a newline; room for a rewrite's leftovers.
constexpr size_t kMaxPidFileBytes = 32;

Result<CheckedDir> lock_dir(const std::string& dir, PidFileLock::Dir how) {
  switch (how) {
    case PidFileLock::Dir::must_exist: return CheckedDir::open(dir);
    case PidFileLock::Dir::create: return CheckedDir::make(dir, 0755);
    case PidFileLock::Dir::create_private: return CheckedDir::make(dir, 0700);
  }
  return fail("unknown lock directory policy");
}

// The lock file: an existing regular file that holds a pid (or nothing), or a
// new one. The existing file is tried first: it is there on every run but a
// job's first, and a create that fails with EEXIST costs a path lookup under
// the directory's lock. Retries the open/create race with a runner that creates
// it meanwhile, or with one that finds a leftover removed.
Result<UniqueFd> open_lock_file(const CheckedDir& dir, const std::string& name, const std::string& path) {
  for (int attempt = 0;; ++attempt) {
    auto existing = dir.open_regular(name, O_RDWR);
    if (!existing) {
      if (existing.error().err() != ENOENT || attempt >= 3) return existing;
      auto created = dir.create_file(name, O_RDWR, 0644);
      if (created || created.error().err() != EEXIST) return created;
      continue;
    }
    char buf[kMaxPidFileBytes + 1];
    ssize_t n;
    do {
      n = ::pread(existing->get(), buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail_sys("pread", path);
    if (!looks_like_pid_file(std::string_view(buf, static_cast<size_t>(n))))
      return fail(fmt::format("{}: exists and is not a cronrun lock file (it holds something other than a pid); "
                              "refusing to overwrite it (a command after --lock without `--`?)",
                              path));
    return existing;
  }
}

// The pid in the lock file, if it names a running process. The holder writes its
// pid just after it takes the lock, so a contender that looks in between reads
// the previous holder's, who is gone: re-read for a moment (the write follows at
// once unless the holder is descheduled), then leave it unknown rather than name
// a dead process as the holder.
std::optional<pid_t> read_holder(int fd) {
  constexpr int kRereads = 20;
  constexpr auto kPause = std::chrono::milliseconds(5);
  for (int i = 0;; ++i) {
    char buf[kMaxPidFileBytes] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    pid_t pid = 0;
    if (n <= 0 || std::from_chars(buf, buf + n, pid).ec != std::errc() || pid <= 0) return std::nullopt;
    if (::kill(pid, 0) == 0 || errno == EPERM) return pid;
    if (i == kRereads) return std::nullopt;
    std::this_thread::sleep_for(kPause);
  }
}

}  // namespace

bool looks_like_pid_file(std::string_view content) {
  if (content.size() > kMaxPidFileBytes) return false;
  for (char c : content)
    if (!(c >= '0' && c <= '9') && c != '\n') return false;
  return true;
}

Result<std::variant<PidFileLock, PidFileLock::Busy>> PidFileLock::acquire(const std::string& path,
                                                                          std::chrono::milliseconds wait, Dir how) {
  auto [dir_path, name] = split_path(path);
  if (name.empty() || name == "." || name == "..") return fail(fmt::format("{}: not a file name", path));
  auto dir = lock_dir(dir_path, how);
  if (!dir) return std::unexpected(std::move(dir.error()).context("the lock directory"));
  auto fd = open_lock_file(*dir, name, path);
  if (!fd) return std::unexpected(std::move(fd.error()).context("opening the lock file"));

  auto start = std::chrono::steady_clock::now();
  auto deadline = start + wait;
  for (;;) {
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return fail_sys("flock", path);
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      Busy busy;
      busy.waited_s = std::chrono::duration<double>(now - start).count();
      busy.holder_pid = read_holder(fd->get());
      return busy;
    }
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(50),
                                                                              deadline - now));
  }
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string pid = fmt::format("{}\n", getpid());
  // Write, then cut to length: truncating to 0 first would free the file's block
  // every run, and on ext4 that means a synchronous discard and a flush at close
  // (auto_da_alloc). The file holds a pid or nothing (checked above), so cutting
  // it loses nothing.
  if (::pwrite(fd->get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return fail_sys("pwrite", path);
  if (::ftruncate(fd->get(), static_cast<off_t>(pid.size())) != 0) return fail_sys("ftruncate", path);
  return PidFileLock(std::move(*fd), path, waited);
}

}  // namespace cronrun
