// Private to the cgroup module: the pure parsers (fed fixture text by the unit
// tests), the host model discovery builds, the directory-fd owner every backend
// uses, and the two backends' constructors. Nothing outside runner/cgroup*.cc and
// the cgroup tests includes this.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "runner/cgroup.h"

namespace cronrun::cgroup {

// ---------------------------------------------------------------------------
// Pure parsers (cgroup_parse.cc). Each takes the whole text of one kernel file.

// One line of /proc/<pid>/mountinfo (proc(5)); octal escapes (\040) decoded.
struct MountEntry {
  int mount_id = 0;
  int parent_id = 0;
  std::string root;         // path of the mount's root inside its filesystem
  std::string mount_point;  // where it is mounted, in our mount namespace
  std::vector<std::string> mount_options;  // per-mount: rw/ro, nosuid, ...
  std::string fs_type;      // "cgroup", "cgroup2", ...
  std::string source;
  std::vector<std::string> super_options;  // per-superblock: v1 controllers live here
};
// `cgroup_only`: every line is still checked, but only cgroup and cgroup2 mounts
// are decoded and returned (all the runner looks for among dozens of mounts).
Result<std::vector<MountEntry>> parse_mountinfo(std::string_view text, bool cgroup_only = false);

// One line of /proc/<pid>/cgroup: "4:memory:/a/b", "9:name=systemd:/", "0::/x".
struct ProcCgroupLine {
  int hierarchy_id = 0;
  std::vector<std::string> controllers;  // empty for the v2 line
  std::string path;                      // relative to the cgroup namespace root
};
Result<std::vector<ProcCgroupLine>> parse_proc_cgroup(std::string_view text);

// "key value" per line: memory.stat, memory.events, cpu.stat (v1 and v2),
// memory.oom_control, pids.events. Later duplicates win; non-numeric values fail.
Result<std::map<std::string, uint64_t>> parse_flat_keyed(std::string_view text);

// A file holding one unsigned number (memory.peak, pids.current, cpuacct.usage_user).
Result<uint64_t> parse_u64(std::string_view text);

// Read and written byte totals over all devices.
struct IoBytes {
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};
// v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 ..." per device.
Result<IoBytes> parse_io_stat(std::string_view text);
// v1 blkio.throttle.io_service_bytes(_recursive): "8:0 Read 4096" ... "Total 8192".
Result<IoBytes> parse_blkio_service_bytes(std::string_view text);

// {cpu,memory,io}.pressure: "some avg10=0.00 avg60=0.00 avg300=0.00 total=123".
struct PressureTotals {
  std::optional<uint64_t> some_total_usec;
  std::optional<uint64_t> full_total_usec;  // cpu.pressure has no "full" before 5.13
};
Result<PressureTotals> parse_pressure(std::string_view text);

// cgroup.procs / tasks: one pid per line.
Result<std::vector<pid_t>> parse_pid_list(std::string_view text);
// cgroup.controllers / cgroup.subtree_control: space separated names.
std::vector<std::string> split_words(std::string_view text);

// ---------------------------------------------------------------------------
// Limit values as the kernel files want them (cgroup_parse.cc).

inline constexpr uint64_t kCpuPeriodUsec = 100000;
// The kernel refuses a CFS quota under 1 ms.
inline constexpr uint64_t kCpuMinQuotaUsec = 1000;
// Quota in microseconds per kCpuPeriodUsec for `pct` percent of one CPU.
uint64_t cpu_quota_usec(double pct);
// v2 cpu.max: "150000 100000" for 150%.
std::string format_cpu_max(double pct);
// cpu.weight 1..10000 (default 100) -> v1 cpu.shares (default 1024), the mapping
// systemd uses: shares = weight * 1024 / 100, clamped to the kernel's 2..262144.
uint64_t weight_to_cpu_shares(uint64_t weight);
// io weight 1..10000 (default 100) -> v1 blkio.weight 10..1000 (default 500):
// weight * 500 / 100, clamped.
uint64_t weight_to_blkio_weight(uint64_t weight);
// io weight 1..10000 -> BFQ weight 1..1000 (default 100): identity up to 100, then
// linear so that 10000 maps to 1000.
uint64_t weight_to_bfq_weight(uint64_t weight);
// Range checks shared by both backends; the message names the limit.
Result<void> validate_limits(const Limits& limits);

// One file write a limit turns into. `what` names the limit for errors.
struct LimitWrite {
  std::string controller;  // the controller the file belongs to
  std::string what;        // "memory limit", "CPU quota", ...
  std::string file;
  std::string value;
  bool operator==(const LimitWrite&) const = default;
};
// --keep-orphans marks a released run's leaf <run-id> with an empty sibling cgroup
// <run-id>.kept; find_live_runs skips marked runs.
inline constexpr std::string_view kKeptSuffix = ".kept";

// The command-line flag of a LimitWrite::what ("IO weight" -> "--io-weight").
std::string limit_option(std::string_view what);

// Whether the job cgroup has a file; decides between alternatives (io.weight or
// io.bfq.weight, blkio.weight or blkio.bfq.weight).
using HasFile = bool (*)(const void* ctx, const std::string& file);
// The writes, in order, that `limits` become on v2 and on v1. v1 writes
// memory.memsw.limit_in_bytes (= memory + swap) after memory.limit_in_bytes and
// cpu.cfs_period_us before cpu.cfs_quota_us, as the kernel requires.
Result<std::vector<LimitWrite>> v2_limit_writes(const Limits& limits, HasFile has, const void* ctx);
Result<std::vector<LimitWrite>> v1_limit_writes(const Limits& limits, HasFile has, const void* ctx);

// ---------------------------------------------------------------------------
// Paths. Relative cgroup paths are "/a/b" (root: "/"); the one function that turns
// them into filesystem paths is cgroup_fs_path().

// Accepts "/a/b", "a/b/", "//a//b"; refuses "." and ".." components and empty text.
Result<std::string> normalize_relative(std::string_view path);
std::string join_relative(std::string_view parent, std::string_view child);
// The directory of cgroup `relative` in a hierarchy mounted at `mount_point`.
std::string cgroup_fs_path(std::string_view mount_point, std::string_view relative);
// Maps a cgroup path from /proc/self/cgroup (relative to our cgroup namespace) into
// a mount whose root is `mount_root`: nullopt when the cgroup is outside the mount
// (e.g. root "/.." after a cgroup namespace was entered with an older mount).
std::optional<std::string> map_into_mount(std::string_view mount_root, std::string_view cgroup_path);

// ---------------------------------------------------------------------------
// The host as discovery sees it (cgroup_detect.cc).

struct Hierarchy {
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: from /proc/self/cgroup; v2: empty here
  std::string mount_point;               // with DiscoverOptions.mount_prefix applied
  bool read_only = false;
  // The mount's root lies outside our cgroup namespace (mountinfo shows it as
  // "/.."): a mount inherited from before unshare(CLONE_NEWCGROUP). Its top is an
  // ancestor of our namespace's root, which it does not name, and the kernel
  // refuses to move a process into a cgroup outside the namespace (ENOENT).
  bool outside_namespace = false;
  // Our own cgroup, relative to mount_point; nullopt when not visible in the mount.
  std::optional<std::string> own_path;
};

struct HostView {
  std::optional<Hierarchy> unified;   // the cgroup2 mount, if any
  std::vector<Hierarchy> v1;          // v1 hierarchies we can use (see kV1Controllers)
  std::vector<std::string> notes;     // what was skipped and why
};

// v1 controllers cronrun uses, in the order hierarchies are listed.
inline constexpr const char* kV1Controllers[] = {"memory", "cpu", "cpuacct", "pids", "blkio", "freezer"};
// v2 controllers cronrun may enable for job cgroups (needed_controllers() picks).
inline constexpr const char* kV2Controllers[] = {"cpu", "io", "memory", "pids"};
inline bool is_used_v1_controller(std::string_view controller) {
  for (const char* c : kV1Controllers)
    if (controller == c) return true;
  return false;
}
// Is `s` one of `v`; `v` joined by `sep` (cgroup_read.cc), for the hierarchy lists.
bool contains(const std::vector<std::string>& v, std::string_view s);
std::string join_words(const std::vector<std::string>& v, const char* sep = " ");

// What the unified leaf of a hybrid run offers by itself, without controllers.
struct UnifiedLeafFeatures {
  bool kill = false;      // cgroup.kill (5.14+): kills the whole tree, forks included
  bool cpu_stat = false;  // cpu.stat: user/system time of the whole tree
};

// The controllers a run needs (cgroup.cc). v1 and hybrid: the v1 controllers whose
// hierarchies get a leaf (a co-mounted hierarchy gets one if any of its controllers
// is needed); v2: the controllers to enable for the leaf. `unified` only matters on
// hybrid. Each leaf or controller costs kernel work and a share of the global cgroup
// lock per run, so only these, and why:
//   memory   always: memory_peak_bytes and oom_kills are core figures (oom_kills
//            decides status "oom"), and nothing else counts the whole tree's memory.
//   cpu      only with --cpu or --cpu-weight: CPU time comes without it (cpuacct or
//            the v2 cpu.stat); without a limit only the throttling figures are lost.
//   cpuacct  v1: always (the only whole-tree CPU time; rusage misses orphans);
//            hybrid: only when the unified leaf lacks cpu.stat.
//   pids     only with --pids: otherwise only pids_peak and pids_max_events are lost.
//   blkio    only with --io-weight: v1 blkio counts no IO without throttle rules,
//            so it measures nothing (IO comes from rusage either way).
//   io       v2: always: io.stat is the only whole-tree IO count (rusage only
//            sees the processes the runner reaped).
//   freezer  v1: always (kills without letting the job fork away); hybrid: only when
//            the unified leaf lacks cgroup.kill.
// On hybrid the unified leaf is always made (membership, clone3, cgroup.kill,
// populated events, cpu.stat, pressure); it is not a controller and not listed.
std::vector<std::string> needed_controllers(Layout layout, const Limits& limits, const UnifiedLeafFeatures& unified);

// Usage fields a run leaves null because it did not make the leaf of (v1) or enable
// (v2) one of `skipped`, controllers the host offers. Only fields still null in `u`
// are named, in the run record's spelling ("pids_peak"); for Usage::not_measured.
std::vector<std::string> not_measured_fields(const std::vector<std::string>& skipped, const Usage& u);

HostView build_host_view(const std::vector<MountEntry>& mounts, const std::vector<ProcCgroupLine>& self,
                         std::string_view mount_prefix);
Result<HostView> read_host_view(const std::string& proc_root, const std::string& mount_prefix);

// Name of the leaf a non-root runner moves itself into; '@' cannot occur in job
// names, so a leaf never collides with a job's directory.
std::string runner_leaf_name(pid_t pid);
// The pid in a leaf name, or nullopt if `name` is not a runner leaf.
std::optional<pid_t> parse_runner_leaf_name(std::string_view name);

// ---------------------------------------------------------------------------
// Owner of one cgroup directory fd (cgroup_dir.cc). All file access goes through
// openat() on this fd; path() is kept only for error messages.

class CgroupDir {
 public:
  CgroupDir() = default;
  static Result<CgroupDir> open(const std::string& path);
  // Opens child `name` of this directory.
  Result<CgroupDir> open_child(const std::string& name) const;
  // mkdirat; EEXIST is success when `exist_ok`.
  Result<void> make_child(const std::string& name, bool exist_ok) const;
  // unlinkat(AT_REMOVEDIR), retrying EBUSY `busy_retries` times 2 ms apart (a
  // cgroup whose last task just exited can stay busy for a moment). Cgroups the
  // job made below the child are removed first (the empty ones: a populated one
  // keeps the child, and the error says busy).
  Result<void> remove_child(const std::string& name, int busy_retries) const;

