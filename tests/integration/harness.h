// Running the real cronrun binary from tests: fork/exec with captured output, a
// private temp dir, and a cgroup parent of the test's own that teardown removes
// from every hierarchy (failing the test if a job cgroup was left behind).
#pragma once

#include <sys/types.h>

#include <chrono>
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
// Every cgroup mount point on this host (v1 controllers and the v2 mount).
std::vector<std::string> cgroup_mounts();
// Run cgroups (<mount>/<parent>/<job>/<run-id> and below) left behind in any
// hierarchy; the <job> directories stay between runs by design.
std::vector<std::string> leftover_cgroups(const std::string& parent);
// Removes <mount>/<parent> (and empty children) in every hierarchy.
void remove_cgroup_parent(const std::string& parent);

}  // namespace cronrun::testing
