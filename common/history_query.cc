// Reading the history for cronprof: filtered run lists, full records, the columns
// aggregates need, runs in progress, retention.
//
// cronprof is read-only, so a `running` row whose runner is gone (pid vanished, or
// the row was written in an earlier boot) is presented as `lost` here at read
// time; the stored row is left alone. Filters on running/lost therefore run in
// SQL as status = 'running' and are split row by row with the RunnerProbe.
//
// Aggregates use the indexed columns only; JSON is parsed only for the rows a
// command prints in full.
//
// A history file is not trusted to be well formed: any process that can write it
// (or a disk error) can leave a row whose record is not JSON, whose status is
// unknown or whose figures are text. Callers that list many rows pass a
// CorruptRowFn and get every other row; bytes that are not UTF-8 in a record are
// read as U+FFFD (the runner writes them so since it stopped aborting on them), so
// such a row is shown, not lost.
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/history.h"
#include "common/history_internal.h"

namespace cronrun {

using history_internal::column_double;
using history_internal::column_int;
using history_internal::column_text;
using history_internal::column_u64;
using history_internal::Stmt;

namespace {

// A WHERE clause with its parameters, built from a RunFilter.
struct Where {
  std::string sql;                       // "" or " WHERE ..."
  std::vector<std::string> texts;        // bound in order: texts then doubles
  std::vector<double> numbers;
  std::vector<std::pair<int, bool>> order;  // (index, is_text) per parameter

