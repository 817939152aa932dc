// The run history: one SQLite database (DESIGN.md section 5) that every cronrun
// process writes and cronprof reads.
//
// Each run is one row: written `running` just before the job starts (begin_run)
// and completed when it ends (finish_run), each a single BEGIN IMMEDIATE transaction,
// so a row is never half-written and a crash leaves a `running` row as evidence.
// A row holds the full record JSON (the truth) plus columns copied out of it that
// queries filter and aggregate on, so `summary` over a million runs never parses
// JSON.
//
// The schema version lives in PRAGMA user_version; migrations only go forward and a
// database newer than this build is refused, never misread. Writers use WAL, a
// busy timeout and a retry loop so many cronrun processes finishing in the same
// second all land their rows.
#pragma once

#include <sqlite3.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/journal.h"
#include "common/run_record.h"

namespace cronrun {

// Why open() failed, for callers that answer each case differently (cronprof maps
// them to distinct exit codes).
enum class HistoryFault { none, missing, unreadable, newer_schema, corrupt, other };

// Which rows a query wants. Unset fields do not filter.
struct RunFilter {
  std::optional<std::string> job;
  std::optional<double> since_unix_s;   // started_at >= since
  std::optional<double> before_unix_s;  // started_at < before
  // `lost` selects running rows whose runner is gone; `running` only live ones.
  std::optional<RunStatus> status;
  std::optional<size_t> limit;          // newest first, at most this many
  bool finished_only = false;           // leave out rows still `running` (live or lost)
  // scan() only: every row of one job before the next job's, jobs in byte order of
  // their names, newest first within a job; SQLite sorts (spilling to temporary
  // files), so a caller that keeps one job at a time reads any history in bounded
  // memory (history_query.cc).
  bool by_job = false;
  // scan() only: also read each row's host into RunFigures::host (not in the
  // covering index: a table lookup per row). For a history of many hosts (the
  // central history's copy), where per-job figures are per job and host.
  bool with_host = false;
};

// The indexed columns of one row: what aggregate queries read instead of the JSON.
// Figures the run could not measure are nullopt, as in the record.
struct RunFigures {
  std::string run_id;
  std::string job;
  RunStatus status = RunStatus::running;  // `lost` already applied
  double started_at_s = 0;                 // Unix seconds
  std::optional<double> finished_at_s;
  std::optional<double> wall_s;
  std::optional<int> exit_code;
  std::optional<double> cpu_s;             // user + system
  std::optional<uint64_t> memory_peak_bytes;
  std::optional<uint64_t> max_rss_bytes;
  std::optional<uint64_t> oom_kills;
  std::optional<double> cpu_throttled_s;
  std::optional<double> db_queries;        // counters["db.queries"]
  std::optional<double> db_time_s;         // counters["db.time_s"]
  std::optional<uint64_t> memory_max_bytes;  // the limit the run had
  std::optional<double> cpu_quota_pct;
  std::optional<double> timeout_s;
  std::optional<uint64_t> pids_peak;       // usage.pids_peak
  std::optional<uint64_t> pids_max_events; // usage.pids_max_events: forks the limit refused
  std::optional<uint64_t> pids_max;        // the limit the run had
  std::string host;                        // RunFilter::with_host only; else empty
};

// Tells a live runner from a gone one. The default reads the current boot id,
// probes pids with kill(pid, 0) and compares start times from /proc/<pid>/stat;
// tests substitute their own.
struct RunnerProbe {
  std::string boot_id;  // "" = cannot tell boots apart
  // Is `pid` alive and, when `start` is known (not 0), still the process that
  // started at `start` (clock ticks after boot)?
  std::function<bool(int64_t pid, uint64_t start)> runner_alive;
  static RunnerProbe system();
  // A `running` row is lost when it was written in another boot, or its runner
  // pid no longer exists or now belongs to a process started at another time (the
  // kernel reused the pid). A pid of 0 (unknown) is never declared lost by pid.
  bool gone(int64_t runner_pid, uint64_t runner_start, const std::string& row_boot_id) const;
};

// How open() treats the files around the database.
struct HistoryOpenOptions {
  // The path is cronrun's own default location: missing parent directories are
  // created (0755 when root, 0700 otherwise). An explicit path's directory must
  // exist; a typo never creates directories.
  bool default_location = false;
  // read_write only. A damaged history (not a database, corrupt, or a -wal that
  // fails its header/checksum checks or lost committed frames) is moved aside to
  // NAME.damaged-<UTC>{,-wal,-shm} and a new history started; damage_note() says
  // so. Without this, damage is an error (HistoryFault::corrupt). A file that does
  // not look like a history at all (no SQLite header, no -wal/-shm beside it, not
  // the default location) is never moved: it is an error either way.
  bool move_damaged_aside = false;
  // The run journal beside the history (`<path>.journal`, common/journal.h):
  // `use` folds it on a read_write open (waiting for a fold in progress) and, on a
  // read_only open, merges its unfolded tail in memory (TEMP table shadowed by a
  // TEMP view named `runs`, so every query sees every run). `ignore` leaves it
  // alone (the fold itself opens this way).
  enum class Journal { use, ignore };
  Journal journal = Journal::use;
};

// What one fold did.
struct FoldReport {
  uint64_t records = 0;             // journal records applied
  uint64_t damaged = 0;             // stretches of the journal skipped as damaged
  std::vector<std::string> notes;   // damage, a torn last record, a lost generation: one line each
  bool busy = false;                // another fold held the journal lock (non-blocking fold only)
  bool rotated = false;             // the folded journal was replaced by a fresh one
};

// Move-only owner of one SQLite connection. Not thread-safe: use one store per
// thread (each cronrun / cronprof process has exactly one).
class HistoryStore {
 public:
  enum class Mode { read_write, read_only };
  // The schema this build writes and reads; kOldestSchema is the oldest it migrates.
  static constexpr int kSchemaVersion = 7;
  static constexpr int kOldestSchema = 1;

