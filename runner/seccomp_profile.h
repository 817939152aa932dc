// seccomp profiles (DESIGN §11): what a job's syscall filter lets through.
//
// A profile is a set of native syscalls the kernel lets through on its own; every
// other syscall is sent to the supervisor's listener (seccomp_listener.h), which
// counts it and answers: the profile's errno (EPERM by default) for a syscall
// libseccomp knows, ENOSYS for one it does not (so that a newer libc falls back),
// or, in `learn`, lets it run. Four kinds:
//   baseline — every known syscall except a deny list no cron job needs (module,
//              reboot, swap, mount, clock, raw IO, keyring, bpf, kexec, namespaces,
//              ptrace of others, io_uring, ...);
//   strict   — an allow list that sh, bash, python3, perl, php, tar, gzip, find,
//              sort and sqlite3 pass (built from strace -f -c of those programs
//              plus glibc's usual set);
//   learn    — strict's list, but nothing is denied: the syscalls outside it are
//              recorded and then run, and the run proposes a profile;
//   FILE     — a JSON profile (format below; a learned profile is one).
// Rules every profile shares, whatever it lists (the filter applies them):
//   - clone is allowed only without namespace flags; clone3 answers ENOSYS in the
//     kernel (its flags live in memory a filter cannot read; glibc falls back to
//     clone, as under Docker's profile);
//   - personality is allowed only for the harmless values (kAllowedPersonalities);
//   - execve, exit and exit_group are always allowed (the runner needs them to
//     start the job and to report a failed exec);
//   - only the native ABI: i386 and x32 syscalls kill the process.
//
// Profile file format (schema cronrun.seccomp/1, documented in cronrun.json(5)):
//   {"schema": "cronrun.seccomp/1",
//    "default": "errno",                 // or "allow"
//    "errno": "EPERM",                   // EPERM (default), EACCES or ENOSYS
//    "allow": ["read", "write", ...],    // with "default": "errno": the allow list
//    "deny": ["ptrace", ...],            // with "default": "allow": the deny list
//    "note": "...", "learned": {...}}    // free text and learn metadata, ignored
// Unknown keys, unknown syscall names, a list that does not go with "default",
// or denying a syscall the runner needs are errors naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"

namespace cronrun::seccomp {

inline constexpr std::string_view kProfileSchema = "cronrun.seccomp/1";

// The personality(2) values the filter lets through (compared on the low 32 bits,
// which is all the kernel reads): PER_LINUX, PER_LINUX32 (`linux32` for 32-bit
// builds), UNAME26, ADDR_NO_RANDOMIZE alone or with those (`setarch -R`; it only
// weakens the job's own tree and the kernel clears it on set-id exec, and
// no_new_privs means no set-id exec gains anything), and 0xffffffff (the query).
// Everything else (READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, foreign personalities)
// weakens memory protections and is denied.
inline constexpr uint32_t kAllowedPersonalities[] = {0x0000000, 0x0000008, 0x0020000, 0x0020008,
                                                     0x0040000, 0x0040008, 0x0060000, 0x0060008,
                                                     0xffffffff};

// Namespace-creating clone(2) flags (CLONE_NEWNS ... CLONE_NEWCGROUP).
inline constexpr uint64_t kCloneNamespaceFlags = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 |
                                                 0x10000000 | 0x20000000 | 0x40000000;

struct Profile {
  // "baseline", "strict", "learn", or the file's path as given.
  std::string name;
  // Notified syscalls run (SECCOMP_USER_NOTIF_FLAG_CONTINUE) and are recorded.
  bool learn = false;
  // What a denied, known syscall returns (the listener answers it).
  int deny_errno = 1;  // EPERM
  // Native syscall numbers the kernel lets through without asking, sorted, unique.
  std::vector<int> allowed;
};

// Built-in profiles by name; `name` must be baseline, strict or learn.
Result<Profile> builtin_profile(std::string_view name);
// `--seccomp VALUE`: a built-in name, or else the path of a profile file (read at
// most kMaxProfileBytes, regular files only). "off" is not a profile: callers
// handle it before.
Result<Profile> resolve_profile(const std::string& value);
inline constexpr size_t kMaxProfileBytes = 1 << 20;
// Parses a profile file's text; errors name `path`.
Result<Profile> parse_profile(std::string_view text, const std::string& path);

// The lists behind the built-ins, by name (for tests and documentation).
std::vector<std::string_view> baseline_denied_names();
std::vector<std::string_view> strict_allowed_names();

// Native syscall table, from libseccomp: the name of `nr`, or "" when unknown.
std::string_view syscall_name(int nr);
// The number of `name`, or -1 when libseccomp does not know it on this arch.
int syscall_number(std::string_view name);
// Every native syscall number libseccomp knows, ascending.
const std::vector<int>& known_syscalls();

// A profile file (schema cronrun.seccomp/1, default errno) allowing `allowed`
// (native numbers); `learned` (an object, or null) is kept as "learned".
nlohmann::json profile_json(const std::vector<int>& allowed, int deny_errno, const nlohmann::json& learned);

}  // namespace cronrun::seccomp
