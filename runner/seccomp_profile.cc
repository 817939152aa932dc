// Built-in profiles, the profile file parser and the native syscall table.
//
// Names are resolved through libseccomp for the native architecture only; the
// table is built once (a few hundred calls into libseccomp) and is read-only after.
// The strict list was built from `strace -f -c` of the programs DESIGN §11 names
// (sh, bash, python3 with threads/multiprocessing/sqlite3/sockets/subprocess, perl
// with fork, php -r, tar with chmod, gzip, find | sort, sqlite3) on Debian 12, plus
// what glibc and common runtimes call on other paths (xattrs for tar/cp -a, SysV
// and POSIX IPC, AIO, timers, inotify, landlock and seccomp for jobs that sandbox
// themselves). It never includes a syscall the baseline denies (a unit test holds
// that).
#include "runner/seccomp_profile.h"

#include <seccomp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include <fmt/format.h>

#include "common/safe_file.h"

namespace cronrun::seccomp {
namespace {

struct SyscallTable {
  std::vector<std::string> by_nr;  // "" where unknown
  std::vector<int> known;
};

// The highest native number probed. x86_64's own table ends below; numbers from
// 512 on are x32's, which the filter never lets through. Each probe is a linear
// scan of libseccomp's table, so the bound is most of what building it costs.
constexpr int kMaxProbedNr = 512;

const SyscallTable& table() {
  static const SyscallTable t = [] {
    SyscallTable out;
    out.by_nr.resize(kMaxProbedNr);
    for (int nr = 0; nr < kMaxProbedNr; ++nr) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
      if (name == nullptr) continue;
      out.by_nr[nr] = name;
      std::free(name);
      out.known.push_back(nr);
    }
    return out;
  }();
  return t;
}

// Syscalls no cron job needs and that reach beyond the job: the host's mounts,
// modules, clock, swap, power, kernel memory and keyrings, other processes'
// memory, namespaces, and kernel interfaces with a long CVE history (bpf,
// io_uring, userfaultfd, perf). Obsolete syscalls the kernel no longer
// implements are listed so that a call is seen, not silently ENOSYS.
// Arrays of chars, neither vectors (every run, --seccomp or not, ran their
// initializers) nor string_views (a table of pointers in a PIE is relocated, so
// written, by the loader at every start: 5 KB of copied-on-write pages a run).
// These stay in .rodata, untouched until a profile is built.
struct SyscallName {
  // From a literal, at compile time (clang's -Wmissing-braces wanted {{"..."}} for
  // an aggregate); a longer name does not compile.
  template <size_t N>
  consteval SyscallName(const char (&name)[N]) {  // NOLINT(google-explicit-constructor): a table of literals
    static_assert(N <= sizeof text);
    for (size_t i = 0; i < N; ++i) text[i] = name[i];
  }
  char text[24]{};
  constexpr std::string_view view() const { return text; }
};

constexpr SyscallName kBaselineDenied[] = {
    // mounts and filesystems
    "mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsmount", "fsconfig", "fspick", "open_tree",
    "mount_setattr", "quotactl", "quotactl_fd", "nfsservctl",
    // modules, kexec, power, swap
    "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    // the host's clock and identity
    "clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "sethostname", "setdomainname",
    // raw IO
    "iopl", "ioperm",
    // kernel keyrings
    "keyctl", "add_key", "request_key",
    // kernel attack surface
    "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "uselib", "_sysctl", "fanotify_init", "syslog",
    // namespaces (clone's namespace flags are filtered on its argument)
    "unshare", "setns",
    // other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    // file handles bypass path permissions (the "shocker" escape)
    "open_by_handle_at",
    // accounting and terminals of others
    "acct", "vhangup",
};

constexpr SyscallName kStrictAllowed[] = {
    // files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "stat", "fstat", "lstat",
    "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink",
    "readlinkat", "getdents", "getdents64", "dup", "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync",
    "sync", "syncfs", "sync_file_range", "truncate", "ftruncate", "fallocate", "fadvise64", "readahead",
    "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat",
    "mkdir", "mkdirat", "rmdir", "mknod", "mknodat", "chmod", "fchmod", "fchmodat", "chown", "fchown",
    "lchown", "fchownat", "umask", "utime", "utimes", "utimensat", "futimesat", "getcwd", "chdir",
    "fchdir", "sendfile", "copy_file_range", "splice", "tee", "ioctl", "pipe", "pipe2", "memfd_create",
    "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "setxattr",
    "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    // waiting for events
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch",
    // memory
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore", "mlock", "mlock2",
    "munlock", "mlockall", "munlockall", "membarrier", "get_mempolicy", "set_mempolicy", "mbind",
    "pkey_alloc", "pkey_free", "pkey_mprotect",
    // processes and threads
    "fork", "vfork", "clone", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill",
    "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "capget",
    "capset", "prctl", "arch_prctl", "personality", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "futex", "futex_waitv", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr",
    "sched_setattr", "getpriority", "setpriority", "ioprio_get", "ioprio_set", "getrlimit", "setrlimit",
    "prlimit64", "getrusage", "times", "sysinfo", "uname", "pidfd_open", "pidfd_send_signal", "getcpu",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp",
    // signals and time
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigsuspend",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "pause", "alarm", "nanosleep",
    "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "getitimer", "setitimer",
    "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "restart_syscall", "getrandom",
    // sockets
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    "setsockopt", "getsockopt",
    // SysV and POSIX IPC, Linux AIO (database clients and servers)
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd",
    "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
    "mq_getsetattr", "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
};

// The runner starts the job with execve and reports a failed one before exiting.
constexpr SyscallName kAlwaysAllowed[] = {"execve", "exit", "exit_group"};

std::vector<int> numbers_of(std::span<const SyscallName> names) {
  std::vector<int> out;
  for (const auto& n : names) {
    int nr = syscall_number(n.view());
    if (nr >= 0) out.push_back(nr);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void add_always_allowed(std::vector<int>& allowed) {
  for (const auto& n : kAlwaysAllowed) allowed.push_back(syscall_number(n.view()));
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
}

std::vector<int> all_known_except(const std::vector<int>& denied) {
  std::vector<int> out;
  std::set_difference(known_syscalls().begin(), known_syscalls().end(), denied.begin(), denied.end(),
                      std::back_inserter(out));
  return out;
}

struct ErrnoName {
  std::string_view name;
  int value;
};
constexpr ErrnoName kErrnos[] = {{"EPERM", EPERM}, {"EACCES", EACCES}, {"ENOSYS", ENOSYS}};

std::string_view errno_name(int e) {
  for (const auto& en : kErrnos)
    if (en.value == e) return en.name;
  return "EPERM";
}

}  // namespace

std::string_view syscall_name(int nr) {
  const auto& t = table();
  if (nr < 0 || nr >= static_cast<int>(t.by_nr.size())) return {};
  return t.by_nr[nr];
}

// By name libseccomp hashes (no table needed): resolving a profile's names on
// every run stays cheap; the by-number table is built only when a number must be
// named (a violation, a message) or every known number is needed (baseline).
int syscall_number(std::string_view name) {
  const std::string n(name);
  const int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, n.c_str());
  // Negative: unknown, or a pseudo-syscall number libseccomp keeps for other arches.
  return nr >= 0 && nr < kMaxProbedNr ? nr : -1;
}

const std::vector<int>& known_syscalls() { return table().known; }

namespace {
std::vector<std::string_view> views_of(std::span<const SyscallName> names) {
  std::vector<std::string_view> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back(n.view());
  return out;
}
}  // namespace

std::vector<std::string_view> baseline_denied_names() { return views_of(kBaselineDenied); }
std::vector<std::string_view> strict_allowed_names() { return views_of(kStrictAllowed); }

Result<Profile> builtin_profile(std::string_view name) {
  Profile p;
  p.name = std::string(name);
  if (name == "baseline") {
    p.allowed = all_known_except(numbers_of(kBaselineDenied));
  } else if (name == "strict" || name == "learn") {
    p.allowed = numbers_of(kStrictAllowed);
    p.learn = name == "learn";
  } else {
    return fail(fmt::format("unknown seccomp profile '{}' (expected off, baseline, strict, learn or a file)", name));
  }
  add_always_allowed(p.allowed);
  return p;
}

Result<Profile> resolve_profile(const std::string& value) {
  if (value == "baseline" || value == "strict" || value == "learn") return builtin_profile(value);
  struct stat st {};
  if (value.find('/') == std::string::npos && ::lstat(value.c_str(), &st) != 0 && errno == ENOENT)
    return fail(fmt::format("unknown seccomp profile '{}' (expected off, baseline, strict, learn or a profile file)",
                            value));
  // The profile decides what the job may do: only a file root or the caller owns.
  auto text = read_obeyed_file(value, kMaxProfileBytes, "seccomp profile");
  if (!text) return std::unexpected(std::move(text.error()));
  return parse_profile(*text, value);
}

Result<Profile> parse_profile(std::string_view text, const std::string& path) {
  auto bad = [&](const std::string& what) { return fail(fmt::format("seccomp profile {}: {}", path, what)); };
  nlohmann::json j;
  try {
    // Comments are allowed, as in job config files: admins annotate their lists.
    j = nlohmann::json::parse(text.begin(), text.end(), nullptr, true, true);
  } catch (const nlohmann::json::exception& e) {
    return bad(fmt::format("not valid JSON ({})", e.what()));
  }
  if (!j.is_object()) return bad("expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "schema" && key != "default" && key != "errno" && key != "allow" && key != "deny" && key != "note" &&
        key != "learned")
      return bad(fmt::format("unknown key \"{}\" (expected schema, default, errno, allow, deny, note, learned)", key));
  }
  auto schema = j.find("schema");
  if (schema == j.end() || !schema->is_string() || schema->get<std::string>() != kProfileSchema)
    return bad(fmt::format("\"schema\" must be \"{}\"", kProfileSchema));
  auto def = j.find("default");
  if (def == j.end() || !def->is_string() || (*def != "errno" && *def != "allow"))
    return bad("\"default\" must be \"errno\" (an allow list) or \"allow\" (a deny list)");
  const bool allow_list = *def == "errno";

