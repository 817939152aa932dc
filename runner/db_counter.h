// --count-db-queries, runner side: one run's shared counter file for the preload
// library libcronrun-db.so (layout in preload/cronrun_db_shm.h), and turning its
// contents into the run record's `counters` (db.queries, db.time_s, db.pg.*, ...).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

struct cronrun_db_shm;

namespace cronrun::dbcount {

// One run's shared counter file: created 0600 in a fresh 0700 directory (under
// $XDG_RUNTIME_DIR/cronrun, /run/cronrun when root, else /tmp/cronrun-UID), removed
// by the destructor. Move-only; owns the directory, the file and an fd on the
// directory (so removal works even if the base path is renamed meanwhile).
class Session {
 public:
  static Result<Session> create(const std::string& run_id);
  // Same, under an explicit base directory (created 0700 if missing, owner and
  // mode checked). For tests and callers with their own runtime dir.
  static Result<Session> create_in(const std::string& base_dir, const std::string& run_id);

  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // KEY=VALUE entries to add to the job's environment: LD_PRELOAD (the library
  // prepended to `existing_ld_preload`, by default the runner's own LD_PRELOAD)
  // and CRONRUN_DB_COUNTERS (the file). Fails only if the library is not found.
  std::vector<std::string> env() const;
  std::vector<std::string> env(std::string_view existing_ld_preload) const;

  // Reads the file after the job ended. Its contents are untrusted (any job
  // process can write to it): magic, version and sizes are validated, names
  // re-sanitized. Returns the counters to merge into the run record; query and
  // time keys appear only when some process loaded a client library, so "not
  // observed" is never reported as 0 (coverage keys db.processes,
  // db.processes_with_client, db.resolve_failures are always there).
  Result<std::map<std::string, double>> collect() const;

  // Removes the directories under `base_dir` that runners killed during a run
  // left behind (their file unheld and unchanged for kLeftoverMinAgeS, see
  // common/safe_file.h); returns how many. Run after a journal fold and by --flush.
  static Result<size_t> sweep(const std::string& base_dir, time_t now);

  const std::string& file_path() const { return file_path_; }
  const std::string& dir_path() const { return dir_path_; }

 private:
  Session(std::string dir_path, std::string file_path, UniqueFd dir_fd, std::string library)
      : dir_path_(std::move(dir_path)),
        file_path_(std::move(file_path)),
        dir_fd_(std::move(dir_fd)),
        library_(std::move(library)) {}
  void remove();

  std::string dir_path_;
  std::string file_path_;
  UniqueFd dir_fd_;
  UniqueFd hold_;  // the file, flock'ed while the run lasts (tells sweep() it is alive)
  std::string library_;
  // TSC calibration start (see CRONRUN_DB_FLAG_TSC); tsc_start_ == 0: TSC not offered.
  uint64_t tsc_start_ = 0;
  uint64_t mono_start_ns_ = 0;
};

// Where libcronrun-db.so is: next to the binary in the build tree
// (<build>/preload/libcronrun-db.so, found via /proc/self/exe, also from
// <build>/<dir>/<binary>), else the installed CRONRUN_PRELOAD_PATH.
Result<std::string> library_path();

// Parses a counter file image (exposed for tests and fuzzing). `bytes` is the
// whole file; fails on any size/magic/version mismatch. `seconds_per_tick`
// converts busy_ticks (TSC-timed processes); 0 when the TSC was not offered, and
// then any busy_ticks (only a forged file has them) are ignored.
Result<std::map<std::string, double>> parse_counters(std::string_view bytes, double seconds_per_tick = 0);

// Whether job processes may time with the TSC: x86-64, invariant TSC
// (constant_tsc + nonstop_tsc) and the kernel itself uses it as clocksource.
bool tsc_usable();

// The environment variable naming the counter file.
inline constexpr const char* kCountersEnv = "CRONRUN_DB_COUNTERS";

}  // namespace cronrun::dbcount
