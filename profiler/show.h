// One run's full profile for people (`cronprof show`).
#pragma once

#include <string>

#include "common/run_record.h"

namespace cronrun::prof {

// The readable profile: wall, CPU and utilisation, memory against its limit,
// OOM kills, throttling, pressure, IO, DB queries, counters, exit, lock, fleet
// (fleet runs only), log.
// A figure the host could not measure reads "not measured", never 0.
std::string render_profile(const RunRecord& r);

// The DB line: "not counted" when no db.* counter exists (counting was off),
// "not observed — no client library loaded" when the counter attached but no
// process loaded a DB client, else queries, time and share of wall.
std::string render_db(const RunRecord& r);

// The seccomp line: "off" without a filter; else the profile and what it denied
// (syscall, count, first pid and command), or in learn mode what it saw.
std::string render_seccomp(const RunRecord& r);

// The fleet line of a fleet run (DESIGN §10): group, host, tick, fence (or that
// it took none), lease, the holder it lost a race to, the fleet note.
std::string render_fleet(const FleetRecord& f);

}  // namespace cronrun::prof
