// run_job() reads as the table of contents of a run:
//   record skeleton → drain check → history → lock → cgroup placement → prepare the
//   child (env, output, counters) → `running` row → spawn → supervise → collect →
//   record → exit status.
// Each step is a function below; a step that ends the run early records why.
#include "runner/run.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/history.h"
#include "runner/journal_sink.h"
#include "common/safe_file.h"
#include "common/units.h"
#include "runner/counters.h"
#include "runner/db_counter.h"
#include "runner/lock.h"
#include "runner/log.h"
#include "runner/output.h"
#include "runner/report.h"
#include "runner/spawn.h"
#include "runner/summary.h"
#include "runner/supervise.h"

extern char** environ;

namespace cronrun {
namespace {

constexpr int kExitTimeout = 124;
constexpr int kExitInternal = 125;
constexpr int kExitLockBusy = 75;

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string user_name() {
  if (struct passwd* pw = ::getpwuid(geteuid())) return pw->pw_name;
  return std::to_string(geteuid());
}

RunRecord new_record(const JobSpec& spec) {
  RunRecord r;
  r.run_id = new_run_id();
  r.job = spec.name;
  r.host = host_name();
  r.user = user_name();
  r.command = spec.command;
  r.started_at = now_rfc3339();
  r.runner_pid = getpid();
  // 0 (unknown) only without /proc, where the cgroup discovery has failed already;
  // readers then judge the row by pid and boot id alone.
  r.runner_start = process_start_ticks(r.runner_pid).value_or(0);
  r.boot_id = current_boot_id();
  r.limits.memory_max_bytes = spec.limits.memory_max_bytes;
  r.limits.memory_high_bytes = spec.limits.memory_high_bytes;
  r.limits.swap_max_bytes = spec.limits.swap_max_bytes;
  r.limits.cpu_quota_pct = spec.limits.cpu_quota_pct;
  r.limits.cpu_weight = spec.limits.cpu_weight;
  r.limits.pids_max = spec.limits.pids_max;
  if (spec.timeout) r.limits.timeout_s = static_cast<double>(spec.timeout->count()) / 1000.0;
  return r;
}

std::optional<std::string> drain_file() {
  const char* env = std::getenv("CRONRUN_DRAIN_FILE");
  std::string path = env && *env ? env : "/etc/cronrun/drain";
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return path;
  return std::nullopt;
}

// Everything one run holds, released in reverse order by the destructors.
class Run {
 public:
  // The record is UTF-8 from the start (argv is bytes; the job still gets its
  // own), so FINISH lines and --report match what the history stores.
  explicit Run(const JobSpec& spec) : spec_(spec), rec_(new_record(spec)) { make_valid_utf8(rec_); }
  int execute();

 private:
  std::optional<int> check_drain();
  std::optional<int> check_output_paths();
  std::optional<int> open_history();
  std::optional<int> take_lock();
  std::optional<int> place_cgroup();
  std::optional<int> check_leftover_runs(const cgroup::Placement& placement);
  std::optional<int> prepare_child();
  std::optional<int> start();
  void supervise_and_collect();
  int finish();

  int end_skipped(const std::string& reason, int exit_code);
  int end_error(const std::string& message);
  void degrade(const std::string& cause, const std::string& reason);
  void note(const std::string& what);
  void save(bool final_row);