  void add(const std::string& clause) { sql += (sql.empty() ? " WHERE " : " AND ") + clause; }
  void text(const std::string& clause, std::string v) {
    order.emplace_back(static_cast<int>(texts.size()), true);
    texts.push_back(std::move(v));
    add(clause);
  }
  void number(const std::string& clause, double v) {
    order.emplace_back(static_cast<int>(numbers.size()), false);
    numbers.push_back(v);
    add(clause);
  }
  void bind(sqlite3_stmt* st) const {
    int i = 1;
    for (auto [idx, is_text] : order) {
      if (is_text)
        sqlite3_bind_text(st, i++, texts[static_cast<size_t>(idx)].c_str(), -1, SQLITE_TRANSIENT);
      else
        sqlite3_bind_double(st, i++, numbers[static_cast<size_t>(idx)]);
    }
  }
};

// Whether the status filter needs the probe (running vs lost).
bool needs_probe(const RunFilter& f) {
  return f.status && (*f.status == RunStatus::running || *f.status == RunStatus::lost);
}

Where where_of(const RunFilter& f) {
  Where w;
  if (f.job) w.text("job = ?", *f.job);
  if (f.since_unix_s) w.number("started_at >= ?", *f.since_unix_s);
  if (f.before_unix_s) w.number("started_at < ?", *f.before_unix_s);
  if (f.status) w.text("status = ?", needs_probe(f) ? "running" : to_string(*f.status));
  if (f.finished_only) w.add("status != 'running'");
  return w;
}

std::string limit_of(const RunFilter& f) {
  // With a probe-split status the limit is applied after the split.
  if (!f.limit || needs_probe(f)) return "";
  return " LIMIT " + std::to_string(*f.limit);
}

// Newest first; by_job groups the jobs first. `+job` keeps SQLite from walking the
// (job, started_at) index to avoid the sort: that index does not cover the
// figures, so every row would be a lookup in the table, whose rows carry the whole
// record. Reading the covering runs_figures index and sorting its rows with
// SQLite's external sorter (memory bounded by the cache size, the rest in
// temporary files) reads a fraction of the pages and holds no more in memory.
std::string order_of(const RunFilter& f) {
  return f.by_job ? " ORDER BY +job, started_at DESC, run_id DESC" : " ORDER BY started_at DESC, run_id DESC";
}

// Keeps a row of stored status `stored` (after lost substitution = `shown`)?
bool keep(const RunFilter& f, RunStatus shown) { return !needs_probe(f) || shown == *f.status; }

constexpr const char* kFigureColumns =
    "run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, "
    "max_rss_bytes, oom_kills, cpu_throttled_s, db_queries, db_time_s, memory_max_bytes, cpu_quota_pct, "
    "timeout_s, pids_peak, pids_max_events, pids_max, runner_pid, boot_id";

}  // namespace

Error HistoryStore::query_error(const std::string& what) const {
  int code = sqlite3_extended_errcode(db_);
  switch (code & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: last_fault_ = HistoryFault::corrupt; break;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY: last_fault_ = HistoryFault::unreadable; break;
    default: last_fault_ = HistoryFault::other;
  }
  return history_internal::sqlite_error(db_, what, path_).context("reading history " + path_);
}

Result<void> HistoryStore::scan(const RunFilter& filter, const std::function<void(const RunFigures&)>& fn) const {
  return scan(filter, fn, CorruptRowFn());
}

namespace {

// Which column of a scan's SELECT holds each RunFigures field; -1: not read.
struct Layout {
  const char* columns;
  int run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, max_rss_bytes,
      oom_kills, cpu_throttled_s, db_queries, db_time_s, memory_max_bytes, cpu_quota_pct, timeout_s, pids_peak,
      pids_max_events, pids_max, runner_pid, boot_id;
  // The figure columns are first_figure..last_figure (started_at the first).
  int first_figure, last_figure;
  bool every_run_id;  // read run_id on every row, not only where needed
  int host = -1;
};

constexpr Layout kAllFigures{kFigureColumns, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                             19, 20, 21, 3, 19, true};
// The same and the host, last.
constexpr const char* kFigureHostColumns =
    "run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, "
    "max_rss_bytes, oom_kills, cpu_throttled_s, db_queries, db_time_s, memory_max_bytes, cpu_quota_pct, "
    "timeout_s, pids_peak, pids_max_events, pids_max, runner_pid, boot_id, host";
constexpr Layout kAllFiguresHost{kFigureHostColumns, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                 18, 19, 20, 21, 3, 19, true, 22};
// What per-job summaries aggregate. run_id, runner_pid and boot_id come last and
// are read only for `running` rows (lost or not) and damaged ones.
constexpr Layout kSummaryFigures{
    "job, status, started_at, wall_s, cpu_s, memory_peak_bytes, max_rss_bytes, oom_kills, cpu_throttled_s, "
    "db_queries, run_id, runner_pid, boot_id",
    10, 0, 1, 2, -1, 3, -1, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1, -1, 11, 12, 2, 9, false, -1};

// A figure column holds a number or NULL; text or a blob there is damage, and
// sqlite3_column_double would silently read it as 0.
std::optional<std::string> bad_figure_column(sqlite3_stmt* s, const Layout& l) {
  for (int col = l.first_figure; col <= l.last_figure; ++col) {
    int type = sqlite3_column_type(s, col);
    if (type == SQLITE_TEXT || type == SQLITE_BLOB || (col == l.started_at && type == SQLITE_NULL))
      return std::string(sqlite3_column_name(s, col)) + " is not a number";
  }
  return std::nullopt;
}

// The figures of a row after its status (layout columns; -1 leaves a field empty).
void fill_figures(sqlite3_stmt* s, const Layout& l, RunFigures& f) {
  auto dbl = [s](int col) { return col < 0 ? std::nullopt : column_double(s, col); };
  auto u64 = [s](int col) { return col < 0 ? std::nullopt : column_u64(s, col); };
  f.started_at_s = sqlite3_column_double(s, l.started_at);
  f.finished_at_s = dbl(l.finished_at);
  f.wall_s = dbl(l.wall_s);
  f.exit_code = l.exit_code < 0 ? std::nullopt : column_int(s, l.exit_code);
  f.cpu_s = dbl(l.cpu_s);
  f.memory_peak_bytes = u64(l.memory_peak_bytes);
  f.max_rss_bytes = u64(l.max_rss_bytes);
  f.oom_kills = u64(l.oom_kills);
  f.cpu_throttled_s = dbl(l.cpu_throttled_s);
  f.db_queries = dbl(l.db_queries);
  f.db_time_s = dbl(l.db_time_s);
  f.memory_max_bytes = u64(l.memory_max_bytes);
  f.cpu_quota_pct = dbl(l.cpu_quota_pct);
  f.timeout_s = dbl(l.timeout_s);
  f.pids_peak = u64(l.pids_peak);
  f.pids_max_events = u64(l.pids_max_events);
  f.pids_max = u64(l.pids_max);
}

// What a scan needs of its HistoryStore.
struct ScanContext {
  sqlite3* db;
  const std::string& path;
  const RunnerProbe& probe;
  HistoryFault& last_fault;
  std::function<Error(const std::string&)> query_error;
  // A running row whose runner is gone, read again (HistoryStore::settled_figures);
  // empty: the verdict is final.
  std::function<Result<std::optional<RunFigures>>(const std::string& run_id)> settle = {};
  // Give fn every row the SQL selects, whatever status it reads as (status_counts
  // splits the running rows itself).
  bool any_shown_status = false;
};

Result<void> scan_rows(const ScanContext& c, const Layout& l, const RunFilter& filter,
                       const std::function<void(const RunFigures&)>& fn,
                       const HistoryStore::CorruptRowFn& on_corrupt) {
  Where w = where_of(filter);
  std::string sql = std::string("SELECT ") + l.columns + " FROM runs" + w.sql + order_of(filter) + limit_of(filter);
  Stmt st;
  if (!st.prepare(c.db, sql, c.path)) return std::unexpected(c.query_error("preparing the run scan"));
  w.bind(st.get());
  size_t emitted = 0;
  RunFigures f;
  sqlite3_stmt* s = st.get();
  int rc;
  // assign() into the reused strings keeps their buffers: a million-row scan
  // then allocates nothing per row.
  auto text_into = [s](int col, std::string& out) {
    const unsigned char* t = sqlite3_column_text(s, col);
    out.assign(t ? reinterpret_cast<const char*>(t) : "", static_cast<size_t>(sqlite3_column_bytes(s, col)));
  };
  // A running row is lost when its runner is gone. The runner's start time is not
  // in runs_figures (only `running` rows need it): one primary-key lookup per
  // running row whose pid is alive.
  Stmt start_st;
  auto running_row_gone = [&](int64_t runner_pid, const std::string& row_boot_id) -> Result<bool> {
    if (c.probe.gone(runner_pid, 0, row_boot_id)) return true;
    if (runner_pid <= 0) return false;
    if (!start_st.get() && !start_st.prepare(c.db, "SELECT runner_start FROM runs WHERE run_id = ?1", c.path))
      return std::unexpected(c.query_error("preparing the runner lookup"));
    sqlite3_reset(start_st.get());
    sqlite3_bind_text(start_st.get(), 1, f.run_id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(start_st.get()) != SQLITE_ROW)
      return std::unexpected(c.query_error("reading the runner of run " + f.run_id));
    auto start = static_cast<uint64_t>(sqlite3_column_int64(start_st.get(), 0));
    return start != 0 && c.probe.gone(runner_pid, start, row_boot_id);
  };
  std::string status;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (l.every_run_id) text_into(l.run_id, f.run_id);
    text_into(l.job, f.job);
    if (l.host >= 0) text_into(l.host, f.host);
    text_into(l.status, status);
    auto parsed = parse_run_status(status);
    if (parsed) {
      if (auto bad = bad_figure_column(s, l)) parsed = fail(*bad);
    }
    if (!parsed) {
      if (!l.every_run_id) text_into(l.run_id, f.run_id);
      if (on_corrupt) {
        on_corrupt(f.run_id, parsed.error());
        continue;
      }
      c.last_fault = HistoryFault::corrupt;
      return std::unexpected(std::move(parsed.error()).context("history row " + f.run_id));
    }
    f.status = *parsed;
    std::optional<RunFigures> settled;
    if (f.status == RunStatus::running) {
      if (!l.every_run_id) text_into(l.run_id, f.run_id);
      auto lost = running_row_gone(sqlite3_column_int64(s, l.runner_pid), column_text(s, l.boot_id));
      if (!lost) return std::unexpected(lost.error());
      if (*lost && c.settle) {
        auto again = c.settle(f.run_id);
        if (!again) return std::unexpected(again.error());
        settled = std::move(*again);
      }
      if (*lost && !settled) f.status = RunStatus::lost;
    } else if (!l.every_run_id) {
      f.run_id.clear();
    }
    if (settled) {
      // Finished between this read and the probe: the row as it is now.
      if (!c.any_shown_status && !keep(filter, settled->status)) continue;
      fn(*settled);
    } else {
      if (!c.any_shown_status && !keep(filter, f.status)) continue;
      fill_figures(s, l, f);
      fn(f);
    }
    if (filter.limit && needs_probe(filter) && ++emitted >= *filter.limit) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return std::unexpected(c.query_error("scanning runs"));
  return {};
}

}  // namespace

Result<void> HistoryStore::scan(const RunFilter& filter, const std::function<void(const RunFigures&)>& fn,
                                const CorruptRowFn& on_corrupt) const {
  ScanContext c{db_, path_, probe_, last_fault_, [this](const std::string& what) { return query_error(what); }};
  if (!second_read_) c.settle = [this](const std::string& id) { return settled_figures(id); };
  return scan_rows(c, filter.with_host ? kAllFiguresHost : kAllFigures, filter, fn, on_corrupt);
}

Result<void> HistoryStore::scan_summary(const RunFilter& filter, const std::function<void(const RunFigures&)>& fn,
                                        const CorruptRowFn& on_corrupt) const {
  ScanContext c{db_, path_, probe_, last_fault_, [this](const std::string& what) { return query_error(what); }};
  if (!second_read_) c.settle = [this](const std::string& id) { return settled_figures(id); };
  return scan_rows(c, kSummaryFigures, filter, fn, on_corrupt);
}

// ---- the second read of a row found lost (history.h, HistoryStore::Settled) ----

HistoryStore::Settled::Stamp HistoryStore::Settled::stamp_of(const std::string& history_path) {
  Stamp st;
  struct stat j {}, r {};
  if (::lstat(journal::journal_path(history_path).c_str(), &j) == 0) {
    st.journal_ino = j.st_ino;
    st.journal_size = j.st_size;
  }
  if (::lstat(journal::retired_path(history_path).c_str(), &r) == 0) {
    st.retired_ino = r.st_ino;
    st.retired_size = r.st_size;
  }
  return st;
}

Result<HistoryStore::Settled*> HistoryStore::settled() const {
  // Taken before the open: a record appended in between is in the store and
  // also changes the stamp, so the next verdict opens it again (never the other
  // way round, a store older than its stamp).
  Settled::Stamp now = Settled::stamp_of(path_);
  if (settled_ && settled_->stamp == now) return settled_.get();
  settled_.reset();
  HistoryOpenOptions o;
  o.journal = journal_;
  auto s = open(path_, Mode::read_only, nullptr, o);
  if (!s) return std::unexpected(std::move(s.error()).context("reading runs whose runner is gone again"));
  s->second_read_ = true;
  settled_.reset(new Settled{now, std::move(*s), {}, {}});
  return settled_.get();
}

Result<std::optional<RunFigures>> HistoryStore::settled_figures(const std::string& run_id) const {
  auto again = settled();
  if (!again) return std::unexpected(again.error());
  Settled& st = **again;
  const HistoryStore& h = st.store;
  if (!st.figures.get()) {
    std::string sql = std::string("SELECT ") + kFigureHostColumns + " FROM runs WHERE run_id = ?1";
    if (!st.figures.prepare(h.db_, sql, h.path_)) return std::unexpected(h.query_error("preparing the run lookup"));
  }
  sqlite3_stmt* s = st.figures.get();
  sqlite3_reset(s);
  sqlite3_bind_text(s, 1, run_id.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::optional<RunFigures>();  // gone meanwhile (gc): lost as read
  if (rc != SQLITE_ROW) return std::unexpected(h.query_error("reading run " + run_id + " again"));
  auto status = parse_run_status(column_text(s, kAllFigures.status));
  if (!status) return std::unexpected(std::move(status.error()).context("history row " + run_id));
  if (*status == RunStatus::running) return std::optional<RunFigures>();
  if (auto bad = bad_figure_column(s, kAllFigures)) return fail(*bad + " (history row " + run_id + ")");
  RunFigures f;
  f.run_id = run_id;
  f.job = column_text(s, kAllFigures.job);
  f.host = column_text(s, kAllFiguresHost.host);
  f.status = *status;
  fill_figures(s, kAllFigures, f);
  return std::optional<RunFigures>(std::move(f));
}

namespace {

// The columns record_of_row reads, in order.
constexpr const char* kRecordColumns = "record, runner_pid, boot_id, run_id, runner_start";

// Length of the valid UTF-8 sequence at the front of `s` (RFC 3629: no overlong
// forms, surrogates or code points above U+10FFFF); 0 when there is none.
size_t utf8_sequence_length(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = b(0);
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i)
    if (b(i) < 0x80 || b(i) > 0xbf) return 0;
  return len;
}

// nlohmann's parser rejects a document with bytes that are not UTF-8; such a
// byte in a command or counter name is the job's doing, not damage, so it is read
// as U+FFFD like the runner now writes it.
std::string utf8_repaired(std::string text) {
  std::string_view rest(text);
  bool valid = true;
  for (size_t n; !rest.empty(); rest.remove_prefix(n)) {
    n = utf8_sequence_length(rest);
    if (n == 0) {
      valid = false;
      break;
    }
  }
  if (valid) return text;
  std::string out;
  out.reserve(text.size() + 16);
  rest = text;
  for (size_t n; !rest.empty(); rest.remove_prefix(n)) {
    n = utf8_sequence_length(rest);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      n = 1;
    } else {
      out.append(rest.substr(0, n));
    }
  }
  return out;
}

// Parses the record column of a kRecordColumns row and fills what the JSON does
// not carry. The status is the stored one (HistoryStore::apply_probe: lost).
Result<RunRecord> record_of_row(sqlite3_stmt* s) {
  if (sqlite3_column_type(s, 0) == SQLITE_NULL) return fail("stored record is missing");
  std::string text = utf8_repaired(column_text(s, 0));
  Result<RunRecord> r = [&]() -> Result<RunRecord> {
    if (auto fast = run_record_from_text_fast(text, /*runner_fields=*/false)) return std::move(*fast);
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail("stored record is not valid JSON");
    return run_record_from_json(j);
  }();
  if (!r) return r;
  r->runner_pid = sqlite3_column_int64(s, 1);
  r->boot_id = column_text(s, 2);
  r->runner_start = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
  return r;
}

}  // namespace