  // read_write: creates the db (its directory only for opts.default_location),
  // sets WAL and the busy timeout, migrates forward; a history it could not write
  // (file, -wal, -shm or directory) is an error here, not at the first write.
  // read_only: never creates or migrates; an older schema is read through
  // compatibility views. Both refuse a newer schema, a db/-wal/-shm that is a
  // symlink or not a regular file (never followed, never opened: a FIFO would
  // block), and a damaged -wal (SQLite would silently ignore it and show an older
  // history). On failure `fault` (if given) says which kind it was.
  static Result<HistoryStore> open(const std::string& path, Mode mode, HistoryFault* fault = nullptr,
                                   const HistoryOpenOptions& opts = {});
  // Damaged histories moved aside from `path` (NAME.damaged-<UTC>, without the
  // -wal/-shm suffixes), oldest first; empty when none.
  static std::vector<std::string> damaged_copies(const std::string& path);
  // /var/lib/cronrun/history.db for root, else $XDG_STATE_HOME/cronrun/history.db
  // (default ~/.local/state/cronrun/history.db).
  static std::string default_path();
  // The same for another user: `state_home` and `home` as that user's environment
  // would have them (nullptr: unset; HOME unset means the passwd home of `uid`).
  static std::string default_path_for(uid_t uid, const char* state_home, const char* home);

  HistoryStore(HistoryStore&& other) noexcept;
  HistoryStore& operator=(HistoryStore&& other) noexcept;
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;
  ~HistoryStore();

