// Status against the schedule (DESIGN §12): per cronrun job found in the
// crontabs, did it run when cron should have started it? The crontab gives the
// ticks (computed in local time as Debian's cron computes them, DST included), the
// history gives the runs; each tick is matched with the first run that started in
// [tick, next tick) — on time within the grace, late after it, missed when no run
// at all (not even a skip) started and the grace has passed.
//
// Pure computation over plain values plus one streaming pass over the history
// (HistoryStore::scan, one job at a time), so memory is bounded by the ticks in the
// window, never by the number of runs. `cronprof status` (status_command.cc), the
// HTML report and the Prometheus export all call compute_status().
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"
#include "common/history.h"
#include "common/run_record.h"
#include "profiler/crontab.h"

namespace cronrun::status {

// The ticks of one entry in [from_s, to_s) (Unix seconds, ascending), as
// Debian's cron starts it in the process's local time zone (TZ), DST rules
// included (status.cc). @reboot has none.
std::vector<double> ticks_between(const crontab::Entry& entry, double from_s, double to_s);
// The first tick after `after_s`, looking at most `horizon_s` ahead.
std::optional<double> next_tick(const crontab::Entry& entry, double after_s, double horizon_s);
// The last tick before `before_s`, not earlier than `floor_s`.
std::optional<double> previous_tick(const crontab::Entry& entry, double before_s, double floor_s);

// One state per job, the most urgent that holds (in this order of urgency):
//   failing   the newest finished run that executed (skips aside) did not end ok
//   missed    the newest due tick had no run at all and its grace has passed
//             (however long ago: a weekly job's missed Saturday is missed all
//             week, whatever the window; the window only bounds the counts)
//   late      the newest due tick's run started more than the grace after the tick
//   running   a run is in progress now (its runner alive; skips it caused aside)
//   up        the newest due tick ran on time (or was skipped) and the newest
//             executed run ended ok
//   never_run the history has no run of the job and no tick has come due since
//             its crontab file was last modified
enum class JobState { failing, missed, late, running, up, never_run };
// "failing", "missed", "late", "running", "up", "never_run": stable tokens for
// JSON, Prometheus labels and CSS classes.
const char* to_string(JobState s);
// Lower is more urgent (failing first): the order tables and pages list jobs in.
int urgency(JobState s);
// Whether a Nagios-style check should alert: failing or missed.
bool alerts(JobState s);

// How the grace after a tick is chosen: a fixed duration, or a fraction of the
// gap from that tick to the next (never below kMinGraceS, since cron itself starts
// jobs a moment after the minute and a loaded host later still).
struct Grace {
  std::optional<double> fixed_s;     // set: this many seconds for every tick
  double fraction = 0.1;             // else: fraction of the tick's period
  static constexpr double kMinGraceS = 30;
  // The grace of a tick whose next tick comes `period_s` later.
  double for_period(double period_s) const;
};
// "25%" (a fraction of the period) or a duration ("10m", "90s", "1h"). Errors
// name the flag and what was expected.
Result<Grace> parse_grace(std::string_view text);

struct Options {
  double now_s = 0;          // the clock (Unix seconds): tests pass a fake one
  double window_s = 86400;   // missed/late counts cover ticks in [now - window, now]
  Grace grace;
  std::optional<std::string> job;  // only this job
  // The history read (as given): a line whose --history names another file is
  // not watched. "" when unknown: no line is left out for its --history.
  std::string history_path;
};

// Where a job's schedule comes from (one job may have several crontab lines; the
// ticks of all of them count).
struct Source {
  std::string file;
  int line = 0;
  std::string schedule;              // the time fields as written ("*/5 * * * *", "@daily")
  std::optional<std::string> user;   // system crontabs
};

struct LastRun {
  std::string run_id;
  double started_at_s = 0;           // Unix seconds
  RunStatus status = RunStatus::running;  // `lost` already applied; may be `skipped`
  std::optional<int> exit_code;
};

struct JobStatus {
  std::string job;
  std::vector<Source> sources;       // crontab order; never empty
  std::string schedule;              // sources' schedules joined with ", "
  std::string where;                 // "file:line" of the first source, " +N" when more
  JobState state = JobState::never_run;
  std::string reason;                // one line: why this state ("tick 03:00 had no run")
  std::optional<LastRun> last_run;   // newest run of any status, skips included
  std::optional<LastRun> last_executed;  // newest run that was not skipped
  std::optional<double> last_success_s;  // start of the newest `ok` run, whole history
  std::optional<double> last_tick_s;     // newest tick at or before now
  std::optional<double> next_tick_s;     // first tick after now (within a year)
  uint64_t ticks = 0;                // due ticks in the window (grace passed, or ran)
  uint64_t missed = 0;               // of those, with no run at all
  uint64_t late = 0;                 // of those, whose run started after the grace
  uint64_t skipped = 0;              // of those, whose run was a skip (counted as ran)
  std::vector<double> missed_ticks_s;  // the missed ticks themselves (Unix s), oldest first
  double grace_s = 0;                // the grace of the newest tick
};

// Matches one job's runs with its ticks. Feed add_run() the runs that started at
// or after the first tick, newest first (HistoryStore::scan order), then finish().
// Holds the tick list and the run in hand only. Exposed for the unit tests.
class TickMatcher {
 public:
  enum class Outcome { pending, on_time, late, skipped, missed };
  // `ticks` ascending; `next_tick_s` the first tick after them. Ticks before
  // `count_from_s` (those before the window, there to find the newest due tick)
  // settle and may decide the state but are not counted.
  TickMatcher(std::vector<double> ticks, double next_tick_s, double now_s, Grace grace, double count_from_s = 0);
  void add_run(const RunFigures& run);
  // A run older than the first tick: only for last run / last executed.
  void note_older_run(const RunFigures& run);
  void finish();