Result<void> HistoryStore::apply_probe(RunRecord& r) const {
  if (r.status != RunStatus::running || !probe_.gone(r.runner_pid, r.runner_start, r.boot_id)) return {};
  if (!second_read_) {
    auto again = settled_record(r.run_id);
    if (!again) return std::unexpected(again.error());
    if (*again) {
      r = std::move(**again);
      return {};
    }
  }
  r.status = RunStatus::lost;
  return {};
}

Result<std::optional<RunRecord>> HistoryStore::settled_record(const std::string& run_id) const {
  auto again = settled();
  if (!again) return std::unexpected(again.error());
  Settled& st = **again;
  const HistoryStore& h = st.store;
  if (!st.record.get()) {
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM runs WHERE run_id = ?1";
    if (!st.record.prepare(h.db_, sql, h.path_)) return std::unexpected(h.query_error("preparing the run lookup"));
  }
  sqlite3_stmt* s = st.record.get();
  sqlite3_reset(s);
  sqlite3_bind_text(s, 1, run_id.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::optional<RunRecord>();  // gone meanwhile (gc): lost as read
  if (rc != SQLITE_ROW) return std::unexpected(h.query_error("reading run " + run_id + " again"));
  auto r = record_of_row(s);
  if (!r) return std::unexpected(std::move(r.error()).context("history row " + run_id));
  if (r->status == RunStatus::running) return std::optional<RunRecord>();
  return std::optional<RunRecord>(std::move(*r));
}

Result<void> HistoryStore::each_run(const RunFilter& filter,
                                   const std::function<void(const RunRecord&)>& fn) const {
  return each_run(filter, fn, CorruptRowFn());
}

Result<void> HistoryStore::each_run(const RunFilter& filter, const std::function<void(const RunRecord&)>& fn,
                                    const CorruptRowFn& on_corrupt) const {
  Where w = where_of(filter);
  std::string sql = std::string("SELECT ") + kRecordColumns + " FROM runs" + w.sql +
                    " ORDER BY started_at DESC, run_id DESC" + limit_of(filter);
  Stmt st;
  if (!st.prepare(db_, sql, path_)) return std::unexpected(query_error("preparing the run query"));
  w.bind(st.get());
  size_t emitted = 0;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    auto r = record_of_row(st.get());
    if (!r) {
      if (on_corrupt) {
        on_corrupt(column_text(st.get(), 3), r.error());
        continue;
      }
      last_fault_ = HistoryFault::corrupt;
      return std::unexpected(std::move(r.error()).context("history row " + column_text(st.get(), 3)));
    }
    if (auto p = apply_probe(*r); !p) return std::unexpected(p.error());
    if (!keep(filter, r->status)) continue;
    fn(*r);
    if (filter.limit && ++emitted >= *filter.limit) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return std::unexpected(query_error("reading runs"));
  return {};
}

Result<std::vector<RunRecord>> HistoryStore::runs(const RunFilter& filter) const {
  std::vector<RunRecord> out;
  auto r = each_run(filter, [&](const RunRecord& rec) { out.push_back(rec); });
  if (!r) return std::unexpected(r.error());
  return out;
}

Result<void> HistoryStore::read_snapshot(const std::function<Result<void>()>& body) const {
  // A deferred BEGIN takes its read snapshot at the first statement, which is body's.
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK)
    return std::unexpected(query_error("starting a read transaction"));
  auto r = body();
  // Nothing to commit in a read transaction, but a failure to end it is still an
  // error the caller reports (the next query would run inside it).
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK && r)
    return std::unexpected(query_error("ending a read transaction"));
  return r;
}

