// The supervisor's side of the job's seccomp filter: one user-notification
// listener for the whole process tree (children inherit the filter, and every
// notification of every descendant arrives here), polled from the supervisor's
// loop. Each notification is a syscall the profile does not allow: it is counted
// with the syscall's name, the first pid that made it and that process's command,
// then answered: the profile's errno (ENOSYS for a syscall libseccomp does not
// know, so that a newer libc falls back), or, in learn mode, "continue" (the
// kernel runs it). The summary becomes the run record's `seccomp` object.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "runner/seccomp_profile.h"

namespace cronrun::seccomp {

struct Violation {
  int nr = -1;
  std::string syscall;  // libseccomp's name, or "syscall_<nr>" when it has none
  uint64_t count = 0;
  pid_t first_pid = 0;  // in the supervisor's pid namespace
  std::string comm;     // /proc/<pid>/comm of first_pid; "" when it was already gone
};

struct Summary {
  std::string profile;  // Profile::name
  bool learn = false;
  int deny_errno = 1;
  uint64_t violations_total = 0;
  std::vector<Violation> violations;  // in order of first occurrence
  // Answers the kernel refused because the caller was gone (killed while waiting).
  uint64_t answers_lost = 0;
  std::vector<int> profile_allowed;   // the profile's own list (for learned_profile)

  // The run record's `seccomp` object (DESIGN §4):
  //   {"profile", "action": "EPERM"|"EACCES"|"ENOSYS"|"continue", "violations_total",
  //    "violations": [{"syscall", "count", "first_pid", "comm"}], "answers_lost",
  //    learn only: "seen": [names of the syscalls outside the profile]}
  nlohmann::json to_json() const;
  // learn: a profile file (seccomp_profile.h format) allowing the profile's list
  // plus every named syscall seen, with the counts under "learned".
  nlohmann::json learned_profile() const;
};

class Listener {
 public:
  // `fd`: from receive_listener(). Asks the kernel for its notification sizes.
  static Result<Listener> create(UniqueFd fd, const Profile& profile);

  // For the supervisor's poll set (POLLIN: a notification is waiting; POLLHUP:
  // no task uses the filter any more).
  int fd() const { return fd_.get(); }

  // Receives and answers at most one notification, without blocking: false when
  // none was waiting (or it was withdrawn because its task died). An error is a
  // broken listener: the caller records it and closes the listener, after which
  // the kernel answers ENOSYS to every notified syscall (fail closed).
  Result<bool> handle_ready();

  const Summary& summary() const { return summary_; }

  // Closes the listener (the summary stays): from then on the kernel answers
  // ENOSYS to every notified syscall of the job's tree.
  void close() { fd_.reset(); }
  bool is_open() const { return static_cast<bool>(fd_); }

 private:
  Listener() = default;
  void record(int nr, pid_t pid, std::string comm);

  UniqueFd fd_;
  Summary summary_;
  std::vector<unsigned char> notif_buf_;
  std::vector<unsigned char> resp_buf_;
  std::vector<int> slot_by_nr_;  // index into summary_.violations, -1 when none
};

// /proc/<pid>/comm without the newline: bounded, non-blocking; "" on failure.
std::string read_comm(pid_t pid);

}  // namespace cronrun::seccomp