  uint64_t due() const { return due_; }
  uint64_t missed() const { return missed_; }
  uint64_t late() const { return late_; }
  uint64_t skipped() const { return skipped_; }
  const std::vector<double>& missed_ticks() const { return missed_ticks_; }
  // The newest tick that is settled (has a run, or its grace passed).
  std::optional<Outcome> decisive() const { return decisive_; }
  std::optional<double> decisive_tick() const { return decisive_tick_; }
  std::optional<double> decisive_grace() const { return decisive_grace_; }
  std::optional<double> decisive_start() const { return decisive_start_; }
  const std::optional<RunFigures>& last_run() const { return last_run_; }
  const std::optional<RunFigures>& last_executed() const { return last_executed_; }
  const std::optional<RunFigures>& last_finished_executed() const { return last_finished_executed_; }

 private:
  void settle(size_t index);

  std::vector<double> ticks_;
  double next_tick_;
  double now_;
  Grace grace_;
  double count_from_;
  size_t cursor_;  // ticks [cursor_, end) are settled; cursor_ - 1 is gathering runs
  bool has_earliest_ = false;
  double earliest_ = 0;
  RunStatus earliest_status_ = RunStatus::running;
  uint64_t due_ = 0, missed_ = 0, late_ = 0, skipped_ = 0;
  std::vector<double> missed_ticks_;
  std::optional<Outcome> decisive_;
  std::optional<double> decisive_tick_, decisive_grace_, decisive_start_;
  std::optional<RunFigures> last_run_, last_executed_, last_finished_executed_;
};

// An entry status leaves out, and why (a plain command, a cronrun call that does
// not parse, @reboot, runs recorded in another history).
struct Unwatched {
  std::string where;
  std::string job;    // "" when not a cronrun call
  std::string reason;
};

struct Report {
  std::vector<JobStatus> jobs;             // most urgent first, then by job name
  std::vector<Unwatched> unwatched;
  std::vector<crontab::Rejected> rejected; // as cron refuses them (whole files too)
  std::vector<std::string> notes;          // one line each (e.g. "no history at X")
  double now_s = 0;
  double window_s = 0;
  std::string timezone;                    // the zone ticks were computed in
};

// The crontabs to watch, as cron would read them. `paths` empty: the defaults
// (/etc/crontab, /etc/cron.d and the invoking user's crontab, each where
// readable; what could not be read is a note, not an error). A path given
// explicitly that cannot be read is an error naming it. `modified_at_s` holds each
// file's mtime: ticks before it are not expected (the entry did not exist).
struct Crontabs {
  crontab::Crontab crontab;
  std::map<std::string, double> modified_at_s;
  // Sources with no age at all (`crontab -l`): a job's ticks from them are
  // expected from its first recorded run on (none while it has no run).
  std::set<std::string> age_unknown;
  std::vector<std::string> notes;
};
Result<Crontabs> load_crontabs(const std::vector<std::string>& paths);

// The status of every cronrun job in `crontabs`, from `store` (nullptr: no
// history yet — every job is never_run or missed). Streams the window's runs one
// job at a time. Errors: a history query failed (store.last_fault() says why).
Result<Report> compute_status(const HistoryStore* store, const Crontabs& crontabs, const Options& options);

// What compute_status() reads of a history, for the same crontabs and options:
// the runs of the crontabs' cronrun jobs from `since_s` on (the window's start,
// or further back to a job's newest due tick) and, before it, only each job's
// newest run, newest that executed (not skipped), newest that finished executing
// and newest ok run. A central history's copy holds just these (CentralScope).
struct Reads {
  double since_s = 0;
  std::vector<std::string> jobs;  // sorted
};
Reads reads(const Crontabs& crontabs, const Options& options);

// The JSON document (schema "cronrun.status/1", timestamps as RFC 3339 UTC
// strings, counts as integers) and the human table, `width` columns wide.
nlohmann::json to_json(const Report& report);
std::string format_text(const Report& report, size_t width);

// cronprof status' exit code for a report: 0 all well (up, late, running,
// never_run), kExitStatusAlert (exit_codes.h) when any job is failing or
// missed.
int exit_code(const Report& report);

}  // namespace cronrun::status
