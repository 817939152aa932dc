// Compiled filters kept between runs in the runner's runtime directory.
//
// Compiling a profile with libseccomp (rules, the binary tree, the export) costs
// far more than the rest of a run's start-up, and a job runs under the same
// profile every time: the exported program is stored once per fingerprint and
// read back on later runs. The fingerprint covers everything the program depends
// on: the profile's allowed numbers, the exec window's descriptors (they are in
// the rules), libseccomp's version and kFilterFormat, which changes whenever
// compile_filter() emits a different program for the same input.
//
// The directory is cronrun's own runtime directory (0700, owned by the caller,
// checked component by component: CheckedDir). Files are opened O_NOFOLLOW,
// regular and owned by the caller only, read bounded and non-blocking; a file is
// written under a unique name and renamed into place, so a reader sees a whole
// program or none. Whoever can write that directory is the runner's own user, who
// can also change the job's config and crontab: the cache is no weaker a link.
// A cache that cannot be read or written is compiled around and said at -v.
#include <fcntl.h>
#include <seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/safe_file.h"
#include "runner/seccomp_filter.h"

namespace cronrun::seccomp {
namespace {

// Bump when compile_filter() would emit a different program for the same profile.
constexpr uint64_t kFilterFormat = 1;
constexpr char kMagic[8] = {'c', 'r', 'b', 'p', 'f', '0', '1', '\n'};

struct Header {
  char magic[8];
  uint64_t fingerprint;
  uint64_t insns;
};

uint64_t fnv(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t fingerprint(const Profile& profile, const ExecWindow& window) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, kFilterFormat);
  const scmp_version* v = seccomp_version();
  h = fnv(h, (uint64_t{v->major} << 32) | (uint64_t{v->minor} << 16) | v->micro);
  h = fnv(h, static_cast<uint64_t>(static_cast<int64_t>(window.transfer_fd)));
  h = fnv(h, static_cast<uint64_t>(static_cast<int64_t>(window.status_fd)));
  h = fnv(h, profile.allowed.size());
  for (int nr : profile.allowed) h = fnv(h, static_cast<uint64_t>(nr));
  return h;
}

Result<CompiledFilter> read_cached(const CheckedDir& dir, const std::string& name, uint64_t fp) {
  auto fd = dir.open_regular(name, O_RDONLY);
  if (!fd) return std::unexpected(std::move(fd.error()));
  auto text = read_bounded(fd->get(), sizeof(Header) + BPF_MAXINSNS * sizeof(sock_filter), dir.child(name));
  if (!text) return std::unexpected(std::move(text.error()));
  const std::string& data = text->data;
  Header h;
  if (data.size() < sizeof h) return fail(fmt::format("{}: shorter than its header", dir.child(name)));
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.fingerprint != fp || h.insns == 0 ||
      h.insns > BPF_MAXINSNS || data.size() != sizeof h + h.insns * sizeof(sock_filter))
    return fail(fmt::format("{}: not the filter it is named after", dir.child(name)));
  std::vector<sock_filter> insns(h.insns);
  std::memcpy(insns.data(), data.data() + sizeof h, h.insns * sizeof(sock_filter));
  return CompiledFilter(std::move(insns));
}

Result<void> write_cached(const CheckedDir& dir, const std::string& name, uint64_t fp, const CompiledFilter& f) {
  std::string data(sizeof(Header) + f.size() * sizeof(sock_filter), '\0');
  Header h;
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.fingerprint = fp;
  h.insns = f.size();
  std::memcpy(data.data(), &h, sizeof h);
  std::memcpy(data.data() + sizeof h, f.data(), f.size() * sizeof(sock_filter));
  const std::string tmp = fmt::format("{}.{}.tmp", name, ::getpid());
  auto fd = dir.create_file(tmp, O_WRONLY, 0600);
  if (!fd) return std::unexpected(std::move(fd.error()));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd->get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = Error::sys("write", dir.child(tmp), n < 0 ? errno : EIO);
      ::unlinkat(dir.fd(), tmp.c_str(), 0);
      return std::unexpected(std::move(e));
    }
    done += static_cast<size_t>(n);
  }
  if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), name.c_str()) != 0) {
    Error e = Error::sys("rename", dir.child(tmp), errno);
    ::unlinkat(dir.fd(), tmp.c_str(), 0);
    return std::unexpected(std::move(e));
  }
  return {};
}

}  // namespace

Result<CompiledFilter> load_filter(const Profile& profile, const ExecWindow& window, const std::string& cache_dir,
                                   std::string* cache_note) {
  if (cache_dir.empty()) return compile_filter(profile, window);
  const uint64_t fp = fingerprint(profile, window);
  const std::string name = fmt::format("seccomp-{:016x}.bpf", fp);
  auto dir = CheckedDir::open(cache_dir);
  if (dir) {
    auto cached = read_cached(*dir, name, fp);
    if (cached) return cached;
    if (cached.error().err() != ENOENT && cache_note)
      *cache_note = fmt::format("seccomp filter cache: {} (compiled instead)", cached.error().message());
  } else if (cache_note) {
    *cache_note = fmt::format("seccomp filter cache: {} (compiled instead)", dir.error().message());
  }
  auto compiled = compile_filter(profile, window);
  if (!compiled || !dir) return compiled;
  if (auto w = write_cached(*dir, name, fp, *compiled); !w && cache_note)
    *cache_note = fmt::format("seccomp filter cache: {} (not kept for the next run)", w.error().message());
  return compiled;
}

}  // namespace cronrun::seccomp
