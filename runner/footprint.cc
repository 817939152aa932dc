#include "runner/footprint.h"

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace cronrun {

namespace {

struct Walk {
  uintptr_t page = 0;
  int err = 0;  // the first madvise failure
};

int drop_segments(struct dl_phdr_info* info, size_t, void* data) {
  auto* walk = static_cast<Walk*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0) continue;
    uintptr_t start = (info->dlpi_addr + ph.p_vaddr) & ~(walk->page - 1);
    uintptr_t end = info->dlpi_addr + ph.p_vaddr + ph.p_memsz;
    if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED) != 0 && walk->err == 0) walk->err = errno;
  }
  return 1;  // the main program is listed first; stop there
}

}  // namespace

Result<void> drop_own_read_only_pages() {
  Walk walk;
  walk.page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  ::dl_iterate_phdr(drop_segments, &walk);
  if (walk.err != 0) return fail_sys("madvise(MADV_DONTNEED)", "/proc/self/exe", walk.err);
  return {};
}

}  // namespace cronrun
