// /proc/self/cgroup and /proc/self/mountinfo, and the host view discovery builds
// from them (runner/cgroup_internal.h). Both files are the kernel's, but their
// paths carry names other users chose (mount points, cgroup names: spaces,
// newlines as octal escapes, ':' in paths). The input is the cgroup file, a NUL
// byte, then the mountinfo file; without a NUL both parsers read the whole input.
#include <string>

#include "runner/cgroup_internal.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_cgroup_host(const uint8_t* data, size_t size) {
  using namespace cronrun;
  std::string_view text = fuzz::as_text(data, size);
  std::string_view self_text = text, mounts_text = text;
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    self_text = text.substr(0, nul);
    mounts_text = text.substr(nul + 1);
  }
  auto self = cgroup::parse_proc_cgroup(self_text);
  auto mounts = cgroup::parse_mountinfo(mounts_text);
  if (self) {
    for (const auto& l : *self) FUZZ_CHECK_MSG(!l.path.empty() && l.path.front() == '/', l.path);
  }
  if (!self || !mounts) return 0;
  for (std::string_view prefix : {"", "/fuzz/root"}) {
    cgroup::HostView view = cgroup::build_host_view(*mounts, *self, prefix);
    auto check = [&](const cgroup::Hierarchy& h) {
      FUZZ_CHECK_MSG(h.mount_point.starts_with(prefix), h.mount_point);
      if (h.own_path) {
        // Our own cgroup is a path relative to the mount: the runner joins it to
        // the mount point and creates job cgroups beneath it.
        FUZZ_CHECK_MSG(!h.own_path->empty() && h.own_path->front() == '/', *h.own_path);
        (void)cgroup::cgroup_fs_path(h.mount_point, *h.own_path);
      }
    };
    if (view.unified) check(*view.unified);
    for (const auto& h : view.v1) check(h);
  }
  return 0;
}