  const JobSpec& spec_;
  RunRecord rec_;
  std::unique_ptr<RecordSink> sink_;  // the run journal (runner/journal_sink.h)
  bool row_started_ = false;
  std::optional<PidFileLock> lock_;
  std::unique_ptr<cgroup::JobCgroup> cgroup_;
  std::optional<OutputCapture> output_;
  std::optional<CountersFile> counters_;
  std::optional<dbcount::Session> db_;
  UniqueFd signal_fd_;
  SpawnRequest req_;
  std::optional<Child> child_;
  std::vector<std::string> join_paths_;  // what req_.join_fds are, for errors
  std::optional<int> exec_errno_;
  Outcome outcome_;
  std::chrono::steady_clock::time_point t0_;
};

int Run::execute() {
  if (auto rc = check_drain()) return *rc;
  if (auto rc = check_output_paths()) return *rc;
  if (auto rc = open_history()) return *rc;
  if (auto rc = take_lock()) return *rc;
  if (auto rc = place_cgroup()) return *rc;
  if (auto rc = prepare_child()) return *rc;
  if (auto rc = start()) return *rc;
  supervise_and_collect();
  return finish();
}

void Run::save(bool final_row) {
  if (!sink_) return;
  // A damaged history moved aside at open is said in every row of this run (the
  // first row of the new history), whatever later steps set as the note.
  if (const auto note = sink_->note();
      note && (!rec_.isolation.note || rec_.isolation.note->find(*note) == std::string::npos))
    rec_.isolation.note = rec_.isolation.note ? *rec_.isolation.note + "; " + *note : *note;
  // What is stored is what the run reports: argv, paths and counter names are
  // bytes, the record is UTF-8 (DESIGN.md section 4).
  make_valid_utf8(rec_);
  Result<void> r = final_row ? sink_->finished(rec_) : sink_->started(rec_);
  if (!r) {
    log::error(fmt::format("{}: {}{}", sink_->where(), r.error().message(), final_row ? "" : "; the job was not started"));
    return;
  }
  if (!final_row) row_started_ = true;
}

int Run::end_skipped(const std::string& reason, int exit_code) {
  rec_.status = RunStatus::skipped;
  rec_.skip_reason = reason;
  rec_.finished_at = now_rfc3339();
  rec_.wall_s = 0.0;
  save(true);
  if (spec_.summary_path)
    if (auto r = write_summary(*spec_.summary_path, rec_); !r)
      log::error(fmt::format("--summary: {}", r.error().message()));
  log::event(format_finish_event(rec_));
  if (spec_.report) std::cerr << format_report(rec_);
  return exit_code;
}

// cronrun itself failed after the run began: record it as `error` and exit 125.
int Run::end_error(const std::string& message) {
  log::error(message);
  rec_.status = RunStatus::error;
  rec_.finished_at = now_rfc3339();
  note(message);
  save(true);
  if (spec_.summary_path)
    if (auto r = write_summary(*spec_.summary_path, rec_); !r)
      log::error(fmt::format("--summary: {}", r.error().message()));
  return kExitInternal;
}

std::optional<int> Run::check_drain() {
  if (auto path = drain_file()) {
    log::info(fmt::format("draining ({} exists): not starting job '{}'", *path, spec_.name));
    // The history is still worth a row: a skipped run is evidence too.
    if (spec_.history) {
      std::string db = spec_.history_path.value_or(HistoryStore::default_path());
      if (auto h = open_journal_sink(db, !spec_.history_path)) {
        sink_ = std::move(*h);
      } else {
        // Draining still exits 0 (nothing ran), but the lost row is said out loud.
        log::error(fmt::format("--history {}: {}; this skipped run is not recorded", db, h.error().message()));
      }
    }
    return end_skipped(fmt::format("draining ({} exists)", *path), 0);
  }
  return std::nullopt;
}

// Paths the user named that cannot be written safely (a --summary target that is a
// planted FIFO, symlink or device; a --log-dir that is missing, another user's or
// open to all) are refused before anything is locked, created or run.
std::optional<int> Run::check_output_paths() {
  if (spec_.summary_path)
    if (auto ok = check_summary_target(*spec_.summary_path); !ok) {
      log::error(fmt::format("--summary: {}", ok.error().message()));
      return kExitInternal;
    }
  if (spec_.log_dir)
    if (auto dir = CheckedDir::open(*spec_.log_dir); !dir) {
      log::error(fmt::format("--log-dir: {}{}", dir.error().message(),
                             dir.error().err() == ENOENT ? " (the directory must exist; it is not created)" : ""));
      return kExitInternal;
    }
  return std::nullopt;
}

// A fact about this run an admin should see in the record as well as in the log.
void Run::note(const std::string& what) {
  rec_.isolation.note = rec_.isolation.note ? *rec_.isolation.note + "; " + what : what;
}

std::optional<int> Run::open_history() {
  if (!spec_.history) return std::nullopt;
  std::string path = spec_.history_path.value_or(HistoryStore::default_path());
  // Only the default location's directories are created. The run appends to the
  // history's journal; SQLite is opened only to fold it (journal_sink.h).
  auto h = open_journal_sink(path, !spec_.history_path);
  if (!h) {
    log::error(fmt::format("--history {}: {} (use --no-history to run without one)", path, h.error().message()));
    return kExitInternal;
  }
  sink_ = std::move(*h);
  return std::nullopt;
}

std::optional<int> Run::take_lock() {
  if (!spec_.lock) return std::nullopt;
  bool default_path = !spec_.lock_path;
  std::string path = spec_.lock_path.value_or(default_lock_path(spec_.name));
  rec_.lock.path = path;
  // Only cronrun's own default directories are created; an explicit path's must exist.
  auto dir = !default_path ? PidFileLock::Dir::must_exist
             : geteuid() == 0 ? PidFileLock::Dir::create
                              : PidFileLock::Dir::create_private;
  auto res = PidFileLock::acquire(path, spec_.lock_wait, dir);
  if (!res) {
    log::error(fmt::format("--lock {}: {}", path, res.error().message()));
    return kExitInternal;
  }
  if (auto* busy = std::get_if<PidFileLock::Busy>(&*res)) {
    rec_.lock.waited_s = busy->waited_s;
    if (busy->holder_pid) rec_.lock.holder_pid = *busy->holder_pid;
    std::string holder = busy->holder_pid ? fmt::format("pid {}", *busy->holder_pid) : "unknown pid";
    std::string reason = fmt::format("lock {} held by {}", path, holder);
    if (spec_.on_locked == OnLocked::fail) {
      log::error(fmt::format("job '{}' is already running: {} (--on-locked fail)", spec_.name, reason));
      return end_skipped(reason, kExitLockBusy);
    }
    log::info(fmt::format("job '{}' is already running: {}; skipping this run", spec_.name, reason));
    return end_skipped(reason, 0);
  }
  lock_.emplace(std::move(std::get<PidFileLock>(*res)));
  rec_.lock.waited_s = lock_->waited_s();
  return std::nullopt;
}

// Cuts `text` to `max` bytes, marking the cut.
std::string clip(std::string text, size_t max) {
  if (text.size() <= max) return text;
  text.resize(max > 3 ? max - 3 : 0);
  return text + "...";
}

// The one warning line cron mails on every run: at most kWarnLineMax characters
// with the "cronrun: warning: " prefix, naming the cause and where the rest is.
constexpr size_t kWarnLineMax = 160;
constexpr size_t kWarnPrefix = sizeof("cronrun: warning: ") - 1;

// No usable cgroup: say so once (one short line naming `cause`), record the whole
// `reason`, and enforce what rlimits can.
void Run::degrade(const std::string& cause, const std::string& reason) {
  std::vector<std::string> applied, lost;
  if (spec_.limits.memory_max_bytes) {
    req_.rlimits.emplace_back(RLIMIT_DATA, *spec_.limits.memory_max_bytes);
    applied.push_back(fmt::format("RLIMIT_DATA={} per process", units::format_size(*spec_.limits.memory_max_bytes)));
  }
  if (spec_.timeout) {
    // A job cannot legitimately use more CPU seconds than its wall limit allows at
    // its quota; this backs up the timer if the runner itself is stopped.
    double cores = spec_.limits.cpu_quota_pct.value_or(100.0) / 100.0;
    auto cpu_s = static_cast<rlim_t>(std::ceil(static_cast<double>(spec_.timeout->count()) / 1000.0 * std::max(cores, 1.0)));
    req_.rlimits.emplace_back(RLIMIT_CPU, cpu_s);
    applied.push_back(fmt::format("RLIMIT_CPU={}s", cpu_s));
  }
  if (spec_.limits.cpu_quota_pct) lost.push_back("--cpu");
  if (spec_.limits.pids_max) lost.push_back("--pids");
  if (spec_.limits.memory_high_bytes) lost.push_back("--memory-high");
  if (spec_.limits.swap_max_bytes) lost.push_back("--swap");
  if (spec_.limits.cpu_weight) lost.push_back("--cpu-weight");
  if (spec_.limits.io_weight) lost.push_back("--io-weight");
  std::string note = reason + "; running without a cgroup (rusage accounting, process-group kill)";
  if (!applied.empty()) note += "; rlimits: " + fmt::format("{}", fmt::join(applied, ", "));
  if (!lost.empty()) note += "; not enforceable without a cgroup: " + fmt::format("{}", fmt::join(lost, " "));
  rec_.isolation = Isolation{"none", std::nullopt, "rusage", note};
  if (spec_.cgroup_mode == CgroupMode::off) return;
  // Cron mails this line on every run: the cause and where the rest is (the record's
  // isolation.note and `cronrun --dry-run`), not the whole reason.
  std::string line = fmt::format("job '{}' runs without a cgroup: {}", clip(spec_.name, 24), cause);
  if (!lost.empty()) line += fmt::format("; not enforced: {}", fmt::join(lost, " "));
  const std::string tail = "; see cronrun --dry-run";
  log::warn(clip(line, kWarnLineMax - kWarnPrefix - tail.size()) + tail);
}

std::optional<int> Run::place_cgroup() {
  if (spec_.cgroup_mode == CgroupMode::off) {
    degrade("--cgroup off", "cgroups disabled by --cgroup off");
    return std::nullopt;
  }
  cgroup::DiscoverOptions opts;
  opts.parent_override = spec_.cgroup_parent;
  opts.is_root = geteuid() == 0;
  cgroup::Placement placement = cgroup::discover(opts);
  log::info(fmt::format("cgroup placement: {} under {}: {}", cgroup::to_string(placement.layout),
                        placement.parent.empty() ? "-" : placement.parent, placement.reason));
  if (auto rc = check_leftover_runs(placement)) return rc;
  std::string failure, cause;
  if (placement.layout == cgroup::Layout::none) {
    failure = "no writable cgroup: " + placement.reason;
    cause = opts.is_root ? "no usable cgroup hierarchy" : fmt::format("no cgroup writable by uid {}", geteuid());
  } else if (auto cg = cgroup::create_job_cgroup(placement, spec_.name, rec_.run_id); !cg) {
    failure = fmt::format("creating cgroup for job '{}': {}", spec_.name, cg.error().message());
    cause = cg.error().err() ? fmt::format("creating its cgroup failed ({})", std::strerror(cg.error().err()))
                             : "creating its cgroup failed";
  } else if (auto lim = (*cg)->apply_limits(spec_.limits); !lim) {
    failure = fmt::format("applying limits to cgroup {}: {}", (*cg)->path(), lim.error().message());
    cause = "its limits were refused";
    if (auto r = (*cg)->remove(); !r) log::warn(fmt::format("removing cgroup {}: {}", (*cg)->path(), r.error().message()));
  } else if (!lim->empty() && spec_.cgroup_mode == CgroupMode::required) {
    // Required means every limit asked for is enforced: a run with some of them
    // silently missing is what --cgroup required exists to prevent.
    for (const auto& m : *lim) log::error(fmt::format("--cgroup required: {} not applied: {}", m.option, m.detail));
    if (auto r = (*cg)->remove(); !r) log::warn(fmt::format("removing cgroup {}: {}", (*cg)->path(), r.error().message()));
    return kExitInternal;
  } else {
    cgroup_ = std::move(*cg);
    rec_.isolation = Isolation{cgroup::to_string(cgroup_->layout()), cgroup_->path(), "cgroup", std::nullopt};
    if (!lim->empty()) {
      // Each limit stands on its own: the others are in force. The record names each
      // missing one with its file; the warning is one short line.
      std::vector<std::string> details, causes;
      for (const auto& m : *lim) {
        details.push_back(fmt::format("{} not applied: {}", m.option, m.detail));
        causes.push_back(fmt::format("{} ({})", m.option, m.cause));
      }
      rec_.isolation.note = fmt::format("{}", fmt::join(details, "; "));
      std::string head = fmt::format("job '{}': not applied: ", clip(spec_.name, 24));
      std::string tail = "; other limits in force";
      log::warn(head + clip(fmt::format("{}", fmt::join(causes, ", ")), kWarnLineMax - kWarnPrefix - head.size() - tail.size()) + tail);
    }
    return std::nullopt;
  }
  if (spec_.cgroup_mode == CgroupMode::required) {
    log::error(fmt::format("--cgroup required: {}", failure));
    return kExitInternal;
  }
  degrade(cause, failure);
  return std::nullopt;
}

// A run whose runner died (SIGKILL, the OOM killer) leaves its job running with no
// one to enforce its timeout, and its lock went with the runner. Under the lock, a
// populated cgroup of another run of this job is therefore such an orphan: this run
// is skipped like one that found the lock held, naming the old run. It is not
// killed: nothing here proves what that run's timeout was or that its runner did
// not use another lock; an admin sees the skip in every record until it ends.
// --keep-orphans leaves are renamed <run-id>.kept and do not count.
std::optional<int> Run::check_leftover_runs(const cgroup::Placement& placement) {
  if (!lock_) return std::nullopt;  // --no-lock: concurrent runs are allowed
  auto live = cgroup::find_live_runs(placement, spec_.name);
  if (!live) {
    log::warn(fmt::format("looking for leftover runs of job '{}': {}", spec_.name, live.error().message()));
    return std::nullopt;
  }
  if (live->empty()) return std::nullopt;
  const cgroup::LiveRun& old = live->front();
  std::string reason = fmt::format("run {} of this job still has {} process(es) in cgroup {}, and its runner no longer "
                                   "holds the lock",
                                   old.run_id, old.processes, old.path);
  if (live->size() > 1) reason += fmt::format(" (and {} more such run(s))", live->size() - 1);
  if (spec_.on_locked == OnLocked::fail) {
    log::error(fmt::format("job '{}' is already running: {} (--on-locked fail)", spec_.name, reason));
    return end_skipped(reason, kExitLockBusy);
  }
  log::info(fmt::format("job '{}' is already running: {}; skipping this run", spec_.name, reason));
  return end_skipped(reason, 0);
}

std::optional<int> Run::prepare_child() {
  // Environment: ours, then the job's extras, then cronrun's own variables.
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& kv : spec_.env) env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  env["CRONRUN_RUN_ID"] = rec_.run_id;
  env["CRONRUN_JOB"] = spec_.name;

