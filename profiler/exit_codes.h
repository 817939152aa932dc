// cronprof's exit codes. Scripts and monitoring branch on them, so each failure a
// user can act on differently has its own code; they are listed in cronprof(1).
#pragma once

namespace cronrun::prof {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;        // anything else: I/O error, write failed, ...
inline constexpr int kExitUsage = 2;          // bad command line
inline constexpr int kExitHistoryMissing = 3; // no history file (nothing recorded yet, or wrong --history)
inline constexpr int kExitUnreadable = 4;     // history exists but cannot be read (permissions)
inline constexpr int kExitNewerSchema = 5;    // written by a newer cronrun; refusing to misread
inline constexpr int kExitCorrupt = 6;        // not a cronrun history, or damaged
inline constexpr int kExitNotFound = 7;       // no such run id / job
inline constexpr int kExitStatusAlert = 8;    // status: a job is failing or missed its schedule

}  // namespace cronrun::prof
