// Receiving and answering the job tree's seccomp notifications.
//
// Kernel rules this follows (seccomp_unotify(2)):
//  - SECCOMP_IOCTL_NOTIF_RECV blocks when nothing is pending, so handle_ready()
//    polls with a zero timeout first. A notification whose task is killed between
//    the poll and the receive is withdrawn; the receive then fails with ENOENT
//    instead of blocking (the pending count the poll saw is not taken back).
//  - The receive buffer must be zeroed and as large as the kernel's struct
//    (SECCOMP_GET_NOTIF_SIZES), which may be larger than our headers'.
//  - A pid in a notification can be reused once its task dies: /proc/<pid>/comm is
//    read first and trusted only if SECCOMP_IOCTL_NOTIF_ID_VALID still holds after.
//  - SECCOMP_USER_NOTIF_FLAG_CONTINUE lets the kernel run the syscall; it is only
//    used in learn mode, where nothing is denied anyway (a CONTINUE decided on
//    pointer arguments would be a TOCTOU race; learn decides on nothing).
//  - When the last listener fd is closed, pending and future notifications return
//    ENOSYS to the job: the filter fails closed.
#include "runner/seccomp_listener.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace cronrun::seccomp {
namespace {

// Native numbers below this index a table; x32 and foreign arches never get here
// (the filter kills them), but a number beyond is still counted.
constexpr int kSlotTableSize = 1024;

std::string_view action_name(const Summary& s) {
  if (s.learn) return "continue";
  switch (s.deny_errno) {
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    default: return "EPERM";
  }
}

}  // namespace

std::string read_comm(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/comm", static_cast<int>(pid));
  UniqueFd fd(::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return {};
  char buf[64];  // the kernel's TASK_COMM_LEN is 16; read a little more and cut
  ssize_t n;
  do {
    n = ::read(fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return {};
  std::string out(buf, static_cast<size_t>(n));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

Result<Listener> Listener::create(UniqueFd fd, const Profile& profile) {
  struct seccomp_notif_sizes sizes {};
  if (::syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
    return fail_sys("seccomp(SECCOMP_GET_NOTIF_SIZES)", "");
  Listener l;
  l.fd_ = std::move(fd);
  l.summary_.profile = profile.name;
  l.summary_.learn = profile.learn;
  l.summary_.deny_errno = profile.deny_errno;
  l.summary_.profile_allowed = profile.allowed;
  l.notif_buf_.resize(std::max<size_t>(sizes.seccomp_notif, sizeof(struct seccomp_notif)));
  l.resp_buf_.resize(std::max<size_t>(sizes.seccomp_notif_resp, sizeof(struct seccomp_notif_resp)));
  l.slot_by_nr_.assign(kSlotTableSize, -1);
  return l;
}

void Listener::record(int nr, pid_t pid, std::string comm) {
  ++summary_.violations_total;
  int* slot = nullptr;
  if (nr >= 0 && nr < kSlotTableSize) slot = &slot_by_nr_[nr];
  if (slot != nullptr && *slot >= 0) {
    ++summary_.violations[*slot].count;
    return;
  }
  if (slot == nullptr) {
    for (auto& v : summary_.violations)
      if (v.nr == nr) {
        ++v.count;
        return;
      }
  }
  Violation v;
  v.nr = nr;
  std::string_view name = syscall_name(nr);
  v.syscall = name.empty() ? fmt::format("syscall_{}", nr) : std::string(name);
  v.count = 1;
  v.first_pid = pid;
  v.comm = std::move(comm);
  if (slot != nullptr) *slot = static_cast<int>(summary_.violations.size());
  summary_.violations.push_back(std::move(v));
}

Result<bool> Listener::handle_ready() {
  struct pollfd p {fd_.get(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, 0);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return fail_sys("poll", "seccomp listener");
  if (ready == 0 || (p.revents & POLLIN) == 0) return false;

  std::memset(notif_buf_.data(), 0, notif_buf_.size());
  auto* req = reinterpret_cast<struct seccomp_notif*>(notif_buf_.data());
  if (::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
    if (errno == ENOENT || errno == EINTR) return false;  // withdrawn: its task died
    return fail_sys("ioctl(SECCOMP_IOCTL_NOTIF_RECV)", "seccomp listener");
  }
  const uint64_t id = req->id;
  const int nr = req->data.nr;
  const pid_t pid = static_cast<pid_t>(req->pid);
  std::string comm = read_comm(pid);
  uint64_t check_id = id;
  if (::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &check_id) != 0) comm.clear();  // pid may be reused

  std::memset(resp_buf_.data(), 0, resp_buf_.size());
  auto* resp = reinterpret_cast<struct seccomp_notif_resp*>(resp_buf_.data());
  resp->id = id;
  if (summary_.learn) {
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else {
    resp->error = syscall_name(nr).empty() ? -ENOSYS : -summary_.deny_errno;
  }
  record(nr, pid, std::move(comm));
  if (::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_SEND, resp) != 0) {
    if (errno == ENOENT) {
      ++summary_.answers_lost;  // the caller was killed while it waited
      return true;
    }
    return fail_sys("ioctl(SECCOMP_IOCTL_NOTIF_SEND)", "seccomp listener");
  }
  return true;
}

nlohmann::json Summary::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : violations)
    list.push_back({{"syscall", v.syscall}, {"count", v.count}, {"first_pid", v.first_pid}, {"comm", v.comm}});
  nlohmann::json out = {{"profile", profile},
                        {"action", std::string(action_name(*this))},
                        {"violations_total", violations_total},
                        {"violations", std::move(list)},
                        {"answers_lost", answers_lost}};
  if (learn) {
    nlohmann::json seen = nlohmann::json::array();
    for (const auto& v : violations) seen.push_back(v.syscall);
    out["seen"] = std::move(seen);
  }
  return out;
}

nlohmann::json Summary::learned_profile() const {
  std::vector<int> allowed = profile_allowed;
  nlohmann::json counts = nlohmann::json::object();
  nlohmann::json unnamed = nlohmann::json::array();
  for (const auto& v : violations) {
    if (syscall_name(v.nr).empty()) {
      unnamed.push_back(v.nr);
      continue;
    }
    allowed.push_back(v.nr);
    counts[v.syscall] = v.count;
  }
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  nlohmann::json learned = {{"from", profile}, {"runs", 1}, {"counts", std::move(counts)}};
  if (!unnamed.empty()) learned["unnamed"] = std::move(unnamed);
  return profile_json(allowed, EPERM, learned);
}

}  // namespace cronrun::seccomp
