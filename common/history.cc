// Opening the history, its schema migrations, and the runner's writes.
//
// Concurrency: every cronrun process opens the same file. WAL lets readers run
// beside the one writer; writers take the write lock up front with BEGIN
// IMMEDIATE (a deferred transaction that upgrades later can fail with SQLITE_BUSY
// without the busy handler being consulted), wait up to the busy timeout, and the
// whole transaction is retried on BUSY until a deadline, so fifty runners
// finishing in the same second all land their rows. Creation and migration happen
// inside such a transaction too, re-reading user_version once the lock is held, so
// two first-ever runs cannot both create the tables.
//
// Durability: WAL with synchronous=NORMAL, and no checkpoint when a runner closes
// (auto-checkpoints every kWalCheckpointPages pages instead). A committed row survives any crash
// of cronrun or the job — it is in the WAL the moment COMMIT returns — and the file
// is never corrupted; only a power cut or kernel crash can roll back the last
// transactions. FULL would add two fsyncs (~8 ms measured here) to every run of
// every job for that one case, where the run is lost anyway.
//
// Readers need no root: the writer keeps the -wal and -shm files in place
// (SQLITE_FCNTL_PERSIST_WAL), created with the database file's mode, so a
// read-only connection of another user finds them instead of having to create
// them in a directory it cannot write.
//
// File descriptors: SQLite opens its files itself. Debian's 3.40 unix VFS
// (robust_open) adds O_CLOEXEC to every open when the platform defines it; the
// history unit test checks the flag on every fd of the db, -wal and -shm.
#include "common/history.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pwd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/history_internal.h"

namespace cronrun {

using history_internal::bind_opt;
using history_internal::exec;
using history_internal::sqlite_error;
using history_internal::Stmt;

namespace {

constexpr int kBusyTimeoutMs = 10000;
constexpr int kWalCheckpointPages = 64;  // see open()

// Forward-only migrations: kMigrations[i] takes a database at user_version i to
// i + 1. Never edit a shipped step; add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the runs table. `record` is the full cronrun.run/1 JSON; the other
    // columns are copies for filtering and aggregation. Times are Unix seconds.
    R"sql(
CREATE TABLE runs (
  run_id            TEXT PRIMARY KEY NOT NULL,
  job               TEXT NOT NULL,
  status            TEXT NOT NULL,
  started_at        REAL NOT NULL,
  finished_at       REAL,
  wall_s            REAL,
  exit_code         INTEGER,
  cpu_s             REAL,
  memory_peak_bytes INTEGER,
  max_rss_bytes     INTEGER,
  oom_kills         INTEGER,
  host              TEXT NOT NULL DEFAULT '',
  runner_pid        INTEGER NOT NULL DEFAULT 0,
  boot_id           TEXT NOT NULL DEFAULT '',
  record            TEXT NOT NULL
);
CREATE INDEX runs_job_started ON runs(job, started_at);
CREATE INDEX runs_started ON runs(started_at);
)sql",
    // 1 -> 2: figures `suggest`, `summary` and `export` aggregate (throttling, DB
    // counters, the limits a run had), backfilled from the JSON; an index for
    // "last success per job" and a partial one for runs in progress.
    R"sql(
ALTER TABLE runs ADD COLUMN cpu_throttled_s REAL;
ALTER TABLE runs ADD COLUMN db_queries REAL;
ALTER TABLE runs ADD COLUMN db_time_s REAL;
ALTER TABLE runs ADD COLUMN memory_max_bytes INTEGER;
ALTER TABLE runs ADD COLUMN cpu_quota_pct REAL;
ALTER TABLE runs ADD COLUMN timeout_s REAL;
UPDATE runs SET
  cpu_throttled_s  = json_extract(record, '$.usage.cpu_throttled_s'),
  db_queries       = json_extract(record, '$.counters."db.queries"'),
  db_time_s        = json_extract(record, '$.counters."db.time_s"'),
  memory_max_bytes = json_extract(record, '$.limits.memory_max_bytes'),
  cpu_quota_pct    = json_extract(record, '$.limits.cpu_quota_pct'),
  timeout_s        = json_extract(record, '$.limits.timeout_s');
CREATE INDEX runs_job_status_started ON runs(job, status, started_at);
CREATE INDEX runs_running ON runs(status) WHERE status = 'running';
)sql",
    // 2 -> 3: a covering index for window scans (summary, suggest, runs). Rows
    // carry ~1.5 KB of JSON, so reading the figures from the table means reading
    // every page of it; this index holds just the figures, newest-first order
    // included (it supersedes runs_started). Measured on 1,000,000 runs: summary
    // 2.5 s -> see bench/history_bench.sh.
    R"sql(
