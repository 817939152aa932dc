#include "runner/flush.h"

#include <sys/stat.h>

#include <cerrno>
#include <iostream>

#include <fmt/format.h>

#include "common/history.h"
#include "common/job_paths.h"
#include "common/journal.h"
#include "runner/counters.h"
#include "runner/fleet_config.h"
#include "runner/forward.h"
#include "runner/log.h"
#include "runner/run_paths.h"

namespace cronrun {

namespace {

// The fleet config --flush forwards by: the run's (--fleet-config), else the
// default file if there is one. nullopt: not a fleet host.
Result<std::optional<fleet::Config>> flush_fleet_config(const JobSpec& spec) {
  if (spec.fleet) return spec.fleet;
  Invoker who = Invoker::current();
  std::string path = fleet::default_config_path(who);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return fail_sys("lstat", path);
  }
  auto c = fleet::load_config(path, std::nullopt, who);
  if (!c) return std::unexpected(c.error());
  return std::optional<fleet::Config>(std::move(*c));
}

}  // namespace

int run_flush(const JobSpec& spec) {
  if (!spec.history) {
    log::error("--flush: there is no history to fold into with --no-history");
    return 125;
  }
  const std::string& path = spec.paths.history;
  HistoryOpenOptions opts{.default_location = !spec.history_path, .move_damaged_aside = true};
  auto rep = HistoryStore::fold(path, /*wait_for_lock=*/true, opts);
  if (!rep) {
    log::error(fmt::format("--flush: {}", rep.error().message()));
    return 125;
  }
  for (const auto& n : rep->notes) log::warn(n);
  std::cout << fmt::format("folded {} journal record(s) from {} into {}{}{}\n", rep->records,
                           spec.paths.journal, path,
                           rep->damaged ? fmt::format("; {} damaged stretch(es) skipped", rep->damaged) : "",
                           rep->rotated ? "; journal rotated" : "");
  // The housekeeping a run does after its fold.
  if (size_t swept = sweep_leftovers(resolve_run_paths(spec).runtime_dir, spec.paths.runtime_dir, ::time(nullptr));
      swept > 0)
    std::cout << fmt::format("removed {} file(s) that killed runners left in {}\n", swept, spec.paths.runtime_dir);

  auto fleet_config = flush_fleet_config(spec);
  if (!fleet_config) {
    log::error(fmt::format("--flush: {}", fleet_config.error().message()));
    return 125;
  }
  if (!*fleet_config) return 0;
  auto fwd_opts = forward::options_for(**fleet_config, path);
  if (!fwd_opts) return 0;  // a fleet without a central history
  fwd_opts->wait_for_lock = true;
  auto fwd = forward::forward(*fwd_opts);
  if (!fwd) {
    log::error(fmt::format("--flush: {}", fwd.error().message()));
    return 125;
  }
  for (const auto& n : fwd->notes) log::warn(n);
  std::cout << forward::describe(*fwd, fwd_opts->pg_uri) << "\n";
  return 0;
}

}  // namespace cronrun