  bool has(const std::string& file) const;
  Result<std::string> read(const std::string& file) const;
  // nullopt when the file does not exist (a feature this kernel lacks).
  Result<std::optional<std::string>> read_optional(const std::string& file) const;
  // A one-number file / a flat-keyed file, parsed; nullopt when it does not exist.
  Result<std::optional<uint64_t>> read_u64(const std::string& file) const;
  Result<std::optional<std::map<std::string, uint64_t>>> read_keyed(const std::string& file) const;
  Result<void> write(const std::string& file, const std::string& value) const;
  Result<UniqueFd> open_file(const std::string& file, int flags) const;
  // The processes in this cgroup and in every cgroup below it (a job may make
  // its own below its leaf, as root or with delegation, and move processes
  // there); one fstat when there are none below.
  Result<std::vector<pid_t>> procs() const;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  const std::string& path() const { return path_; }
  std::string file_path(const std::string& file) const;

 private:
  CgroupDir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<std::vector<pid_t>> own_procs() const;
  Result<void> add_procs_below(std::vector<pid_t>& out, int depth, size_t& dirs) const;
  void remove_below(int depth) const;
  UniqueFd fd_;
  std::string path_;
};

// Sends `sig` to each pid; a pid that has already exited is not an error.
Result<void> signal_pids(const std::vector<pid_t>& pids, int sig, const std::string& path_for_errors);
// "still has tasks after N ms (pids: ...)" for kill_all() timeouts.
Error not_empty_error(const CgroupDir& dir, int timeout_ms);
// Sleeps `ms` milliseconds (EINTR-safe).
void sleep_ms(int ms);
// Milliseconds on CLOCK_MONOTONIC.
int64_t monotonic_ms();

// ---------------------------------------------------------------------------
// v2 pieces shared by the v2 backend and the unified half of hybrid (cgroup_v2.cc).

// Creates <parent>/<job>/<run_id> under the v2 mount with dir fds, enabling
// `controllers` in every subtree_control from `parent` down to <job> (never in a
// cgroup that holds processes). Retries when a concurrent remove() of the same
// job's directory races the creation.
struct V2Created {
  CgroupDir job_dir;   // <parent>/<job>
  CgroupDir leaf;      // <parent>/<job>/<run_id>
  std::map<std::string, std::string> enable_errors;  // controller -> why it is missing
};
Result<V2Created> create_v2_tree(const std::string& mount_point, const std::string& parent,
                                 const std::vector<std::string>& controllers, const std::string& job,
                                 const std::string& run_id);

// Moves the calling process into <parent>/<leaf> (creating it) and removes empty
// leaves of runners that are gone.
Result<void> enter_runner_leaf(const std::string& mount_point, const std::string& leaf_relative);

// Reads v2 counters of `dir` into `usage`: memory.peak, memory.events, cpu.stat,
// io.stat, pids.peak. Files this kernel or this cgroup's controllers lack leave
// their fields nullopt.
Result<void> read_v2_usage(const CgroupDir& dir, Usage& usage);
Result<void> read_pressure(const CgroupDir& dir, Pressure& pressure);
// cgroup.kill when present, else freeze -> kill -> thaw, then wait for
// "populated 0" in cgroup.events up to `timeout_ms`.
Result<void> v2_kill_and_wait(const CgroupDir& dir, int timeout_ms);
Result<void> wait_v2_empty(const CgroupDir& dir, int timeout_ms);

// ---------------------------------------------------------------------------
// Backend constructors (cgroup_v2.cc, cgroup_v1.cc).

Result<std::unique_ptr<JobCgroup>> create_v2_job(const Placement& placement, const std::string& job,
                                                 const std::string& run_id);
// layout v1 or hybrid (the latter also creates the unified half).
Result<std::unique_ptr<JobCgroup>> create_v1_job(const Placement& placement, const std::string& job,
                                                 const std::string& run_id);

}  // namespace cronrun::cgroup