  auto counters = CountersFile::create(runtime_dir(), rec_.run_id);
  if (!counters) return end_error(fmt::format("job '{}': {}", spec_.name, counters.error().message()));
  counters_.emplace(std::move(*counters));
  env["CRONRUN_COUNTERS"] = counters_->path();

  if (spec_.count_db_queries) {
    auto db = dbcount::Session::create(rec_.run_id);
    if (!db) return end_error(fmt::format("--count-db-queries: {}", db.error().message()));
    db_.emplace(std::move(*db));
    // The counter goes in front of the job's own LD_PRELOAD (from --env or ours).
    for (const auto& kv : db_->env(env.contains("LD_PRELOAD") ? env["LD_PRELOAD"] : ""))
      env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  }

  std::optional<std::string> log_path;
  if (spec_.log_dir) log_path = fmt::format("{}/{}/{}.log", *spec_.log_dir, spec_.name, rec_.run_id);
  auto out = OutputCapture::create(spec_.output, log_path, spec_.log_max_bytes);
  if (!out) return end_error(fmt::format("--output/--log-dir: {}", out.error().message()));
  output_.emplace(std::move(*out));

  req_.argv = spec_.command;
  req_.path_env = env.contains("PATH") ? env["PATH"] : "";
  for (const auto& [k, v] : env) req_.env.push_back(k + "=" + v);
  req_.stdout_fd = output_->child_stdout();
  req_.stderr_fd = output_->child_stderr();
  req_.nice = spec_.nice;
  req_.ionice = spec_.ionice;
  if (spec_.seccomp != SeccompMode::off)
    return end_error(fmt::format("--seccomp {}: not available in this version (only off)", to_string(spec_.seccomp)));
  return std::nullopt;
}

std::optional<int> Run::start() {
  auto sfd = prepare_supervisor_signals();
  if (!sfd) return end_error(sfd.error().message());
  signal_fd_ = std::move(*sfd);

  // clone3 into the v2 cgroup (hybrid: its unified half) when there is one; the
  // child joins the rest itself (v1 `tasks`). The test hook
  // CRONRUN_FORCE_SPAWN=fork skips clone3, as on kernels before 5.7.
  const char* force = std::getenv("CRONRUN_FORCE_SPAWN");
  bool force_fork = force && std::string_view(force) == "fork";
  auto plan_join = [this](bool cloned_into) -> Result<void> {
    req_.join_fds.clear();
    if (!cgroup_) return {};
    auto files = cgroup_->join_files(cloned_into);
    if (!files) return std::unexpected(files.error());
    join_paths_.clear();
    for (const auto& f : *files) {
      req_.join_fds.push_back(f.fd);
      join_paths_.push_back(f.path);
    }
    return {};
  };
  req_.cgroup_fd = cgroup_ && !force_fork ? cgroup_->clone_into_fd() : -1;
  if (auto j = plan_join(req_.cgroup_fd >= 0); !j)
    return end_error(fmt::format("placing job '{}' in cgroup {}: {}", spec_.name, cgroup_->path(), j.error().message()));

  // The `running` row (evidence if this runner dies) lands before the job
  // exists. A history that stays locked past the busy timeout, or cannot be
  // written, ends the run here with nothing started, instead of holding the
  // runner in SQLite's busy handler while the job runs unsupervised.
  save(false);
  if (sink_ && !row_started_) {
    rec_.status = RunStatus::error;
    rec_.finished_at = now_rfc3339();
    std::string note = "not started: the history could not record the run's start";
    rec_.isolation.note = rec_.isolation.note ? *rec_.isolation.note + "; " + note : note;
    if (spec_.summary_path)
      if (auto r = write_summary(*spec_.summary_path, rec_); !r) log::error(r.error().message());
    return kExitInternal;
  }

  // From here the supervisor must not wait on stderr's reader (the job's pipe under cron).
  log::set_nonblocking(true);
  t0_ = std::chrono::steady_clock::now();
  auto child = spawn(req_);
  if (!child && req_.cgroup_fd >= 0 &&
      (child.error().err() == ENOSYS || child.error().err() == E2BIG || child.error().err() == EINVAL)) {
    log::info(fmt::format("clone3(CLONE_INTO_CGROUP) unavailable ({}); the child joins its cgroup itself",
                          child.error().message()));
    req_.cgroup_fd = -1;
    if (auto j = plan_join(false); !j)
      return end_error(fmt::format("placing job '{}' in cgroup {}: {}", spec_.name, cgroup_->path(), j.error().message()));
    child = spawn(req_);
  }
  if (!child) return end_error(fmt::format("starting job '{}': {}", spec_.name, child.error().message()));
  child_.emplace(std::move(*child));
  output_->close_child_ends();
  log::event(format_start_event(rec_));
  if (cgroup_)
    log::info(fmt::format("spawned pid {} with {} into {}{}", child_->pid(), child_->method(), cgroup_->path(),
                          req_.join_fds.empty() ? "" : fmt::format(" (joined {})", fmt::join(join_paths_, ", "))));
  else
    log::info(fmt::format("spawned pid {} with fork (no cgroup)", child_->pid()));
  auto exec = child_->exec_result();
  if (!exec) return end_error(fmt::format("starting job '{}': {}", spec_.name, exec.error().message()));
  if (*exec) {
    const ChildFailure& f = **exec;
    if (f.stage == ChildFailure::Stage::exec) {
      exec_errno_ = f.err;
      return std::nullopt;
    }
    // The child exited without running the job: reap it, then report the step.
    ::waitpid(child_->pid(), nullptr, 0);
    child_.reset();
    std::string what = f.stage == ChildFailure::Stage::join
                           ? fmt::format("placing job '{}' in its cgroup: {}", spec_.name,
                                         Error::sys("write \"0\" to", static_cast<size_t>(f.index) < join_paths_.size()
                                                                              ? join_paths_[static_cast<size_t>(f.index)]
                                                                              : "?",
                                                    f.err)
                                             .message())
                           : fmt::format("setting up job '{}' before exec: {}", spec_.name,
                                         Error::sys(f.step(), "", f.err).message());
    return end_error(what);
  }
  return std::nullopt;
}

void Run::supervise_and_collect() {
  SuperviseConfig cfg;
  // The timeout counts from the spawn, not from here (the history write between).
  if (spec_.timeout) {
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0_);
    cfg.timeout = std::max(*spec_.timeout - spent, std::chrono::milliseconds(1));
  }
  cfg.kill_after = spec_.kill_after;
  cfg.keep_orphans = spec_.keep_orphans;
  cfg.cgroup = cgroup_.get();
  cfg.output = &*output_;
  auto outcome = supervise(*child_, signal_fd_.get(), cfg);
  rec_.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  rec_.finished_at = now_rfc3339();
  if (!outcome) {
    log::error(fmt::format("supervising job '{}': {}", spec_.name, outcome.error().message()));
    rec_.status = RunStatus::error;
    return;
  }
  outcome_ = *outcome;

