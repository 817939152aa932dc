// Compiling a profile to BPF in the runner, and installing it in the child.
//
// libseccomp 2.5 cannot hand out its program in memory, only write it to an fd:
// the runner exports it once into a memfd and reads it back, so the child has a
// plain array to pass to seccomp(2) and never calls into libseccomp (which
// allocates). The filter's default action is SECCOMP_RET_USER_NOTIF: what the
// profile does not allow goes to the supervisor, which counts it and answers
// (seccomp_listener.cc). libseccomp cannot add a rule whose action equals the
// default, so argument exceptions are written as ALLOW rules over a notifying
// default: clone when no namespace flag is set, personality for each harmless
// value. The architecture check comes first in every libseccomp program: a
// foreign arch, and on x86_64 any number with the x32 bit, kills the process
// (SCMP_FLTATR_ACT_BADARCH). The syscall dispatch is a binary tree
// (SCMP_FLTATR_CTL_OPTIMIZE 2): the strict list costs a handful of comparisons,
// not one per syscall (bench/seccomp.sh).
#include "runner/seccomp_filter.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace cronrun::seccomp {
namespace {

struct CtxRelease {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxRelease>;

// libseccomp returns -errno.
Result<void> check(int rc, const std::string& what) {
  if (rc == 0) return {};
  return fail_sys("libseccomp " + what, "", -rc);
}

// A comparison on the first argument with every field set (libseccomp's SCMP_A0
// leaves datum_b implicit, which clang's -Wextra reports).
scmp_arg_cmp arg0(scmp_compare op, uint64_t a, uint64_t b = 0) { return scmp_arg_cmp{0, op, a, b}; }

bool allows(const Profile& p, int nr) { return std::binary_search(p.allowed.begin(), p.allowed.end(), nr); }

// One byte and room for one SCM_RIGHTS descriptor: the listener's hand-over,
// laid out the same way on both sides. Lives on the caller's stack; filling it
// is async-signal-safe (the child's side runs between fork and exec).
struct FdMessage {
  char byte;
  struct iovec iov;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg;
};

void init_fd_message(FdMessage& m, char byte) noexcept {
  std::memset(&m, 0, sizeof m);
  m.byte = byte;
  m.iov.iov_base = &m.byte;
  m.iov.iov_len = 1;
  m.msg.msg_iov = &m.iov;
  m.msg.msg_iovlen = 1;
  m.msg.msg_control = m.control;
  m.msg.msg_controllen = sizeof m.control;
}

}  // namespace

Result<CompiledFilter> compile_filter(const Profile& profile, const ExecWindow& window) {
  Ctx ctx(seccomp_init(SCMP_ACT_NOTIFY));
  if (!ctx) return fail("libseccomp seccomp_init: failed (out of memory?)");
  if (auto r = check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "set badarch action");
      !r)
    return std::unexpected(r.error());
  if (auto r = check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "set binary tree"); !r)
    return std::unexpected(r.error());

  const int nr_clone = syscall_number("clone");
  const int nr_clone3 = syscall_number("clone3");
  const int nr_personality = syscall_number("personality");
  for (int nr : profile.allowed) {
    if (nr == nr_clone3) continue;  // ENOSYS below, whatever the profile says
    if (nr == nr_clone) {
      auto r = check(seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                                      arg0(SCMP_CMP_MASKED_EQ, kCloneNamespaceFlags, 0)),
                     "rule clone without namespace flags");
      if (!r) return std::unexpected(r.error());
    } else if (nr == nr_personality) {
      for (uint32_t v : kAllowedPersonalities) {
        auto r = check(seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1, arg0(SCMP_CMP_MASKED_EQ, 0xffffffffu, v)),
                       fmt::format("rule personality {:#x}", v));
        if (!r) return std::unexpected(r.error());
      }
    } else if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc != 0) {
      return std::unexpected(check(rc, fmt::format("rule allow {}", syscall_name(nr))).error());
    }
  }
  if (nr_clone3 >= 0)
    if (auto r = check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), nr_clone3, 0), "rule clone3 ENOSYS"); !r)
      return std::unexpected(r.error());

  // The exec window (seccomp_filter.h): never notify what the child calls there.
  auto window_rule = [&](const char* name, int fd) -> Result<void> {
    const int nr = syscall_number(name);
    if (fd < 0 || nr < 0 || allows(profile, nr)) return {};
    return check(seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1, arg0(SCMP_CMP_EQ, static_cast<uint64_t>(fd))),
                 fmt::format("rule {} on fd {}", name, fd));
  };
  if (auto r = window_rule("sendmsg", window.transfer_fd); !r) return std::unexpected(r.error());
  if (auto r = window_rule("write", window.status_fd); !r) return std::unexpected(r.error());
  // sigaltstack(NULL, &old) only reads; AddressSanitizer's runtime makes that call
  // before every [[noreturn]] call in instrumented code (the child's failure
  // path), so a sanitized runner would otherwise wait on it in the window.
  if (auto r = window_rule("sigaltstack", 0); !r) return std::unexpected(r.error());

  UniqueFd mem(::memfd_create("cronrun-seccomp", MFD_CLOEXEC));
  if (!mem) return fail_sys("memfd_create", "cronrun-seccomp");
  if (auto r = check(seccomp_export_bpf(ctx.get(), mem.get()), "seccomp_export_bpf"); !r)
    return std::unexpected(r.error());
  struct stat st;
  if (::fstat(mem.get(), &st) != 0) return fail_sys("fstat", "memfd:cronrun-seccomp");
  const size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0 || bytes / sizeof(sock_filter) > BPF_MAXINSNS)
    return fail(fmt::format("libseccomp exported a filter of {} bytes: not a BPF program the kernel takes", bytes));
  std::vector<sock_filter> insns(bytes / sizeof(sock_filter));
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = ::pread(mem.get(), reinterpret_cast<char*>(insns.data()) + done, bytes - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_sys("pread", "memfd:cronrun-seccomp");
    if (n == 0) return fail("memfd:cronrun-seccomp: short read of the exported filter");
    done += static_cast<size_t>(n);
  }
  return CompiledFilter(std::move(insns));
}

