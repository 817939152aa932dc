// The fleet forwarder (DESIGN.md section 10, docs/fleet-design.md): sends the
// fleet runs of this host's run journal to the central history on PostgreSQL
// (common/pg_history.h), then turns runs whose holder vanished to `lost`.
//
// A journal consumer named "fleet" with its own cursor in the local history's
// journal_cursors (HistoryStore::consume_journal): records are read in order and
// sent in batches (one round trip each); the cursor moves only after PostgreSQL
// committed the batch, so a crash between the two sends the batch again, which
// the database's idempotent upsert absorbs. The fold does not rotate the journal
// past records the forwarder has not sent, so a database that is away for a while
// costs disk, not records. Only records with a `fleet` object are sent: local
// runs of a fleet host stay local.
//
// One forwarder per journal: flock(2) on `<history>.journal.forward-lock` beside
// the history (opened relative to its directory, O_NOFOLLOW, regular file).
//
// Lost marking, after the batches: a `running` row (any host's) with a fence, not
// written for longer than the lease TTL, whose etcd lock `<prefix>/locks/<job>`
// is missing or has another create_revision than the row's fence, is turned
// `lost`; a finish that arrives later still completes it. etcd unavailable: the
// marking is skipped (a note), the forwarding stands.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "runner/fleet_config.h"

namespace cronrun::forward {

// The cursor row of the forwarder in journal_cursors.
inline constexpr const char* kConsumer = "fleet";
inline constexpr size_t kDefaultBatchRecords = 500;

// What a lost-marking check asks etcd: the create_revision of the lock key of
// `job`, nullopt when there is no lock. A seam for tests; the default asks the
// endpoints of the options.
using LockRevisionFn = std::function<Result<std::optional<int64_t>>(const std::string& job)>;

struct Options {
  std::string history_path;  // the local SQLite history; its journal is beside it
  std::string pg_uri;        // the fleet config's `history`
  std::string host;          // this host's fleet name (hosts.last_seen)
  // etcd, for lost marking; no endpoints: no marking.
  std::vector<std::string> etcd_endpoints;
  etcd::Tls etcd_tls;
  std::string prefix = "/cronrun";
  std::chrono::seconds lease_ttl{15};
  size_t batch_records = kDefaultBatchRecords;
  // Wait for another forwarder of this journal to finish (cronrun --flush) rather
  // than leave at once (the forwarder started after a run).
  bool wait_for_lock = false;
  LockRevisionFn lock_revision;  // test seam; unset = etcd
};

struct Report {
  bool busy = false;          // another forwarder holds the journal: nothing done
  uint64_t read = 0;          // journal records read past the cursor
  uint64_t sent = 0;          // of them, fleet records sent
  uint64_t batches = 0;
  uint64_t stored = 0, unchanged = 0, refused = 0, dead = 0;
  uint64_t marked_lost = 0;
  std::vector<std::string> notes;  // damage in the journal, skipped lost marking, ...: one line each
};

// The options for this host's journal beside `history_path` from its fleet config
// (etcd endpoints, prefix, lease TTL, host, `history`); nullopt when the config has
// no `history` (no central history: nothing to forward).
std::optional<Options> options_for(const fleet::Config& config, const std::string& history_path);

// One pass: lock, migrate the database schema, send everything past the cursor,
// mark lost rows. The database away (or refusing the batch as a whole): the error,
// one line naming the database (password redacted), with the cursor after the
// last batch it committed; the next pass resumes there.
Result<Report> forward(const Options& opts);

// One line for `cronrun --flush` and the log: "forwarded N record(s) to URI: ...".
std::string describe(const Report& r, const std::string& pg_uri);

// Starts forward(opts) in a detached process (double fork, setsid, stdio on
// /dev/null, every other fd closed, name "cronrun-forward") and returns at once
// with its pid; its errors and notes go to the journal / syslog through the log
// module. The intermediate child is reaped here: nothing is left for the caller
// to wait for. For the runner after a fleet run.
Result<pid_t> spawn_forwarder(const Options& opts);

}  // namespace cronrun::forward
