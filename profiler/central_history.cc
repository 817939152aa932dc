// The private SQLite copy of the central history (central_history.h). The copy is
// written through HistoryStore's own upsert, so its columns are exactly what a
// local history would hold for the same records, and every subcommand's queries
// and `lost` rules apply unchanged.
#include "profiler/central_history.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "common/pg_history.h"
#include "profiler/cli_support.h"
#include "profiler/exit_codes.h"

namespace cronrun::prof {

bool is_central_history_uri(std::string_view history) {
  return history.starts_with("postgresql://") || history.starts_with("postgres://");
}

std::string redact_uri(std::string_view uri) { return pg::redact_uri(std::string(uri)); }

int exit_code_for(CentralFault fault) {
  switch (fault) {
    case CentralFault::bad_uri: return kExitUsage;
    case CentralFault::unreachable: return kExitUnreadable;
    case CentralFault::not_a_history: return kExitHistoryMissing;
    case CentralFault::newer_schema: return kExitNewerSchema;
    case CentralFault::other: return kExitFailure;
  }
  return kExitFailure;
}

CentralFault fault_of_connect_error(const Error& e) {
  // libpq's words for a connection string it cannot parse (fe-connect.c); any
  // other failure to connect is the server's or the network's.
  const std::string m = e.message();
  for (const char* bad : {"invalid URI", "invalid connection option", "missing \"=\"", "invalid integer value",
                          "invalid port", "unterminated quoted string", "invalid sslmode", "end of string reached"})
    if (m.find(bad) != std::string::npos) return CentralFault::bad_uri;
  return e.kind() == ErrorKind::history ? CentralFault::unreachable : CentralFault::other;
}

RunRecord as_copied(RunRecord r) {
  r.runner_pid = 0;
  r.runner_start = 0;
  r.boot_id.clear();
  return r;
}

namespace {

// Removes the copy's files (the history and its -wal/-shm/-journal) and the
// directory. Only names this process created live there (a 0700 mkdtemp dir).
void remove_dir(const std::string& dir) {
  if (dir.empty()) return;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      ::unlinkat(::dirfd(d), name.c_str(), 0);
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

}  // namespace

Result<LocalCopy> LocalCopy::create() {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = tmp && *tmp == '/' ? tmp : "/tmp";
  std::string tmpl = base + "/cronprof-central.XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    return std::unexpected(Error::sys("mkdtemp", tmpl).context("making a private copy of the central history"));
  std::string path = tmpl + "/history.db";
  HistoryFault fault = HistoryFault::none;
  auto store = HistoryStore::open(path, HistoryStore::Mode::read_write, &fault);
  if (!store) {
    remove_dir(tmpl);
    return std::unexpected(std::move(store.error()).context("making a private copy of the central history"));
  }
  return LocalCopy(tmpl, path, std::move(*store));
}

LocalCopy::LocalCopy(LocalCopy&& other) noexcept
    : dir_(std::exchange(other.dir_, {})),
      path_(std::move(other.path_)),
      store_(std::exchange(other.store_, std::nullopt)),
      pending_(std::move(other.pending_)),
      rows_(other.rows_) {}

LocalCopy& LocalCopy::operator=(LocalCopy&& other) noexcept {
  if (this != &other) {
    remove();
    dir_ = std::exchange(other.dir_, {});
    path_ = std::move(other.path_);
    store_ = std::exchange(other.store_, std::nullopt);
    pending_ = std::move(other.pending_);
    rows_ = other.rows_;
  }
  return *this;
}

LocalCopy::~LocalCopy() { remove(); }

void LocalCopy::remove() {
  pending_.clear();
  store_.reset();
  remove_dir(dir_);
  dir_.clear();
}

Result<void> LocalCopy::close_writer() {
  if (!store_) return {};
  auto w = flush();
  store_.reset();
  return w;
}

Result<void> LocalCopy::add(const RunRecord& r) {
  if (!store_) return fail("the copy of the central history is closed");
  pending_.push_back(as_copied(r));
  if (pending_.size() >= kBatchRows) return flush();
  return {};
}

Result<void> LocalCopy::flush() {
  if (!store_) return fail("the copy of the central history is closed");
  // An upsert: a run listed twice (a replayed row) is one row here too.
  if (auto w = store_->record_all(pending_); !w) return w;
  rows_ += pending_.size();
  pending_.clear();
  return {};
}

std::expected<std::optional<LocalCopy>, int> prepare_history(Global& g, std::string_view subcommand,
                                                             const std::optional<CentralScope>& scope) {
  if (!is_central_history_uri(g.history_path)) {
    g.history_label = g.history_path;
    return std::optional<LocalCopy>();
  }
  g.history_label = redact_uri(g.history_path);
  g.central = true;
  g.central_uri = g.history_path;
  if (subcommand == "fleet") return std::optional<LocalCopy>();
  if (subcommand == "gc") {
    print_error("gc: --history " + g.history_label +
                " is the fleet's central history; gc prunes local histories only (prune PostgreSQL's runs "
                "table with SQL, see cronprof(1))");
    return std::unexpected(kExitUsage);
  }
  auto copy = LocalCopy::create();
  if (!copy) {
    print_error("--history " + g.history_label + ": " + copy.error().message());
    return std::unexpected(kExitFailure);
  }
  SkippedRows skipped;
  auto on_bad = skipped.callback();
  auto read = copy_central_history(g.history_path, *copy, on_bad, scope);
  if (!read) {
    print_error("--history " + g.history_label + ": " + read.error().error.message());
    return std::unexpected(exit_code_for(read.error().fault));
  }
  if (auto w = copy->close_writer(); !w) {
    print_error("--history " + g.history_label + ": " + w.error().message());
    return std::unexpected(kExitFailure);
  }
  skipped.report(g.history_label);
  g.history_path = copy->path();
  return std::optional<LocalCopy>(std::move(*copy));
}

}  // namespace cronrun::prof
