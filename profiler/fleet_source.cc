// Finding the fleet config for `cronprof fleet` (fleet_source.h): cronrun's own
// reader (runner/fleet_config.h), so both programs read the same file the same way.
#include "profiler/fleet_source.h"

#include "common/job_paths.h"
#include "profiler/cli_support.h"
#include "profiler/exit_codes.h"
#include "runner/fleet_config.h"

namespace cronrun::prof::fleet {

std::expected<Source, int> find_source(const std::string& fleet_config_flag) {
  std::optional<std::string> explicit_path;
  if (!fleet_config_flag.empty()) explicit_path = fleet_config_flag;
  auto config = ::cronrun::fleet::load_config(explicit_path, std::nullopt, Invoker::current());
  if (!config) {
    const Error& e = config.error();
    print_error("fleet: " + e.message());
    if (e.kind() == ErrorKind::not_found || e.err() == ENOENT) return std::unexpected(kExitHistoryMissing);
    if (e.kind() == ErrorKind::permission || e.err() == EACCES) return std::unexpected(kExitUnreadable);
    return std::unexpected(kExitUsage);
  }
  Source s;
  s.config_path = config->path;
  s.endpoints = config->etcd;
  s.tls = config->tls;
  s.prefix = config->prefix;
  s.history_uri = config->history.value_or("");
  return s;
}

}  // namespace cronrun::prof::fleet
