// The paths of a run (run_paths.h): the defaults of DESIGN §2 for root and for
// other users, and the overrides the spec carries.
#include "runner/run_paths.h"

#include <fmt/format.h>

namespace cronrun {

RunPaths resolve_run_paths(const JobSpec& spec) {
  // The job model resolved root-vs-user and every default once (parse_args);
  // this only reads it.
  RunPaths p;
  p.euid = spec.euid;
  p.is_root = spec.is_root;
  if (spec.history) {
    p.history = spec.paths.history;
    p.history_is_default = !spec.history_path;
  }
  if (spec.lock) {
    p.lock = spec.paths.lock;
    // Only cronrun's own default directories are created; an explicit path's must exist.
    p.lock_dir = spec.lock_path ? PidFileLock::Dir::must_exist
                 : p.is_root    ? PidFileLock::Dir::create
                                : PidFileLock::Dir::create_private;
  }
  p.drain_file = spec.paths.drain;
  p.runtime_dir = spec.paths.runtime_dir + "/runs";
  return p;
}

std::optional<std::string> run_log_path(const JobSpec& spec, const std::string& run_id) {
  if (!spec.log_dir) return std::nullopt;
  return fmt::format("{}/{}/{}.log", *spec.log_dir, spec.name, run_id);
}

}  // namespace cronrun
