// Limits per job from its history, with the evidence in words (`cronprof suggest`).
//
//   memory  = p99 of successful runs' cgroup peak × headroom; when OOM kills
//             happened under a limit, at least that limit × headroom.
//   cpu     = p95 of CPU time per wall second (percent of one CPU) over successful
//             runs × headroom; when runs spent > 5% of their wall time throttled
//             under a quota, at least that quota × headroom (throttling caps what
//             utilisation can show).
//   timeout = p99 of successful runs' wall × headroom; when runs timed out, at
//             least that timeout × headroom.
//   pids    = the largest task count of successful runs (pids.peak) × headroom,
//             the maximum rather than a percentile: a fork the limit refuses
//             fails the job; when forks were refused under a limit, at least that
//             limit × headroom. Only runs with a pids cgroup count tasks (the
//             runner makes one only for --pids), so this tunes a limit a job has
//             rather than proposing a first one.
// Percentiles are nearest-rank (stats.h). Fewer than kMinRuns successful runs in
// the window: no suggestion, and the evidence says so. Values are rounded up to
// what a person would write: memory (never below 16 MiB) to 1 MiB below 256 MiB and to 16 MiB above
// ("130M", "1536M", "2G"), CPU to 10%, timeout
// to 10 s / 1 min / 5 min depending on size ("90s", "50m", "2h30m"), pids to 8
// (never below 32).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/history.h"

namespace cronrun::prof {

inline constexpr size_t kMinRuns = 5;

struct Suggestion {
  std::string job;
  uint64_t runs = 0;     // in the window
  uint64_t ok_runs = 0;
  bool enough_data = false;
  // The limits the newest run had (nullopt: none).
  std::optional<uint64_t> current_memory_bytes;
  std::optional<double> current_cpu_pct;
  std::optional<double> current_timeout_s;
  std::optional<uint64_t> current_pids_max;
  // Suggestions (nullopt: nothing to suggest for that limit).
  std::optional<uint64_t> memory_bytes;
  std::optional<double> cpu_pct;
  std::optional<double> timeout_s;
  std::optional<uint64_t> pids_max;
  // The same as config values ("1536M", "150%", "50m", "64"); "" when not suggested.
  std::string memory, cpu, timeout, pids;
  std::vector<std::string> evidence;
};

// One job's evidence while its runs are read, in any order: counts, the limits of
// the newest run, and the figures whose percentiles are suggested (three doubles
// per successful run at most, and a running maximum of tasks). Streaming callers
// keep one at a time.
class SuggestAcc {
 public:
  void add(const RunFigures& f);
  bool empty() const { return runs_ == 0; }
  // The suggestion (see suggest_limits); leaves the accumulator empty.
  Suggestion finish(const std::string& job, double headroom, double window_days,
                    std::optional<unsigned> host_cpus = std::nullopt);

 private:
  uint64_t runs_ = 0, ok_runs_ = 0;
  std::optional<double> newest_s_;
  std::optional<uint64_t> current_memory_bytes_;
  std::optional<double> current_cpu_pct_, current_timeout_s_;
  std::optional<uint64_t> current_pids_max_;
  std::map<RunStatus, uint64_t> by_status_;
  std::vector<double> peaks_, rss_, util_, walls_;
  uint64_t pids_runs_ = 0, pids_peak_max_ = 0;
  uint64_t pids_refused_ = 0;
  std::optional<uint64_t> pids_refused_limit_;
  double throttled_share_sum_ = 0;
  uint64_t throttled_n_ = 0;
  uint64_t oom_kills_ = 0;
  std::optional<uint64_t> oom_limit_;
  uint64_t timeouts_ = 0;
  std::optional<double> timeout_limit_;
};

// `runs`: the job's runs in the window (any order, any status). `host_cpus`: the
// CPUs cronrun may use here; a CPU suggestion above them is capped (a quota the
// host cannot give is no limit, and cronrun refuses it). A limit whose figures are
// out of the range cronrun accepts (a damaged row, an absurd counter) is not
// suggested; the evidence says why.
Suggestion suggest_limits(const std::string& job, const std::vector<RunFigures>& runs, double headroom,
                          double window_days, std::optional<unsigned> host_cpus = std::nullopt);
// The CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpus();

// Config value spellings (cronrun's own units).
std::string memory_value(uint64_t bytes);   // "2G", "1536M", "200M"
std::string cpu_value(double pct);          // "150%"
std::string timeout_value(double seconds);  // "90s", "50m", "2h", "2h30m"

nlohmann::json suggestion_json(const Suggestion& s);
std::string suggestion_text(const Suggestion& s);

}  // namespace cronrun::prof
