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
// Damage: SQLite reads a WAL with a bad header as empty and stops at the first
// frame that fails its checksum, without a word; a history is checked for that
// before it is opened (wal_damage) and, for the runner, moved aside and replaced
// rather than carried on as an older or empty one.
//
// File descriptors: SQLite opens its files itself. Debian's 3.40 unix VFS
// (robust_open) adds O_CLOEXEC to every open when the platform defines it; the
// history unit test checks the flag on every fd of the db, -wal and -shm.
#include "common/history.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pwd.h>
#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/history_internal.h"
#include "common/job_paths.h"
#include "common/journal.h"
#include "common/safe_file.h"

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
    // 4 -> 5: where each consumer of the run journal (common/journal.h) has read
    // to: the journal file's generation id and the offset just past the last
    // record it applied. The history's own fold is consumer 'history'; its cursor
    // moves in the same transaction as the rows it folded.
    R"sql(
CREATE TABLE journal_cursors (
  consumer   TEXT PRIMARY KEY NOT NULL,
  generation TEXT NOT NULL,
  "offset"   INTEGER NOT NULL
);
)sql",
    // 5 -> 6: runs retention deleted, per job and status, added up in the same
    // transaction as the delete, so `cronrun_runs_total` (cronprof export) stays a
    // counter that never goes down when `cronprof gc` removes rows.
    R"sql(
CREATE TABLE removed_runs (
  job    TEXT NOT NULL,
  status TEXT NOT NULL,
  runs   INTEGER NOT NULL,
  PRIMARY KEY (job, status)
);
)sql",
    // 6 -> 7: the pids figures `suggest` proposes a pids limit from (the peak, the
    // forks the limit refused, the limit the run had), backfilled from the JSON,
    // and in runs_figures, so window scans still read the index alone. Only rows
    // that have a figure are rewritten (runs under --pids): every record is read
    // once, for the backfill and again for the index. Measured on 1,000,000 rows
    // (2.3 GB): see docs/contract-changes.md item 46.
    R"sql(
ALTER TABLE runs ADD COLUMN pids_peak INTEGER;
ALTER TABLE runs ADD COLUMN pids_max_events INTEGER;
ALTER TABLE runs ADD COLUMN pids_max INTEGER;
UPDATE runs SET
  pids_peak       = json_extract(record, '$.usage.pids_peak'),
  pids_max_events = json_extract(record, '$.usage.pids_max_events'),
  pids_max        = json_extract(record, '$.limits.pids_max')
WHERE json_valid(record) AND (json_extract(record, '$.usage.pids_peak') IS NOT NULL OR
                              json_extract(record, '$.usage.pids_max_events') IS NOT NULL OR
                              json_extract(record, '$.limits.pids_max') IS NOT NULL);
DROP INDEX runs_figures;
CREATE INDEX runs_figures ON runs(started_at, run_id, job, status, finished_at, wall_s, exit_code, cpu_s,
  memory_peak_bytes, max_rss_bytes, oom_kills, cpu_throttled_s, db_queries, db_time_s, memory_max_bytes,
  cpu_quota_pct, timeout_s, pids_peak, pids_max_events, pids_max, runner_pid, boot_id);
)sql",
};
static_assert(std::size(kMigrations) == HistoryStore::kSchemaVersion);

// Read-only connections never migrate; an older file is read through a TEMP view
// that adds the newer columns (computed from the JSON, or their defaults) under
// the same names, so queries need not know.
std::string compat_select(int version) {
  std::string sql = "SELECT *";
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
  if (version < 7) {
    sql += R"sql(,
  json_extract(record, '$.usage.pids_peak') AS pids_peak,
  json_extract(record, '$.usage.pids_max_events') AS pids_max_events,
  json_extract(record, '$.limits.pids_max') AS pids_max)sql";
  }
  return sql + "\nFROM main.runs";
}

std::string compat_view(int version) { return "CREATE TEMP VIEW runs AS " + compat_select(version) + ";"; }

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


// ---- the files around the database ----
//
// SQLite opens the db, -wal and -shm by path itself, so what it would be handed is
// checked first: no symlinks (SQLITE_OPEN_NOFOLLOW covers only the db itself), no
// FIFOs or devices (opening a FIFO read-only blocks), -wal/-shm owned by the db's
// owner (a -wal planted by another user would be replayed into the history), and,
// for a writer, every file writable (SQLite silently opens a write-protected db
// read-only and fails only at the first write, after the job has started).

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

const char* file_kind(mode_t m) {
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// lstat of one history file; nullopt when it does not exist.
Result<std::optional<struct stat>> lstat_regular(const std::string& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<struct stat>();
    return fail_sys("lstat", file);
  }
  if (!S_ISREG(st.st_mode))
    return fail(file + " is " + file_kind(st.st_mode) + ", not a regular file" +
                (S_ISLNK(st.st_mode) ? " (history files are never followed through symlinks)" : ""));
  return std::optional<struct stat>(st);
}

// Bounded read of the first `n` bytes (fewer when the file is shorter).
Result<std::string> read_head(const std::string& file, size_t n) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", file);
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      ::close(fd);
      return fail_sys("read", file, err);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  buf.resize(got);
  return buf;
}

uint32_t get_be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
uint32_t get_le32(const unsigned char* p) {
  return (uint32_t(p[3]) << 24) | (uint32_t(p[2]) << 16) | (uint32_t(p[1]) << 8) | uint32_t(p[0]);
}

// SQLite's WAL checksum (wal.c walChecksumBytes): 32-bit words in the byte order
// the WAL header's magic names, two running sums.
void wal_checksum(bool big_endian, const unsigned char* data, size_t n, uint32_t& s1, uint32_t& s2) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint32_t x0 = big_endian ? get_be32(data + i) : get_le32(data + i);
    uint32_t x1 = big_endian ? get_be32(data + i + 4) : get_le32(data + i + 4);
    s1 += x0 + s2;
    s2 += x1 + s1;
  }
}

constexpr uint32_t kWalMagic = 0x377f0682;  // | 1: checksums over big-endian words
constexpr uint32_t kWalVersion = 3007000;
constexpr size_t kWalHeader = 32;
constexpr size_t kWalFrameHeader = 24;

// The wal-index header in -shm (wal.c WalIndexHdr, two copies, then WalCkptInfo),
// in the byte order of the machine that wrote it, which is this one.
struct ShmHeader {
  uint32_t max_frame = 0;   // last committed frame in the WAL
  uint32_t backfill = 0;    // frames already copied into the db
  std::string salt;         // the WAL header's salt bytes this index belongs to
};

std::optional<ShmHeader> read_shm_header(const std::string& shm) {
  auto head = read_head(shm, 136);
  if (!head || head->size() < 136) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(head->data());
  if (std::memcmp(p, p + 48, 48) != 0) return std::nullopt;  // mid-update or never written
  uint32_t version, max_frame, backfill, cksum[2];
  std::memcpy(&version, p, 4);
  std::memcpy(&max_frame, p + 16, 4);
  std::memcpy(cksum, p + 40, 8);
  std::memcpy(&backfill, p + 96, 4);
  if (version != kWalVersion || p[12] != 1) return std::nullopt;  // isInit
  // The header's own checksum, over native-order words.
  uint32_t s1 = 0, s2 = 0;
  for (size_t i = 0; i < 40; i += 8) {
    uint32_t x0, x1;
    std::memcpy(&x0, p + i, 4);
    std::memcpy(&x1, p + i + 4, 4);
    s1 += x0 + s2;
    s2 += x1 + s1;
  }
  if (s1 != cksum[0] || s2 != cksum[1]) return std::nullopt;
  return ShmHeader{max_frame, backfill, std::string(head->data() + 32, 8)};
}

