// CgroupDir: one cgroup directory held open by fd. Every read, write, mkdir and
// rmdir below it goes through openat()/mkdirat()/unlinkat() on that fd, so a job's
// cgroup is resolved once and a rename or a concurrent path change elsewhere cannot
// redirect a later write. The path is kept only to name files in errors.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>
#include <fmt/format.h>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

namespace {

// Cgroups a job may make below its leaf that are followed at most (deeper or
// more is a job fighting its runner; what it hid there is then named, not read).
constexpr int kMaxSubtreeDepth = 16;
constexpr size_t kMaxSubtreeDirs = 4096;

// cgroupfs (kernfs) counts a directory's subdirectories in its link count, 2 +
// subdirectories: one fstat tells whether a leaf has cgroups below it.
bool has_subdirs(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_nlink > 2;
}

// The names of the subdirectories of the directory open at `fd`.
Result<std::vector<std::string>> subdir_names(int fd, const std::string& path) {
  int dfd = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail_sys("open", path);
  DIR* d = ::fdopendir(dfd);
  if (!d) {
    int err = errno;
    ::close(dfd);
    return fail_sys("fdopendir", path, err);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (!e) break;
    if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return fail_sys("readdir", path, err);
  return names;
}

bool gone(const Error& e) { return e.err() == ENOENT || e.err() == ENODEV; }

}  // namespace

Result<CgroupDir> CgroupDir::open(const std::string& path) {
  // O_RDONLY (not O_PATH): clone3(CLONE_INTO_CGROUP) and poll-free reads both work.
  auto fd = open_fd(path, O_RDONLY | O_DIRECTORY);
  if (!fd) return std::unexpected(Error::sys("open", path, fd.error().err()));
  return CgroupDir(std::move(*fd), path);
}

std::string CgroupDir::file_path(const std::string& file) const { return cgroup_fs_path(path_, file); }

Result<CgroupDir> CgroupDir::open_child(const std::string& name) const {
  int fd = ::openat(fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", file_path(name));
  return CgroupDir(UniqueFd(fd), file_path(name));
}

Result<void> CgroupDir::make_child(const std::string& name, bool exist_ok) const {
  if (::mkdirat(fd_.get(), name.c_str(), 0755) == 0) return {};
  if (errno == EEXIST && exist_ok) return {};
  return fail_sys("mkdir", file_path(name));
}

Result<void> CgroupDir::remove_child(const std::string& name, int busy_retries) const {
  bool below_removed = false;
  for (int attempt = 0;; ++attempt) {
    if (::unlinkat(fd_.get(), name.c_str(), AT_REMOVEDIR) == 0) return {};
    if (errno == EBUSY && !below_removed) {
      // Cgroups the job made below it keep it busy: the empty ones go first.
      below_removed = true;
      if (auto child = open_child(name); child && has_subdirs(child->fd())) {
        child->remove_below(0);
        --attempt;
        continue;
      }
      errno = EBUSY;
    }
    if (errno == EBUSY && attempt < busy_retries) {
      sleep_ms(2);
      continue;
    }
    return fail_sys("rmdir", file_path(name));
  }
}

bool CgroupDir::has(const std::string& file) const {
  return ::faccessat(fd_.get(), file.c_str(), F_OK, 0) == 0;
}

Result<std::string> CgroupDir::read(const std::string& file) const {
  return read_file_at(fd_.get(), file, file_path(file));
}

Result<std::optional<std::string>> CgroupDir::read_optional(const std::string& file) const {
  auto text = read(file);
  if (text) return std::optional<std::string>(std::move(*text));
  // ENOENT: the kernel lacks the file (older kernel, controller off, PSI off).
  // EOPNOTSUPP: e.g. pressure files with psi=0 on the command line.
  if (text.error().err() == ENOENT || text.error().err() == EOPNOTSUPP) return std::optional<std::string>();
  return std::unexpected(text.error());
}

Result<std::optional<uint64_t>> CgroupDir::read_u64(const std::string& file) const {
  auto text = read_optional(file);
  if (!text) return std::unexpected(text.error());
  if (!*text) return std::optional<uint64_t>();
  auto v = parse_u64(**text);
  if (!v) return std::unexpected(std::move(v.error()).context("parsing " + file_path(file)));
  return std::optional(*v);
}

Result<std::optional<std::map<std::string, uint64_t>>> CgroupDir::read_keyed(const std::string& file) const {
  auto text = read_optional(file);
  if (!text) return std::unexpected(text.error());
  if (!*text) return std::optional<std::map<std::string, uint64_t>>();
  auto kv = parse_flat_keyed(**text);
  if (!kv) return std::unexpected(std::move(kv.error()).context("parsing " + file_path(file)));
  return std::optional(std::move(*kv));
}

Result<void> CgroupDir::write(const std::string& file, const std::string& value) const {
  return write_file_at(fd_.get(), file, value, file_path(file));
}

Result<UniqueFd> CgroupDir::open_file(const std::string& file, int flags) const {
  int fd = ::openat(fd_.get(), file.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", file_path(file));
  return UniqueFd(fd);
}

Result<std::vector<pid_t>> CgroupDir::own_procs() const {
  auto text = read("cgroup.procs");
  if (!text) return std::unexpected(text.error());
  auto pids = parse_pid_list(*text);
  if (!pids) return std::unexpected(std::move(pids.error()).context("reading " + file_path("cgroup.procs")));
  return pids;
}

Result<std::vector<pid_t>> CgroupDir::procs() const {
  auto pids = own_procs();
  if (!pids || !has_subdirs(fd_.get())) return pids;
  size_t dirs = 0;
  if (auto r = add_procs_below(*pids, 0, dirs); !r) return std::unexpected(r.error());
  return pids;
}

Result<void> CgroupDir::add_procs_below(std::vector<pid_t>& out, int depth, size_t& dirs) const {
  auto names = subdir_names(fd_.get(), path_);
  if (!names) return std::unexpected(names.error());
  for (const auto& name : *names) {
    if (depth >= kMaxSubtreeDepth || ++dirs > kMaxSubtreeDirs)
      return fail(fmt::format("{}: more than {} cgroups or {} levels below it; not following them", path_,
                              kMaxSubtreeDirs, kMaxSubtreeDepth));
    auto child = open_child(name);
    if (!child) {
      if (gone(child.error())) continue;  // removed meanwhile
      return std::unexpected(child.error());
    }
    auto pids = child->own_procs();
    if (!pids) {
      if (gone(pids.error())) continue;
      return std::unexpected(pids.error());
    }
    out.insert(out.end(), pids->begin(), pids->end());
    if (has_subdirs(child->fd()))
      if (auto r = child->add_procs_below(out, depth + 1, dirs); !r) return r;
  }
  return {};
}

void CgroupDir::remove_below(int depth) const {
  if (depth >= kMaxSubtreeDepth) return;
  auto names = subdir_names(fd_.get(), path_);
  if (!names) return;
  for (const auto& name : *names) {
    if (auto child = open_child(name); child && has_subdirs(child->fd())) child->remove_below(depth + 1);
    (void)::unlinkat(fd_.get(), name.c_str(), AT_REMOVEDIR);  // a populated one stays: its parent then says so
  }
}

Result<void> signal_pids(const std::vector<pid_t>& pids, int sig, const std::string& path_for_errors) {
  // One refusal (EPERM: a setuid program in a non-root job) must not spare the rest.
  Result<void> first;
  for (pid_t pid : pids) {
    if (::kill(pid, sig) != 0 && errno != ESRCH && first) {
      first = fail_sys("kill(" + std::to_string(pid) + ", " + std::to_string(sig) + ") in", path_for_errors);
    }
  }
  return first;
}

Error not_empty_error(const CgroupDir& dir, int timeout_ms) {
  std::string left;
  if (auto procs = dir.procs(); procs) {
    // fmt rather than " " + std::to_string(): g++ 12 -O2 raises a false -Wrestrict
    // on operator+(const char*, string&&) (GCC PR 105329).
    for (size_t i = 0; i < procs->size() && i < 8; ++i) left += fmt::format(" {}", (*procs)[i]);
    if (procs->size() > 8) left += " ...";
  }
  return Error("cgroup " + dir.path() + " still has tasks after " + std::to_string(timeout_ms) + " ms (pids:" +
               (left.empty() ? std::string(" ?") : left) + ")");
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int64_t monotonic_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace cronrun::cgroup
