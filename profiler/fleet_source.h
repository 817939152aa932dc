// Where `cronprof fleet` reads from: the fleet config (fleet.json), found as
// cronrun finds it (DESIGN.md section 10: --fleet-config, else
// /etc/cronrun/fleet.json for root, else $XDG_CONFIG_HOME/cronrun/fleet.json),
// read with cronrun's own reader (runner/fleet_config.h).
#pragma once

#include <expected>
#include <string>

#include "profiler/fleet.h"

namespace cronrun::prof::fleet {

// On failure prints one line naming the file (or --fleet-config) and returns the
// exit code: 3 no fleet config, 4 unreadable, 2 a config that does not parse.
std::expected<Source, int> find_source(const std::string& fleet_config_flag);

}  // namespace cronrun::prof::fleet
