// Raw syscalls glibc 2.36 does not wrap, and the constants older headers lack.
// Everything here is a thin, errno-setting wrapper; no logic.
#pragma once

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

namespace cronrun::sys {

#ifndef CLONE_INTO_CGROUP
inline constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;
#else
inline constexpr uint64_t kCloneIntoCgroup = CLONE_INTO_CGROUP;
#endif
#ifndef CLONE_PIDFD
inline constexpr uint64_t kClonePidfd = 0x00001000ULL;
#else
inline constexpr uint64_t kClonePidfd = CLONE_PIDFD;
#endif

// clone3 as fork(): same address space copy, no new stack. Returns 0 in the child.
// `cgroup_fd` < 0 means no CLONE_INTO_CGROUP.
inline pid_t clone3_fork(int* pidfd_out, int cgroup_fd) {
  struct clone_args args {};
  args.flags = kClonePidfd | (cgroup_fd >= 0 ? kCloneIntoCgroup : 0);
  args.pidfd = reinterpret_cast<uint64_t>(pidfd_out);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) args.cgroup = static_cast<uint64_t>(cgroup_fd);
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

inline int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }

inline int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u));
}

// ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)
inline int ioprio_set_self(int io_class, int level) {
  return static_cast<int>(::syscall(SYS_ioprio_set, 1, 0, (io_class << 13) | level));
}

}  // namespace cronrun::sys