Result<std::vector<std::string>> HistoryStore::jobs() const {
  Stmt st;
  if (!st.prepare(db_, "SELECT DISTINCT job FROM runs ORDER BY job", path_))
    return std::unexpected(query_error("preparing the job list"));
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(column_text(st.get(), 0));
  if (rc != SQLITE_DONE) return std::unexpected(query_error("listing jobs"));
  return out;
}

Result<std::map<std::string, std::map<RunStatus, uint64_t>>> HistoryStore::status_counts() const {
  std::map<std::string, std::map<RunStatus, uint64_t>> out;
  Stmt st;
  if (!st.prepare(db_, "SELECT job, status, count(*) FROM runs WHERE status != 'running' GROUP BY job, status", path_))
    return std::unexpected(query_error("preparing the status counts"));
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    auto status = parse_run_status(column_text(st.get(), 1));
    if (!status) {
      last_fault_ = HistoryFault::corrupt;
      return std::unexpected(std::move(status.error()).context("history of job " + column_text(st.get(), 0)));
    }
    out[column_text(st.get(), 0)][*status] += static_cast<uint64_t>(sqlite3_column_int64(st.get(), 2));
  }
  if (rc != SQLITE_DONE) return std::unexpected(query_error("counting runs by status"));
  // The running rows, split by what they read as: running, lost, or (finished
  // since the count above) their final status.
  RunFilter running;
  running.status = RunStatus::running;
  ScanContext c{db_, path_, probe_, last_fault_, [this](const std::string& what) { return query_error(what); }};
  if (!second_read_) c.settle = [this](const std::string& id) { return settled_figures(id); };
  c.any_shown_status = true;
  auto split = scan_rows(c, kAllFigures, running, [&](const RunFigures& f) { out[f.job][f.status]++; }, CorruptRowFn());
  if (!split) return std::unexpected(split.error());
  return out;
}

