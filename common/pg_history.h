// The fleet's central history on PostgreSQL (DESIGN.md section 10,
// docs/fleet-design.md): the table every host's forwarder (runner/forward.h) sends
// its run journal to, and that `cronprof --history postgresql://...` reads.
//
// libpq is opened with dlopen (`libpq.so.5`, common/dynlib.h) by the processes that
// talk to the database: the runner never loads it, a host without fleet history
// never needs it installed.
//
// Schema (all objects in the schema `cronrun`, version in cronrun.cronrun_meta,
// forward-only migrations by migrate(); a database newer than this build is
// refused, ErrorKind::newer, never written or misread):
//   runs(run_id PK, job, host, tick, fence, status, started_at, finished_at, wall_s,
//        exit_code, record jsonb, updated_at), unique (job, tick) where fence is not
//        null: one row per claimed tick.
//   job_fences(job PK, fence, host, tick): the newest (highest) fence seen per job.
//   dead_letters(id, host, run_id, received_at, reason, payload): records set aside.
//   hosts(host PK, last_seen): when each host's forwarder last delivered a batch.
//
// Writes go through one server-side function, cronrun.put_batch(host, records):
// one round trip per batch, with the outcomes of applying its records in order.
// Since schema 2 a batch of 16 records or more is applied by one set-based
// statement (common/pg_schema.h); a batch holding a record the database rejects
// for its content falls back to one subtransaction per record, so that record
// becomes a dead letter and the rest of the batch is stored. Rules per record:
//   - idempotent: the run id is the key. A start inserts the `running` row unless the
//     run is there already (a start never regresses a finished or lost row); a
//     finish completes the row or inserts it. A replayed batch changes nothing
//     (outcome `unchanged`; a replayed dead letter is not stored twice).
//   - fenced, per claimed tick: a new row whose (job, tick) is already held by a row
//     with a higher or equal fence is refused (`refused`, dead letter "stale fence");
//     one with a higher fence than the row holding its tick replaces it (the old row
//     goes to the dead letters, "stale fence"). The fence is compared per tick, not
//     per job: hosts forward independently and out of order, so a run of an earlier
//     tick with a lower fence arriving after a later holder's is legitimate, not
//     stale (see docs/contract-changes.md).
//   - `lost` (mark_lost) is a status a later finish still completes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/run_record.h"

namespace cronrun::pg {

// The schema this build writes and reads (2: put_batch set-based; a database
// of schema 1 is migrated by the first forwarder of this build).
inline constexpr int kSchemaVersion = 2;

// One journal record to store: its kind and the run record as JSON (to_json of
// the record, with its `fleet` object: {group, host, tick, fence, ...}), one line.
struct BatchRecord {
  enum class Kind { start, finish };
  Kind kind = Kind::finish;
  std::string record_json;
};

// What became of one record of a batch.
struct RecordOutcome {
  enum class Kind {
    stored,     // inserted or changed a row
    unchanged,  // already there as it is (a replay, or a start after its finish)
    refused,    // stale fence: kept as a dead letter
    dead,       // the database rejected its content: kept as a dead letter
  };
  Kind kind = Kind::stored;
  std::string detail;  // refused / dead: why (one line)
};
const char* to_string(RecordOutcome::Kind k);

// Which rows each_run() yields. Unset fields do not filter.
struct RunFilter {
  std::optional<std::string> job;
  std::optional<std::vector<std::string>> jobs;  // one of these
  std::optional<std::string> run_id_prefix;      // run_id starts with this
  std::optional<std::string> host;
  std::optional<double> since_unix_s;   // started_at >= since
  std::optional<double> before_unix_s;  // started_at < before
  std::optional<RunStatus> status;      // as stored (`lost` is a stored status here)
  std::vector<RunStatus> not_statuses;  // none of these (as stored)
  std::optional<size_t> limit;          // newest first, at most this many
  bool newest_per_job = false;          // only each job's newest matching run (by job, then newest)
  bool newest_per_job_host = false;     // only the newest matching run of each job on each host
};

struct DeadLetter {
  int64_t id = 0;
  std::string host;                   // the forwarding host
  std::optional<std::string> run_id;  // null when the record had none readable
  double received_at_s = 0;           // Unix seconds (database clock)
  std::string reason;
  std::string payload;                // the record as sent ({"type":..,"record":..})
};

struct HostSeen {
  std::string host;
  double last_seen_s = 0;  // Unix seconds (database clock)
};

// A `running` row of a claimed run (fence not null): what lost marking checks.
struct RunningRow {
  std::string run_id;
  std::string job;
  std::string host;
  int64_t fence = 0;
  std::optional<std::string> tick;  // RFC 3339
  double started_at_s = 0;
  double age_s = 0;  // since the row was last written, by the database's clock
};

// How many rows of a job on a host have a status.
struct StatusCount {
  std::string job;
  std::string host;
  RunStatus status = RunStatus::ok;
  uint64_t runs = 0;
};

struct JobFence {
  std::string job;
  int64_t fence = 0;
  std::string host;
  std::optional<std::string> tick;  // RFC 3339
};

// One connection. Move-only, not thread-safe. Every call is one or a few round
// trips; a connection that broke (server restarted) is an error of that call
// (ErrorKind::history, message from libpq, one line); open a new one to retry.
class PgHistory {
 public:
  // Loads libpq (an error names libpq.so.5 when missing) and connects to `uri`
  // (postgresql://... or a libpq key=value string), with a connect timeout unless
  // the URI sets one. Does not check or create the schema. Errors never contain
  // the URI's password.
  static Result<PgHistory> open(const std::string& uri);
  PgHistory(PgHistory&&) noexcept;
  PgHistory& operator=(PgHistory&&) noexcept;
  ~PgHistory();

