// Job cgroups on v2, v1 and hybrid hosts, behind one interface.
//
// Discovery reads /proc/self/mountinfo and /proc/self/cgroup (mount roots mapped, so
// it works inside cgroup namespaces) and decides where job cgroups go:
//   root:      <hierarchy root>/cronrun/<job>/<run-id>
//   non-root:  a delegated v2 subtree the runner already lives in; the runner first
//              moves itself into a leaf of its own (no-internal-processes rule) and
//              creates job cgroups beside it.
//   --cgroup-parent overrides, relative to the hierarchy root.
// On hybrid hosts limits go through the v1 controllers while the (controller-less)
// v2 hierarchy is still used for tracking, cgroup.kill, cpu.stat and pressure.
// In v1 hierarchies libcgroup makes a job's <parent>/<job> path when it is missing
// and each run's leaf is a mkdirat below it; v2 goes directly by directory fd
// (libcgroup 2.0.2 writes +controller into every ancestor, which breaks delegation).
//
// Only what the run needs (needed_controllers() in cgroup_internal.h has the rule
// and the reasons): each v1 leaf and each enabled v2 controller costs kernel work
// and a share of the global cgroup lock per run. A run starts with the leaves its
// core figures need (hybrid: the unified leaf and memory); apply_limits() adds the
// ones its limits need. A figure left unmeasured that way is null in the record and
// named in usage.not_measured.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/run_record.h"
#include "runner/cgroup_read.h"

namespace cronrun::cgroup {

struct Limits {
  std::optional<uint64_t> memory_max_bytes;
  std::optional<uint64_t> memory_high_bytes;
  std::optional<uint64_t> swap_max_bytes;
  std::optional<double> cpu_quota_pct;  // percent of one CPU
  std::optional<uint64_t> cpu_weight;   // 1..10000 (v1: mapped to shares)
  std::optional<uint64_t> pids_max;
  std::optional<uint64_t> io_weight;    // 1..10000 (v1 blkio.weight 10..1000)
};

// A limit the job cgroup could not take (its controller or file is missing, or the
// kernel refused the value). The other limits are still in force.
struct LimitNotApplied {
  std::string option;  // the command-line flag: "--io-weight"
  std::string cause;   // short, for the one warning line: "no blkio.weight"
  std::string detail;  // the whole story, naming the file: for isolation.note
};

// Where job cgroups can go on this host, and why. Produced once per run.
struct Placement {
  Layout layout = Layout::none;
  // Parent of the job cgroups, relative to the hierarchy root(s), e.g. "/cronrun".
  std::string parent;
  // When non-root: the leaf the runner must move itself into first (relative path),
  // empty if no move is needed.
  std::string runner_leaf;
  // Controllers that limits can use ("memory", "cpu", "pids", "io"/"blkio", ...).
  std::vector<std::string> controllers;
  // Where the hierarchies are mounted, filled by discover() for create_job_cgroup():
  // the cgroup2 mount (v2, and the unified half of hybrid; "" when unused) and, for
  // v1 / hybrid, one entry per v1 hierarchy in use with the controllers it carries.
  std::string v2_mount;
  struct V1Mount {
    std::vector<std::string> controllers;  // e.g. {"cpu", "cpuacct"} when co-mounted
    std::string mount_point;
  };
  std::vector<V1Mount> v1_mounts;
  // Human explanation for --dry-run and for `isolation.note` when degraded:
  // what was found, why this placement, and (when layout == none) what an admin
  // can do about it.
  std::string reason;
};

struct DiscoverOptions {
  std::optional<std::string> parent_override;  // --cgroup-parent
  bool is_root = false;                        // geteuid() == 0
  std::string proc_root = "/proc";             // tests point this at fixtures
  // Tests: prefix put before every mount point, so a directory tree stands in for
  // /sys/fs/cgroup; and whose write access counts (default: geteuid/getegid and
  // the supplementary groups).
  std::string mount_prefix;
  std::optional<uid_t> euid;
  std::optional<gid_t> egid;
};

// Never fails hard: an unusable host gives layout == none with the reason.
// Only reads: nothing is created or moved until create_job_cgroup().
Placement discover(const DiscoverOptions& opts);

// For --dry-run: the controllers a run with `limits` would use on `p` (v1 and
// hybrid: the hierarchies it makes a leaf in; v2: those it enables), of those the
// host offers. On hybrid, freezer and cpuacct are used only when the unified leaf
// lacks cgroup.kill or cpu.stat: probed in the job parent's nearest existing
// ancestor below the unified root (whose own files differ). With none (no run yet)
// they cannot be known without making a cgroup: they are `maybe`.
struct RunControllers {
  std::vector<std::string> sure;
  std::vector<std::string> maybe;  // only if the unified leaf lacks cgroup.kill / cpu.stat
};
RunControllers run_controllers(const Placement& p, const Limits& limits);

// One run's cgroup (in every hierarchy it spans). Owner type: the destructor
// kills what is left and removes the directories, so an early return cleans up.
class JobCgroup {
 public:
  virtual ~JobCgroup() = default;
  virtual Layout layout() const = 0;
  // Path relative to the hierarchy root, "/cronrun/<job>/<run-id>".
  virtual const std::string& path() const = 0;