Result<uint64_t> HistoryStore::count(const RunFilter& filter) const {
  if (needs_probe(filter)) {
    RunFilter all = filter;
    all.limit.reset();
    uint64_t n = 0;
    auto r = scan(all, [&](const RunFigures&) { ++n; });
    if (!r) return std::unexpected(r.error());
    return n;
  }
  Where w = where_of(filter);
  Stmt st;
  if (!st.prepare(db_, "SELECT count(*) FROM runs" + w.sql, path_))
    return std::unexpected(query_error("preparing the count"));
  w.bind(st.get());
  if (sqlite3_step(st.get()) != SQLITE_ROW) return std::unexpected(query_error("counting runs"));
  return static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
}

Result<std::optional<RunRecord>> HistoryStore::find_run(std::string_view id_or_prefix) const {
  std::string key(id_or_prefix);
  if (key.size() < 4) return std::optional<RunRecord>();
  // Exact id first; then a prefix. Run ids are lower-case hex and dashes, all
  // below 0x7f, so [key, key || DEL) is exactly the ids starting with key and the
  // lookup stays on the primary key index.
  for (const char* where : {" WHERE run_id = ?1",
                            " WHERE run_id >= ?1 AND run_id < ?1 || char(127) ORDER BY run_id LIMIT 2"}) {
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM runs" + where;
    Stmt st;
    if (!st.prepare(db_, sql, path_)) return std::unexpected(query_error("preparing the run lookup"));
    sqlite3_bind_text(st.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
    std::vector<RunRecord> found;
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      auto r = record_of_row(st.get());
      if (!r) {
        last_fault_ = HistoryFault::corrupt;
        return std::unexpected(std::move(r.error()).context("history row " + column_text(st.get(), 3)));
      }
      if (auto p = apply_probe(*r); !p) return std::unexpected(p.error());
      found.push_back(std::move(*r));
    }
    if (rc != SQLITE_DONE) return std::unexpected(query_error("looking up run " + key));
    if (found.size() > 1) return fail("run id prefix '" + key + "' matches several runs; give more characters");
    if (found.size() == 1) return std::optional<RunRecord>(std::move(found.front()));
  }
  return std::optional<RunRecord>();
}

