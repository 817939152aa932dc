// The read-only half of the cgroup module: what a process that never creates,
// moves or limits a cgroup needs to look at one (`cronprof ps`). It finds the
// hierarchies from /proc/self/mountinfo and /proc/self/cgroup and reads a given
// cgroup's live figures; it never writes to cgroupfs and does not depend on
// libcgroup (library cronrun_cgroup_read). runner/cgroup.h, the runner's side,
// builds on it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/run_record.h"

namespace cronrun::cgroup {

enum class Layout { v2, v1, hybrid, none };
const char* to_string(Layout l);
Result<Layout> parse_layout(std::string_view text);

// Live figures of a running job's cgroup. A figure the cgroup does not have (its
// controller's leaf was not made, or the kernel lacks the file) is nullopt.
struct LiveUsage {
  std::optional<uint64_t> memory_current_bytes;
  std::optional<uint64_t> memory_peak_bytes;
  std::optional<double> cpu_s;
  std::optional<uint64_t> pids_current;
  // v2 io.stat totals; v1 blkio cannot count IO without throttle rules.
  std::optional<uint64_t> io_read_bytes;
  std::optional<uint64_t> io_write_bytes;
  Pressure pressure_some_s;  // v2 and the unified half of hybrid
};

// Where the hierarchies are mounted, read once (one parse of mountinfo) and then
// used for any number of cgroups. Holds paths only, no fds: a hierarchy that went
// away since shows up as an error of the read that needs it.
class LiveReader {
 public:
  // proc_root / mount_prefix: tests point them at fixture trees.
  static Result<LiveReader> open(const std::string& proc_root = "/proc", const std::string& mount_prefix = "");
  // `relative_path` is a run record's isolation.path, `layout` its isolation.cgroup.
  Result<LiveUsage> read(Layout layout, const std::string& relative_path) const;

 private:
  LiveReader() = default;
  std::optional<std::string> unified_;              // the cgroup2 mount point
  std::map<std::string, std::string> v1_by_controller_;  // "memory" -> its mount point
};

// One-shot LiveReader::open() + read().
Result<LiveUsage> read_live(Layout layout, const std::string& relative_path);

}  // namespace cronrun::cgroup