  Profile p;
  p.name = path;
  if (auto e = j.find("errno"); e != j.end()) {
    bool found = false;
    if (e->is_string())
      for (const auto& en : kErrnos)
        if (*e == en.name) {
          p.deny_errno = en.value;
          found = true;
        }
    if (!found) return bad("\"errno\" must be \"EPERM\", \"EACCES\" or \"ENOSYS\"");
  }

  const char* list_key = allow_list ? "allow" : "deny";
  const char* other_key = allow_list ? "deny" : "allow";
  if (j.contains(other_key))
    return bad(fmt::format("\"{}\" does not go with \"default\": \"{}\" (use \"{}\")", other_key,
                           def->get<std::string>(), list_key));
  auto list = j.find(list_key);
  if (list == j.end() || !list->is_array()) return bad(fmt::format("\"{}\" must be an array of syscall names", list_key));
  std::vector<int> listed;
  for (const auto& item : *list) {
    if (!item.is_string()) return bad(fmt::format("\"{}\" must hold syscall names (strings)", list_key));
    const auto& name = item.get_ref<const std::string&>();
    int nr = syscall_number(name);
    if (nr < 0) return bad(fmt::format("unknown syscall \"{}\" in \"{}\"", name, list_key));
    if (!allow_list)
      for (const auto& keep : kAlwaysAllowed)
        if (name == keep.view()) return bad(fmt::format("cannot deny \"{}\": the runner needs it to start the job", name));
    listed.push_back(nr);
  }
  std::sort(listed.begin(), listed.end());
  listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
  p.allowed = allow_list ? std::move(listed) : all_known_except(listed);
  add_always_allowed(p.allowed);
  return p;
}

nlohmann::json profile_json(const std::vector<int>& allowed, int deny_errno, const nlohmann::json& learned) {
  std::vector<int> nrs = allowed;
  add_always_allowed(nrs);
  nlohmann::json names = nlohmann::json::array();
  for (int nr : nrs)
    if (auto n = syscall_name(nr); !n.empty()) names.push_back(std::string(n));
  nlohmann::json out = {{"schema", std::string(kProfileSchema)},
                        {"default", "errno"},
                        {"errno", std::string(errno_name(deny_errno))},
                        {"allow", std::move(names)}};
  if (!learned.is_null()) out["learned"] = learned;
  return out;
}

}  // namespace cronrun::seccomp
