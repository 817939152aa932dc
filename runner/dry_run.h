// --dry-run: the resolved job spec, every field with its default filled in, and
// where the cgroup would go and why. Creates, locks and records nothing.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runner/cgroup.h"
#include "runner/job_spec.h"

namespace cronrun {

// What the host says, gathered once by gather_dry_run_facts(); tests fill it by
// hand so the description itself is a pure function.
// (The paths are the spec's own, resolved by parse_args: spec.paths.)
struct DryRunFacts {
  std::optional<cgroup::Placement> placement;  // nullopt with --cgroup off
  bool draining = false;                       // spec.paths.drain exists
  std::string db_library;                      // the preload library, when --count-db-queries
  std::string db_library_error;                // why it cannot be found, if not
  unsigned host_cpus = 0;
  // On a systemd host, the scope the run would be placed in (systemd_scope.h):
  // "<slice>/cronrun-<job>-<run-id>.scope/job"; nullopt for direct placement.
  std::optional<std::string> scope_job_cgroup;
  // What the run would refuse before it starts the job (exit 125), one line each:
  // a --summary, --log-dir, --lock or --history whose directory is missing or
  // fails the checks a run makes. Only looked at, never created.
  std::vector<std::string> would_refuse;
};

DryRunFacts gather_dry_run_facts(const JobSpec& spec);

// One JSON document (schema "cronrun.dry-run/1"); the text form shows the same
// fields. Sizes in bytes, durations in seconds, absent settings as null.
nlohmann::ordered_json describe_dry_run(const JobSpec& spec, const DryRunFacts& facts);
std::string format_dry_run_text(const nlohmann::ordered_json& doc);

// Prints the description on stdout (text, or JSON with `json`); returns the exit
// status: 0, or 125 when stdout cannot be written.
int dry_run(const JobSpec& spec, bool json);

}  // namespace cronrun
