// The real spawner: everything from "the job may start" to "the job has exec'd".
//
// clone3(CLONE_INTO_CGROUP) when the containment has a v2 cgroup fd; the child
// joins the rest itself (v1 `tasks`, hybrid). When clone3 is refused for the
// reasons a kernel without CLONE_INTO_CGROUP gives (ENOSYS, E2BIG, EINVAL) the
// same start is retried with fork, the child then joining the v2 leaf too. The
// fallback is said once at -v, never silently.
#include "runner/spawner.h"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "runner/containment.h"
#include "runner/log.h"
#include "runner/supervise.h"

namespace cronrun {
namespace {

bool clone3_refused(const Error& e) { return e.err() == ENOSYS || e.err() == E2BIG || e.err() == EINVAL; }

// The join files of `where` for a child that clone3 did (not) place, into `req`;
// their paths into `paths`, for messages.
Result<void> plan_join(SpawnRequest& req, Containment& where, std::vector<std::string>& paths) {
  req.join_fds.clear();
  paths.clear();
  auto files = where.join_files(req.cgroup_fd >= 0);
  if (!files)
    return std::unexpected(std::move(files.error())
                               .context(fmt::format("placing job '{}' in cgroup {}", req.job_name,
                                                    where.isolation().path.value_or("-"))));
  for (const auto& f : *files) {
    req.join_fds.push_back(f.fd);
    paths.push_back(f.path);
  }
  return {};
}

// The child exited without running the job: which step, as an error.
Error child_failure(const SpawnRequest& req, const ChildFailure& f, const std::vector<std::string>& join_paths) {
  if (f.stage == ChildFailure::Stage::join) {
    auto i = static_cast<size_t>(f.index);
    return Error::sys("write \"0\" to", i < join_paths.size() ? join_paths[i] : "?", f.err)
        .context(fmt::format("placing job '{}' in its cgroup", req.job_name));
  }
  return Error::sys(f.step(), "", f.err).context(fmt::format("setting up job '{}' before exec", req.job_name));
}

}  // namespace

Result<Started> SystemSpawner::start(SpawnRequest req, Containment& where,
                                     const std::function<Result<void>()>& before_spawn) {
  auto signal_fd = prepare_supervisor_signals();
  if (!signal_fd) return std::unexpected(signal_fd.error());

  const char* force = ::secure_getenv("CRONRUN_FORCE_SPAWN");
  bool force_fork = force && std::string_view(force) == "fork";
  req.cgroup_fd = force_fork ? -1 : where.clone_into_fd();
  std::vector<std::string> join_paths;
  if (auto j = plan_join(req, where, join_paths); !j) return std::unexpected(j.error());
  for (const auto& rl : where.rlimits()) req.rlimits.push_back(rl);

  if (auto ok = before_spawn(); !ok) return std::unexpected(ok.error());

  // From here the supervisor must not wait on stderr's reader (the job's pipe under cron).
  log::set_nonblocking(true);
  Started out;
  out.spawned_at = clock_.steady();
  auto child = spawn(req);
  if (!child && req.cgroup_fd >= 0 && clone3_refused(child.error())) {
    log::info(fmt::format("clone3(CLONE_INTO_CGROUP) unavailable ({}); the child joins its cgroup itself",
                          child.error().message()));
    req.cgroup_fd = -1;
    if (auto j = plan_join(req, where, join_paths); !j) return std::unexpected(j.error());
    child = spawn(req);
  }
  if (!child) return std::unexpected(std::move(child.error()).context(fmt::format("starting job '{}'", req.job_name)));
  log::info(fmt::format("spawned pid {} with {}{}{}", child->pid(), child->method(), where.describe(),
                        join_paths.empty() ? "" : fmt::format(" (joined {})", fmt::join(join_paths, ", "))));

  auto exec = child->exec_result();
  if (!exec) return std::unexpected(std::move(exec.error()).context(fmt::format("starting job '{}'", req.job_name)));
  if (*exec && (*exec)->stage != ChildFailure::Stage::exec) {
    // The child exited without running the job: reap it, then report the step.
    ::waitpid(child->pid(), nullptr, 0);
    return std::unexpected(child_failure(req, **exec, join_paths));
  }
  if (*exec) out.exec_errno = (*exec)->err;
  out.exec_at = clock_.steady();
  std::optional<seccomp::Listener> listener;
  if (req.seccomp && !*exec) {
    // Without its listener the job would run with every syscall its profile does
    // not allow answered ENOSYS: not the run that was asked for.
    auto fd = child->take_seccomp_listener();
    auto l = fd ? seccomp::Listener::create(std::move(*fd), *req.seccomp) : Result<seccomp::Listener>(std::unexpected(fd.error()));
    if (!l) {
      ::kill(child->pid(), SIGKILL);
      ::waitpid(child->pid(), nullptr, 0);
      return std::unexpected(std::move(l.error()).context(fmt::format("starting job '{}' under --seccomp {}", req.job_name, req.seccomp->name)));
    }
    listener.emplace(std::move(*l));
  }
  out.job = watch_process(std::move(*child), std::move(*signal_fd), std::move(listener));
  return out;
}

}  // namespace cronrun
