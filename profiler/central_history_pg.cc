// Reading the central history's rows out of PostgreSQL (common/pg_history.h) into
// the private copy (central_history.h).
#include <set>
#include <string>

#include "common/pg_history.h"
#include "profiler/central_history.h"
#include "profiler/cli_support.h"

namespace cronrun::prof {

std::expected<void, CentralError> copy_central_history(
    const std::string& uri, LocalCopy& copy,
    const std::function<void(const std::string& run_id, const Error& why)>& on_bad_row,
    const std::optional<CentralScope>& scope) {
  auto db = pg::PgHistory::open(uri);
  if (!db) return std::unexpected(CentralError{fault_of_connect_error(db.error()), db.error()});
  if (auto current = db->require_current(); !current) {
    // No schema yet (not_found) or an older one (corrupt): nothing this build can
    // read there yet; newer: refused rather than misread.
    ErrorKind k = current.error().kind();
    CentralFault f = k == ErrorKind::newer                                   ? CentralFault::newer_schema
                     : k == ErrorKind::not_found || k == ErrorKind::corrupt ? CentralFault::not_a_history
                                                                              : CentralFault::unreachable;
    return std::unexpected(CentralError{f, current.error()});
  }
  std::optional<Error> write_error;
  auto add = [&](const RunRecord& r) {
    if (write_error) return;
    if (auto w = copy.add(r); !w) write_error = w.error();
  };
  std::vector<pg::RunFilter> passes(1);
  if (scope && scope->run_or_job) {
    passes[0].run_id_prefix = scope->run_or_job;
    pg::RunFilter newest;
    newest.job = scope->run_or_job;
    newest.newest_per_job = true;
    passes.push_back(std::move(newest));
  } else if (scope) {
    if (scope->nothing) return {};
    passes[0].since_unix_s = scope->since_unix_s;
    passes[0].job = scope->job;
    passes[0].jobs = scope->jobs;
    passes[0].status = scope->status;
    auto newest_before = [&](std::optional<RunStatus> status, std::vector<RunStatus> not_statuses) {
      pg::RunFilter f;
      f.job = scope->job;
      f.jobs = scope->jobs;
      f.status = status;
      f.not_statuses = std::move(not_statuses);
      f.before_unix_s = scope->since_unix_s;
      f.newest_per_job = true;
      passes.push_back(std::move(f));
    };
    if (scope->since_unix_s && (scope->last_success_before || scope->newest_before))
      newest_before(RunStatus::ok, {});
    if (scope->since_unix_s && scope->newest_before) {
      newest_before(std::nullopt, {});
      newest_before(std::nullopt, {RunStatus::skipped});
      newest_before(std::nullopt, {RunStatus::skipped, RunStatus::running});
    }
    if (scope->last_per_host) {
      if (!scope->since_unix_s) passes.erase(passes.begin());  // no window: these alone
      auto per_host = [&](std::optional<RunStatus> status, std::vector<RunStatus> not_statuses, bool newest) {
        pg::RunFilter f;
        f.job = scope->job;
        f.status = status;
        f.not_statuses = std::move(not_statuses);
        f.newest_per_job_host = newest;
        passes.push_back(std::move(f));
      };
      per_host(std::nullopt, {RunStatus::skipped, RunStatus::running}, true);
      per_host(RunStatus::ok, {}, true);
      per_host(RunStatus::running, {}, false);
    }
  }
  // A row several passes read (each job's newest of each kind) is said once.
  std::set<std::string> bad_rows;
  auto bad = [&](const std::string& run_id, const Error& why) {
    if (on_bad_row && bad_rows.insert(run_id).second) on_bad_row(run_id, why);
  };
  for (const pg::RunFilter& f : passes) {
    auto read = db->each_run(f, add, on_bad_row ? pg::PgHistory::CorruptRowFn(bad) : pg::PgHistory::CorruptRowFn());
    if (!read) return std::unexpected(CentralError{CentralFault::unreachable, read.error()});
    if (write_error) return std::unexpected(CentralError{CentralFault::other, *write_error});
  }
  return {};
}

std::expected<std::vector<pg::StatusCount>, int> central_status_counts(const Global& g,
                                                                      const std::optional<std::string>& job) {
  auto db = pg::PgHistory::open(g.central_uri);
  if (!db) {
    print_error("--history " + g.history_label + ": " + db.error().message());
    return std::unexpected(exit_code_for(fault_of_connect_error(db.error())));
  }
  auto counts = db->status_counts(job);
  if (!counts) {
    print_error("--history " + g.history_label + ": " + counts.error().message());
    return std::unexpected(exit_code_for(CentralFault::unreachable));
  }
  return std::move(*counts);
}

}  // namespace cronrun::prof
