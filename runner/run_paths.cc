// The paths of a run (run_paths.h): the defaults of DESIGN §2 for root and for
// other users, and the overrides the spec carries.
#include "runner/run_paths.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "common/history.h"
#include "runner/counters.h"

namespace cronrun {

RunPaths resolve_run_paths(const JobSpec& spec) {
  RunPaths p;
  p.euid = ::geteuid();
  p.is_root = p.euid == 0;
  if (spec.history) {
    p.history = spec.history_path.value_or(HistoryStore::default_path());
    p.history_is_default = !spec.history_path;
  }
  if (spec.lock) {
    p.lock = spec.lock_path.value_or(default_lock_path(spec.name));
    // Only cronrun's own default directories are created; an explicit path's must exist.
    p.lock_dir = spec.lock_path ? PidFileLock::Dir::must_exist
                 : p.is_root    ? PidFileLock::Dir::create
                                : PidFileLock::Dir::create_private;
  }
  const char* drain = std::getenv("CRONRUN_DRAIN_FILE");
  p.drain_file = drain && *drain ? drain : "/etc/cronrun/drain";
  p.runtime_dir = runtime_dir();
  return p;
}

std::optional<std::string> run_log_path(const JobSpec& spec, const std::string& run_id) {
  if (!spec.log_dir) return std::nullopt;
  return fmt::format("{}/{}/{}.log", *spec.log_dir, spec.name, run_id);
}

}  // namespace cronrun
