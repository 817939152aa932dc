// Running the real cronrun binary from tests: fork/exec with captured output, a
// private temp dir, and a cgroup parent of the test's own that teardown removes
// from every hierarchy (failing the test if a job cgroup was left behind).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cronrun::testing {

struct Ran {
  int exit_code = -1;
  std::string out, err;
};

// Runs `argv` with an optional environment addition, waiting at most `limit`.
Ran run(const std::vector<std::string>& argv, std::chrono::seconds limit = std::chrono::seconds(60),
        const std::vector<std::string>& extra_env = {});
// Starts `argv` in the background; returns its pid (stdout/stderr to `log`).
pid_t start(const std::vector<std::string>& argv, const std::string& log);
int wait_exit(pid_t pid);

nlohmann::json read_json(const std::string& path);
std::string read_text(const std::string& path);
bool alive(pid_t pid);

// Waiting for an event rather than sleeping a guess: polls `done` every 10 ms
// until it holds or `limit` passes (generous: a loaded machine is slow, a fast
// one returns at once); whether it held.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(30));
// Until the pid-file lock at `path` names `pid`: cronrun writes its pid there
// once it holds the lock. A previous holder's pid stays in the file after it
// exits, so "the file is not empty" is no sign that `pid` holds it.
bool wait_for_lock_holder(const std::string& path, pid_t pid);
// The live children of `pid` (of all its threads), from /proc/PID/task/*/children.
std::vector<pid_t> children_of(pid_t pid);
// Whether `pid` has a handler installed for `sig` (SigCgt in /proc/PID/status).
bool catches(pid_t pid, int sig);
// Every cgroup mount point on this host (v1 controllers and the v2 mount).
std::vector<std::string> cgroup_mounts();
// Run cgroups (<mount>/<parent>/<job>/<run-id> and below) left behind in any
// hierarchy; the <job> directories stay between runs by design.
std::vector<std::string> leftover_cgroups(const std::string& parent);
// Removes <mount>/<parent> (and empty children) in every hierarchy.
void remove_cgroup_parent(const std::string& parent);

}  // namespace cronrun::testing
