// The job's own counters: lines "name value" or StatsD-style "name:value|c"
// appended to $CRONRUN_COUNTERS, summed per name. The file is written by the job,
// so its contents are untrusted: size-capped, names validated, bad lines counted.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cronrun {

struct ParsedCounters {
  std::map<std::string, double> values;
  size_t invalid_lines = 0;
  bool truncated = false;
};

// Pure: parses the text of a counters file.
ParsedCounters parse_counters(std::string_view text);

// One run's counters file: created empty (0600) in a private per-user directory,
// removed by the destructor.
class CountersFile {
 public:
  static Result<CountersFile> create(const std::string& dir, const std::string& run_id);
  CountersFile(CountersFile&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  CountersFile& operator=(CountersFile&&) = delete;
  ~CountersFile();
  const std::string& path() const { return path_; }
  // Reads at most 4 MiB; a larger file is truncated (noted in the result).
  Result<ParsedCounters> read() const;

 private:
  explicit CountersFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Private runtime directory for per-run files: /run/cronrun/runs (root), else
// $XDG_RUNTIME_DIR/cronrun/runs, else /tmp/cronrun-UID/runs.
std::string runtime_dir();

}  // namespace cronrun
