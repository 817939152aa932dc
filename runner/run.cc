// run_job() reads as the table of contents of a run:
//   record skeleton → drain check → output paths → record sink → lock → fleet
//   claim (fleet mode) → cgroup placement → keepalive (fleet mode) → prepare the
//   child (env, output, counters) → start (the `started` record, spawn, exec) →
//   supervise → collect → release the fleet lease → record → exit status →
//   the central history's forwarder (fleet mode with a `history`).
// Each step is a function below that returns what the next step needs (Locked,
// Placed, Prepared, Started, Collected) or Stop: the run has ended, and is
// recorded as far as it got. What a run takes from the host (clock, spawner,
// cgroups, where records go) comes through RunSeams, so that tests run it on
// fakes; the paths it uses are resolved once, before it begins (run_paths.h).
#include "runner/run.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <expected>
#include <fmt/format.h>
#include <iostream>
#include <optional>

#include "common/fd.h"
#include "common/job_paths.h"
#include "common/safe_file.h"
#include "runner/counters.h"
#include "runner/db_counter.h"
#include "runner/fleet.h"
#include "runner/footprint.h"
#include "runner/forward.h"
#include "runner/job_env.h"
#include "runner/journal_sink.h"
#include "runner/lock.h"
#include "runner/log.h"
#include "runner/output.h"
#include "runner/ping.h"
#include "runner/report.h"
#include "runner/seccomp_record.h"
#include "runner/spawn.h"
#include "runner/summary.h"
#include "runner/supervise.h"
#include "runner/systemd_scope.h"

extern char** environ;

namespace cronrun {
namespace {

constexpr int kExitTimeout = 124;
constexpr int kExitInternal = 125;
constexpr int kExitLockBusy = 75;
// How long a job runs before its supervisor trims its own memory for the wait.
constexpr std::chrono::milliseconds kSettleAfter{250};

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string user_name(uid_t euid) { return user_entry(euid).name; }

RunRecord new_record(const JobSpec& spec, uid_t euid, WallTime now) {
  RunRecord r;
  r.run_id = new_run_id();
  r.job = spec.name;
  r.host = host_name();
  r.user = user_name(euid);
  r.command = spec.command;
  r.started_at = format_rfc3339(now);
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

// The run has ended with this exit status; its record is written as far as it got.
struct Stop {
  int exit_code = kExitInternal;
};
template <class T>
using Step = std::expected<T, Stop>;

// The job's lock, held until the run is over; nullopt with --no-lock.
struct Locked {
  std::optional<PidFileLock> lock;
};

// The run's claim on the fleet (fleet mode, when etcd answered): the lease, its
// keepalive once the job is about to start. An early return releases both
// (destructor); the normal end releases them in release_fleet() and records how.
struct FleetHold {
  fleet::Params params;
  std::optional<fleet::Claimer> claimer;  // talks about `params`: FleetHold is held by pointer, never moved
  fleet::Claim claim;
  std::optional<fleet::Keepalive> keepalive;
  bool released = false;

  ~FleetHold() {
    keepalive.reset();
    if (!released && claimer)
      if (auto r = claimer->release(claim); !r)
        log::warn(fmt::format("{}; the fleet lock expires with its lease", r.error().message()));
  }
};
// nullptr: not in fleet mode, or running without etcd ("unavailable": "run").
using Fleet = std::unique_ptr<FleetHold>;

// Whether this host is in the run's group, from `<prefix>/config`'s value
// (fleet_config.h's Groups: nesting, cycles). A group the config does not name, or
// no config at all, has no hosts — and is told apart: it is more likely a typo
// than a host left out on purpose.
fleet::MemberCheck member_check(const fleet::Params& p) {
  return [group = p.group, host = p.host, where = "etcd " + fleet::config_key(p.prefix)](
             const std::optional<std::string>& value) -> Result<fleet::Membership> {
    using fleet::Membership;
    if (!group) return Membership::member;
    if (!value) return Membership::no_such_group;
    auto g = fleet::Groups::parse(*value, where);
    if (!g) return std::unexpected(std::move(g.error()));
    if (!g->has(*group)) return Membership::no_such_group;
    auto in = g->contains(*group, host);  // an error: a cycle in the groups
    if (!in) return std::unexpected(std::move(in.error()));
    return *in ? Membership::member : Membership::not_member;
  };
}

// The job as the keepalive sees it once the runner is gone: nothing but its
// process group (the containment's kill_all wants a job; with a cgroup it kills
// the cgroup, without one the group is what there is).
class OrphanedJob final : public RunningJob {
 public:
  explicit OrphanedJob(std::optional<pid_t> pgid) : pgid_(pgid) {}
  pid_t pid() const override { return pgid_.value_or(-1); }
  Result<Wake> wait(std::optional<std::chrono::milliseconds>, int, OutputCapture*, std::span<pollfd>) override {
    return fail("not supervised here");
  }
  void reap() override {}
  bool exited() const override { return true; }
  int wait_status() const override { return 0; }
  Result<void> signal_main(int) override { return {}; }
  Result<void> signal_group(int sig) override {
    if (pgid_ && ::kill(-*pgid_, sig) != 0 && errno != ESRCH) return fail_sys("kill", fmt::format("-{}", *pgid_));
    return {};
  }
  bool group_alive() const override { return pgid_ && ::kill(-*pgid_, 0) == 0; }
  std::optional<ChildUsage> usage() const override { return std::nullopt; }

 private:
  std::optional<pid_t> pgid_;
};

// What holds the job's processes: its cgroup, or no cgroup (degraded).
struct Placed {
  std::unique_ptr<Containment> where;
};

// Everything the child needs, made before anything is started.
struct Prepared {
  SpawnRequest req;
  OutputCapture output;
  CountersFile counters;
  std::optional<dbcount::Session> db;
};

// The supervised job's end; nullopt outcome: supervising it failed (recorded `error`).
struct Collected {
  std::optional<Outcome> outcome;
  std::optional<int> exec_errno;
};

// Resource use of the reaped processes, where the containment measured none.
void merge_child_usage(Usage& u, const Outcome& o) {
  u.orphans_killed = o.orphans_killed;
  if (!o.children) return;
  const ChildUsage& c = *o.children;
  u.max_rss_bytes = c.max_rss_bytes;
  if (!u.cpu_user_s) u.cpu_user_s = c.cpu_user_s;
  if (!u.cpu_system_s) u.cpu_system_s = c.cpu_system_s;
  if (!u.io_source && c.io_read_bytes) {
    u.io_read_bytes = c.io_read_bytes;
    u.io_write_bytes = c.io_write_bytes;
    u.io_source = "rusage";
  }
}

// The status and exit code of a supervised job (DESIGN §3).
int settle(RunRecord& rec, const Collected& c) {
  const Outcome& o = *c.outcome;
  int code = kExitInternal;
  int st = o.wait_status;
  uint64_t ooms = rec.usage.oom_kills.value_or(0);
  if (c.exec_errno) {
    code = *c.exec_errno == ENOENT || *c.exec_errno == ENOTDIR ? 127 : 126;
    rec.status = RunStatus::failed;
  } else if (WIFEXITED(st)) {
    code = WEXITSTATUS(st);
    rec.status = code == 0 ? RunStatus::ok : (code == 137 && ooms > 0 ? RunStatus::oom : RunStatus::failed);
  } else if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    rec.signal = sig;
    code = 128 + sig;
    rec.status = sig == SIGKILL && ooms > 0 ? RunStatus::oom : RunStatus::killed;
  }
  if (o.timed_out) {
    // The record's exit_code is what cronrun exits with (124); `signal` keeps how
    // the main process actually died.
    rec.status = RunStatus::timeout;
    code = kExitTimeout;
  }
  rec.exit_code = code;
  return code;
}

class Run {
 public:
  // The record is UTF-8 from the start (argv is bytes; the job still gets its
  // own), so FINISH lines and --report match what the history stores.
  Run(const JobSpec& spec, const RunPaths& paths, RunSeams& seams)
      : spec_(spec),
        paths_(paths),
        seams_(seams),
        t_begin_(seams.clock.steady()),
        rec_(new_record(spec, paths.euid, seams.clock.wall())),
        sink_(std::make_unique<NullSink>()) {
    make_valid_utf8(rec_);
    log::set_run(rec_.job, rec_.run_id);
    if (spec_.ping_url) pinger_ = std::make_unique<ping::Pinger>(*spec_.ping_url, rec_.run_id);
  }
  int execute();