Result<std::optional<RunRecord>> HistoryStore::latest_run(std::string_view job) const {
  RunFilter f;
  f.job = std::string(job);
  f.limit = 1;
  auto r = runs(f);
  if (!r) return std::unexpected(r.error());
  if (r->empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(std::move(r->front()));
}

Result<std::map<std::string, double>> HistoryStore::last_success_by_job() const {
  Stmt st;
  if (!st.prepare(db_, "SELECT job, max(started_at) FROM runs WHERE status = 'ok' GROUP BY job", path_))
    return std::unexpected(query_error("preparing the last-success query"));
  std::map<std::string, double> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW)
    out[column_text(st.get(), 0)] = sqlite3_column_double(st.get(), 1);
  if (rc != SQLITE_DONE) return std::unexpected(query_error("reading last successes"));
  return out;
}

Result<std::vector<RunRecord>> HistoryStore::in_progress() const {
  RunFilter f;
  f.status = RunStatus::running;
  return runs(f);
}

Result<std::map<std::string, std::map<RunStatus, uint64_t>>> HistoryStore::removed_counts() const {
  std::map<std::string, std::map<RunStatus, uint64_t>> out;
  if (schema_version_ < 6) return out;  // read-only on an older file: nothing was counted
  Stmt st;
  if (!st.prepare(db_, "SELECT job, status, runs FROM main.removed_runs", path_))
    return std::unexpected(query_error("preparing the removed-run counts"));
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    auto status = parse_run_status(column_text(st.get(), 1));
    if (!status) {
      last_fault_ = HistoryFault::corrupt;
      return std::unexpected(std::move(status.error()).context("removed runs of job " + column_text(st.get(), 0)));
    }
    out[column_text(st.get(), 0)][*status] += static_cast<uint64_t>(sqlite3_column_int64(st.get(), 2));
  }
  if (rc != SQLITE_DONE) return std::unexpected(query_error("reading the removed-run counts"));
  return out;
}