CREATE INDEX runs_figures ON runs(started_at, run_id, job, status, finished_at, wall_s, exit_code, cpu_s,
  memory_peak_bytes, max_rss_bytes, oom_kills, cpu_throttled_s, db_queries, db_time_s, memory_max_bytes,
  cpu_quota_pct, timeout_s, runner_pid, boot_id);
DROP INDEX runs_started;
)sql",
    // 3 -> 4: the runner's start time (clock ticks after boot), so a running row
    // whose runner pid the kernel has given to another process reads as lost. Not
    // in runs_figures: only the few `running` rows need it, by primary key.
    R"sql(
ALTER TABLE runs ADD COLUMN runner_start INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(std::size(kMigrations) == HistoryStore::kSchemaVersion);

// Read-only connections never migrate; an older file is read through a TEMP view
// that adds the newer columns (computed from the JSON, or their defaults) under
// the same names, so queries need not know.
std::string compat_view(int version) {
  std::string sql = "CREATE TEMP VIEW runs AS SELECT *";
  if (version < 2) {
    sql += R"sql(,
  json_extract(record, '$.usage.cpu_throttled_s') AS cpu_throttled_s,
  json_extract(record, '$.counters."db.queries"') AS db_queries,
  json_extract(record, '$.counters."db.time_s"') AS db_time_s,
  json_extract(record, '$.limits.memory_max_bytes') AS memory_max_bytes,
  json_extract(record, '$.limits.cpu_quota_pct') AS cpu_quota_pct,
  json_extract(record, '$.limits.timeout_s') AS timeout_s)sql";
  }
  if (version < 4) sql += ",\n  0 AS runner_start";
  return sql + "\nFROM main.runs;";
}

HistoryFault fault_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT: return HistoryFault::corrupt;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_READONLY: return HistoryFault::unreadable;
    default: return HistoryFault::other;
  }
}

// mkdir -p for the parent of `path`; only missing directories are created, with
// `mode`. Existing ones keep their permissions (an admin may have chosen them).
Result<void> make_parent_dirs(const std::string& path, mode_t mode) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return {};
  std::string dir = path.substr(0, slash);
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) return fail_sys("mkdir", prefix);
  }
  return {};
}

Result<int> read_user_version(sqlite3* db, const std::string& path, HistoryFault* fault) {
  Stmt st;
  if (auto p = st.prepare(db, "PRAGMA user_version", path); !p) {
    if (fault) *fault = fault_of(sqlite3_extended_errcode(db));
    return std::unexpected(p.error());
  }
  int rc = sqlite3_step(st.get());
  if (rc != SQLITE_ROW) {
    if (fault) *fault = fault_of(rc);
    return std::unexpected(sqlite_error(db, "reading the schema version", path));
  }
  return sqlite3_column_int(st.get(), 0);
}

Result<bool> has_table(sqlite3* db, const std::string& path, const char* name) {
  Stmt st;
  if (auto p = st.prepare(db, "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?1", path); !p)
    return std::unexpected(p.error());
  sqlite3_bind_text(st.get(), 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(sqlite_error(db, "reading the schema", path));
}

// "file:/path?immutable=1" with the path percent-encoded as RFC 3986 wants.
std::string immutable_uri(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 15];
    }
  }
  return uri + "?immutable=1";
}

Error newer_schema_error(const std::string& path, int version) {
  return Error("history " + path + " has schema version " + std::to_string(version) +
               ", newer than this build understands (" + std::to_string(HistoryStore::kSchemaVersion) +
               "); refusing to misread it — upgrade cronrun");
}

}  // namespace

// ---- RunnerProbe ----

