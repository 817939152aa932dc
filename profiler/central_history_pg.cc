// Reading the central history's rows out of PostgreSQL (common/pg_history.h) for
// the private copy (central_history.h).
#include "profiler/central_history.h"

namespace cronrun::prof {

std::expected<void, CentralError> copy_central_history(
    const std::string& uri, LocalCopy& copy,
    const std::function<void(const std::string& run_id, const Error& why)>& on_bad_row) {
  (void)copy;
  (void)on_bad_row;
  return std::unexpected(CentralError{CentralFault::other, Error("reading " + redact_uri(uri) + " is not built yet")});
}

}  // namespace cronrun::prof