  // Folds the run journal into this (read_write) history: every record past this
  // history's cursor, in order, idempotently (the run id is the key: a start never
  // regresses a finished row, a finish completes or inserts it), each batch of rows
  // committed in one transaction with the cursor (journal generation + offset), so
  // a fold killed at any instant loses and duplicates nothing. A fully folded
  // journal past journal::kFoldThresholdBytes is rotated (see journal.h). Folds
  // exclude each other with flock(2) on the journal: `wait_for_lock` false returns
  // at once with report.busy when another fold is running.
  Result<FoldReport> fold_journal(bool wait_for_lock);
  // Opens `history_path` read_write (journal ignored), folds, closes. For the
  // runner's threshold fold and `cronrun --flush`.
  static Result<FoldReport> fold(const std::string& history_path, bool wait_for_lock, const HistoryOpenOptions& opts = {});
  // The consumer name of this history's cursor in the journal_cursors table; other
  // consumers (the fleet forwarder) keep their own row there, and the journal is
  // rotated only when every consumer has read it to the end.
  static constexpr const char* kJournalConsumer = "history";
  // A consumer of the journal other than this history's own fold (the fleet
  // forwarder, runner/forward.h), with its own row in journal_cursors: hands the
  // records past its cursor to `sink` in order, at most `batch_records` at a time,
  // and moves the cursor after each call that succeeded (a crash between the two
  // hands the same records again: the sink must be idempotent, and records may
  // come twice anyway, see journal.h). A sink error stops the pass, the cursor
  // where it was; it is returned as is. While the cursor is behind, the fold does
  // not rotate the journal (nor remove a retired one this consumer still reads).
  // No cursor yet: from the start of the retired journal, if any, then the
  // journal. Takes the fold lock only to choose the files, never during the sink.
  // Consumers of one name must exclude each other (the caller's lock).
  // Gives `consumer` its row in journal_cursors if it has none (at the start of the
  // retired journal, if any, else of the journal), under the fold lock, so the
  // fold keeps what it has not read from then on even before its first pass
  // succeeds (the forwarder calls it before it contacts PostgreSQL).
  // consume_journal registers the same way.
  Result<void> register_journal_consumer(const std::string& consumer);
  using JournalSink = std::function<Result<void>(std::span<const journal::Entry>)>;
  Result<FoldReport> consume_journal(const std::string& consumer, size_t batch_records, const JournalSink& sink);
  // What open() found in the journal: the fold's report (read_write) or, for
  // read_only, the records merged and damage seen. Notes are one line each.
  const FoldReport& journal_report() const { return journal_report_; }

  const std::string& path() const { return path_; }
  // The schema version found on disk (after migration in read_write mode).
  int schema_version() const { return schema_version_; }
  // Set when open() moved a damaged history aside and started this one: what was
  // wrong and where the damaged files are now (one line).
  const std::optional<std::string>& damage_note() const { return damage_note_; }

  // ---- the runner's writes (read_write only) ----
  // Inserts the `running` row before the job starts; a duplicate run_id is an
  // error. Waits for another writer's lock at most the busy timeout (the caller
  // has not started the job yet, so it can still refuse to).
  Result<void> begin_run(const RunRecord& r);
  // Completes the row of r.run_id in one transaction (inserts it if begin_run
  // never landed, so the final record is never lost). Waits for the write lock
  // longer than begin_run: the job has ended, the record is all that is left.
  Result<void> finish_run(const RunRecord& r);
  // Inserts a complete row (skipped runs, imports).
  Result<void> record(const RunRecord& r);
  // Inserts or replaces (by run id, as finish_run does) every record, in one
  // transaction: a copy of another history, many rows at a time.
  Result<void> record_all(std::span<const RunRecord> records);

  // ---- queries (cronprof) ----
  // Full records, newest first. `running` rows whose runner is gone read as `lost`.
  Result<std::vector<RunRecord>> runs(const RunFilter& filter) const;
  // The same, one record at a time (export of a large history).
  Result<void> each_run(const RunFilter& filter, const std::function<void(const RunRecord&)>& fn) const;
  // Streams the indexed columns of matching rows (no JSON parsing), newest first
  // when filter.limit is set, in storage order otherwise. `lost` applied.
  Result<void> scan(const RunFilter& filter, const std::function<void(const RunFigures&)>& fn) const;
  // A row that cannot be read (record not JSON, unknown status, ...): its run id
  // and why. each_run / scan given one skip such rows, tell it, and go on with the
  // rest; without one (the overloads above) the first such row fails the query.
  using CorruptRowFn = std::function<void(const std::string& run_id, const Error& why)>;
  Result<void> each_run(const RunFilter& filter, const std::function<void(const RunRecord&)>& fn,
                        const CorruptRowFn& on_corrupt) const;
  Result<void> scan(const RunFilter& filter, const std::function<void(const RunFigures&)>& fn,
                    const CorruptRowFn& on_corrupt) const;
  // Number of rows matching (status filter by stored status; running/lost split
  // needs the probe and is counted row by row).
  Result<uint64_t> count(const RunFilter& filter) const;
  // The run with this id, or the only one whose id starts with `prefix` (>= 4
  // chars); nullopt when none. Several matches are an error listing the count.
  Result<std::optional<RunRecord>> find_run(std::string_view id_or_prefix) const;
  // The newest run of `job`, nullopt when the job has none.
  Result<std::optional<RunRecord>> latest_run(std::string_view job) const;
  // Start time (Unix s) of each job's newest `ok` run, over the whole history.
  Result<std::map<std::string, double>> last_success_by_job() const;
  // Every job name in the history, sorted.
  Result<std::vector<std::string>> jobs() const;
  // Per job, how many rows have each status (`running` split into running/lost).
  Result<std::map<std::string, std::map<RunStatus, uint64_t>>> status_counts() const;
  // Runs in progress now: `running` rows whose runner is alive.
  Result<std::vector<RunRecord>> in_progress() const;
  // Per job, how many rows of each status retention has deleted over the life of
  // this history (removed_runs); empty for a history older than schema 6. Added to
  // status_counts() it is every run ever recorded, a count that never decreases.
  Result<std::map<std::string, std::map<RunStatus, uint64_t>>> removed_counts() const;
  // Retention: deletes, in one transaction, finished (and lost) runs that started
  // before `cutoff_unix_s`, adding them to removed_counts() in the same
  // transaction. Live running rows are kept. Returns rows deleted. `dry_run`
  // counts them instead, and on a read-only open too.
  Result<uint64_t> delete_before(double cutoff_unix_s, bool dry_run = false);

