// Reading the central history's rows out of PostgreSQL (common/pg_history.h) into
// the private copy (central_history.h).
#include "common/pg_history.h"
#include "profiler/central_history.h"

namespace cronrun::prof {

std::expected<void, CentralError> copy_central_history(
    const std::string& uri, LocalCopy& copy,
    const std::function<void(const std::string& run_id, const Error& why)>& on_bad_row) {
  auto db = pg::PgHistory::open(uri);
  if (!db) return std::unexpected(CentralError{fault_of_connect_error(db.error()), db.error()});
  if (auto current = db->require_current(); !current) {
    CentralFault f = current.error().kind() == ErrorKind::newer     ? CentralFault::newer_schema
                     : current.error().kind() == ErrorKind::corrupt ? CentralFault::not_a_history
                                                                    : CentralFault::unreachable;
    return std::unexpected(CentralError{f, current.error()});
  }
  std::optional<Error> write_error;
  auto read = db->each_run(
      pg::RunFilter{},
      [&](const RunRecord& r) {
        if (write_error) return;
        if (auto w = copy.add(r); !w) write_error = w.error();
      },
      on_bad_row);
  if (!read) return std::unexpected(CentralError{CentralFault::unreachable, read.error()});
  if (write_error) return std::unexpected(CentralError{CentralFault::other, *write_error});
  return {};
}

}  // namespace cronrun::prof