// Whether `file` was last modified after this boot began (/proc/stat btime). A
// -shm from before a crash or power cut may list frames the WAL never got to disk
// (synchronous=NORMAL does not sync each commit): rolling back the last
// transactions there is what SQLite promises, not damage.
bool modified_this_boot(const std::string& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return false;
  auto text = read_file("/proc/stat");
  if (!text) return false;
  size_t at = text->find("\nbtime ");
  if (at == std::string::npos) return false;
  long long btime = std::atoll(text->c_str() + at + 7);
  return btime > 0 && st.st_mtime >= btime;
}

// Why the -wal beside `db` is damaged, nullopt when it is sound (or absent).
// SQLite itself treats a WAL with a bad header as empty and stops at the first
// frame that fails its checksum, silently: the history would read as older than
// it is, or empty, and the next checkpoint would make that permanent. Checked:
// the header (magic, version, page size, checksum); and, when the -shm index of
// this boot says how many frames were committed and not yet copied into the db,
// that the WAL still holds them all (a truncated or overwritten WAL does not).
Result<std::optional<std::string>> wal_damage(const std::string& db) {
  std::string wal = db + "-wal", shm = db + "-shm";
  struct stat st {};
  if (::lstat(wal.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return fail_sys("lstat", wal);
  }
  auto damage = [](std::string why) { return std::optional<std::string>(std::move(why)); };
  auto shm_before = read_shm_header(shm);
  if (shm_before && !modified_this_boot(shm)) shm_before.reset();
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    if (shm_before && shm_before->max_frame > shm_before->backfill)
      return damage(wal + " is empty but its index (-shm) lists " + std::to_string(shm_before->max_frame) +
                    " committed frames");
    return std::optional<std::string>();
  }
  if (size < kWalHeader) return damage(wal + " is truncated (" + std::to_string(size) + " bytes, no complete header)");
  auto head = read_head(wal, kWalHeader);
  if (!head) return std::unexpected(head.error());
  if (head->size() < kWalHeader) return damage(wal + " is truncated (no complete header)");
  const auto* h = reinterpret_cast<const unsigned char*>(head->data());
  uint32_t magic = get_be32(h);
  if ((magic & ~1u) != kWalMagic) return damage(wal + " is not a SQLite WAL (bad magic number)");
  bool big_endian = magic & 1;
  if (get_be32(h + 4) != kWalVersion) return damage(wal + " has an unknown WAL format version");
  uint32_t page = get_be32(h + 8);
  if (page < 512 || page > 65536 || (page & (page - 1)) != 0) return damage(wal + " has an invalid page size");
  uint32_t s1 = 0, s2 = 0;
  wal_checksum(big_endian, h, 24, s1, s2);
  if (s1 != get_be32(h + 24) || s2 != get_be32(h + 28)) return damage(wal + " has a header that fails its checksum");

  // Committed frames the index expects. Only an index of this WAL generation (same
  // salt) tells; a live writer may restart the WAL meanwhile, so the index is read
  // again after the scan and the check is trusted only when it did not change.
  if (!shm_before || shm_before->salt != head->substr(16, 8) || shm_before->max_frame <= shm_before->backfill)
    return std::optional<std::string>();
  int fd = ::open(wal.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", wal);
  std::string frame(kWalFrameHeader + page, '\0');
  auto* f = reinterpret_cast<unsigned char*>(frame.data());
  uint32_t c1 = get_be32(h + 24), c2 = get_be32(h + 28);
  uint32_t last_commit = 0;
  for (uint32_t i = 1; i <= shm_before->max_frame; ++i) {
    off_t at = static_cast<off_t>(kWalHeader + uint64_t(i - 1) * frame.size());
    ssize_t r = ::pread(fd, f, frame.size(), at);
    if (r != static_cast<ssize_t>(frame.size())) break;
    if (std::memcmp(f + 8, h + 16, 8) != 0 || get_be32(f) == 0) break;
    wal_checksum(big_endian, f, 8, c1, c2);
    wal_checksum(big_endian, f + kWalFrameHeader, page, c1, c2);
    if (c1 != get_be32(f + 16) || c2 != get_be32(f + 20)) break;
    if (get_be32(f + 4) != 0) last_commit = i;
  }
  ::close(fd);
  if (last_commit >= shm_before->max_frame) return std::optional<std::string>();
  auto shm_after = read_shm_header(shm);
  if (!shm_after || shm_after->salt != shm_before->salt || shm_after->max_frame != shm_before->max_frame ||
      shm_after->backfill != shm_before->backfill)
    return std::optional<std::string>();  // a live writer moved on: its WAL is not ours to judge now
  return damage(wal + " lost committed frames (it holds " + std::to_string(last_commit) + " valid of the " +
                std::to_string(shm_before->max_frame) + " its index lists)");
}

// "20261206T031500Z" for the name of a damaged copy.
std::string utc_stamp() {
  time_t now = ::time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Moves db, -wal and -shm aside to DB.damaged-<UTC>{,-wal,-shm}, never replacing
// anything (RENAME_NOREPLACE). Concurrent runners that found the same damage
// serialize on flock(2) of the damaged db (independent of SQLite's fcntl locks);
// one that finds the file already moved returns "" and opens the new history.
Result<std::string> move_aside(const std::string& db) {
  UniqueFd fd(::open(db.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return fail_sys("open", db);
  if (::flock(fd.get(), LOCK_EX) != 0) return fail_sys("flock", db);
  struct stat held {}, now {};
  if (::fstat(fd.get(), &held) != 0) return fail_sys("fstat", db);
  if (::lstat(db.c_str(), &now) != 0 || now.st_dev != held.st_dev || now.st_ino != held.st_ino) return std::string();
  std::string dest = db + ".damaged-" + utc_stamp();
  for (int n = 1; ::access(dest.c_str(), F_OK) == 0 || ::access((dest + "-wal").c_str(), F_OK) == 0; ++n)
    dest = db + ".damaged-" + utc_stamp() + "-" + std::to_string(n);
  if (::renameat2(AT_FDCWD, db.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) != 0)
    return fail_sys("rename", db + " to " + dest);
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string from = db + suffix, to = dest + suffix;
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0 && errno != ENOENT)
      return fail_sys("rename", from + " to " + to);
  }
  return dest;
}

// Whether a damaged `db` is a history at all, so that moving it aside is
// recovering ours, not renaming whatever an explicit --history typo named.
bool looks_like_a_history(const std::string& db, bool default_location) {
  if (default_location) return true;
  if (::access((db + "-wal").c_str(), F_OK) == 0 || ::access((db + "-shm").c_str(), F_OK) == 0) return true;
  auto head = read_head(db, 16);
  return head && *head == std::string("SQLite format 3\0", 16);
}

// This process's open stores, by the db's inode (see HistoryStore::register_open).
std::mutex g_open_mutex;
std::map<std::pair<dev_t, ino_t>, int> g_open_stores;

bool open_in_this_process(const struct stat& st) {
  std::lock_guard lock(g_open_mutex);
  return g_open_stores.contains({st.st_dev, st.st_ino});
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
      probe_(std::move(other.probe_)),
      damage_note_(std::move(other.damage_note_)),
      registered_(std::exchange(other.registered_, std::nullopt)),
      journal_report_(std::move(other.journal_report_)),
      journal_(other.journal_),
      second_read_(other.second_read_),
      settled_(std::move(other.settled_)) {}

HistoryStore& HistoryStore::operator=(HistoryStore&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    schema_version_ = other.schema_version_;
    probe_ = std::move(other.probe_);
    damage_note_ = std::move(other.damage_note_);
    registered_ = std::exchange(other.registered_, std::nullopt);
    journal_report_ = std::move(other.journal_report_);
    journal_ = other.journal_;
    second_read_ = other.second_read_;
    settled_ = std::move(other.settled_);
  }
  return *this;
}

HistoryStore::~HistoryStore() { close(); }

void HistoryStore::close() {
  settled_.reset();
  if (db_) {
    // Statements are always finalized by their owners, so close cannot be busy.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
  if (registered_) {
    std::lock_guard lock(g_open_mutex);
    if (auto it = g_open_stores.find(*registered_); it != g_open_stores.end() && --it->second == 0)
      g_open_stores.erase(it);
    registered_.reset();
  }
}

// The paths are decided in common/job_paths.h, once for cronrun and cronprof.
std::string HistoryStore::default_path() { return default_history_path(Invoker::current()); }

std::string HistoryStore::default_path_for(uid_t uid, const char* state_home, const char* home) {
  return default_history_path(Invoker::of(uid, nullptr, state_home, nullptr, home));
}

Result<HistoryStore> HistoryStore::open(const std::string& path, Mode mode, HistoryFault* fault,
                                        const HistoryOpenOptions& opts) {
  HistoryFault local_fault = HistoryFault::none;
  HistoryFault& why = fault ? *fault : local_fault;
  auto context = [&](Error e) {
    return std::unexpected(std::move(e).context(std::string(mode == Mode::read_only ? "reading" : "opening") +
                                                " history " + path));
  };
  // Set by open_once() when what failed is damage to a history (as opposed to a
  // foreign database, a newer schema or a permission): what it was.
  std::optional<std::string> damaged;

  auto open_once = [&]() -> Result<HistoryStore> {
    why = HistoryFault::other;
    damaged.reset();
    // NOMUTEX: a store is used by one thread at a time (it is an owner, not a shared
    // service); the per-call connection mutex of FULLMUTEX cost 12% of a
    // million-row scan. EXRESCODE: extended result codes tell corrupt from busy.
    // NOFOLLOW: the db path itself is never a symlink (-wal/-shm are checked below).
    int flags = SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;

    // The directory: only cronrun's own default location is created.
    std::string dir = dir_of(path);
    struct stat dir_st {};
    if (::stat(dir.c_str(), &dir_st) != 0) {
      int err = errno;
      if (err == ENOENT && mode == Mode::read_write && opts.default_location) {
        if (auto made = make_parent_dirs(path, ::geteuid() == 0 ? 0755 : 0700); !made) {
          why = HistoryFault::unreadable;
          return context(made.error());
        }
      } else if (err == ENOENT && mode == Mode::read_write) {
        why = HistoryFault::missing;
        return context(Error::sys("stat", dir, err)
                           .context("its directory must exist (cronrun creates only its default history directory)"));
      } else {
        why = err == ENOENT ? HistoryFault::missing : HistoryFault::unreadable;
        return context(Error::sys("stat", err == ENOENT ? path : dir, err));
      }
    } else if (!S_ISDIR(dir_st.st_mode)) {
      why = HistoryFault::unreadable;
      return context(Error::sys("stat", dir, ENOTDIR));
    }

    // The files SQLite will open by path (see "the files around the database").
    const std::string wal_path = path + "-wal", shm_path = path + "-shm";
    std::optional<struct stat> files[3];
    const std::string* names[3] = {&path, &wal_path, &shm_path};
    for (int i = 0; i < 3; ++i) {
      auto st = lstat_regular(*names[i]);
      if (!st) {
        // The history path naming a directory or a device is no history at all;
        // a symlink or an unreadable entry is a file that cannot be read.
        struct stat any {};
        why = i == 0 && ::lstat(path.c_str(), &any) == 0 && !S_ISLNK(any.st_mode) ? HistoryFault::corrupt
                                                                                    : HistoryFault::unreadable;
        return context(st.error());
      }
      files[i] = *st;
    }
    const auto& db_st = files[0];
    for (int i = 1; i < 3; ++i) {
      // SQLite would replay a -wal it finds beside a new database: one left from a
      // deleted history, or planted by someone else, is not ours to adopt.
      if (!db_st && files[i] && mode == Mode::read_write) {
        why = HistoryFault::other;
        return context(Error(*names[i] + " exists without " + path + ": move it away before a new history is made"));
      }
      if (db_st && files[i] && files[i]->st_uid != db_st->st_uid) {
        why = HistoryFault::unreadable;
        return context(Error(*names[i] + " is owned by uid " + std::to_string(files[i]->st_uid) + ", the history by uid " +
                             std::to_string(db_st->st_uid) + ": not using a file another user may have planted"));
      }
    }
    // Probing opens and closes fds of these files; not while this process has the
    // database open through SQLite (see register_open).
    bool probe = !(db_st && open_in_this_process(*db_st));

    if (mode == Mode::read_only) {
      // Say "missing" / "unreadable" plainly instead of SQLite's "unable to open".
      if (!db_st) {
        why = HistoryFault::missing;
        return context(Error::sys("stat", path, ENOENT));
      }
      if (::access(path.c_str(), R_OK) != 0) {
        why = HistoryFault::unreadable;
        return context(Error::sys("open", path));
      }
      flags |= SQLITE_OPEN_READONLY;
    } else {
      // SQLite opens a write-protected file read-only without a word and fails at
      // the first write; find out now, before any job starts.
      bool creates = false;
      for (int i = 0; i < 3; ++i) {
        if (!files[i]) {
          creates = true;
          continue;
        }
        if (!probe) continue;
        int fd = ::open(names[i]->c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
          why = HistoryFault::unreadable;
          return context(Error::sys("open for writing", *names[i]));
        }
        ::close(fd);
      }
      if (creates && ::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
        why = HistoryFault::unreadable;
        return context(Error::sys("access (write)", dir).context("cannot create the history's files in its directory"));
      }
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }

    // A main file that lost its header is damaged even when the WAL still holds
    // page 1 (SQLite would read that copy and carry on until the next checkpoint
    // wrote it over the garbage). Every non-empty history starts with the header:
    // the first write to a new file is page 1.
    if (probe && db_st && db_st->st_size > 0) {
      auto head = read_head(path, 16);
      if (!head) {
        why = HistoryFault::unreadable;
        return context(head.error());
      }
      if (*head != std::string("SQLite format 3\0", 16)) {
        why = HistoryFault::corrupt;
        damaged = path + " does not start with the SQLite header (not a database, or overwritten)";
        return context(Error(*damaged));
      }
    }
    // A damaged -wal: SQLite would ignore it without a word.
    if (probe && db_st) {
      auto wal = wal_damage(path);
      if (!wal) {
        why = HistoryFault::unreadable;
        return context(wal.error());
      }
      if (*wal) {
        why = HistoryFault::corrupt;
        damaged = **wal;
        return context(Error(**wal + "; SQLite would silently read the history without the runs recorded there"));
      }
    }

    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    HistoryStore store(raw, path, mode);  // owns `raw` even when open failed
    if (rc != SQLITE_OK) {
      why = fault_of(rc);
      return context(sqlite_error(raw, "sqlite3_open_v2", path));
    }
    sqlite3_busy_timeout(raw, kBusyTimeoutMs);
    if (mode == Mode::read_write && sqlite3_db_readonly(raw, "main") == 1) {
      why = HistoryFault::unreadable;
      return context(Error("SQLite could open it only read-only (is the file system read-only?)"));
    }

    // The first read touches the file header: a non-database fails here.
    auto version = read_user_version(raw, path, &why);
    if (!version && why == HistoryFault::corrupt) damaged = version.error().message();
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
  };  // open_once

  // A damaged history is moved aside (kept, never deleted or overwritten) and a
  // new one started, once; a second round covers a concurrent runner that moved
  // it first.
  std::optional<std::string> note;
  for (int round = 0;; ++round) {
    auto store = open_once();
    if (store) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0) store->register_open(st.st_dev, st.st_ino);
      store->damage_note_ = note;
      store->journal_ = opts.journal;
      if (opts.journal == HistoryOpenOptions::Journal::use) {
        if (mode == Mode::read_only) {
          if (auto m = store->merge_journal(); !m) {
            why = HistoryFault::unreadable;
            return context(m.error());
          }
        } else {
          auto f = store->fold_journal(/*wait_for_lock=*/true);
          if (!f) {
            why = HistoryFault::other;
            return context(f.error());
          }
          store->journal_report_ = std::move(*f);
        }
      }
      return store;
    }
    if (!damaged || mode != Mode::read_write || !opts.move_damaged_aside || round >= 2) return store;
    if (!looks_like_a_history(path, opts.default_location))
      return std::unexpected(Error(store.error().message() +
                                   "; left untouched: it does not look like a cronrun history (no SQLite header, no "
                                   "-wal/-shm beside it)"));
    auto moved = move_aside(path);
    if (!moved) {
      why = HistoryFault::corrupt;
      return context(Error(*damaged + "; moving it aside failed: " + moved.error().message()));
    }
    if (!moved->empty())
      note = "history " + path + " was damaged (" + *damaged + "); moved aside to " + *moved +
             "{,-wal,-shm}; a new history was started";
  }
}

std::vector<std::string> HistoryStore::damaged_copies(const std::string& path) {
  std::vector<std::string> out;
  std::string dir = dir_of(path);
  std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  std::string prefix = base + ".damaged-";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    if (name.ends_with("-wal") || name.ends_with("-shm")) continue;
    out.push_back(dir == "/" ? "/" + name : dir + "/" + name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());  // the UTC stamp sorts by time
  return out;
}

void HistoryStore::register_open(dev_t dev, ino_t ino) {
  std::lock_guard lock(g_open_mutex);
  ++g_open_stores[{dev, ino}];
  registered_ = std::pair(dev, ino);
}

// ---- writes ----

namespace {

// Columns written for every row, in bind order (?1 .. ?25).
constexpr const char* kColumns =
    "run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, "
    "max_rss_bytes, oom_kills, host, runner_pid, boot_id, record, cpu_throttled_s, db_queries, "
    "db_time_s, memory_max_bytes, cpu_quota_pct, timeout_s, runner_start, pids_peak, pids_max_events, pids_max";
constexpr const char* kValues = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
                                "?20, ?21, ?22, ?23, ?24, ?25";
constexpr const char* kUpdateAll =
    "job = excluded.job, status = excluded.status, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at, wall_s = excluded.wall_s, exit_code = excluded.exit_code, "
    "cpu_s = excluded.cpu_s, memory_peak_bytes = excluded.memory_peak_bytes, "
    "max_rss_bytes = excluded.max_rss_bytes, oom_kills = excluded.oom_kills, host = excluded.host, "
    "runner_pid = excluded.runner_pid, boot_id = excluded.boot_id, record = excluded.record, "
    "cpu_throttled_s = excluded.cpu_throttled_s, db_queries = excluded.db_queries, "
    "db_time_s = excluded.db_time_s, memory_max_bytes = excluded.memory_max_bytes, "
    "cpu_quota_pct = excluded.cpu_quota_pct, timeout_s = excluded.timeout_s, "
    "runner_start = excluded.runner_start, pids_peak = excluded.pids_peak, "
    "pids_max_events = excluded.pids_max_events, pids_max = excluded.pids_max";

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
  // Every string made valid UTF-8, so a record can always be written (DESIGN.md
  // section 4); the DOM's text without building the DOM (folds write many).
  std::string json_text = to_json_text(r);
  // The text columns hold the same strings as the JSON.
  const std::string run_id = valid_utf8(r.run_id), job = valid_utf8(r.job), host = valid_utf8(r.host),
                    boot_id = valid_utf8(r.boot_id);

  int rc = SQLITE_OK;
  auto ok = [&](int v) { if (rc == SQLITE_OK) rc = v; };
  ok(sqlite3_bind_text(st, 1, run_id.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_text(st, 2, job.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_text(st, 3, to_string(r.status), -1, SQLITE_STATIC));
  ok(sqlite3_bind_double(st, 4, *started));
  ok(bind_opt(st, 5, finished));
  ok(bind_opt(st, 6, r.wall_s));
  ok(bind_opt(st, 7, r.exit_code));
  ok(bind_opt(st, 8, cpu));
  ok(bind_opt(st, 9, r.usage.memory_peak_bytes));
  ok(bind_opt(st, 10, r.usage.max_rss_bytes));
  ok(bind_opt(st, 11, r.usage.oom_kills));
  ok(sqlite3_bind_text(st, 12, host.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_int64(st, 13, r.runner_pid));
  ok(sqlite3_bind_text(st, 14, boot_id.c_str(), -1, SQLITE_TRANSIENT));
  ok(sqlite3_bind_text(st, 15, json_text.c_str(), static_cast<int>(json_text.size()), SQLITE_TRANSIENT));
  ok(bind_opt(st, 16, r.usage.cpu_throttled_s));
  ok(bind_opt(st, 17, counter(r, "db.queries")));
  ok(bind_opt(st, 18, counter(r, "db.time_s")));
  ok(bind_opt(st, 19, r.limits.memory_max_bytes));
  ok(bind_opt(st, 20, r.limits.cpu_quota_pct));
  ok(bind_opt(st, 21, r.limits.timeout_s));
  ok(sqlite3_bind_int64(st, 22, static_cast<int64_t>(r.runner_start)));
  ok(bind_opt(st, 23, r.usage.pids_peak));
  ok(bind_opt(st, 24, r.usage.pids_max_events));
  ok(bind_opt(st, 25, r.limits.pids_max));
  if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db, "binding run " + r.run_id, path));
  return {};
}

}  // namespace

namespace {

Result<void> write_row(sqlite3* db, const std::string& path, bool read_only, const RunRecord& r,
                       const std::string& sql, const char* what, int deadline_ms = 30000) {
  if (read_only) return fail("history " + path + " is open read-only");
  auto done = history_internal::write_transaction(
      db, path,
      [&]() -> Result<void> {
        Stmt st;
        if (auto p = st.prepare(db, sql, path); !p) return std::unexpected(p.error());
        if (auto b = bind_record(db, st.get(), r, path); !b) return b;
        if (sqlite3_step(st.get()) != SQLITE_DONE)
          return std::unexpected(sqlite_error(db, "writing run " + r.run_id, path));
        return {};
      },
      deadline_ms);
  if (!done) return std::unexpected(std::move(done.error()).context(std::string(what) + " of job '" + r.job + "'"));
  return {};
}

}  // namespace

Result<void> HistoryStore::begin_run(const RunRecord& r) {
  // The job has not started: waiting longer than the busy timeout would only
  // delay it, and the caller turns the failure into "not started".
  return write_row(db_, path_, mode_ == Mode::read_only, r,
                   std::string("INSERT INTO runs (") + kColumns + ") VALUES (" + kValues + ")", "recording the start",
                   kBusyTimeoutMs);
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

Result<void> HistoryStore::record_all(std::span<const RunRecord> records) {
  if (mode_ == Mode::read_only) return fail("history " + path_ + " is open read-only");
  if (records.empty()) return {};
  auto done = history_internal::write_transaction(db_, path_, [&]() -> Result<void> {
    Stmt st;
    if (auto p = st.prepare(db_,
                            std::string("INSERT INTO runs (") + kColumns + ") VALUES (" + kValues +
                                ") ON CONFLICT(run_id) DO UPDATE SET " + kUpdateAll,
                            path_);
        !p)
      return p;
    for (const RunRecord& r : records) {
      sqlite3_reset(st.get());
      sqlite3_clear_bindings(st.get());
      if (auto b = bind_record(db_, st.get(), r, path_); !b) return b;
      if (sqlite3_step(st.get()) != SQLITE_DONE) return std::unexpected(sqlite_error(db_, "writing run " + r.run_id, path_));
    }
    return {};
  });
  if (!done) return std::unexpected(std::move(done.error()).context("recording " + std::to_string(records.size()) + " runs"));
  return {};
}

// ---- the run journal: fold and merge ----
//
// The journal (common/journal.h) is read from each consumer's cursor in
// journal_cursors. A fold applies records to main.runs and moves its cursor in the
// same transaction; a reader that may not write applies the same records to a TEMP
// table instead and shadows `runs` with a TEMP view, so queries need not know.

namespace {

// Records applied per transaction: bounds the transaction (and the WAL it writes)
// when a journal has grown large while nobody folded it.
constexpr size_t kFoldBatchBytes = 4u << 20;
// A runner folding after its job ended does not wait long for SQLite's write lock
// (a cronprof gc, say): the next run folds instead.
constexpr int kQuickFoldDeadlineMs = 5000;

std::string base_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The journal's two files beside a history, named relative to the history's
// directory (opened once: every journal file is reached through this fd), and
// the history's owner, whom the journal files must belong to. The preamble of
// every pass over the journal: fold, consumer, registration, read-only merge.
struct JournalFiles {
  std::string jpath, rpath;  // for messages
  std::string jname, rname;  // relative to dir
  UniqueFd dir;
  uid_t owner = 0;
};

Result<JournalFiles> journal_files(const std::string& history_path) {
  JournalFiles f;
  f.jpath = journal::journal_path(history_path);
  f.rpath = journal::retired_path(history_path);
  f.jname = base_of(f.jpath);
  f.rname = base_of(f.rpath);
  std::string dir = dir_of(history_path);
  f.dir = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!f.dir) return fail_sys("open", dir);
  struct stat db_st {};
  if (::stat(history_path.c_str(), &db_st) != 0) return fail_sys("stat", history_path);
  f.owner = db_st.st_uid;
  return f;
}

struct Cursor {
  std::string generation;
  uint64_t offset = 0;
};

// Every consumer's cursor; empty when the schema has none yet (a read-only open of
// an older history).
Result<std::map<std::string, Cursor>> read_cursors(sqlite3* db, const std::string& path) {
  std::map<std::string, Cursor> out;
  auto table = has_table(db, path, "journal_cursors");
  if (!table) return std::unexpected(table.error());
  if (!*table) return out;
  Stmt st;
  if (auto p = st.prepare(db, "SELECT consumer, generation, \"offset\" FROM main.journal_cursors", path); !p)
    return std::unexpected(p.error());
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    sqlite3_int64 off = sqlite3_column_int64(st.get(), 2);
    out[history_internal::column_text(st.get(), 0)] =
        Cursor{history_internal::column_text(st.get(), 1), static_cast<uint64_t>(off < 0 ? 0 : off)};
  }
  if (rc != SQLITE_DONE) return std::unexpected(sqlite_error(db, "reading the journal cursors", path));
  return out;
}

Result<void> write_cursor(sqlite3* db, const std::string& path, const Cursor& c,
                          const char* consumer = HistoryStore::kJournalConsumer) {
  Stmt st;
  if (auto p = st.prepare(db,
                          "INSERT INTO main.journal_cursors (consumer, generation, \"offset\") VALUES (?1, ?2, ?3) "
                          "ON CONFLICT(consumer) DO UPDATE SET generation = excluded.generation, \"offset\" = excluded.\"offset\"",
                          path);
      !p)
    return p;
  sqlite3_bind_text(st.get(), 1, consumer, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.get(), 2, c.generation.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.get(), 3, static_cast<sqlite3_int64>(c.offset));
  if (sqlite3_step(st.get()) != SQLITE_DONE) return std::unexpected(sqlite_error(db, "moving the journal cursor", path));
  return {};
}

// Applies journal records to one table with the fold's rules: a start inserts the
// `running` row unless the run is there already (a start read after its finish,
// or twice, never regresses it); a finish inserts or completes the row.
class Applier {
 public:
  Applier(sqlite3* db, const std::string& path, std::string table) : db_(db), path_(path), table_(std::move(table)) {}
  // A record the row cannot be made of (a bad finished_at, ...) is a note, not a
  // failure: the rest of the journal still folds. Says whether the row was written.
  // The record is made valid UTF-8 in place.
  Result<bool> apply(journal::Entry& e, const std::string& seg_path, std::vector<std::string>& notes) {
    bool start = e.type == journal::RecordType::start;
    Stmt& st = start ? start_ : finish_;
    if (!st.get()) {
      std::string sql = "INSERT INTO " + table_ + " (" + kColumns + ") VALUES (" + kValues + ") ON CONFLICT(run_id) DO " +
                        (start ? std::string("NOTHING") : std::string("UPDATE SET ") + kUpdateAll);
      if (auto p = st.prepare(db_, sql, path_); !p) return std::unexpected(p.error());
    }
    sqlite3_reset(st.get());
    sqlite3_clear_bindings(st.get());
    RunRecord& r = e.record;
    make_valid_utf8(r);
    if (auto b = bind_record(db_, st.get(), r, path_); !b) {
      notes.push_back(seg_path + ": skipped the " + journal::to_string(e.type) + " record at offset " +
                      std::to_string(e.offset) + ": " + b.error().message());
      return false;
    }
    if (sqlite3_step(st.get()) != SQLITE_DONE)
      return std::unexpected(sqlite_error(db_, "applying run " + r.run_id + " from the journal", path_));
    return true;
  }

  // A batch in journal order, with one saving: a start whose finish comes later in
  // the same batch is not written (the finish writes the whole row, inserting it or
  // completing it, so the start's `running` row would be replaced within the same
  // transaction) unless that finish cannot be made into a row, when the start is
  // written after all, as it would have been. Half of a fold's inserts, for runs
  // that end between two folds: nearly all of them.
  Result<void> apply_batch(std::vector<journal::Entry>& entries, const std::string& seg_path,
                           std::vector<std::string>& notes) {
    std::unordered_map<std::string_view, journal::Entry*> later_finish;  // run_id -> a start waiting for it
    std::vector<bool> deferred(entries.size(), false);
    {
      std::unordered_set<std::string_view> finished_later;
      for (size_t i = entries.size(); i-- > 0;) {
        const journal::Entry& e = entries[i];
        if (e.type == journal::RecordType::finish) finished_later.insert(e.record.run_id);
        else if (finished_later.count(e.record.run_id)) deferred[i] = true;
      }
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      journal::Entry& e = entries[i];
      if (deferred[i]) {
        later_finish.emplace(e.record.run_id, &e);
        continue;
      }
      auto wrote = apply(e, seg_path, notes);
      if (!wrote) return std::unexpected(wrote.error());
      if (e.type != journal::RecordType::finish || *wrote) continue;
      // The finish made no row: its start (if it waits for it) is written now.
      if (auto it = later_finish.find(e.record.run_id); it != later_finish.end()) {
        journal::Entry* start = it->second;
        later_finish.erase(it);
        if (auto w = apply(*start, seg_path, notes); !w) return std::unexpected(w.error());
      }
    }
    return {};
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  std::string table_;
  Stmt start_, finish_;
};

void note_batch(FoldReport& rep, const journal::Segment& seg, const journal::Batch& b) {
  for (const auto& d : b.damage) {
    ++rep.damaged;
    rep.notes.push_back(seg.path + ": skipped a damaged record (" + journal::describe(d) + ")");
  }
}

void note_header(FoldReport& rep, const journal::Segment& seg) {
  if (seg.header_damage.empty()) return;
  ++rep.damaged;
  rep.notes.push_back(seg.path + ": damaged header (" + seg.header_damage +
                      "): its records are read past it; the next fold that reads it to the end starts a fresh journal");
}

void note_tail(FoldReport& rep, const journal::Segment& seg, const journal::Batch& b) {
  if (b.tail)
    rep.notes.push_back(seg.path + ": incomplete last record (" + journal::describe(*b.tail) +
                        "): torn, or being written; left unread");
}

// Folds `seg` from `from` to its end, a batch per transaction, each committing the
// cursor with its rows. Returns the offset reached.
Result<uint64_t> fold_segment(sqlite3* db, const std::string& path, const journal::Segment& seg, uint64_t from,
                              int deadline_ms, FoldReport& rep) {
  for (;;) {
    struct stat st {};
    if (::fstat(seg.fd.get(), &st) != 0) return fail_sys("fstat", seg.path);
    if (static_cast<uint64_t>(st.st_size) <= journal::read_start(seg, from)) return std::min<uint64_t>(from, st.st_size);
    journal::Batch b;
    std::vector<std::string> notes;
    auto t = history_internal::write_transaction(
        db, path,
        [&]() -> Result<void> {
          notes.clear();
          auto r = journal::read_batch(seg, from, kFoldBatchBytes);
          if (!r) return std::unexpected(r.error());
          b = std::move(*r);
          Applier a(db, path, "main.runs");
          if (auto x = a.apply_batch(b.entries, seg.path, notes); !x) return x;
          if (auto w = write_cursor(db, path, Cursor{seg.generation, b.next}); !w) return w;
          journal::test_pause("fold-commit");
          return {};
        },
        deadline_ms);
    if (!t) return std::unexpected(std::move(t.error()).context("folding " + seg.path));
    note_batch(rep, seg, b);
    for (auto& n : notes) rep.notes.push_back(std::move(n));
    rep.records += b.entries.size();
    bool progress = b.next != from;
    from = b.next;
    if (b.at_end || !progress) {
      note_tail(rep, seg, b);
      return from;
    }
  }
}

Result<void> set_cursor(sqlite3* db, const std::string& path, const Cursor& c, int deadline_ms,
                        const char* consumer = HistoryStore::kJournalConsumer) {
  return history_internal::write_transaction(db, path, [&] { return write_cursor(db, path, c, consumer); },
                                             deadline_ms);
}

// Removes the retired journal once no consumer's cursor is in it.
Result<void> drop_retired(sqlite3* db, const std::string& path, int dirfd, const std::string& rname,
                          const std::string& rpath, const journal::Generation& gen) {
  auto cursors = read_cursors(db, path);
  if (!cursors) return std::unexpected(cursors.error());
  for (const auto& [consumer, c] : *cursors)
    if (c.generation == gen) return {};  // another consumer still reads it
  if (::unlinkat(dirfd, rname.c_str(), 0) != 0 && errno != ENOENT) return fail_sys("unlink", rpath);
  return {};
}

Result<void> retire(const journal::Segment& seg) {
  if (::fchmod(seg.fd.get(), (seg.st.st_mode & 07777) | S_ISVTX) != 0) return fail_sys("fchmod", seg.path);
  return {};
}

// The retired journal, unless what has its name is not one this history could
// have made (a symlink, a FIFO, another user's file: planted in a directory other
// users can write). That is left alone and named, not read, and does not stop the
// fold or the readers: the journal itself is still read.
Result<std::optional<journal::Segment>> open_retired(int dirfd, const std::string& rname, const std::string& rpath,
                                                     uid_t owner, std::vector<std::string>* notes) {
  auto rs = journal::open_segment(dirfd, rname, rpath, owner);
  if (rs) return rs;
  struct stat st {};
  if (::fstatat(dirfd, rname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || (S_ISREG(st.st_mode) && st.st_uid == owner))
    return rs;
  if (notes)
    notes->push_back(rpath + " is a " + file_type_name(st.st_mode) + " owned by uid " + std::to_string(st.st_uid) +
                     ", not a retired journal of this history: left alone and not read (remove it; the journal "
                     "is not rotated while it is there)");
  return std::optional<journal::Segment>();
}

// Opens the journal and takes the fold lock on it: folds (and a consumer looking
// at the retired journal) exclude each other by flock(2) on the journal file. A
// rotation locks the new file before it publishes it, so a holder that locked a
// file which is no longer the journal lets it go and takes the current one.
// nullopt when there is no journal yet, or (`wait` false) it is locked: `busy`.
Result<std::optional<journal::Segment>> lock_journal(int dirfd, const std::string& jname, const std::string& jpath,
                                                     uid_t owner, bool wait, bool* busy) {
  for (int attempt = 0;; ++attempt) {
    auto s = journal::open_segment(dirfd, jname, jpath, owner);
    if (!s) return std::unexpected(s.error());
    if (!*s) return std::nullopt;
    if (::flock((*s)->fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
      if (errno == EWOULDBLOCK) {
        *busy = true;
        return std::nullopt;
      }
      return fail_sys("flock", jpath);
    }
    struct stat held {}, now {};
    if (::fstat((*s)->fd.get(), &held) != 0) return fail_sys("fstat", jpath);
    bool current = ::fstatat(dirfd, jname.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == held.st_ino &&
                   now.st_dev == held.st_dev;
    if (current && !(held.st_mode & S_ISVTX)) {
      (*s)->st = held;
      return s;
    }
    if (attempt >= 100) return fail(jpath + " keeps being replaced while a fold waits for it");
  }
}

// A consumer without a row in journal_cursors is invisible to the fold, which
// would rotate the journal and remove the retired one under it. Called under the
// fold lock: the row names where the consumer will start (the retired journal's
// start if there is one, else the journal's), so from here on the fold waits for it.
Result<std::optional<Cursor>> register_consumer(sqlite3* db, const std::string& path, const std::string& consumer,
                                                const journal::Segment& js, const std::optional<journal::Segment>& rs,
                                                int deadline_ms) {
  auto cursors = read_cursors(db, path);
  if (!cursors) return std::unexpected(cursors.error());
  if (auto it = cursors->find(consumer); it != cursors->end()) return std::optional<Cursor>(it->second);
  Cursor c{rs ? rs->generation : js.generation, journal::kHeaderBytes};
  if (auto w = set_cursor(db, path, c, deadline_ms, consumer.c_str()); !w) return std::unexpected(w.error());
  return std::optional<Cursor>();
}

}  // namespace

Result<FoldReport> HistoryStore::fold_journal(bool wait_for_lock) {
  if (mode_ == Mode::read_only) return fail("history " + path_ + " is open read-only; cannot fold its journal");
  FoldReport rep;
  auto files = journal_files(path_);
  if (!files) return std::unexpected(files.error());
  const std::string &jpath = files->jpath, &rpath = files->rpath, &jname = files->jname, &rname = files->rname;
  const int dirfd = files->dir.get();
  const uid_t owner = files->owner;
  const int deadline = wait_for_lock ? 30000 : kQuickFoldDeadlineMs;

  auto locked = lock_journal(dirfd, jname, jpath, owner, wait_for_lock, &rep.busy);
  if (!locked) return std::unexpected(locked.error());
  if (!*locked) return rep;  // no run has appended yet, or another fold holds it
  std::optional<journal::Segment> jseg = std::move(*locked);
  note_header(rep, *jseg);

  auto cursors = read_cursors(db_, path_);
  if (!cursors) return std::unexpected(cursors.error());
  std::optional<Cursor> cursor;
  if (auto it = cursors->find(kJournalConsumer); it != cursors->end()) cursor = it->second;
  bool on_journal = cursor && cursor->generation == jseg->generation;
  bool noted_lost = false;
  auto note_lost = [&] {
    if (!cursor || on_journal || noted_lost) return;
    noted_lost = true;
    rep.notes.push_back("journal generation " + cursor->generation + " (folded to offset " +
                        std::to_string(cursor->offset) + ") is gone: " + jpath +
                        " was replaced or truncated; folding what is there from its start");
  };

  // A retired journal: a rotation that did not finish (the fold died), or one done
  // and not yet removed.
  auto rseg = open_retired(dirfd, rname, rpath, owner, &rep.notes);
  if (!rseg) return std::unexpected(rseg.error());
  if (*rseg) {
    note_header(rep, **rseg);
    if (!on_journal) {
      bool on_retired = cursor && cursor->generation == (*rseg)->generation;
      if (!on_retired) note_lost();
      // Appenders that still hold it must now write their records again into the
      // journal; what they wrote before this is read below.
      if (auto r = retire(**rseg); !r) return std::unexpected(r.error());
      auto reached = fold_segment(db_, path_, **rseg, on_retired ? cursor->offset : journal::kHeaderBytes, deadline, rep);
      if (!reached) return std::unexpected(reached.error());
      if (auto c = set_cursor(db_, path_, Cursor{jseg->generation, journal::kHeaderBytes}, deadline); !c)
        return std::unexpected(c.error());
      cursor = Cursor{jseg->generation, journal::kHeaderBytes};
      on_journal = true;
    }
    if (auto d = drop_retired(db_, path_, dirfd, rname, rpath, (*rseg)->generation); !d)
      return std::unexpected(d.error());
  }

  note_lost();
  uint64_t from = on_journal ? cursor->offset : journal::kHeaderBytes;
  if (on_journal && from > static_cast<uint64_t>(jseg->st.st_size)) {
    rep.notes.push_back(jpath + " is shorter (" + std::to_string(jseg->st.st_size) + " bytes) than the offset folded (" +
                        std::to_string(from) + "): truncated by hand? folding it from its start");
    from = journal::kHeaderBytes;
  }
  auto reached = fold_segment(db_, path_, *jseg, from, deadline, rep);
  if (!reached) return std::unexpected(reached.error());
  if (!on_journal || cursor->offset != *reached) {
    // The cursor names this generation even when nothing was folded, so the next
    // fold knows where it is.
    if (auto c = set_cursor(db_, path_, Cursor{jseg->generation, *reached}, deadline); !c)
      return std::unexpected(c.error());
  }

  // Rotation: a large journal that every consumer has read to the end, with no
  // incomplete record at its end, is swapped for a fresh one.
  struct stat st {};
  if (::fstat(jseg->fd.get(), &st) != 0) return fail_sys("fstat", jpath);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // A journal with a damaged header is replaced once read, whatever its size.
  if ((size < journal::kFoldThresholdBytes && jseg->header_damage.empty()) || *reached != size) return rep;
  auto all = read_cursors(db_, path_);
  if (!all) return std::unexpected(all.error());
  for (const auto& [consumer, c] : *all)
    if (c.generation != jseg->generation || c.offset != size) return rep;  // a consumer is behind
  journal::Generation next_gen;
  // The new file is made under the retired name, locked, and swapped into place in
  // one step; a fold killed before the swap leaves an empty retired file that the
  // next fold removes, one killed after it a retired file the next fold finishes.
  auto fresh = journal::create_new(dirfd, rname, rpath, st.st_mode & 0777, &next_gen);
  if (!fresh) {
    if (fresh.error().err() == EEXIST) return rep;  // a retired journal a consumer still reads
    return std::unexpected(fresh.error());
  }
  if (::fchmod(fresh->get(), st.st_mode & 0777) != 0) return fail_sys("fchmod", rpath);
  // Root folding a user's history (cronprof gc): the new journal stays the user's,
  // or that user's runs could no longer append to it.
  if ((st.st_uid != ::geteuid() || st.st_gid != ::getegid()) && ::fchown(fresh->get(), st.st_uid, st.st_gid) != 0) {
    int err = errno;
    ::unlinkat(dirfd, rname.c_str(), 0);
    return fail_sys("fchown", rpath, err);
  }
  if (::flock(fresh->get(), LOCK_EX | LOCK_NB) != 0) return fail_sys("flock", rpath);
  if (::renameat2(dirfd, rname.c_str(), dirfd, jname.c_str(), RENAME_EXCHANGE) != 0) {
    int err = errno;
    ::unlinkat(dirfd, rname.c_str(), 0);
    return fail_sys("rename (exchange)", rpath + " and " + jpath, err);
  }
  rep.rotated = true;
  journal::test_pause("fold-rotate");
  jseg->path = rpath;
  jseg->st = st;
  if (auto r = retire(*jseg); !r) return std::unexpected(r.error());
  // Records appended between the last read and the sticky bit are in the old file.
  auto last = fold_segment(db_, path_, *jseg, size, deadline, rep);
  if (!last) return std::unexpected(last.error());
  if (auto c = set_cursor(db_, path_, Cursor{next_gen, journal::kHeaderBytes}, deadline); !c)
    return std::unexpected(c.error());
  if (auto d = drop_retired(db_, path_, dirfd, rname, rpath, jseg->generation); !d)
    return std::unexpected(d.error());
  return rep;
}

Result<FoldReport> HistoryStore::fold(const std::string& history_path, bool wait_for_lock,
                                      const HistoryOpenOptions& opts) {
  HistoryOpenOptions o = opts;
  o.journal = HistoryOpenOptions::Journal::ignore;
  auto store = open(history_path, Mode::read_write, nullptr, o);
  if (!store) return std::unexpected(store.error());
  auto rep = store->fold_journal(wait_for_lock);
  if (rep && store->damage_note()) rep->notes.insert(rep->notes.begin(), *store->damage_note());
  return rep;
}

Result<FoldReport> HistoryStore::consume_journal(const std::string& consumer, size_t batch_records,
                                                 const JournalSink& sink) {
  if (mode_ == Mode::read_only) return fail("history " + path_ + " is open read-only; cannot move a journal cursor");
  if (consumer.empty() || consumer == kJournalConsumer)
    return fail("journal consumer '" + consumer + "' is not a consumer name other than the history's own");
  if (batch_records == 0) batch_records = 1;
  FoldReport rep;
  auto files = journal_files(path_);
  if (!files) return std::unexpected(files.error());
  const std::string &jpath = files->jpath, &rpath = files->rpath, &jname = files->jname, &rname = files->rname;
  const int dirfd = files->dir.get();
  const uid_t owner = files->owner;
  const int deadline = 30000;

  // Which files to read, decided under the fold lock: a retired journal seen
  // without it could be a rotation's new file not yet swapped into place. The lock
  // is let go before the sink runs (a database round trip must not hold up folds).
  std::vector<std::pair<journal::Segment, uint64_t>> todo;
  std::optional<journal::Generation> journal_gen;
  {
    bool busy = false;
    auto js = lock_journal(dirfd, jname, jpath, owner, /*wait=*/true, &busy);
    if (!js) return std::unexpected(js.error());
    if (!*js) return rep;  // no run has appended yet
    auto rs = open_retired(dirfd, rname, rpath, owner, &rep.notes);
    if (!rs) return std::unexpected(rs.error());
    auto registered = register_consumer(db_, path_, consumer, **js, *rs, deadline);
    if (!registered) return std::unexpected(registered.error());
    std::optional<Cursor> cursor = *registered;
    bool on_journal = cursor && cursor->generation == (*js)->generation;
    bool on_retired = cursor && *rs && cursor->generation == (**rs).generation;
    if (cursor && !on_journal && !on_retired)
      rep.notes.push_back("journal generation " + cursor->generation + " (" + consumer + " read to offset " +
                          std::to_string(cursor->offset) + ") is gone: reading " + jpath + " from its start");
    journal_gen = (*js)->generation;
    if (*rs && !on_journal) {
      // From here on, an appender still holding the retired file writes its record
      // again into the journal, so reading the retired file to its end now and
      // moving on loses nothing (the fold does the same for an unfinished rotation).
      if (auto r = retire(**rs); !r) return std::unexpected(r.error());
      todo.emplace_back(std::move(**rs), on_retired ? cursor->offset : journal::kHeaderBytes);
    }
    uint64_t from = on_journal ? cursor->offset : journal::kHeaderBytes;
    if (on_journal && from > static_cast<uint64_t>((*js)->st.st_size)) {
      rep.notes.push_back(jpath + " is shorter than the offset " + consumer + " read to: truncated by hand? reading it from its start");
      from = journal::kHeaderBytes;
    }
    // The fold lock goes with this fd; the consumer reads through its own.
    auto again = journal::open_segment(dirfd, jname, jpath, owner);
    if (!again) return std::unexpected(again.error());
    if (*again && (**again).generation == (*js)->generation) todo.emplace_back(std::move(**again), from);
  }

  for (auto& [seg, start] : todo) {
    uint64_t from = start;
    for (;;) {
      auto b = journal::read_batch(seg, from, kFoldBatchBytes);
      if (!b) return std::unexpected(std::move(b.error()).context("reading " + seg.path + " for " + consumer));
      note_batch(rep, seg, *b);
      for (size_t i = 0; i < b->entries.size(); i += batch_records) {
        size_t n = std::min(batch_records, b->entries.size() - i);
        std::span<const journal::Entry> chunk(b->entries.data() + i, n);
        if (auto r = sink(chunk); !r) return std::unexpected(r.error());
        uint64_t reached = i + n == b->entries.size() ? b->next : chunk.back().end;
        // After the sink committed: a crash between the two replays the chunk.
        if (auto c = set_cursor(db_, path_, Cursor{seg.generation, reached}, deadline, consumer.c_str()); !c)
          return std::unexpected(c.error());
        rep.records += n;
      }
      if (b->entries.empty() && b->next != from)
        if (auto c = set_cursor(db_, path_, Cursor{seg.generation, b->next}, deadline, consumer.c_str()); !c)
          return std::unexpected(c.error());
      bool progress = b->next != from;
      from = b->next;
      if (b->at_end || !progress) {
        note_tail(rep, seg, *b);
        break;
      }
    }
    if (start == journal::kHeaderBytes && from == journal::kHeaderBytes)
      if (auto c = set_cursor(db_, path_, Cursor{seg.generation, from}, deadline, consumer.c_str()); !c)
        return std::unexpected(c.error());
    if (seg.generation != *journal_gen)
      // Done with the retired file: on to the journal (the fold removes the
      // retired file once no consumer's cursor is in it).
      if (auto c = set_cursor(db_, path_, Cursor{*journal_gen, journal::kHeaderBytes}, deadline, consumer.c_str()); !c)
        return std::unexpected(c.error());
  }
  return rep;
}

Result<void> HistoryStore::register_journal_consumer(const std::string& consumer) {
  if (mode_ == Mode::read_only) return fail("history " + path_ + " is open read-only; cannot register a journal consumer");
  if (consumer.empty() || consumer == kJournalConsumer)
    return fail("journal consumer '" + consumer + "' is not a consumer name other than the history's own");
  auto files = journal_files(path_);
  if (!files) return std::unexpected(files.error());
  const std::string &jpath = files->jpath, &rpath = files->rpath, &jname = files->jname, &rname = files->rname;
  const int dirfd = files->dir.get();
  const uid_t owner = files->owner;
  bool busy = false;
  auto js = lock_journal(dirfd, jname, jpath, owner, /*wait=*/true, &busy);
  if (!js) return std::unexpected(js.error());
  if (!*js) return {};  // no journal yet: nothing the fold could rotate away
  auto rs = open_retired(dirfd, rname, rpath, owner, nullptr);
  if (!rs) return std::unexpected(rs.error());
  auto r = register_consumer(db_, path_, consumer, **js, *rs, 30000);
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<void> HistoryStore::merge_journal() {
  auto files = journal_files(path_);
  if (!files) return std::unexpected(files.error());
  const std::string &jpath = files->jpath, &rpath = files->rpath, &jname = files->jname, &rname = files->rname;
  const int dirfd = files->dir.get();
  const uid_t owner = files->owner;
  // The files first, then the cursor: a fold that moves on meanwhile has put what
  // it folded into the history before it moved the cursor, so nothing falls
  // between the two (a record may be seen in both: the view prefers the journal's).
  FoldReport rep;
  auto js = journal::open_segment(dirfd, jname, jpath, owner);
  if (!js) return std::unexpected(js.error());
  auto rs = open_retired(dirfd, rname, rpath, owner, &rep.notes);
  if (!rs) return std::unexpected(rs.error());
  if (!*js && !*rs) {
    journal_report_ = rep;
    return {};
  }
  auto cursors = read_cursors(db_, path_);
  if (!cursors) return std::unexpected(cursors.error());
  std::optional<Cursor> cursor;
  if (auto it = cursors->find(kJournalConsumer); it != cursors->end()) cursor = it->second;

  std::vector<std::pair<const journal::Segment*, uint64_t>> todo;
  bool on_journal = cursor && *js && cursor->generation == (*js)->generation;
  if (*rs && !on_journal)
    todo.emplace_back(&**rs, cursor && cursor->generation == (*rs)->generation ? cursor->offset : journal::kHeaderBytes);
  if (*js) todo.emplace_back(&**js, on_journal ? cursor->offset : journal::kHeaderBytes);

  bool table = false;
  std::optional<Applier> applier;
  for (const auto& [seg, start] : todo) {
    note_header(rep, *seg);
    uint64_t from = start;
    for (;;) {
      auto b = journal::read_batch(*seg, from, kFoldBatchBytes);
      if (!b) return std::unexpected(b.error());
      note_batch(rep, *seg, *b);
      if (!b->entries.empty() && !table) {
        auto t = exec(db_,
                      "CREATE TEMP TABLE journal_runs (run_id TEXT PRIMARY KEY NOT NULL, job TEXT NOT NULL, status TEXT "
                      "NOT NULL, started_at REAL NOT NULL, finished_at REAL, wall_s REAL, exit_code INTEGER, cpu_s REAL, "
                      "memory_peak_bytes INTEGER, max_rss_bytes INTEGER, oom_kills INTEGER, host TEXT NOT NULL DEFAULT "
                      "'', runner_pid INTEGER NOT NULL DEFAULT 0, boot_id TEXT NOT NULL DEFAULT '', record TEXT NOT "
                      "NULL, cpu_throttled_s REAL, db_queries REAL, db_time_s REAL, memory_max_bytes INTEGER, "
                      "cpu_quota_pct REAL, timeout_s REAL, runner_start INTEGER NOT NULL DEFAULT 0, pids_peak INTEGER, "
                      "pids_max_events INTEGER, pids_max INTEGER)",
                      path_, "creating the journal's temporary table");
        if (!t) return t;
        table = true;
        applier.emplace(db_, path_, "temp.journal_runs");
      }
      if (applier)
        if (auto x = applier->apply_batch(b->entries, seg->path, rep.notes); !x) return x;
      rep.records += b->entries.size();
      bool progress = b->next != from;
      from = b->next;
      if (b->at_end || !progress) {
        note_tail(rep, *seg, *b);
        break;
      }
    }
  }
  journal_report_ = rep;
  if (!table) return {};
  // A start the history already has (running, or finished) adds nothing.
  if (auto d = exec(db_,
                    "DELETE FROM temp.journal_runs WHERE status = 'running' AND run_id IN (SELECT run_id FROM main.runs)",
                    path_, "merging the journal");
      !d)
    return d;
  std::string base = schema_version_ < kSchemaVersion ? "(" + compat_select(schema_version_) + ")" : "main.runs";
  std::string view = "DROP VIEW IF EXISTS temp.runs; CREATE TEMP VIEW runs AS SELECT " + std::string(kColumns) +
                     " FROM " + base + " WHERE run_id NOT IN (SELECT run_id FROM temp.journal_runs) UNION ALL SELECT " +
                     kColumns + " FROM temp.journal_runs;";
  return exec(db_, view, path_, "creating the view over the history and its journal");
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
  const auto started = clock::now();
  auto deadline = started + std::chrono::milliseconds(deadline_ms);
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
      Error err = sqlite_error(db, "starting a write transaction", path);
      if (is_busy(sqlite3_extended_errcode(db)))
        err = Error(err.message() + ": another process held the write lock for " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(clock::now() - started).count()) +
                    "s");
      return std::unexpected(std::move(err));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
}

}  // namespace history_internal

}  // namespace cronrun