 private:
  int run_steps();
  Step<void> check_drain();
  Step<void> check_output_paths();
  Step<void> open_sink();
  Step<Locked> take_lock();
  Step<Fleet> claim_fleet();
  Step<void> start_keepalive(FleetHold& fleet, Placed& placed);
  void release_fleet(FleetHold& fleet, const Collected& collected);
  void fleet_note(const std::string& what);
  void spawn_forwarder();
  Step<Placed> place(const Locked& locked);
  Step<void> check_leftover_runs(const cgroup::Placement& placement, const Locked& locked);
  Step<Placed> without_cgroup(const std::string& cause, const std::string& failure);
  Step<Placed> degrade(const std::string& cause, const std::string& reason);
  Step<Placed> limited(std::unique_ptr<cgroup::JobCgroup> cg, const std::vector<cgroup::LimitNotApplied>& missing);
  Step<Prepared> prepare_child();
  Step<Started> start(Placed& placed, Prepared& prepared, FleetHold* fleet);
  Collected supervise_and_collect(Placed& placed, Prepared& prepared, Started& started, FleetHold* fleet);
  void read_counters(Prepared& prepared);
  int finish(Prepared& prepared, const Collected& collected);

  Stop refuse(const Error& e);
  Stop already_running(const std::string& reason);
  Stop end_skipped(const std::string& reason, int exit_code);
  Stop end_error(const Error& e);
  Stop not_started();
  Result<void> record_started();
  void record_finished();
  void ping_end(int exit_code, std::string_view output_tail = {});
  void write_summary_file();
  void note(const std::string& what);
  std::string now() const { return format_rfc3339(seams_.clock.wall()); }