Result<uint64_t> HistoryStore::delete_before(double cutoff_unix_s, bool dry_run) {
  if (mode_ == Mode::read_only && !dry_run) return fail("history " + path_ + " is open read-only");
  uint64_t deleted = 0;
  auto body = [&]() -> Result<void> {
    deleted = 0;
    // Old `running` rows are kept while their runner lives (a job may run long).
    std::vector<std::string> lost;
    {
      Stmt st;
      if (!st.prepare(db_,
                      "SELECT run_id, runner_pid, boot_id, runner_start FROM runs "
                      "WHERE status = 'running' AND started_at < ?1",
                      path_))
        return std::unexpected(query_error("preparing retention"));
      sqlite3_bind_double(st.get(), 1, cutoff_unix_s);
      int rc;
      while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
        if (!probe_.gone(sqlite3_column_int64(st.get(), 1), static_cast<uint64_t>(sqlite3_column_int64(st.get(), 3)),
                         column_text(st.get(), 2)))
          continue;
        std::string id = column_text(st.get(), 0);
        // Its FINISH may be in the journal, not folded yet: the next fold completes
        // the row, which must then still be there (and not counted lost).
        auto again = settled_figures(id);
        if (!again) return std::unexpected(again.error());
        if (!*again) lost.push_back(std::move(id));
      }
      if (rc != SQLITE_DONE) return std::unexpected(query_error("reading old running rows"));
    }
    if (!dry_run) {
      // Counted before they go, in this transaction: the counts and the rows
      // never disagree, whatever instant a crash hits.
      Stmt add;
      if (!add.prepare(db_,
                       "INSERT INTO removed_runs (job, status, runs) "
                       "SELECT job, status, count(*) FROM runs WHERE started_at < ?1 AND status != 'running' "
                       "GROUP BY job, status ON CONFLICT (job, status) DO UPDATE SET runs = runs + excluded.runs",
                       path_))
        return std::unexpected(query_error("preparing the removed-run counts"));
      sqlite3_bind_double(add.get(), 1, cutoff_unix_s);
      if (sqlite3_step(add.get()) != SQLITE_DONE) return std::unexpected(query_error("counting removed runs"));
    }
    Stmt del;
    const char* sql = dry_run ? "SELECT count(*) FROM runs WHERE started_at < ?1 AND status != 'running'"
                              : "DELETE FROM runs WHERE started_at < ?1 AND status != 'running'";
    if (!del.prepare(db_, sql, path_)) return std::unexpected(query_error("preparing retention"));
    sqlite3_bind_double(del.get(), 1, cutoff_unix_s);
    int rc = sqlite3_step(del.get());
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return std::unexpected(query_error("deleting old runs"));
    deleted = dry_run ? static_cast<uint64_t>(sqlite3_column_int64(del.get(), 0))
                      : static_cast<uint64_t>(sqlite3_changes64(db_));
    if (dry_run) {
      deleted += lost.size();
      return {};
    }
    Stmt one, count_lost;
    if (!one.prepare(db_, "DELETE FROM runs WHERE run_id = ?1", path_) ||
        !count_lost.prepare(db_,
                            "INSERT INTO removed_runs (job, status, runs) SELECT job, 'lost', 1 FROM runs "
                            "WHERE run_id = ?1 ON CONFLICT (job, status) DO UPDATE SET runs = runs + 1",
                            path_))
      return std::unexpected(query_error("preparing retention"));
    for (const std::string& id : lost) {
      sqlite3_reset(count_lost.get());
      sqlite3_bind_text(count_lost.get(), 1, id.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(count_lost.get()) != SQLITE_DONE) return std::unexpected(query_error("counting lost run " + id));
      sqlite3_reset(one.get());
      sqlite3_bind_text(one.get(), 1, id.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(one.get()) != SQLITE_DONE) return std::unexpected(query_error("deleting lost run " + id));
      deleted += static_cast<uint64_t>(sqlite3_changes64(db_));
    }
    return {};
  };
  // A dry run only counts: on a read-only open (a user who may not write) it reads.
  auto done = dry_run && mode_ == Mode::read_only ? body() : history_internal::write_transaction(db_, path_, body);
  if (!done) return std::unexpected(done.error());
  return deleted;
}

}  // namespace cronrun