RunnerProbe RunnerProbe::system() {
  RunnerProbe p;
  p.boot_id = current_boot_id();
  p.runner_alive = [](int64_t pid, uint64_t start) {
    if (pid <= 0) return true;
    // EPERM: the pid exists but belongs to another user (a root runner seen by a
    // non-root cronprof) — alive.
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
    if (start == 0) return true;
    auto now = process_start_ticks(pid);
    // Unreadable (hidepid hides other users' pids): the pid exists, so alive —
    // unless it exited since the kill().
    if (!now) return !(::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
    return *now == start;
  };
  return p;
}

bool RunnerProbe::gone(int64_t runner_pid, uint64_t runner_start, const std::string& row_boot_id) const {
  if (!boot_id.empty() && !row_boot_id.empty() && boot_id != row_boot_id) return true;
  if (runner_pid > 0 && runner_alive && !runner_alive(runner_pid, runner_start)) return true;
  return false;
}

// ---- open / close ----

HistoryStore::HistoryStore(sqlite3* db, std::string path, Mode mode)
    : db_(db), path_(std::move(path)), mode_(mode), probe_(RunnerProbe::system()) {}

HistoryStore::HistoryStore(HistoryStore&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      mode_(other.mode_),
      schema_version_(other.schema_version_),
      probe_(std::move(other.probe_)) {}

HistoryStore& HistoryStore::operator=(HistoryStore&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    schema_version_ = other.schema_version_;
    probe_ = std::move(other.probe_);
  }
  return *this;
}

HistoryStore::~HistoryStore() { close(); }

void HistoryStore::close() {
  if (db_) {
    // Statements are always finalized by their owners, so close cannot be busy.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

std::string HistoryStore::default_path() {
  return default_path_for(::geteuid(), std::getenv("XDG_STATE_HOME"), std::getenv("HOME"));
}

std::string HistoryStore::default_path_for(uid_t uid, const char* state_home, const char* home) {
  if (uid == 0) return "/var/lib/cronrun/history.db";
  // The XDG spec says relative values are invalid and must be ignored.
  if (state_home && state_home[0] == '/') return std::string(state_home) + "/cronrun/history.db";
  std::string home_dir = home && home[0] == '/' ? home : "";
  if (home_dir.empty()) {
    if (const passwd* pw = ::getpwuid(uid); pw && pw->pw_dir) home_dir = pw->pw_dir;
  }
  return home_dir + "/.local/state/cronrun/history.db";
}

Result<HistoryStore> HistoryStore::open(const std::string& path, Mode mode, HistoryFault* fault) {
  HistoryFault local_fault = HistoryFault::none;
  HistoryFault& why = fault ? *fault : local_fault;
  why = HistoryFault::other;
  auto context = [&](Error e) {
    return std::unexpected(std::move(e).context(std::string(mode == Mode::read_only ? "reading" : "opening") +
                                                " history " + path));
  };

  // NOMUTEX: a store is used by one thread at a time (it is an owner, not a shared
  // service); the per-call connection mutex of FULLMUTEX cost 12% of a
  // million-row scan. EXRESCODE: extended result codes tell corrupt from busy.
  int flags = SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX;
  if (mode == Mode::read_only) {
    // Say "missing" / "unreadable" plainly instead of SQLite's "unable to open".
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      why = errno == ENOENT ? HistoryFault::missing : HistoryFault::unreadable;
      return context(Error::sys("stat", path));
    }
    if (S_ISDIR(st.st_mode)) {
      why = HistoryFault::unreadable;
      return context(Error::sys("open", path, EISDIR));
    }
    if (::access(path.c_str(), R_OK) != 0) {
      why = HistoryFault::unreadable;
      return context(Error::sys("open", path));
    }
    flags |= SQLITE_OPEN_READONLY;
  } else {
    if (auto made = make_parent_dirs(path, ::geteuid() == 0 ? 0755 : 0700); !made) {
      why = HistoryFault::unreadable;
      return context(made.error());
    }
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  }

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  HistoryStore store(raw, path, mode);  // owns `raw` even when open failed
  if (rc != SQLITE_OK) {
    why = fault_of(rc);
    return context(sqlite_error(raw, "sqlite3_open_v2", path));
  }
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);

  // The first read touches the file header: a non-database fails here.
  auto version = read_user_version(raw, path, &why);
  if (!version && mode == Mode::read_only && why == HistoryFault::unreadable &&
      ::access((path + "-wal").c_str(), F_OK) != 0) {
    // No -wal file means the last connection closed cleanly and checkpointed
    // (e.g. the sqlite3 shell, which does not keep the WAL): everything is in the
    // main file, but a WAL reader that may not create -shm (a non-root user in
    // /var/lib/cronrun) cannot open it. Read it as immutable: no locks, no -shm.
    // The next cronrun recreates the persistent -wal/-shm and reads go normal.
    raw = nullptr;
    rc = sqlite3_open_v2(immutable_uri(path).c_str(), &raw, flags | SQLITE_OPEN_URI, nullptr);
    store = HistoryStore(raw, path, mode);
    if (rc != SQLITE_OK) {
      why = fault_of(rc);
      return context(sqlite_error(raw, "sqlite3_open_v2 (immutable)", path));
    }
    version = read_user_version(raw, path, &why);
  }
  if (!version) return context(version.error());
  if (*version > kSchemaVersion) {
    why = HistoryFault::newer_schema;
    return context(newer_schema_error(path, *version));
  }

  if (mode == Mode::read_only) {
    if (*version == 0) {
      auto table = has_table(raw, path, "runs");
      if (!table) return context(table.error());
      // A zero-length file is what a writer leaves between creating the file and
      // its first transaction: no runs yet. Anything else at version 0 is not ours.
      struct stat st {};
      bool empty = ::stat(path.c_str(), &st) == 0 && st.st_size == 0;
      why = empty ? HistoryFault::missing : HistoryFault::corrupt;
      return context(Error(empty ? "no runs recorded yet (empty database)"
                                 : "not a cronrun history (no schema version)"));
    }
    if (*version < kOldestSchema) {
      why = HistoryFault::corrupt;
      return context(Error("unsupported schema version " + std::to_string(*version)));
    }
    if (*version < kSchemaVersion) {
      auto v = exec(raw, compat_view(*version), path, "creating compatibility view");
      if (!v) return context(v.error());
    }
    store.schema_version_ = *version;
    why = HistoryFault::none;
    return store;
  }

  // read_write: WAL (persistent, see the top of the file), normal sync, migrate.
  for (int attempt = 0;; ++attempt) {
    auto wal = exec(raw, "PRAGMA journal_mode = WAL", path, "enabling WAL");
    if (wal) break;
    int code = sqlite3_errcode(raw);
    if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || attempt > 100) {
      why = fault_of(sqlite3_extended_errcode(raw));
      return context(wal.error());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int persist = 1;
  sqlite3_file_control(raw, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  if (auto s = exec(raw, "PRAGMA synchronous = NORMAL", path, "setting synchronous"); !s) return context(s.error());
  sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // Every runner is the first connection of its process, so SQLite rebuilds the
  // WAL index by reading every frame written since the last checkpoint. A run
  // writes ~10 pages; at the default 1000-page checkpoint interval each open read
  // ~2 MB on average (1.3 ms a run, bench/overhead.sh). At 64 pages it reads at
  // most 256 KiB, and the checkpoint (two fdatasyncs under synchronous=NORMAL)
  // comes every ~6 runs.
  sqlite3_wal_autocheckpoint(raw, kWalCheckpointPages);

  // The schema is current (the common case): no write transaction needed.
  if (*version == kSchemaVersion) {
    store.schema_version_ = kSchemaVersion;
    why = HistoryFault::none;
    return store;
  }
  int found = *version;
  auto migrated = history_internal::write_transaction(raw, path, [&]() -> Result<void> {
    auto v = read_user_version(raw, path, &why);
    if (!v) return std::unexpected(v.error());
    found = *v;
    if (found > kSchemaVersion) return std::unexpected(newer_schema_error(path, found));
    if (found == 0) {
      // A database we did not create (tables but no version) is not ours to alter.
      auto table = has_table(raw, path, "runs");
      if (!table) return std::unexpected(table.error());
      Stmt any;
      if (auto p = any.prepare(raw, "SELECT count(*) FROM main.sqlite_schema", path); !p)
        return std::unexpected(p.error());
      sqlite3_step(any.get());
      if (sqlite3_column_int(any.get(), 0) != 0)
        return std::unexpected(Error("not a cronrun history (tables present, no schema version)"));
    }
    for (int step = found; step < kSchemaVersion; ++step) {
      auto m = exec(raw, kMigrations[step], path,
                    "migrating schema " + std::to_string(step) + " -> " + std::to_string(step + 1));
      if (!m) return m;
    }
    if (found != kSchemaVersion) {
      auto set = exec(raw, "PRAGMA user_version = " + std::to_string(kSchemaVersion), path, "setting user_version");
      if (!set) return set;
    }
    return {};
  });
  if (!migrated) {
    if (found > kSchemaVersion) {
      why = HistoryFault::newer_schema;
    } else if (why == HistoryFault::other || why == HistoryFault::none) {
      int code = sqlite3_extended_errcode(raw);
      why = code == SQLITE_OK || code == SQLITE_DONE ? HistoryFault::corrupt : fault_of(code);
    }
    return context(migrated.error());
  }
  store.schema_version_ = kSchemaVersion;
  why = HistoryFault::none;
  return store;
}

// ---- writes ----

namespace {

// Columns written for every row, in bind order (?1 .. ?22).
constexpr const char* kColumns =
    "run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, "
    "max_rss_bytes, oom_kills, host, runner_pid, boot_id, record, cpu_throttled_s, db_queries, "
    "db_time_s, memory_max_bytes, cpu_quota_pct, timeout_s, runner_start";
constexpr const char* kValues = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
                                "?20, ?21, ?22";
constexpr const char* kUpdateAll =
    "job = excluded.job, status = excluded.status, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at, wall_s = excluded.wall_s, exit_code = excluded.exit_code, "
    "cpu_s = excluded.cpu_s, memory_peak_bytes = excluded.memory_peak_bytes, "
    "max_rss_bytes = excluded.max_rss_bytes, oom_kills = excluded.oom_kills, host = excluded.host, "
    "runner_pid = excluded.runner_pid, boot_id = excluded.boot_id, record = excluded.record, "
    "cpu_throttled_s = excluded.cpu_throttled_s, db_queries = excluded.db_queries, "
    "db_time_s = excluded.db_time_s, memory_max_bytes = excluded.memory_max_bytes, "
    "cpu_quota_pct = excluded.cpu_quota_pct, timeout_s = excluded.timeout_s, "
    "runner_start = excluded.runner_start";

std::optional<double> counter(const RunRecord& r, const char* name) {
  auto it = r.counters.find(name);
  if (it == r.counters.end()) return std::nullopt;
  return it->second;
}

Result<void> bind_record(sqlite3* db, sqlite3_stmt* st, const RunRecord& r, const std::string& path) {
  if (r.run_id.empty()) return fail("run record has no run_id");
  if (r.job.empty()) return fail("run record " + r.run_id + " has no job");
  auto started = parse_rfc3339(r.started_at);
  if (!started) return std::unexpected(std::move(started.error()).context("run " + r.run_id + " started_at"));
  std::optional<double> finished;
  if (r.finished_at) {
    auto f = parse_rfc3339(*r.finished_at);
    if (!f) return std::unexpected(std::move(f.error()).context("run " + r.run_id + " finished_at"));
    finished = *f;
  }
  std::optional<double> cpu;
  if (r.usage.cpu_user_s || r.usage.cpu_system_s)
    cpu = r.usage.cpu_user_s.value_or(0) + r.usage.cpu_system_s.value_or(0);
  std::string json_text = to_json(r).dump();

  int rc = SQLITE_OK;
  auto ok = [&](int v) { if (rc == SQLITE_OK) rc = v; };
  ok(sqlite3_bind_text(st, 1, r.run_id.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_text(st, 2, r.job.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_text(st, 3, to_string(r.status), -1, SQLITE_STATIC));
  ok(sqlite3_bind_double(st, 4, *started));
  ok(bind_opt(st, 5, finished));
  ok(bind_opt(st, 6, r.wall_s));
  ok(bind_opt(st, 7, r.exit_code));
  ok(bind_opt(st, 8, cpu));
  ok(bind_opt(st, 9, r.usage.memory_peak_bytes));
  ok(bind_opt(st, 10, r.usage.max_rss_bytes));
  ok(bind_opt(st, 11, r.usage.oom_kills));
  ok(sqlite3_bind_text(st, 12, r.host.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_int64(st, 13, r.runner_pid));
  ok(sqlite3_bind_text(st, 14, r.boot_id.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_text(st, 15, json_text.c_str(), static_cast<int>(json_text.size()), SQLITE_TRANSIENT));
  ok(bind_opt(st, 16, r.usage.cpu_throttled_s));
  ok(bind_opt(st, 17, counter(r, "db.queries")));
  ok(bind_opt(st, 18, counter(r, "db.time_s")));
  ok(bind_opt(st, 19, r.limits.memory_max_bytes));
  ok(bind_opt(st, 20, r.limits.cpu_quota_pct));
  ok(bind_opt(st, 21, r.limits.timeout_s));
  ok(sqlite3_bind_int64(st, 22, static_cast<int64_t>(r.runner_start)));
  if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db, "binding run " + r.run_id, path));
  return {};
}

}  // namespace

namespace {

Result<void> write_row(sqlite3* db, const std::string& path, bool read_only, const RunRecord& r,
                       const std::string& sql, const char* what) {
  if (read_only) return fail("history " + path + " is open read-only");
  auto done = history_internal::write_transaction(db, path, [&]() -> Result<void> {
    Stmt st;
    if (auto p = st.prepare(db, sql, path); !p) return std::unexpected(p.error());
    if (auto b = bind_record(db, st.get(), r, path); !b) return b;
    if (sqlite3_step(st.get()) != SQLITE_DONE) return std::unexpected(sqlite_error(db, "writing run " + r.run_id, path));
    return {};
  });
  if (!done) return std::unexpected(std::move(done.error()).context(std::string(what) + " of job '" + r.job + "'"));
  return {};
}

}  // namespace

Result<void> HistoryStore::begin_run(const RunRecord& r) {
  return write_row(db_, path_, mode_ == Mode::read_only, r,
                   std::string("INSERT INTO runs (") + kColumns + ") VALUES (" + kValues + ")", "recording the start");
}

Result<void> HistoryStore::finish_run(const RunRecord& r) {
  return write_row(db_, path_, mode_ == Mode::read_only, r,
                   std::string("INSERT INTO runs (") + kColumns + ") VALUES (" + kValues +
                       ") ON CONFLICT(run_id) DO UPDATE SET " + kUpdateAll,
                   "recording the end");
}

Result<void> HistoryStore::record(const RunRecord& r) {
  return write_row(db_, path_, mode_ == Mode::read_only, r,
                   std::string("INSERT INTO runs (") + kColumns + ") VALUES (" + kValues + ")", "recording the run");
}

// ---- shared helpers ----

namespace history_internal {

Error sqlite_error(sqlite3* db, const std::string& what, const std::string& path) {
  int code = db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM;
  const char* msg = db ? sqlite3_errmsg(db) : "out of memory";
  (void)path;
  return Error(what + ": " + msg + " (sqlite " + std::to_string(code) + ")");
}

Result<void> exec(sqlite3* db, const std::string& sql, const std::string& path, const std::string& what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return {};
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  (void)path;
  return fail(what + ": " + msg + " (sqlite " + std::to_string(sqlite3_extended_errcode(db)) + ")");
}

Result<void> Stmt::prepare(sqlite3* db, const std::string& sql, const std::string& path) {
  reset();
  int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &st_, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db, "preparing query", path));
  return {};
}

namespace {
bool is_busy(int code) { return (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED; }
}  // namespace

Result<void> write_transaction(sqlite3* db, const std::string& path, const std::function<Result<void>()>& body,
                               int deadline_ms) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::milliseconds(deadline_ms);
  auto backoff = std::chrono::milliseconds(5);
  for (;;) {
    // BEGIN IMMEDIATE waits in the busy handler (up to the busy timeout) for the
    // write lock; a BUSY that still escapes is retried here until the deadline.
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) {
      auto r = body();
      if (r) {
        rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        if (rc == SQLITE_OK) return {};
      }
      int code = sqlite3_extended_errcode(db);
      Error err = r ? sqlite_error(db, "committing", path) : r.error();
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      if (!is_busy(code) || clock::now() >= deadline) return std::unexpected(std::move(err));
    } else if (!is_busy(sqlite3_extended_errcode(db)) || clock::now() >= deadline) {
      return std::unexpected(sqlite_error(db, "starting a write transaction", path));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
}

}  // namespace history_internal

}  // namespace cronrun
