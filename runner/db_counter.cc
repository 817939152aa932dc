// The runner's half of --count-db-queries.
//
// Before the job starts we create the run's counter file: a fresh 0700 directory
// (mkdtemp) under a per-user base directory whose owner and mode are checked, then
// the file 0600 with O_EXCL|O_NOFOLLOW, sized and stamped with the layout's magic,
// version and sizes. The preload library in every job process maps it MAP_SHARED
// and adds to it; it checks the same owner/magic before trusting it.
//
// After the job we read the file back with read(2) (not mmap: a job process left
// behind by --keep-orphans may still write, and a torn read of a counter is
// harmless) and treat it as untrusted input: any job process can scribble on it.
// Every size is checked against our own layout, program names are re-sanitized,
// and sums are done in double so a forged huge value cannot overflow.
//
// "Not observed" must not read as 0: when no job process loaded a client library,
// only the coverage keys are returned and cronprof says so.
#include "runner/db_counter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/job_paths.h"
#include "common/safe_file.h"

extern "C" {
#include "preload/cronrun_db_shm.h"
}

namespace cronrun::dbcount {
namespace {

constexpr const char* kFileName = "counters";
constexpr const char* kLibraryName = "libcronrun-db.so";
constexpr std::array<const char*, CRONRUN_DB_NBACKENDS> kBackendNames = {"pg", "mysql", "sqlite"};

static_assert(std::is_trivially_copyable_v<cronrun_db_shm>);
static_assert(sizeof(cronrun_db_shm) % 8 == 0);

std::string sanitize(std::string_view in, size_t max_len) {
  std::string out;
  for (char c : in) {
    if (out.size() >= max_len) break;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-';
    out.push_back(ok ? c : '_');
  }
  return out;
}

// The per-user base directory: created 0700 when missing (with its missing
// parents); every component must be root's or ours and not writable by others, and
// the base itself ours alone, or another user could swap our files.
Result<void> ensure_base_dir(const std::string& base) {
  auto dir = CheckedDir::make(base, 0700);
  if (!dir) return std::unexpected(std::move(dir.error()));
  return {};
}

std::string default_base_dir() { return runtime_dir(Invoker::current()); }

uint64_t monotonic_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t read_tsc() {
#if defined(__x86_64__)
  return __rdtsc();
#else
  return 0;
#endif
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

bool tsc_usable() {
#if defined(__x86_64__)
  auto source = read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  if (!source || source->rfind("tsc", 0) != 0) return false;
  auto cpuinfo = read_file("/proc/cpuinfo");
  if (!cpuinfo) return false;
  auto flags_at = cpuinfo->find("\nflags");
  if (flags_at == std::string::npos) return false;
  std::string flags = cpuinfo->substr(flags_at, cpuinfo->find('\n', flags_at + 1) - flags_at) + " ";
  return flags.find(" constant_tsc ") != std::string::npos && flags.find(" nonstop_tsc ") != std::string::npos;
#else
  return false;
#endif
}

Result<std::string> library_path() {
  // Build tree: the binary sits in <build>/<dir>[/<dir>] and the library in
  // <build>/preload; CMakeCache.txt marks <build> so an installed binary never
  // picks up a stray preload/ directory above it.
  std::vector<std::string> looked;
  std::array<char, 4096> buf{};
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n > 0) {
    const std::string exe(buf.data(), static_cast<size_t>(n));
    std::string dir = exe;
    for (int up = 0; up < 4; up++) {
      auto slash = dir.rfind('/');
      if (slash == std::string::npos || slash == 0) break;
      dir.resize(slash);
      std::string candidate = dir + "/preload/" + kLibraryName;
      if (is_file(dir + "/CMakeCache.txt") && is_file(candidate)) return candidate;
    }
    looked.push_back("a build tree's preload/ above " + exe);
#ifdef CRONRUN_PRELOAD_FROM_BINDIR
    // Installed: the same layout relative to the binary (a --prefix install).
    // Normalized: a packaged binary names /usr/lib/..., not /usr/bin/../lib/..., in
    // LD_PRELOAD and in --dry-run.
    std::string beside =
        std::filesystem::path(exe.substr(0, exe.rfind('/') + 1) + CRONRUN_PRELOAD_FROM_BINDIR).lexically_normal().string();
    if (is_file(beside)) return beside;
    looked.push_back(beside);
#endif
  }
#ifdef CRONRUN_PRELOAD_PATH
  if (is_file(CRONRUN_PRELOAD_PATH)) return std::string(CRONRUN_PRELOAD_PATH);
  looked.push_back(CRONRUN_PRELOAD_PATH);
#endif
  std::string where;
  for (const auto& l : looked) where += (where.empty() ? "" : ", ") + l;
  return fail("DB-query counter library " + std::string(kLibraryName) + " not found (looked in " + where + ")");
}

Result<Session> Session::create(const std::string& run_id) { return create_in(default_base_dir(), run_id); }

Result<Session> Session::create_in(const std::string& base_dir, const std::string& run_id) {
  auto library = library_path();
  if (!library) return std::unexpected(std::move(library.error()).context("preparing --count-db-queries"));
  // LD_PRELOAD splits on spaces and colons; such a path would preload garbage.
  if (library->find_first_of(": \t\n") != std::string::npos)
    return fail("preparing --count-db-queries: library path '" + *library + "' contains a separator");

  if (auto ok = ensure_base_dir(base_dir); !ok)
    return std::unexpected(std::move(ok.error()).context("preparing --count-db-queries"));
  std::string tmpl = base_dir + "/db-" + sanitize(run_id, 64) + "-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    return std::unexpected(Error::sys("mkdtemp", tmpl).context("preparing --count-db-queries"));
  std::string dir = tmpl;
  auto dir_fd = open_fd(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dir_fd) {
    ::rmdir(dir.c_str());
    return std::unexpected(std::move(dir_fd.error()));
  }
  // From here on the Session owns the directory: early returns remove it.
  Session session(dir, dir + "/" + kFileName, std::move(*dir_fd), std::move(*library));

  auto file = open_at(session.dir_fd_.get(), kFileName, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  if (!file) return std::unexpected(std::move(file.error()));
  if (::fchmod(file->get(), 0600) != 0) return fail_sys("fchmod", session.file_path_);
  if (auto held = hold_file(file->get(), session.file_path_); !held) return std::unexpected(std::move(held.error()));

  cronrun_db_shm header{};
  header.magic = CRONRUN_DB_MAGIC;
  header.version = CRONRUN_DB_VERSION;
  header.total_size = sizeof(cronrun_db_shm);
  header.backend_count = CRONRUN_DB_NBACKENDS;
  header.proc_slot_count = CRONRUN_DB_PROC_SLOTS;
  if (tsc_usable()) {
    header.flags |= CRONRUN_DB_FLAG_TSC;
    session.tsc_start_ = read_tsc();
    session.mono_start_ns_ = monotonic_ns();
  }
  std::string bytes(reinterpret_cast<const char*>(&header), sizeof header);
  if (auto ok = write_all(file->get(), bytes, session.file_path_); !ok) return std::unexpected(std::move(ok.error()));
  session.hold_ = std::move(*file);
  return session;
}

Session::Session(Session&& other) noexcept
    : dir_path_(std::exchange(other.dir_path_, {})),
      file_path_(std::exchange(other.file_path_, {})),
      dir_fd_(std::move(other.dir_fd_)),
      hold_(std::move(other.hold_)),
      library_(std::exchange(other.library_, {})),
      tsc_start_(other.tsc_start_),
      mono_start_ns_(other.mono_start_ns_) {}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    remove();
    dir_path_ = std::exchange(other.dir_path_, {});
    file_path_ = std::exchange(other.file_path_, {});
    dir_fd_ = std::move(other.dir_fd_);
    hold_ = std::move(other.hold_);
    library_ = std::exchange(other.library_, {});
    tsc_start_ = other.tsc_start_;
    mono_start_ns_ = other.mono_start_ns_;
  }
  return *this;
}

Session::~Session() { remove(); }

void Session::remove() {
  // Best effort: a failure leaves a 0600 file in a 0700 directory of ours.
  if (dir_fd_) ::unlinkat(dir_fd_.get(), kFileName, 0);
  if (!dir_path_.empty()) ::rmdir(dir_path_.c_str());
  dir_fd_.reset();
  hold_.reset();
  dir_path_.clear();
}

Result<size_t> Session::sweep(const std::string& base_dir, time_t now) {
  auto listing = list_checked_dir(base_dir);
  if (!listing) return std::unexpected(std::move(listing.error()));
  if (!*listing) return 0;
  const CheckedDir* base = &(*listing)->dir;
  size_t removed = 0;
  for (const auto& name : (*listing)->names) {
    if (!name.starts_with("db-")) continue;
    auto sub = open_at(base->fd(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!sub) continue;  // not a directory (or gone): not one of ours
    struct stat st {};
    if (::fstat(sub->get(), &st) != 0) return fail_sys("fstat", base->child(name));
    if (st.st_uid != ::geteuid()) continue;
    auto r = remove_if_left(sub->get(), base->child(name), kFileName, now, kLeftoverMinAgeS);
    if (!r) return std::unexpected(std::move(r.error()));
    // A directory whose runner died before making the file is as old as it is empty.
    bool empty_and_old = *r == Leftover::other && now - st.st_mtime >= kLeftoverMinAgeS;
    if (*r != Leftover::removed && !empty_and_old) continue;
    // Only an empty directory goes: anything else a job put there stays.
    if (::unlinkat(base->fd(), name.c_str(), AT_REMOVEDIR) == 0)
      ++removed;
    else if (errno != ENOTEMPTY && errno != ENOENT)
      return fail_sys("rmdir", base->child(name));
  }
  return removed;
}

std::vector<std::string> Session::env() const {
  const char* existing = std::getenv("LD_PRELOAD");
  return env(existing ? existing : "");
}

std::vector<std::string> Session::env(std::string_view existing_ld_preload) const {
  std::string preload = "LD_PRELOAD=" + library_;
  if (!existing_ld_preload.empty()) {
    preload += ':';
    preload += existing_ld_preload;
  }
  return {preload, std::string(kCountersEnv) + "=" + file_path_};
}

Result<std::map<std::string, double>> Session::collect() const {
  // Any job process may have replaced the file: O_NONBLOCK so a FIFO cannot hold
  // the runner in open(2), O_NOFOLLOW so a symlink is not read through.
  auto fd = open_at(dir_fd_.get(), kFileName, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (!fd) return std::unexpected(std::move(fd.error()).context("reading DB-query counters from " + file_path_));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", file_path_);
  if (!S_ISREG(st.st_mode))
    return fail("reading DB-query counters: " + file_path_ + ": is a " + file_type_name(st.st_mode) +
                ", expected a regular file");
  if (st.st_size != static_cast<off_t>(sizeof(cronrun_db_shm)))
    return fail("reading DB-query counters: " + file_path_ + ": unexpected size " + std::to_string(st.st_size));
  std::string bytes(sizeof(cronrun_db_shm), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(fd->get(), bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_sys("pread", file_path_);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  // TSC frequency measured over the job's own lifetime against CLOCK_MONOTONIC.
  double seconds_per_tick = 0;
  if (tsc_start_) {
    uint64_t tsc_now = read_tsc(), mono_now = monotonic_ns();
    if (tsc_now > tsc_start_ && mono_now > mono_start_ns_)
      seconds_per_tick = static_cast<double>(mono_now - mono_start_ns_) / 1e9 / static_cast<double>(tsc_now - tsc_start_);
  }
  auto counters = parse_counters(bytes, seconds_per_tick);
  if (!counters) return std::unexpected(std::move(counters.error()).context("reading " + file_path_));
  return counters;
}

Result<std::map<std::string, double>> parse_counters(std::string_view bytes, double seconds_per_tick) {
  if (bytes.size() != sizeof(cronrun_db_shm))
    return fail("counter file has " + std::to_string(bytes.size()) + " bytes, expected " +
                std::to_string(sizeof(cronrun_db_shm)));
  cronrun_db_shm shm;
  std::memcpy(&shm, bytes.data(), sizeof shm);
  if (shm.magic != CRONRUN_DB_MAGIC) return fail("counter file: bad magic");
  if (shm.version != CRONRUN_DB_VERSION)
    return fail("counter file: version " + std::to_string(shm.version) + ", expected " +
                std::to_string(CRONRUN_DB_VERSION));
  if (shm.total_size != sizeof(cronrun_db_shm) || shm.backend_count != CRONRUN_DB_NBACKENDS ||
      shm.proc_slot_count != CRONRUN_DB_PROC_SLOTS)
    return fail("counter file: layout sizes do not match this cronrun");

  auto d = [](uint64_t v) { return static_cast<double>(v); };
  std::map<std::string, double> out;
  out["db.processes"] = d(shm.processes);
  out["db.processes_with_client"] = d(shm.processes_with_client);
  out["db.resolve_failures"] = d(shm.resolve_failures);
  if (shm.processes_with_client == 0) return out;  // not observed: no query keys at all

  double queries = 0, prepares = 0, time_s = 0;
  for (size_t b = 0; b < kBackendNames.size(); b++) {
    const auto& c = shm.backend[b];
    double bq = d(c.queries), bp = d(c.prepares), bt = d(c.busy_ns) / 1e9 + d(c.busy_ticks) * seconds_per_tick;
    queries += bq;
    prepares += bp;
    time_s += bt;
    if (c.processes == 0 && c.queries == 0) continue;  // this backend not observed
    std::string prefix = std::string("db.") + kBackendNames[b];
    out[prefix + ".queries"] = bq;
    out[prefix + ".time_s"] = bt;
    out[prefix + ".prepares"] = bp;
  }
  out["db.queries"] = queries;
  out["db.time_s"] = time_s;
  out["db.prepares"] = prepares;

  for (const auto& slot : shm.proc) {
    if (slot.state != CRONRUN_DB_SLOT_READY || slot.queries == 0) continue;
    std::string_view raw(slot.name, strnlen(slot.name, sizeof slot.name));
    std::string name = sanitize(raw, CRONRUN_DB_PROC_NAME - 1);
    if (name.empty()) name = "_";
    out["db.proc." + name + ".queries"] += d(slot.queries);
  }
  if (shm.proc_overflow) out["db.proc._other.queries"] += d(shm.proc_overflow);
  return out;
}

}  // namespace cronrun::dbcount
