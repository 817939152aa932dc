// `cronprof --history postgresql://...`: every subcommand reads the fleet's central
// history (DESIGN.md section 10) the way it reads a local one. The rows are copied
// out of PostgreSQL into a private SQLite history (a fresh 0700 directory under
// $TMPDIR, removed when cronprof exits) and the subcommand runs its usual code on
// that copy, so `runs`, `summary`, `export`, ... never grow a second query path.
//
// The copy keeps what the central history says: a row's status column (the
// forwarder's `running` / `lost` / finished status) wins over the status inside its
// record JSON, and the runner's pid and boot id are left out, because they belong
// to another host: this host's process table cannot tell whether that runner lives.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/history.h"
#include "common/pg_history.h"
#include "profiler/command.h"

namespace cronrun::prof {

// "postgresql://..." or "postgres://..." (libpq's two URI schemes).
bool is_central_history_uri(std::string_view history);
// The URI as messages may show it: a password (user:PASSWORD@, ?password=...) is
// replaced by "***".
std::string redact_uri(std::string_view uri);

// A private SQLite history holding a copy of central rows. Move-only; the
// directory and everything in it are removed by the destructor.
class LocalCopy {
 public:
  // Makes the directory (mkdtemp, 0700, under $TMPDIR or /tmp) and an empty
  // history in it.
  static Result<LocalCopy> create();
  LocalCopy(LocalCopy&& other) noexcept;
  LocalCopy& operator=(LocalCopy&& other) noexcept;
  LocalCopy(const LocalCopy&) = delete;
  LocalCopy& operator=(const LocalCopy&) = delete;
  ~LocalCopy();

  // Adds one run of the central history (its status and host as the central row
  // has them; see as_copied()). A replayed run stays one row (upsert). Rows are
  // written kBatchRows at a time, one transaction each (a transaction per row
  // was most of the copy's time); flush() writes the rest.
  Result<void> add(const RunRecord& r);
  Result<void> flush();
  // Flushes and closes the writing connection: the subcommand opens the copy
  // itself.
  Result<void> close_writer();
  static constexpr size_t kBatchRows = 2000;
  const std::string& path() const { return path_; }
  uint64_t rows() const { return rows_; }

 private:
  LocalCopy(std::string dir, std::string path, HistoryStore store)
      : dir_(std::move(dir)), path_(std::move(path)), store_(std::move(store)) {}
  void remove();
  std::string dir_;
  std::string path_;
  std::optional<HistoryStore> store_;
  std::vector<RunRecord> pending_;
  uint64_t rows_ = 0;
};

// `r` as the copy keeps it: without its runner's pid, start time and boot id,
// which belong to its host (probed here they would say nothing true; the
// forwarder marks a vanished run `lost` in the central history itself).
RunRecord as_copied(RunRecord r);

// How --history postgresql:// failed, for the exit code (profiler/exit_codes.h):
// 2 a URI libpq cannot parse, 4 no connection (refused, timeout, authentication),
// 3 no cronrun schema there (or an older one: a forwarder migrates it), 5 newer.
enum class CentralFault { bad_uri, unreachable, not_a_history, newer_schema, other };
// The fault of a failed PgHistory::open.
CentralFault fault_of_connect_error(const Error& e);
struct CentralError {
  CentralFault fault = CentralFault::other;
  Error error;
};
int exit_code_for(CentralFault fault);

// main()'s branch for --history: when g.history_path is a central history URI,
// copies its rows (a one-line error naming --history and the exit code when it
// cannot) and points g.history_path at the copy, g.history_label at the URI.
// `subcommand` is the selected one: `gc` is refused on a central history (its
// retention is the database's, see cronprof(1)) and `fleet` reads PostgreSQL
// itself (no copy). Without a URI: nothing to copy, g.history_label = the path.
// `scope`: the rows the subcommand reads (command.h); nullopt: all of them.
std::expected<std::optional<LocalCopy>, int> prepare_history(Global& g, std::string_view subcommand,
                                                             const std::optional<CentralScope>& scope = std::nullopt);

// Reads the rows of the central history at `uri` that `scope` names (every row
// without one) into `copy` (common/pg_history.h; the schema must be this build's).
// Rows that cannot be read are passed to `on_bad_row` (run id, why) and left out.
std::expected<void, CentralError> copy_central_history(
    const std::string& uri, LocalCopy& copy,
    const std::function<void(const std::string& run_id, const Error& why)>& on_bad_row,
    const std::optional<CentralScope>& scope = std::nullopt);

// The central history's rows counted by job, host and status (of `job` alone when
// given), from the database itself: export --format prometheus' all-time counters,
// whose copy holds only each job's newest runs (CentralScope::last_per_host).
// Prints the one-line error naming --history and returns the exit code when it cannot.
std::expected<std::vector<pg::StatusCount>, int> central_status_counts(const Global& g,
                                                                      const std::optional<std::string>& job);

}  // namespace cronrun::prof