  if (cgroup_) {
    if (auto u = cgroup_->read_usage(); u) {
      rec_.usage = *u;
    } else {
      log::warn(fmt::format("reading usage of cgroup {}: {} (figures left null)", cgroup_->path(), u.error().message()));
    }
    if (outcome_.orphans_left > 0) {
      // The owner must neither kill them nor remove their cgroup; it is marked kept
      // so that the job's next runs do not take it for a run whose runner died.
      if (auto r = cgroup_->release(); !r)
        log::warn(fmt::format("--keep-orphans: marking cgroup {} kept: {}", cgroup_->path(), r.error().message()));
      note(fmt::format("{} process(es) left running by --keep-orphans; cgroup {} kept", outcome_.orphans_left,
                       cgroup_->path()));
    } else if (auto r = cgroup_->remove(); !r) {
      log::warn(fmt::format("removing cgroup {}: {}", cgroup_->path(), r.error().message()));
    }
  }
  rec_.usage.max_rss_bytes = outcome_.max_rss_bytes;
  rec_.usage.orphans_killed = outcome_.orphans_killed;
  if (outcome_.orphans_killed > 0)
    note(fmt::format("killed {} process(es) the job left behind when its main process exited "
                         "(--keep-orphans keeps them)",
                         outcome_.orphans_killed));
  for (const auto& f : outcome_.failures) note(f);
  if (!rec_.usage.cpu_user_s) rec_.usage.cpu_user_s = outcome_.cpu_user_s;
  if (!rec_.usage.cpu_system_s) rec_.usage.cpu_system_s = outcome_.cpu_system_s;
  if (!rec_.usage.io_source && outcome_.io_read_bytes) {
    rec_.usage.io_read_bytes = outcome_.io_read_bytes;
    rec_.usage.io_write_bytes = outcome_.io_write_bytes;
    rec_.usage.io_source = "rusage";
  }

