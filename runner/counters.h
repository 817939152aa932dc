// The job's own counters: lines "name value" or StatsD-style "name:value|c"
// appended to $CRONRUN_COUNTERS, summed per name. The file is written by the job,
// so its contents are untrusted: size-capped, names validated, bad lines counted.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/safe_file.h"

namespace cronrun {

struct ParsedCounters {
  std::map<std::string, double> values;
  size_t invalid_lines = 0;  // not a counter line, a bad name or value, a sum out of range
  size_t over_cap = 0;       // well-formed lines of names past the first kMaxCounterNames
  bool truncated = false;
};
inline constexpr size_t kMaxCounterNames = 1000;

// Pure: parses the text of a counters file.
ParsedCounters parse_counters(std::string_view text);

// One run's counters file: created empty (0600, O_EXCL) in a private per-user
// directory held by fd, held (common/safe_file.h hold_file) while the run lasts,
// removed by the destructor. The job may replace the file with anything (a FIFO,
// a symlink, a huge file): read() opens it relative to the directory fd,
// O_NOFOLLOW|O_NONBLOCK, regular files only, and reads a bounded amount, so it
// never waits on the job.
class CountersFile {
 public:
  static Result<CountersFile> create(const std::string& dir, const std::string& run_id);
  // Removes the file of run `run_id` in `dir`, whose runner died without removing
  // it (a SIGKILL); none there is no error.
  static Result<void> remove_left(const std::string& dir, const std::string& run_id);
  // Removes the files in `dir` that runners killed before they could remove them
  // left behind (nobody holds them, unchanged for kLeftoverMinAgeS); returns how
  // many. Run after a journal fold and by --flush: once in many runs.
  static Result<size_t> sweep(const std::string& dir, time_t now);
  CountersFile(CountersFile&& o) noexcept
      : dir_(std::move(o.dir_)), name_(std::move(o.name_)), path_(std::move(o.path_)), hold_(std::move(o.hold_)) {
    o.name_.clear();
  }
  CountersFile& operator=(CountersFile&&) = delete;
  ~CountersFile();
  const std::string& path() const { return path_; }
  // Reads at most 4 MiB; a larger file is truncated (noted in the result). Fails
  // (naming the file) when it is not a regular file any more.
  Result<ParsedCounters> read() const;

 private:
  CountersFile(CheckedDir dir, std::string name, std::string path, UniqueFd hold)
      : dir_(std::move(dir)), name_(std::move(name)), path_(std::move(path)), hold_(std::move(hold)) {}
  CheckedDir dir_;
  std::string name_;
  std::string path_;
  UniqueFd hold_;  // the flock that tells sweep() this run is alive
};

// After a journal fold, and in --flush: removes what runners killed during a run
// left in cronrun's runtime directory: their counters files in `runs_dir`, their
// DB-query counter directories in `db_base_dir` (CountersFile::sweep,
// dbcount::Session::sweep). Returns how many went; a failure is logged once and
// ends the sweep.
size_t sweep_leftovers(const std::string& runs_dir, const std::string& db_base_dir, time_t now);

// Private runtime directory for per-run files: /run/cronrun/runs (root), else
// $XDG_RUNTIME_DIR/cronrun/runs, else /tmp/cronrun-UID/runs.
std::string runtime_dir();

}  // namespace cronrun
