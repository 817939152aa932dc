// Every path a run derives from its job spec, and the one root-vs-user
// decision, resolved in one place before the run begins. (The resolved job of
// DESIGN §8 takes this over: then resolve_run_paths() reads it instead of
// recomputing the defaults.)
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "runner/job_spec.h"
#include "runner/lock.h"

namespace cronrun {

struct RunPaths {
  // The history the run records to; nullopt with --no-history.
  std::optional<std::string> history;
  bool history_is_default = false;  // cronrun's own location: its directories may be created
  // The pid-file lock; nullopt with --no-lock.
  std::optional<std::string> lock;
  PidFileLock::Dir lock_dir = PidFileLock::Dir::must_exist;
  // The file whose existence means "draining" ($CRONRUN_DRAIN_FILE or /etc/cronrun/drain).
  std::string drain_file;
  // Where per-run files (the counters file) go.
  std::string runtime_dir;
  uid_t euid = 0;
  bool is_root = false;
};

RunPaths resolve_run_paths(const JobSpec& spec);

// DIR/NAME/RUN-ID.log under --log-dir, nullopt without one.
std::optional<std::string> run_log_path(const JobSpec& spec, const std::string& run_id);

}  // namespace cronrun