  if (counters_) {
    if (auto c = counters_->read(); c) {
      rec_.counters = c->values;
      if (c->invalid_lines > 0 || c->truncated)
        log::warn(fmt::format("$CRONRUN_COUNTERS: ignored {} malformed line(s){}", c->invalid_lines,
                              c->truncated ? ", file truncated at 4 MiB" : ""));
    } else {
      // The job replaced its counters file (a FIFO, a symlink, a directory): the
      // run is still recorded, without the job's counters.
      std::string what = fmt::format("job counters not read: {}", c.error().message());
      log::warn(what);
      note(what);
    }
  }
  if (db_) {
    if (auto c = db_->collect(); c) {
      for (const auto& [k, v] : *c) rec_.counters[k] = v;
    } else {
      std::string what = fmt::format("DB-query counters not read: {}", c.error().message());
      log::warn(fmt::format("--count-db-queries: {} (DB counters left out)", c.error().message()));
      note(what);
    }
  }
}

int Run::finish() {
  int code = kExitInternal;
  if (rec_.status != RunStatus::error) {
    int st = outcome_.wait_status;
    uint64_t ooms = rec_.usage.oom_kills.value_or(0);
    if (exec_errno_) {
      code = *exec_errno_ == ENOENT || *exec_errno_ == ENOTDIR ? 127 : 126;
      rec_.exit_code = code;
      rec_.status = RunStatus::failed;
      log::error(fmt::format("{}: {}", spec_.command.front(), Error::sys("execve", "", *exec_errno_).message().substr(8)));
    } else if (WIFEXITED(st)) {
      code = WEXITSTATUS(st);
      rec_.exit_code = code;
      rec_.status = code == 0 ? RunStatus::ok : (code == 137 && ooms > 0 ? RunStatus::oom : RunStatus::failed);
    } else if (WIFSIGNALED(st)) {
      int sig = WTERMSIG(st);
      rec_.signal = sig;
      code = 128 + sig;
      rec_.exit_code = code;
      rec_.status = sig == SIGKILL && ooms > 0 ? RunStatus::oom : RunStatus::killed;
    }
    if (outcome_.timed_out) {
      // The record's exit_code is what cronrun exits with (124); `signal` keeps how
      // the main process actually died.
      rec_.status = RunStatus::timeout;
      code = kExitTimeout;
      rec_.exit_code = code;
    }
  }
  bool failed = rec_.status != RunStatus::ok;
  output_->finish(failed);
  rec_.log = output_->log_record();
  rec_.output = output_->output_record();
  if (auto d = log::dropped_messages(); d > 0)
    note(fmt::format("{} of cronrun's own message(s) dropped: its stderr's reader was not reading", d));
  save(true);
  if (spec_.summary_path)
    if (auto r = write_summary(*spec_.summary_path, rec_); !r)
      log::error(fmt::format("--summary: {}", r.error().message()));
  log::event(format_finish_event(rec_));
  if (spec_.report) std::cerr << format_report(rec_);
  return code;
}

}  // namespace

int run_job(const JobSpec& spec) {
  Run run(spec);
  return run.execute();
}

}  // namespace cronrun