  // scan() reading only what per-job summaries aggregate: job, status,
  // started_at, wall_s, cpu_s, memory_peak_bytes, oom_kills, cpu_throttled_s,
  // db_queries (the other fields are empty). Fewer columns decoded per row is
  // what keeps `cronprof summary` fast on a large window (bench/history_1m.sh).
  Result<void> scan_summary(const RunFilter& filter, const std::function<void(const RunFigures&)>& fn,
                            const CorruptRowFn& on_corrupt) const;
  // Runs `body` inside one read transaction, so the queries it makes see the same
  // history even while runners write (a listing read twice: widths, then rows).
  Result<void> read_snapshot(const std::function<Result<void>()>& body) const;

  // What kind of failure the last failed query was (corrupt row, unreadable
  // file, ...), for callers that map it to an exit code.
  HistoryFault last_fault() const { return last_fault_; }

  // Test seam: how `running` rows are told apart from `lost` ones.
  void set_runner_probe(RunnerProbe probe) { probe_ = std::move(probe); }

 private:
  // A `running` row whose runner the probe finds gone is read again before it is
  // called lost: the row was read before the verdict, and a runner that finished
  // in between appended its FINISH (and a fold may have moved it into the
  // database) before it exited. The second read is a store opened after the
  // verdict, kept for the next ones while the journal and the database are as
  // they were when it was opened (history_query.cc).
  struct Settled;
  // The row `run_id` as that second read has it, when it is no longer `running`
  // there (nullopt: it still is, the run is lost).
  Result<std::optional<RunFigures>> settled_figures(const std::string& run_id) const;
  Result<std::optional<RunRecord>> settled_record(const std::string& run_id) const;
  Result<Settled*> settled() const;
  // A `running` record whose runner is gone: the settled record, or `lost`.
  Result<void> apply_probe(RunRecord& r) const;
  HistoryStore(sqlite3* db, std::string path, Mode mode);
  void close();
  // Notes this store's database (by inode) as open in this process, so a later
  // open() of the same file does not probe it with fds of its own: closing any fd
  // of a file drops every POSIX lock the process holds on it, SQLite's included.
  void register_open(dev_t dev, ino_t ino);
  // read_only: loads the journal's unfolded records into temp.journal_runs and
  // shadows `runs` with a TEMP view over both (only when there are any).
  Result<void> merge_journal();
  // Builds the error of a failed query and records its fault kind.
  Error query_error(const std::string& what) const;

  sqlite3* db_ = nullptr;
  std::string path_;
  Mode mode_ = Mode::read_only;
  int schema_version_ = 0;
  RunnerProbe probe_;
  mutable HistoryFault last_fault_ = HistoryFault::none;
  std::optional<std::string> damage_note_;
  std::optional<std::pair<dev_t, ino_t>> registered_;
  FoldReport journal_report_;
  HistoryOpenOptions::Journal journal_ = HistoryOpenOptions::Journal::use;  // as opened
  bool second_read_ = false;  // this store is a Settled's: its lost rows are final
  mutable std::unique_ptr<Settled> settled_;
};

}  // namespace cronrun