Result<ListenerChannel> make_listener_channel() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return fail_sys("socketpair", "seccomp listener channel");
  return ListenerChannel{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

const char* ChildInstall::step_name() const {
  switch (step) {
    case Step::none: return "seccomp";
    case Step::no_new_privs: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case Step::load: return "seccomp(SECCOMP_SET_MODE_FILTER)";
    case Step::send_listener: return "sendmsg(seccomp listener)";
  }
  return "seccomp";
}

ChildInstall install_in_child(const CompiledFilter& filter, int transfer_fd) noexcept {
  ChildInstall out;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    out.step = ChildInstall::Step::no_new_privs;
    out.err = errno;
    return out;
  }
  struct sock_fprog prog {};
  prog.len = static_cast<unsigned short>(filter.size());
  prog.filter = const_cast<sock_filter*>(filter.data());
  const long listener = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) {
    out.step = ChildInstall::Step::load;
    out.err = errno;
    return out;
  }
  // From here on: only the window's syscalls (seccomp_filter.h). The listener
  // stays open until exec closes it (O_CLOEXEC): close(2) might be notified.
  FdMessage m;
  init_fd_message(m, 'L');
  struct msghdr& msg = m.msg;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int fd = static_cast<int>(listener);
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do {
    n = ::sendmsg(transfer_fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    out.step = ChildInstall::Step::send_listener;
    out.err = n < 0 ? errno : EIO;
  }
  return out;
}

Result<UniqueFd> receive_listener(int parent_end) {
  FdMessage m;
  init_fd_message(m, 0);
  struct msghdr& msg = m.msg;
  ssize_t n;
  do {
    n = ::recvmsg(parent_end, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return fail("seccomp listener: the job's filter did not send its listener");
  if (n < 0) return fail_sys("recvmsg", "seccomp listener channel");
  UniqueFd got;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (!got && i == 0) got.reset(fd);
      else ::close(fd);  // more than the one we asked for: not ours to keep
    }
  }
  if (n == 0 && !got) return fail("seccomp listener: the child closed the channel without sending its listener");
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || !got || m.byte != 'L')
    return fail("seccomp listener: malformed message on the listener channel");
  return got;
}

}  // namespace cronrun::seccomp