  // Writes every limit it can, each on its own: a limit whose controller or file
  // is missing, or whose write fails, is returned (naming the file) and the others
  // are still written. An error only for values no host accepts (validate_limits)
  // or when the cgroup itself cannot be read. First makes the leaves (v1) or
  // enables the controllers (v2) these limits need that the run lacks; one that
  // cannot be made is returned for each limit needing it. Call before join_files().
  virtual Result<std::vector<LimitNotApplied>> apply_limits(const Limits& limits) = 0;

  // v2 directory fd for clone3(CLONE_INTO_CGROUP): the job leaf on v2, the
  // unified half's leaf on hybrid; -1 on v1. Owned by this object.
  virtual int clone_into_fd() const = 0;
  // The files a new child writes "0" to before it execs, to join this cgroup
  // wherever clone3 did not put it (spawn.h): every v1 hierarchy's `tasks` (which
  // moves the calling thread, i.e. the whole single-threaded child, without the
  // kernel's global threadgroup lock), and the v2 leaf's cgroup.procs unless
  // `cloned_into` says clone3(CLONE_INTO_CGROUP) placed it there. Opened O_CLOEXEC
  // on first use and owned by this object.
  struct JoinFile {
    int fd = -1;
    std::string path;  // for error messages
  };
  virtual Result<std::vector<JoinFile>> join_files(bool cloned_into) = 0;

  // Processes currently in the cgroup (v2 if present, else the freezer, pids or
  // memory hierarchy). After remove(): empty.
  virtual Result<std::vector<pid_t>> pids() const = 0;
  // Sends `sig` to every process in the cgroup (used for SIGTERM on timeout).
  virtual Result<void> signal_all(int sig) = 0;
  // SIGKILLs the whole cgroup (cgroup.kill, else freeze-kill-thaw, else a kill
  // loop) and waits until it is empty or `timeout_ms` passes (then an error naming
  // the pids left). A no-op after remove().
  virtual Result<void> kill_all(int timeout_ms) = 0;
  // An fd of cgroup.events (v2, and the unified half of hybrid), or -1 (v1). Owned
  // by this object. Read it (pread at offset 0) before each poll: it then raises
  // POLLPRI (and inotify IN_MODIFY) on the next change, e.g. "populated 0".
  virtual int events_fd() const = 0;

  // Final (or live) counters. Fields the host cannot measure stay nullopt; those
  // this run did not measure because it did not make their leaf (or enable their
  // v2 controller) are also named in Usage::not_measured.
  virtual Result<Usage> read_usage() const = 0;

  // Gives up ownership for --keep-orphans: the destructor then neither kills nor
  // removes anything, and the cgroup outlives the runner with its processes. An
  // empty sibling cgroup <run-id>.kept marks it in every hierarchy, so that the
  // job's next runs do not take it for a run whose runner died (find_live_runs).
  virtual Result<void> release() = 0;

  // Removes the run's directory in every hierarchy (retrying EBUSY up to ~100 ms).
  // <job> stays: it is the parent of the job's next runs, like a systemd slice,
  // and keeping it spares a mkdir and an rmdir per hierarchy per run (an empty
  // cgroup costs the kernel a few KiB). Never moves leftover tasks anywhere:
  // kill_all() first. Idempotent.
  virtual Result<void> remove() = 0;
};

// Runs of `job` whose cgroup still holds processes: <parent>/<job>/<run-id> leaves
// other than the ones --keep-orphans marked (<run-id>.kept beside them). A marked
// leaf found empty is removed with its mark: its processes are gone and no runner
// owns it. An unmarked leaf found empty is a runner's that died (SIGKILL) after
// its job ended: it is removed in every hierarchy and listed with `removed` set, so
// that the caller can clear that run's other files. Called under the job's lock,
// before this run's own leaf exists (so only a --no-lock run of the same job,
// between its mkdir and its join, could be caught with an empty leaf).
// Under the job's lock such a leaf belongs to a runner that is gone (SIGKILLed,
// or its host ran out of memory) while the job's processes live on.
struct LiveRun {
  std::string run_id;
  std::string path;  // relative to the hierarchy root
  size_t processes = 0;
  bool removed = false;  // an empty leaf of a dead runner, removed by this look
};
Result<std::vector<LiveRun>> find_live_runs(const Placement& placement, const std::string& job);

// Creates <placement.parent>/<job>/<run_id> in the hierarchies a run needs without
// limits (the unified one and memory on hybrid; see needed_controllers()), moving
// the runner into placement.runner_leaf first when that is set. apply_limits()
// adds what the limits need.
Result<std::unique_ptr<JobCgroup>> create_job_cgroup(const Placement& placement,
                                                     const std::string& job,
                                                     const std::string& run_id);

}  // namespace cronrun::cgroup
