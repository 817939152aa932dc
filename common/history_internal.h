// Helpers shared by history*.cc; not part of the history interface.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "common/error.h"
#include "common/history.h"

namespace cronrun::history_internal {

// Owner of one prepared statement.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { reset(); }
  Result<void> prepare(sqlite3* db, const std::string& sql, const std::string& path);
  sqlite3_stmt* get() const { return st_; }
  void reset() {
    if (st_) sqlite3_finalize(st_);
    st_ = nullptr;
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

// "what: sqlite's message (sqlite CODE)".
Error sqlite_error(sqlite3* db, const std::string& what, const std::string& path);
Result<void> exec(sqlite3* db, const std::string& sql, const std::string& path, const std::string& what);

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, retrying the whole transaction on
// SQLITE_BUSY / SQLITE_LOCKED until `deadline_ms` has passed.
Result<void> write_transaction(sqlite3* db, const std::string& path, const std::function<Result<void>()>& body,
                               int deadline_ms = 30000);

// Binding of optional figures: NULL for nullopt.
inline int bind_opt(sqlite3_stmt* st, int i, const std::optional<double>& v) {
  return v ? sqlite3_bind_double(st, i, *v) : sqlite3_bind_null(st, i);
}
inline int bind_opt(sqlite3_stmt* st, int i, const std::optional<uint64_t>& v) {
  return v ? sqlite3_bind_int64(st, i, static_cast<sqlite3_int64>(*v)) : sqlite3_bind_null(st, i);
}
inline int bind_opt(sqlite3_stmt* st, int i, const std::optional<int>& v) {
  return v ? sqlite3_bind_int(st, i, *v) : sqlite3_bind_null(st, i);
}

// Reading optional columns: nullopt for NULL.
inline std::optional<double> column_double(sqlite3_stmt* st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(st, i);
}
inline std::optional<uint64_t> column_u64(sqlite3_stmt* st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
  sqlite3_int64 v = sqlite3_column_int64(st, i);
  if (v < 0) return std::nullopt;
  return static_cast<uint64_t>(v);
}
inline std::optional<int> column_int(sqlite3_stmt* st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int(st, i);
}
inline std::string column_text(sqlite3_stmt* st, int i) {
  const unsigned char* t = sqlite3_column_text(st, i);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(st, i)))
           : std::string();
}

}  // namespace cronrun::history_internal

namespace cronrun {

// The second read of rows found lost (HistoryStore::settled_figures): a read-only
// store opened after a probe's verdict, and what the history looked like then.
struct HistoryStore::Settled {
  // The journal files (inode and size; 0 when absent) when the store was opened.
  // Its queries read the database as it is now; what it merged of the journal is
  // as it was then. While the files are unchanged no FINISH came since, and its
  // answer stands for a later verdict too; otherwise it is opened again.
  struct Stamp {
    ino_t journal_ino = 0, retired_ino = 0;
    off_t journal_size = 0, retired_size = 0;
    bool operator==(const Stamp&) const = default;
  };
  static Stamp stamp_of(const std::string& history_path);
  Stamp stamp;
  HistoryStore store;
  history_internal::Stmt figures, record;
};

}  // namespace cronrun
