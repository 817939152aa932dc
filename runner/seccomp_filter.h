// The job's seccomp filter: compiled in the runner, installed by the child right
// before execve, its user-notification listener handed to the supervisor.
//
// Parent, before fork:
//   auto channel = seccomp::make_listener_channel();          // socketpair
//   auto filter  = seccomp::compile_filter(profile, {channel->child_end.get(), status_write_fd});
// Child, after its other setup, right before the execve loop (no allocation):
//   seccomp::ChildInstall r = seccomp::install_in_child(*filter, channel->child_end.get());
//   if (r.err != 0) report r.step() and r.err, _exit(125)
// Parent, after fork: close channel->child_end; once the exec outcome is known
// (status pipe EOF), seccomp::receive_listener(channel->parent_end.get()) returns
// the listener fd for the supervisor's poll loop (seccomp_listener.h).
//
// Why the child sends the listener over a socket (SCM_RIGHTS) rather than the
// parent taking it with pidfd_getfd(2): the child must not exec before the parent
// has the listener (it is O_CLOEXEC, and must stay so: a job holding its own
// listener could let itself through), so pidfd_getfd needs the child to wait for
// the parent, a blocking handshake under the filter. sendmsg to an empty socket
// never blocks; the listener then sits in the parent's socket until the runner
// picks it up, and notifications wait in the kernel meanwhile.
//
// The window between loading the filter and execve: the child calls only
// sendmsg(transfer fd), execve, and on a failed exec write(status fd) and
// exit_group (and, in sanitized builds, sigaltstack(NULL, ...), which the ASan
// runtime calls before a [[noreturn]] call). None of them may be sent to the listener, or the child would wait
// for an answer nobody can give yet (the runner is blocked reading the status
// pipe). execve, exit and exit_group are allowed by every profile; sendmsg and
// write are allowed on exactly those two descriptors, and sigaltstack only as a
// query, when the profile does not allow them at all (both fds are O_CLOEXEC, so after exec the same numbers are
// whatever the job opens there: documented hole for profiles denying sendmsg or
// write, which no real job passes anyway).
//
// Fail-closed: a notified syscall with no listener left (the supervisor died, or
// the listener never arrived) returns ENOSYS from the kernel. The job also dies
// with its runner (PR_SET_PDEATHSIG in spawn).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "runner/seccomp_profile.h"

namespace cronrun::seccomp {

// The descriptors the child uses between loading the filter and exec.
struct ExecWindow {
  int transfer_fd = -1;  // the child's end of the listener channel
  int status_fd = -1;    // the spawn status pipe's write end (-1: none)
};

// A classic BPF program, exported once from libseccomp. Move-only; the child
// reads it without allocating.
class CompiledFilter {
 public:
  CompiledFilter() = default;
  explicit CompiledFilter(std::vector<sock_filter> insns) : insns_(std::move(insns)) {}
  CompiledFilter(CompiledFilter&&) = default;
  CompiledFilter& operator=(CompiledFilter&&) = default;
  CompiledFilter(const CompiledFilter&) = delete;
  CompiledFilter& operator=(const CompiledFilter&) = delete;

  const sock_filter* data() const { return insns_.data(); }
  size_t size() const { return insns_.size(); }

 private:
  std::vector<sock_filter> insns_;
};

// Builds the filter: native arch only (others, and x32 numbers, kill the process),
// the profile's syscalls allowed, clone without namespace flags, personality with
// the harmless values, clone3 ENOSYS, everything else notified. Errors carry the
// libseccomp call and its errno.
Result<CompiledFilter> compile_filter(const Profile& profile, const ExecWindow& window);

// compile_filter(), or the same program from the cache in `cache_dir`
// (seccomp_cache.cc; "" = no cache): compiling costs far more than a run's other
// start-up. A cache that cannot be read or written is compiled around, never
// fatal; `cache_note` (optional) then says why, for the caller's log.
Result<CompiledFilter> load_filter(const Profile& profile, const ExecWindow& window, const std::string& cache_dir,
                                   std::string* cache_note = nullptr);

struct ListenerChannel {
  UniqueFd parent_end;  // non-blocking; the runner receives the listener here
  UniqueFd child_end;   // the child sends it from here; the parent closes it after fork
};
Result<ListenerChannel> make_listener_channel();

// Outcome of install_in_child: err == 0 on success, else which call failed.
struct ChildInstall {
  enum class Step : int32_t { none, no_new_privs, load, send_listener };
  Step step = Step::none;
  int err = 0;
  const char* step_name() const;
};

// In the child, right before execve: PR_SET_NO_NEW_PRIVS, the filter with
// SECCOMP_FILTER_FLAG_NEW_LISTENER, and the listener sent over `transfer_fd`.
// Async-signal-safe, allocates nothing, never blocks. After success the caller
// only execs (or writes its status fd and exits).
ChildInstall install_in_child(const CompiledFilter& filter, int transfer_fd) noexcept;

// In the parent: the listener the child sent, without waiting. An error when
// nothing arrived (the child failed before sending) or the message is malformed.
Result<UniqueFd> receive_listener(int parent_end);

}  // namespace cronrun::seccomp
