#include "runner/flush.h"

#include <iostream>

#include <fmt/format.h>

#include "common/history.h"
#include "common/journal.h"
#include "runner/log.h"

namespace cronrun {

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
  return 0;
}

}  // namespace cronrun