  const JobSpec& spec_;
  const RunPaths& paths_;
  RunSeams& seams_;
  SteadyTime t_begin_;
  RunRecord rec_;
  std::unique_ptr<RecordSink> sink_;
  std::unique_ptr<ping::Pinger> pinger_;  // --ping
};

// A fleet run's record (a skip too) goes on to the central history.
int Run::execute() {
  int code = run_steps();
  spawn_forwarder();
  return code;
}

int Run::run_steps() {
  if (auto s = check_drain(); !s) return s.error().exit_code;
  if (auto s = check_output_paths(); !s) return s.error().exit_code;
  if (auto s = open_sink(); !s) return s.error().exit_code;
  auto locked = take_lock();
  if (!locked) return locked.error().exit_code;
  // Declared before the placement: an early return kills the job's cgroup first,
  // then releases the lease.
  auto fleet = claim_fleet();
  if (!fleet) return fleet.error().exit_code;
  auto placed = place(*locked);
  if (!placed) return placed.error().exit_code;
  if (*fleet)
    if (auto s = start_keepalive(**fleet, *placed); !s) return s.error().exit_code;
  auto prepared = prepare_child();
  if (!prepared) return prepared.error().exit_code;
  auto started = start(*placed, *prepared, fleet->get());
  if (!started) return started.error().exit_code;
  Collected collected = supervise_and_collect(*placed, *prepared, *started, fleet->get());
  if (*fleet) release_fleet(**fleet, collected);
  return finish(*prepared, collected);
}

// ---- ending a run ----

// cronrun refuses before anything is recorded: one line, exit 125.
Stop Run::refuse(const Error& e) {
  log::error(e.message());
  return Stop{kExitInternal};
}

// A fact about this run an admin should see in the record as well as in the log.
void Run::note(const std::string& what) {
  rec_.isolation.note = rec_.isolation.note ? *rec_.isolation.note + "; " + what : what;
}

// --ping's end signal, sent before the record is written so that `pings` is in it.
void Run::ping_end(int exit_code, std::string_view output_tail) {
  if (!pinger_) return;
  pinger_->finish(ping::end_signal(rec_.status == RunStatus::skipped, exit_code),
                  ping::finish_body(log::event_text(log::Event::finish, rec_), output_tail));
  rec_.pings = pinger_->record();
  if (auto line = pinger_->failure_line()) log::warn(*line);
}

void Run::write_summary_file() {
  if (spec_.summary_path)
    if (auto r = write_summary(*spec_.summary_path, rec_); !r)
      log::error(fmt::format("--summary: {}", r.error().message()));
}

// The sink's own note (a damaged history moved aside at open) is said in every
// record of this run, whatever later steps set as the note. What is stored is
// what the run reports: argv, paths and counter names are bytes, the record is
// UTF-8 (DESIGN.md section 4).
void Run::record_finished() {
  if (const auto n = sink_->note(); n && (!rec_.isolation.note || rec_.isolation.note->find(*n) == std::string::npos))
    note(*n);
  make_valid_utf8(rec_);
  if (auto r = sink_->finished(rec_); !r) log::error(fmt::format("{}: {}", sink_->where(), r.error().message()));
  // With the fold's housekeeping (once in many runs): files of killed runners.
  if (sink_->housekept()) sweep_leftovers(paths_.runtime_dir, spec_.paths.runtime_dir, ::time(nullptr));
}

// The `started` record (evidence if this runner dies) lands before the job
// exists. A journal that cannot be written ends the run with nothing started:
// a job is never run unrecorded.
Result<void> Run::record_started() {
  if (const auto n = sink_->note(); n && (!rec_.isolation.note || rec_.isolation.note->find(*n) == std::string::npos))
    note(*n);
  make_valid_utf8(rec_);
  auto r = sink_->started(rec_);
  if (!r) {
    log::error(fmt::format("{}: {}; the job was not started", sink_->where(), r.error().message()));
    return std::unexpected(std::move(r.error()).with_kind(ErrorKind::history));
  }
  return {};
}

Stop Run::end_skipped(const std::string& reason, int exit_code) {
  rec_.status = RunStatus::skipped;
  rec_.skip_reason = reason;
  rec_.finished_at = now();
  rec_.wall_s = 0.0;
  ping_end(exit_code);
  record_finished();
  write_summary_file();
  log::run_event(log::Event::finish, rec_);
  if (spec_.report) std::cerr << format_report(rec_);
  return Stop{exit_code};
}

// cronrun itself failed after the run began: record it as `error` and exit 125.
Stop Run::end_error(const Error& e) {
  // The start could not be recorded: the job was not started, and the store that
  // refused the start is not asked again.
  if (e.kind() == ErrorKind::history) return not_started();
  log::error(e.message());
  rec_.status = RunStatus::error;
  rec_.finished_at = now();
  note(e.message());
  ping_end(kExitInternal);
  record_finished();
  write_summary_file();
  return Stop{kExitInternal};
}

Stop Run::not_started() {
  rec_.status = RunStatus::error;
  rec_.finished_at = now();
  note("not started: the history could not record the run's start");
  ping_end(kExitInternal);
  write_summary_file();
  return Stop{kExitInternal};
}

Stop Run::already_running(const std::string& reason) {
  if (spec_.on_locked == OnLocked::fail) {
    log::error(fmt::format("job '{}' is already running: {} (--on-locked fail)", spec_.name, reason));
    return end_skipped(reason, kExitLockBusy);
  }
  log::info(fmt::format("job '{}' is already running: {}; skipping this run", spec_.name, reason));
  return end_skipped(reason, 0);
}

// ---- the steps ----

Step<void> Run::check_drain() {
  struct stat st;
  if (::stat(paths_.drain_file.c_str(), &st) != 0) return {};
  log::info(fmt::format("draining ({} exists): not starting job '{}'", paths_.drain_file, spec_.name));
  // The history is still worth a row: a skipped run is evidence too.
  if (paths_.history) {
    if (auto s = seams_.open_sink(*paths_.history, paths_.history_is_default)) {
      sink_ = std::move(*s);
      if (auto n = sink_->note()) log::warn(*n);
    } else {
      // Draining still exits 0 (nothing ran), but the lost row is said out loud.
      log::error(fmt::format("--history {}: {}; this skipped run is not recorded", *paths_.history,
                             s.error().message()));
    }
  }
  return std::unexpected(end_skipped(fmt::format("draining ({} exists)", paths_.drain_file), 0));
}

// Paths the user named that cannot be written safely (a --summary target that is a
// planted FIFO, symlink or device; a --log-dir that is missing, another user's or
// open to all) are refused before anything is locked, created or run.
Step<void> Run::check_output_paths() {
  if (spec_.summary_path)
    if (auto ok = check_summary_target(*spec_.summary_path); !ok)
      return std::unexpected(refuse(std::move(ok.error()).context("--summary")));
  if (spec_.log_dir) {
    auto dir = CheckedDir::open(*spec_.log_dir);
    if (!dir) {
      Error e = std::move(dir.error()).context("--log-dir");
      log::error(e.message() + (e.err() == ENOENT ? " (the directory must exist; it is not created)" : ""));
      return std::unexpected(Stop{kExitInternal});
    }
    // DIR/NAME too (made if missing, as the log's open would): another user's
    // NAME is refused here, before the lock, the cgroup and the start record.
    if (auto sub = dir->make_subdir(spec_.name, 0750); !sub) {
      log::error(std::move(sub.error()).context("--log-dir").message());
      return std::unexpected(Stop{kExitInternal});
    }
  }
  return {};
}

// Only the default location's directories are created. The run appends to the
// history's journal; SQLite is opened only to fold it (runner/journal_sink.h), or
// once by the first run, which creates the history (a damaged one is moved aside,
// kept, and said here and in the record).
Step<void> Run::open_sink() {
  if (!paths_.history) return {};
  auto s = seams_.open_sink(*paths_.history, paths_.history_is_default);
  if (!s) {
    log::error(fmt::format("--history {}: {} (use --no-history to run without one)", *paths_.history,
                           s.error().message()));
    return std::unexpected(Stop{kExitInternal});
  }
  sink_ = std::move(*s);
  if (auto n = sink_->note()) log::warn(*n);
  return {};
}

Step<Locked> Run::take_lock() {
  if (!paths_.lock) return Locked{};
  const std::string& path = *paths_.lock;
  rec_.lock.path = path;
  auto res = PidFileLock::acquire(path, spec_.lock_wait, paths_.lock_dir);
  if (!res) return std::unexpected(refuse(std::move(res.error()).context("--lock " + path)));
  if (auto* busy = std::get_if<PidFileLock::Busy>(&*res)) {
    rec_.lock.waited_s = busy->waited_s;
    if (busy->holder_pid) rec_.lock.holder_pid = *busy->holder_pid;
    std::string holder = busy->holder_pid ? fmt::format("pid {}", *busy->holder_pid) : "unknown pid";
    return std::unexpected(already_running(fmt::format("lock {} held by {}", path, holder)));
  }
  Locked locked{std::move(std::get<PidFileLock>(*res))};
  rec_.lock.waited_s = locked.lock->waited_s();
  return locked;
}

// ---- fleet mode (fleet.h) ----

void Run::fleet_note(const std::string& what) {
  auto& n = rec_.fleet->note;
  n = n ? *n + "; " + what : what;
}

// After the local lock (same-host duplicates never reach etcd): group membership,
// then the lease and the one transaction. A lost race is a skip naming the holder
// (exit 0, 75 with --on-locked fail); a host not in the group is a skip (exit 0);
// an etcd that no endpoint answers fails closed (exit 75) unless the fleet config
// says "unavailable": "run".
Step<Fleet> Run::claim_fleet() {
  if (!spec_.fleet) return Fleet{};
  const fleet::Config& cfg = *spec_.fleet;
  const int64_t now_s = std::chrono::floor<std::chrono::seconds>(seams_.clock.wall()).time_since_epoch().count();
  int64_t tick_s = now_s - ((now_s % 60) + 60) % 60;
  if (spec_.tick) {
    auto t = parse_tick(*spec_.tick);
    if (!t) return std::unexpected(end_error(std::move(t.error()).context("--tick")));
    tick_s = *t;
  }
  FleetRecord fr;
  fr.group = spec_.group;
  fr.host = cfg.host;
  fr.tick = format_tick(tick_s);
  fr.lease_ttl_s = cfg.lease_ttl.count();
  fr.note = cfg.note;
  rec_.fleet = std::move(fr);

  auto hold = std::make_unique<FleetHold>();
  fleet::Params& p = hold->params;
  p.job = spec_.name;
  p.host = cfg.host;
  p.group = spec_.group;
  p.prefix = cfg.prefix;
  p.endpoints = cfg.etcd;
  p.tls = cfg.tls;
  p.lease_ttl = cfg.lease_ttl;
  p.kill_after = spec_.kill_after;
  p.tick_s = tick_s;
  p.run_id = rec_.run_id;
  p.pid = rec_.runner_pid;
  p.started_at = rec_.started_at;

  auto claimer = fleet::Claimer::open(p);
  if (!claimer) return std::unexpected(end_error(claimer.error()));
  hold->claimer.emplace(std::move(*claimer));
  auto outcome = hold->claimer->claim(member_check(p));
  if (!outcome) {
    // claim() holds no lease when it fails (it revokes the one it granted): there is
    // nothing to release, and revoking lease 0 would add a false second line.
    hold->claimer.reset();
    return std::unexpected(end_error(outcome.error()));
  }
  if (auto* c = std::get_if<fleet::Claim>(&*outcome)) {
    hold->claim = *c;
    rec_.fleet->fence = c->fence;
    log::info(fmt::format("fleet: claimed tick {} of job '{}' as host {} (fence {})", rec_.fleet->tick, spec_.name,
                          cfg.host, c->fence));
    return hold;
  }
  hold->claimer.reset();  // nothing to release
  const fleet::Skip& skip = std::get<fleet::Skip>(*outcome);
  if (skip.holder) rec_.fleet->holder = FleetHolder{skip.holder->host, skip.holder->revision};
  switch (skip.why) {
    case fleet::Skip::Why::lock_held:
    case fleet::Skip::Why::tick_claimed:
      return std::unexpected(already_running(skip.reason));
    case fleet::Skip::Why::not_in_group:
      log::info(fmt::format("job '{}': {}; skipping this run", spec_.name, skip.reason));
      return std::unexpected(end_skipped(skip.reason, 0));
    case fleet::Skip::Why::no_such_group:
      // Every host skips such a run: said on each, or the job silently never runs.
      log::warn(fmt::format("job '{}' skipped: {}; no host runs it", clip(spec_.name, 24), clip(skip.reason, 120)));
      return std::unexpected(end_skipped(skip.reason, 0));
    case fleet::Skip::Why::unavailable:
      break;
  }
  if (cfg.unavailable == fleet::Unavailable::run) {
    log::warn(fmt::format("job '{}': {}; running on the local lock alone (\"unavailable\": \"run\")",
                          clip(spec_.name, 24), clip(skip.reason, 80)));
    fleet_note(skip.reason + "; ran on the local lock alone (\"unavailable\": \"run\")");
    return Fleet{};
  }
  log::warn(fmt::format("job '{}' skipped: {} (fail closed; \"unavailable\": \"run\" runs it anyway)",
                        clip(spec_.name, 24), clip(skip.reason, 80)));
  return std::unexpected(end_skipped(skip.reason, kExitLockBusy));
}

// The keepalive is forked once the job's containment exists (it kills the job
// through it if this runner dies) and before the job's pipes and the supervisor's
// signal handling exist (it must hold neither).
Step<void> Run::start_keepalive(FleetHold& fleet, Placed& placed) {
  Containment* where = placed.where.get();
  auto kill_job = [where](std::optional<pid_t> pgid) {
    FailureLog failures;  // each failure is logged as it happens
    OrphanedJob job(pgid);
    where->kill_all(job, failures);
    if (auto r = job.signal_group(SIGKILL); !r) failures.add(r.error().message());
    if (auto n = where->close(0)) log::warn(*n);
  };
  auto k = fleet::Keepalive::start(fleet.params, fleet.claim, member_check(fleet.params), kill_job);
  if (!k) return std::unexpected(end_error(std::move(k.error()).context("fleet keepalive")));
  fleet.keepalive.emplace(std::move(*k));
  return {};
}

// The normal end: the keepalive stops, the lease is revoked (the lock goes at
// once), and what happened to the lease while the job ran is recorded.
void Run::release_fleet(FleetHold& fleet, const Collected& collected) {
  const auto ttl_s = fleet.params.lease_ttl.count();
  if (fleet.keepalive) {
    if (auto r = fleet.keepalive->stop(std::chrono::seconds(3)); !r) {
      log::warn(r.error().message());
      fleet_note(r.error().message());
    }
  }
  fleet.released = true;
  if (auto r = fleet.claimer->release(fleet.claim); !r) {
    std::string what = fmt::format("{}; the fleet lock expires with its lease ({}s)", r.error().message(), ttl_s);
    log::warn(what);
    fleet_note(what);
  }
  if (!collected.outcome || !collected.outcome->lease) return;
  const LeaseOutcome& l = *collected.outcome->lease;
  if (l.stopped_by_deadline) {
    auto since = seams_.clock.wall() - (seams_.clock.steady() - l.last_renewal);
    std::string what =
        l.lost ? fmt::format("fleet lease lost ({}): the job was stopped", l.first_failure.value_or("gone"))
               : fmt::format("fleet lease not renewed since {} (lease_ttl {}s): the job was stopped before the lease "
                             "could expire",
                             format_rfc3339(std::chrono::time_point_cast<std::chrono::system_clock::duration>(since)),
                             ttl_s);
    fleet_note(what);
    note(what);
  }
  if (l.revoked) {
    std::string what = l.stopped_by_revoke
                           ? fmt::format("{} while the job ran: stopped (--on-revoke term)", *l.revoked)
                           : fmt::format("{} while the job ran: it finished (--on-revoke finish)", *l.revoked);
    fleet_note(what);
    if (l.stopped_by_revoke) note(what);
  }
  if (l.failures > 0)
    fleet_note(fmt::format("{} keepalive round(s) failed and were retried (first: {})", l.failures,
                           l.first_failure.value_or("?")));
  if (l.keepalive_gone) fleet_note("the keepalive process exited while the job ran");
}

// After a fleet run with a central history, a detached forwarder sends the
// journal's new records to PostgreSQL (runner/forward.h); this run does not wait.
void Run::spawn_forwarder() {
  if (!rec_.fleet || !spec_.fleet || !paths_.history) return;
  auto opts = forward::options_for(*spec_.fleet, *paths_.history);
  if (!opts) return;  // no `history` in the fleet config
  auto pid = forward::spawn_forwarder(*opts);
  if (!pid)
    log::warn(fmt::format("starting the fleet forwarder: {}; the records wait in the journal (cronrun --flush sends them)",
                          pid.error().message()));
  else
    log::debug(fmt::format("fleet forwarder started (pid {})", *pid));
}

Step<Placed> Run::place(const Locked& locked) {
  if (spec_.cgroup_mode == CgroupMode::off) return degrade("--cgroup off", "cgroups disabled by --cgroup off");
  cgroup::DiscoverOptions opts;
  opts.parent_override = spec_.cgroup_parent;
  opts.is_root = paths_.is_root;
  cgroup::Placement placement = seams_.cgroups.discover(opts);
  log::info(fmt::format("cgroup placement: {} under {}: {}", cgroup::to_string(placement.layout),
                        placement.parent.empty() ? "-" : placement.parent, placement.reason));
  if (auto s = check_leftover_runs(placement, locked); !s) return std::unexpected(s.error());
  if (placement.layout == cgroup::Layout::none)
    return without_cgroup(seams_.cgroups.fallback_cause().value_or(
                              paths_.is_root ? "no usable cgroup hierarchy"
                                             : fmt::format("no cgroup writable by uid {}", paths_.euid)),
                          "no writable cgroup: " + placement.reason);
  auto cg = seams_.cgroups.create(placement, spec_.name, rec_.run_id);
  if (!cg)
    return without_cgroup(cg.error().err() ? fmt::format("creating its cgroup failed ({})",
                                                         std::strerror(cg.error().err()))
                                           : "creating its cgroup failed",
                          fmt::format("creating cgroup for job '{}': {}", spec_.name, cg.error().message()));
  auto lim = (*cg)->apply_limits(spec_.limits);
  if (!lim) {
    std::string failure = fmt::format("applying limits to cgroup {}: {}", (*cg)->path(), lim.error().message());
    if (auto r = (*cg)->remove(); !r)
      log::warn(fmt::format("removing cgroup {}: {}", (*cg)->path(), r.error().message()));
    return without_cgroup("its limits were refused", failure);
  }
  return limited(std::move(*cg), *lim);
}

// A run whose runner died (SIGKILL, the OOM killer) leaves its job running with no
// one to enforce its timeout, and its lock went with the runner. Under the lock, a
// populated cgroup of another run of this job is therefore such an orphan: this run
// is skipped like one that found the lock held, naming the old run. It is not
// killed: nothing here proves what that run's timeout was or that its runner did
// not use another lock; an admin sees the skip in every record until it ends.
// --keep-orphans leaves are renamed <run-id>.kept and do not count.
Step<void> Run::check_leftover_runs(const cgroup::Placement& placement, const Locked& locked) {
  if (!locked.lock) return {};  // --no-lock: concurrent runs are allowed
  auto live = seams_.cgroups.find_live_runs(placement, spec_.name);
  if (!live) {
    log::warn(fmt::format("looking for leftover runs of job '{}': {}", spec_.name, live.error().message()));
    return {};
  }
  // Empty leaves of dead runners were removed by the look: their counters files too.
  std::erase_if(*live, [&](const cgroup::LiveRun& r) {
    if (!r.removed) return false;
    if (auto gone = CountersFile::remove_left(paths_.runtime_dir, r.run_id); !gone)
      log::warn(fmt::format("removing a dead runner's counters file: {}", gone.error().message()));
    return true;
  });
  if (live->empty()) return {};
  const cgroup::LiveRun& old = live->front();
  std::string reason = fmt::format("run {} of this job still has {} process(es) in cgroup {}, and its runner no longer "
                                   "holds the lock",
                                   old.run_id, old.processes, old.path);
  if (live->size() > 1) reason += fmt::format(" (and {} more such run(s))", live->size() - 1);
  return std::unexpected(already_running(reason));
}

// No cgroup for the run: --cgroup required refuses, auto degrades.
Step<Placed> Run::without_cgroup(const std::string& cause, const std::string& failure) {
  if (spec_.cgroup_mode == CgroupMode::required)
    return std::unexpected(refuse(Error("--cgroup required: " + failure, ErrorKind::config)));
  return degrade(cause, failure);
}

// No usable cgroup: say so once (one short line naming `cause`), record the whole
// `reason`, and enforce what rlimits can.
Step<Placed> Run::degrade(const std::string& cause, const std::string& reason) {
  auto none = std::make_unique<NoCgroup>(spec_.limits, spec_.timeout, reason);
  rec_.isolation = none->isolation();
  if (spec_.cgroup_mode != CgroupMode::off) {
    // Cron mails this line on every run: the cause and where the rest is (the
    // record's isolation.note and `cronrun --dry-run`), not the whole reason.
    std::string line = fmt::format("job '{}' runs without a cgroup: {}", clip(spec_.name, 24), cause);
    if (!none->not_enforced().empty()) line += fmt::format("; not enforced: {}", fmt::join(none->not_enforced(), " "));
    const std::string tail = "; see cronrun --dry-run";
    log::warn(clip(line, kWarnLineMax - kWarnPrefix - tail.size()) + tail);
  }
  return Placed{std::move(none)};
}

// The run's cgroup with its limits. Each limit stands on its own: the others are
// in force. Required means every limit asked for is enforced: a run with some of
// them silently missing is what --cgroup required exists to prevent.
Step<Placed> Run::limited(std::unique_ptr<cgroup::JobCgroup> cg, const std::vector<cgroup::LimitNotApplied>& missing) {
  if (!missing.empty() && spec_.cgroup_mode == CgroupMode::required) {
    for (const auto& m : missing) log::error(fmt::format("--cgroup required: {} not applied: {}", m.option, m.detail));
    if (auto r = cg->remove(); !r) log::warn(fmt::format("removing cgroup {}: {}", cg->path(), r.error().message()));
    return std::unexpected(Stop{kExitInternal});
  }
  auto unit = seams_.cgroups.unit_of(*cg);
  auto where = std::make_unique<CgroupContainment>(std::move(cg), std::move(unit));
  rec_.isolation = where->isolation();
  if (!missing.empty()) {
    // The record names each missing one with its file; the warning is one short line.
    std::vector<std::string> details, causes;
    for (const auto& m : missing) {
      details.push_back(fmt::format("{} not applied: {}", m.option, m.detail));
      causes.push_back(fmt::format("{} ({})", m.option, m.cause));
    }
    rec_.isolation.note = fmt::format("{}", fmt::join(details, "; "));
    std::string head = fmt::format("job '{}': not applied: ", clip(spec_.name, 24));
    std::string tail = "; other limits in force";
    log::warn(head + clip(fmt::format("{}", fmt::join(causes, ", ")), kWarnLineMax - kWarnPrefix - head.size() - tail.size()) +
              tail);
  }
  return Placed{std::move(where)};
}

Step<Prepared> Run::prepare_child() {
  // Environment: ours, then the job's extras, then cronrun's own variables.
  JobEnv env = JobEnv::from(environ);
  for (const auto& kv : spec_.env) env.set_entry(kv);
  env.set("CRONRUN_RUN_ID", rec_.run_id);
  env.set("CRONRUN_JOB", spec_.name);
  if (rec_.fleet) {
    env.set("CRONRUN_TICK", rec_.fleet->tick);
    env.set("CRONRUN_HOST", rec_.fleet->host);
    // No fence without a claim ("unavailable": "run"): the job must not pass one off.
    if (rec_.fleet->fence)
      env.set("CRONRUN_FENCE", std::to_string(*rec_.fleet->fence));
    else
      env.erase("CRONRUN_FENCE");
  }

  auto counters = CountersFile::create(paths_.runtime_dir, rec_.run_id);
  if (!counters) return std::unexpected(end_error(std::move(counters.error()).context(fmt::format("job '{}'", spec_.name))));
  env.set("CRONRUN_COUNTERS", counters->path());

  std::optional<dbcount::Session> db;
  if (spec_.count_db_queries) {
    auto s = dbcount::Session::create(rec_.run_id);
    if (!s) return std::unexpected(end_error(std::move(s.error()).context("--count-db-queries")));
    db.emplace(std::move(*s));
    // The counter goes in front of the job's own LD_PRELOAD (from --env or ours).
    for (const auto& kv : db->env(env.get("LD_PRELOAD").value_or(""))) env.set_entry(kv);
  }

  auto out = OutputCapture::create(spec_.output, run_log_path(spec_, rec_.run_id), spec_.log_max_bytes,
                                   spec_.ping_url && spec_.output != OutputMode::discard ? ping::kBodyMax : 0);
  if (!out) return std::unexpected(end_error(std::move(out.error()).context("--output/--log-dir")));

  SpawnRequest req;
  req.job_name = spec_.name;
  req.argv = spec_.command;
  req.path_env = std::string(env.get("PATH").value_or(""));
  req.env = std::move(env).take();
  req.stdout_fd = out->child_stdout();
  req.stderr_fd = out->child_stderr();
  req.nice = spec_.nice;
  req.ionice = spec_.ionice;
  if (spec_.seccomp_profile) {
    req.seccomp = &*spec_.seccomp_profile;
    req.seccomp_cache_dir = paths_.runtime_dir;  // checked and made by CountersFile::create
  }
  return Prepared{std::move(req), std::move(*out), std::move(*counters), std::move(db)};
}

Step<Started> Run::start(Placed& placed, Prepared& prepared, FleetHold* fleet) {
  auto started = seams_.spawner.start(std::move(prepared.req), *placed.where, [this] { return record_started(); });
  if (!started) return std::unexpected(end_error(started.error()));
  // The job leads its own process group: what the keepalive kills without a
  // cgroup if this runner dies.
  if (fleet && fleet->keepalive)
    if (auto r = fleet->keepalive->tell_job(started->job->pid()); !r) log::warn(r.error().message());
  prepared.output.close_child_ends();
  log::run_event(log::Event::start, rec_);
  if (pinger_) pinger_->start();
  if (!started->exec_errno) rec_.start_delay_s = seconds_between(t_begin_, started->exec_at);
  return std::move(*started);
}

Collected Run::supervise_and_collect(Placed& placed, Prepared& prepared, Started& started, FleetHold* fleet) {
  SuperviseConfig cfg{spec_.timeout, spec_.kill_after, spec_.keep_orphans, &prepared.output};
  if (fleet && fleet->keepalive)
    cfg.lease = LeaseWatch{fleet->keepalive->report_fd(),
                           escalation::Lease{fleet->params.lease_ttl, fleet::kDeadlineMargin, fleet->claim.granted_sent,
                                             spec_.on_revoke == OnRevoke::term}};
  // From here to the job's end the runner only waits: what it held of its own
  // code for start-up need not stay mapped (and counted) while it does. Not at
  // once: most cron jobs that end within moments would pay the unmapping and
  // then fault the same pages back in for their finish.
  cfg.settle = SuperviseConfig::Settle{kSettleAfter, [] {
                                         if (auto r = drop_own_read_only_pages(); !r)
                                           log::info(fmt::format("supervisor footprint: {}", r.error().message()));
                                       }};
  auto outcome = supervise(*started.job, *placed.where, cfg, seams_.clock, started.spawned_at);
  rec_.wall_s = seconds_between(started.spawned_at, seams_.clock.steady());
  rec_.finished_at = now();
  if (!outcome) {
    log::error(fmt::format("supervising job '{}': {}", spec_.name, outcome.error().message()));
    rec_.status = RunStatus::error;
    return Collected{std::nullopt, started.exec_errno};
  }
  rec_.usage = placed.where->read_usage();
  if (auto n = placed.where->close(outcome->orphans_left)) note(*n);
  merge_child_usage(rec_.usage, *outcome);
  if (outcome->orphans_killed > 0)
    note(fmt::format("killed {} process(es) the job left behind when its main process exited "
                     "(--keep-orphans keeps them)",
                     outcome->orphans_killed));
  for (const auto& f : outcome->failures) note(f);
  rec_.forwarded_signal = outcome->forwarded;
  if (outcome->seccomp) {
    rec_.seccomp = seccomp::to_record(outcome->seccomp->summary, outcome->seccomp->note);
    if (outcome->seccomp->note) note(*outcome->seccomp->note);
  }
  read_counters(prepared);
  return Collected{std::move(*outcome), started.exec_errno};
}

void Run::read_counters(Prepared& prepared) {
  if (auto c = prepared.counters.read(); c) {
    rec_.counters = c->values;
    // Counters left out are a figure the record lacks: said once and in the record.
    std::vector<std::string> lost;
    if (c->invalid_lines > 0) lost.push_back(fmt::format("{} malformed line(s)", c->invalid_lines));
    if (c->over_cap > 0)
      lost.push_back(fmt::format("{} line(s) of names past the first {}", c->over_cap, kMaxCounterNames));
    if (c->truncated) lost.push_back("everything past 4 MiB");
    if (!lost.empty()) {
      std::string what = fmt::format("$CRONRUN_COUNTERS: ignored {}", fmt::join(lost, ", "));
      log::warn(what);
      note(what);
    }
  } else {
    // The job replaced its counters file (a FIFO, a symlink, a directory): the
    // run is still recorded, without the job's counters.
    std::string what = fmt::format("job counters not read: {}", c.error().message());
    log::warn(what);
    note(what);
  }
  if (!prepared.db) return;
  if (auto c = prepared.db->collect(); c) {
    for (const auto& [k, v] : *c) rec_.counters[k] = v;
  } else {
    log::warn(fmt::format("--count-db-queries: {} (DB counters left out)", c.error().message()));
    note(fmt::format("DB-query counters not read: {}", c.error().message()));
  }
}

int Run::finish(Prepared& prepared, const Collected& collected) {
  int code = collected.outcome ? settle(rec_, collected) : kExitInternal;
  // Stopped by the fleet lease's deadline: `killed`, whatever the job made of the TERM.
  if (collected.outcome && collected.outcome->lease && collected.outcome->lease->stopped_by_deadline &&
      !collected.outcome->timed_out)
    rec_.status = RunStatus::killed;
  if (auto why = seccomp::blame(rec_)) note(*why);
  if (collected.exec_errno)
    log::error(fmt::format("{}: {}", spec_.command.front(),
                           Error::sys("execve", "", *collected.exec_errno).message().substr(8)));
  prepared.output.finish(rec_.status != RunStatus::ok);
  rec_.log = prepared.output.log_record();
  rec_.output = prepared.output.output_record();
  if (auto d = log::dropped_messages(); d > 0)
    note(fmt::format("{} of cronrun's own message(s) dropped: its stderr's reader was not reading", d));
  ping_end(code, prepared.output.tail());
  record_finished();
  write_summary_file();
  log::run_event(log::Event::finish, rec_);
  if (spec_.report) std::cerr << format_report(rec_);
  return code;
}

}  // namespace

int run_job(const JobSpec& spec, const RunPaths& paths, RunSeams& seams) {
  Run run(spec, paths, seams);
  return run.execute();
}

int run_job(const JobSpec& spec) {
  SystemClock clock;
  SystemSpawner spawner(clock);
  systemd::SystemdCgroups cgroups;
  RunSeams seams{clock, spawner, cgroups, &open_journal_sink};
  RunPaths paths = resolve_run_paths(spec);
  return run_job(spec, paths, seams);
}

}  // namespace cronrun