  // Writers (the forwarder): creates the schema or migrates it forward to
  // kSchemaVersion, each step in one transaction under an advisory lock (forwarders
  // of many hosts starting at once). A newer database: ErrorKind::newer, naming
  // both versions. A role without the right to migrate: the error says so.
  Result<void> migrate();
  // Readers (cronprof): the schema must be exactly this build's; missing, older
  // (ErrorKind::corrupt: run a forwarder / `cronrun --flush` to migrate) or newer
  // (ErrorKind::newer) is an error.
  Result<void> require_current();
  // The version on the server, 0 when there is no schema yet.
  Result<int> schema_version();

  // Stores `records` in order for the forwarding `host` (hosts.last_seen is set to
  // now, also for an empty batch) in one transaction and one round trip; returns one
  // outcome per record, in order. An error means nothing of the batch was
  // committed (or, when the connection broke at commit, that it may have been:
  // replaying it is harmless).
  Result<std::vector<RecordOutcome>> put_batch(const std::string& host, const std::vector<BatchRecord>& records);

  // Turns the `running` row `run_id` with fence `fence` to `lost` (the row's record
  // status too, with `note` in record.fleet.note). False when the row is not
  // running with that fence (finished meanwhile, or another run). A finish
  // arriving later still completes it.
  Result<bool> mark_lost(const std::string& run_id, int64_t fence, const std::string& note);

  // ---- reads (cronprof, lost marking) ----
  // Full records, newest first, one at a time (streamed in chunks, bounded
  // memory). record.host is the row's host, record.status the row's status
  // (`lost` included). A row whose record does not parse is given to on_corrupt
  // (when set; otherwise it fails the query).
  using CorruptRowFn = std::function<void(const std::string& run_id, const Error& why)>;
  Result<void> each_run(const RunFilter& filter, const std::function<void(const RunRecord&)>& fn,
                        const CorruptRowFn& on_corrupt = {});
  // Newest first; `limit` unset = all.
  Result<std::vector<DeadLetter>> dead_letters(std::optional<size_t> limit = std::nullopt);
  Result<uint64_t> dead_letter_count();
  // Every host that ever forwarded, with when it was last heard from.
  Result<std::vector<HostSeen>> hosts_last_seen();
  // `running` rows with a fence, oldest first.
  Result<std::vector<RunningRow>> running_rows();
  Result<std::vector<JobFence>> job_fences();
  // The rows by job, host and status (of `job` alone when given). A status this
  // build does not know is left out.
  Result<std::vector<StatusCount>> status_counts(const std::optional<std::string>& job = std::nullopt);

 private:
  struct Impl;
  explicit PgHistory(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One row of the runs table as each_run() yields it: the `record` column (JSON
// that any host's forwarder wrote) read as a run record whose status and host are
// the row's `status` and `host` columns (the forwarder's `running` / `lost` win).
// A record without run_id or job, or whose started_at / finished_at is not RFC
// 3339, is an error: no history can hold it. Pure, no database: also the fuzzer's entry (tests/fuzz/central_row_fuzz.cc).
Result<RunRecord> run_from_row(const std::string& host, const std::string& status, const std::string& record_json);

// `uri` with any password (userinfo or `password=` parameter) replaced by "***",
// for messages and logs.
std::string redact_uri(const std::string& uri);
// `text` (a libpq message about `uri`) with the URI's password hidden wherever it
// appears, as written or percent-decoded, and any URI in it redacted: libpq
// quotes a URI it cannot parse, and a bad %-token of the password, verbatim.
std::string redact_secrets(std::string text, const std::string& uri);

}  // namespace cronrun::pg
