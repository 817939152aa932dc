// PgHistory: libpq through a typed function table (dlopen of libpq.so.5, kept for
// the life of the process), the schema's migrations (common/pg_schema.h), the batch
// write and the reads.
//
// Every statement with values is sent with PQexecParams (text parameters, never
// spliced into SQL); the migrations, several statements each, with PQexec. libpq reports a dropped connection (server stopped
// `-m immediate`, restarted) as a failed result; such a connection is not reused:
// the caller opens a new one. Notices (CREATE SCHEMA IF NOT EXISTS ...) are
// swallowed: libpq would print them on stderr, which is /dev/null or a cron mail.
#include "common/pg_history.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/dynlib.h"
#include "common/pg_schema.h"

namespace cronrun::pg {

namespace {

// The functions cronrun calls, typed by libpq's own declarations.
struct Api {
  decltype(&::PQconnectdbParams) connectdb_params;
  decltype(&::PQstatus) status;
  decltype(&::PQerrorMessage) error_message;
  decltype(&::PQfinish) finish;
  decltype(&::PQexec) exec;
  decltype(&::PQexecParams) exec_params;
  decltype(&::PQresultStatus) result_status;
  decltype(&::PQresultErrorMessage) result_error_message;
  decltype(&::PQclear) clear;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQgetvalue) getvalue;
  decltype(&::PQgetisnull) getisnull;
  decltype(&::PQsetNoticeProcessor) set_notice_processor;
};

Result<Api> load() {
  auto lib = DynLib::open("libpq.so.5");
  if (!lib) return std::unexpected(lib.error());
  Api a{};
  std::optional<Error> missing;
  auto get = [&](auto& fn, const char* name) {
    auto s = lib->symbol<std::remove_reference_t<decltype(fn)>>(name);
    if (s)
      fn = *s;
    else if (!missing)
      missing = s.error();
  };
  get(a.connectdb_params, "PQconnectdbParams");
  get(a.status, "PQstatus");
  get(a.error_message, "PQerrorMessage");
  get(a.finish, "PQfinish");
  get(a.exec, "PQexec");
  get(a.exec_params, "PQexecParams");
  get(a.result_status, "PQresultStatus");
  get(a.result_error_message, "PQresultErrorMessage");
  get(a.clear, "PQclear");
  get(a.ntuples, "PQntuples");
  get(a.getvalue, "PQgetvalue");
  get(a.getisnull, "PQgetisnull");
  get(a.set_notice_processor, "PQsetNoticeProcessor");
  if (missing) return std::unexpected(*missing);
  return a;
}

Result<const Api*> api() {
  static const Result<Api> loaded = load();
  if (!loaded) return std::unexpected(loaded.error());
  return &*loaded;
}

void ignore_notice(void*, const char*) {}

// libpq's messages end in a newline and may span lines ("ERROR: ...\nDETAIL: ..."):
// one line, for logs and one-line errors.
std::string one_line(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s.empty() ? "unknown libpq error" : s;
}


// A result owned until the end of the scope.
class PgResult {
 public:
  PgResult(const Api* api, PGresult* r) : api_(api), r_(r) {}
  PgResult(PgResult&& o) noexcept : api_(o.api_), r_(std::exchange(o.r_, nullptr)) {}
  PgResult& operator=(PgResult&&) = delete;
  PgResult(const PgResult&) = delete;
  ~PgResult() {
    if (r_) api_->clear(r_);
  }
  int rows() const { return api_->ntuples(r_); }
  bool null(int row, int col) const { return api_->getisnull(r_, row, col) != 0; }
  std::string text(int row, int col) const { return api_->getvalue(r_, row, col); }
  std::optional<std::string> opt(int row, int col) const {
    if (null(row, col)) return std::nullopt;
    return text(row, col);
  }
  double number(int row, int col) const { return std::strtod(api_->getvalue(r_, row, col), nullptr); }
  int64_t integer(int row, int col) const { return std::strtoll(api_->getvalue(r_, row, col), nullptr, 10); }

 private:
  const Api* api_;
  PGresult* r_;
};

// "YYYY-MM-DDTHH:MM:SSZ" for a timestamptz column (the SQL formats it).
constexpr const char* kTickSql = "to_char(tick AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

std::string param_time(double unix_s) { return fmt::format("{:.6f}", unix_s); }

// A text[] literal of `items`, each quoted, for a `$n::text[]` parameter.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

const char* to_string(RecordOutcome::Kind k) {
  switch (k) {
    case RecordOutcome::Kind::stored: return "stored";
    case RecordOutcome::Kind::unchanged: return "unchanged";
    case RecordOutcome::Kind::refused: return "refused";
    case RecordOutcome::Kind::dead: return "dead";
  }
  return "?";
}

namespace {

// %XX sequences decoded; a malformed one is kept as written.
std::string percent_decoded(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The passwords `uri` carries (user:PASSWORD@, password=PASSWORD), as written and
// decoded: libpq quotes them in its own messages (a malformed %-token as it is, a
// URI it cannot parse whole), so those are searched for them.
// Where the password of a URI's user info (scheme://user:PASSWORD@host/...) is,
// as libpq reads it: the user info ends at the first '@' before any '/'. {0, 0}
// when there is none.
std::pair<size_t, size_t> uri_password_span(std::string_view uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string_view::npos) return {0, 0};
  size_t start = scheme + 3;
  size_t at = uri.find('@', start);
  size_t slash = uri.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) return {0, 0};
  size_t colon = uri.find(':', start);
  if (colon == std::string_view::npos || colon > at) return {0, 0};
  return {colon + 1, at - colon - 1};
}

std::vector<std::string> uri_secrets(std::string_view uri) {
  std::vector<std::string> out;
  auto add = [&](std::string_view raw) {
    if (raw.empty()) return;
    out.emplace_back(raw);
    if (std::string d = percent_decoded(raw); d != raw && !d.empty()) out.push_back(std::move(d));
  };
  if (auto [pos, len] = uri_password_span(uri); len) add(uri.substr(pos, len));
  for (size_t p = uri.find("password="); p != std::string_view::npos; p = uri.find("password=", p + 1)) {
    size_t v = p + 9;
    size_t end = uri.find_first_of("& ", v);
    add(uri.substr(v, (end == std::string_view::npos ? uri.size() : end) - v));
  }
  // Longest first: a decoded form inside a raw one is replaced with it.
  std::ranges::sort(out, [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

}  // namespace

std::string redact_secrets(std::string text, const std::string& uri) {
  for (const std::string& secret : uri_secrets(uri))
    for (size_t p = text.find(secret); p != std::string::npos; p = text.find(secret, p + 3))
      text.replace(p, secret.size(), "***");
  return redact_uri(text);
}

std::string redact_uri(const std::string& uri) {
  std::string out = uri;
  // postgresql://user:secret@host/...
  if (auto [pos, len] = uri_password_span(out); len) out.replace(pos, len, "***");
  // ...?password=secret&... and key=value strings: password=secret
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    size_t v = p + 9;
    size_t end = out.find_first_of("& ", v);
    out.replace(v, (end == std::string::npos ? out.size() : end) - v, "***");
  }
  return out;
}

struct PgHistory::Impl {
  const Api* api = nullptr;
  PGconn* conn = nullptr;
  std::string where;  // redacted URI, for messages
  std::string uri;    // as given: its password is hidden in libpq's messages

  ~Impl() {
    if (conn) api->finish(conn);
  }

  Error error_of(PGresult* r, const std::string& what) const {
    const char* msg = r ? api->result_error_message(r) : api->error_message(conn);
    if (!msg || !*msg) msg = api->error_message(conn);
    return Error(what + " (" + where + "): " + redact_secrets(one_line(msg), uri), ErrorKind::history);
  }

  // Runs `sql` with text parameters; a result that is not COMMAND_OK / TUPLES_OK is
  // an error saying `what`.
  Result<PgResult> exec(const std::string& what, const char* sql, const std::vector<std::optional<std::string>>& params = {}) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    // Without parameters, the simple protocol: a migration is several statements.
    PGresult* r = values.empty() ? api->exec(conn, sql)
                                 : api->exec_params(conn, sql, static_cast<int>(values.size()), nullptr,
                                                    values.data(), nullptr, nullptr, 0);
    PgResult owned(api, r);
    if (!r) return std::unexpected(error_of(nullptr, what));
    auto st = api->result_status(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return std::unexpected(error_of(r, what));
    return owned;
  }

  Result<void> exec_void(const std::string& what, const char* sql, const std::vector<std::optional<std::string>>& params = {}) {
    auto r = exec(what, sql, params);
    if (!r) return std::unexpected(r.error());
    return {};
  }

  // Rolls back after a failed step; a failure to roll back (the connection is
  // gone) is already what the caller reports.
  void rollback() {
    if (auto r = exec("rolling back", "ROLLBACK"); !r) {
      // nothing more to do: the connection is dead and the transaction with it
    }
  }

  Result<int> version() {
    // From the catalogs with this statement's snapshot, not to_regclass: that
    // consults the session's name cache, which can still hold "no such relation"
    // from before another forwarder's migration committed (an advisory lock, unlike
    // a relation lock, does not refresh it), so migrate() would run the first
    // migration again and fail on "already exists".
    auto r = exec("reading the schema version",
                  "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                  "ON n.oid = c.relnamespace WHERE n.nspname = 'cronrun' AND c.relname = 'cronrun_meta') "
                  "THEN 1 END");
    if (!r) return std::unexpected(r.error());
    if (r->null(0, 0)) return 0;
    auto v = exec("reading the schema version", "SELECT value FROM cronrun.cronrun_meta WHERE key = 'schema_version'");
    if (!v) return std::unexpected(v.error());
    if (v->rows() == 0) return fail("cronrun.cronrun_meta has no schema_version (" + where + ")", ErrorKind::corrupt);
    std::string text = v->text(0, 0);
    char* end = nullptr;
    long n = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end || n < 1)
      return fail("cronrun.cronrun_meta: schema_version '" + text + "' is not a version (" + where + ")",
                  ErrorKind::corrupt);
    return static_cast<int>(n);
  }
};

PgHistory::PgHistory(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgHistory::PgHistory(PgHistory&&) noexcept = default;
PgHistory& PgHistory::operator=(PgHistory&&) noexcept = default;
PgHistory::~PgHistory() = default;

Result<PgHistory> PgHistory::open(const std::string& uri) {
  auto a = api();
  if (!a) return std::unexpected(std::move(Error(a.error())).context("the fleet history needs libpq").with_kind(ErrorKind::history));
  auto impl = std::make_unique<Impl>();
  impl->api = *a;
  impl->where = redact_uri(uri);
  impl->uri = uri;
  // Our defaults first: the URI (expanded from dbname) overrides them.
  const char* keys[] = {"connect_timeout", "application_name", "keepalives_idle", "dbname", nullptr};
  const char* values[] = {"10", "cronrun", "30", uri.c_str(), nullptr};
  impl->conn = impl->api->connectdb_params(keys, values, 1);
  if (!impl->conn) return fail("connecting to " + impl->where + ": out of memory", ErrorKind::history);
  impl->api->set_notice_processor(impl->conn, ignore_notice, nullptr);
  if (impl->api->status(impl->conn) != CONNECTION_OK)
    return fail("connecting to " + impl->where + ": " + redact_secrets(one_line(impl->api->error_message(impl->conn)), uri),
                ErrorKind::history);
  // Timestamps come back as UTC whatever the server's or role's default.
  if (auto r = impl->exec_void("setting the session time zone", "SET TIME ZONE 'UTC'"); !r)
    return std::unexpected(r.error());
  // A forwarder moves its journal cursor past a batch once PostgreSQL says it
  // committed, so a commit must be durable when acknowledged: with the server's (or
  // role's) synchronous_commit = off, a commit PostgreSQL loses in a crash or an
  // immediate stop would be lost for good. A stronger setting (remote_write, on,
  // remote_apply, local) is left as it is.
  if (auto r = impl->exec_void("making this session's commits durable",
                               "SELECT set_config('synchronous_commit', 'on', false) "
                               "WHERE current_setting('synchronous_commit') = 'off'");
      !r)
    return std::unexpected(r.error());
  return PgHistory(std::move(impl));
}

Result<int> PgHistory::schema_version() { return impl_->version(); }

Result<void> PgHistory::migrate() {
  Impl& d = *impl_;
  // The common case, a current schema, needs no lock and no write privilege.
  auto v = d.version();
  if (!v) return std::unexpected(v.error());
  if (*v == kSchemaVersion) return {};
  if (*v > kSchemaVersion)
    return fail(fmt::format("the fleet history {} has schema version {}, newer than this cronrun's {}: upgrade cronrun",
                            d.where, *v, kSchemaVersion),
                ErrorKind::newer);
  if (auto b = d.exec_void("starting the migration", "BEGIN"); !b) return b;
  auto step = [&]() -> Result<void> {
    if (auto l = d.exec_void("locking the schema for migration", "SELECT pg_advisory_xact_lock($1)",
                             {std::to_string(schema::kMigrationLock)});
        !l)
      return l;
    // Another forwarder may have migrated while we waited.
    auto now = d.version();
    if (!now) return std::unexpected(now.error());
    if (*now > kSchemaVersion)
      return fail(fmt::format("the fleet history {} has schema version {}, newer than this cronrun's {}: upgrade cronrun",
                              d.where, *now, kSchemaVersion),
                  ErrorKind::newer);
    for (int from = *now; from < kSchemaVersion; ++from) {
      if (auto m = d.exec_void(fmt::format("migrating the fleet history from schema {} to {}", from, from + 1),
                               schema::kMigrations[static_cast<size_t>(from)]);
          !m) {
        Error e = m.error();
        if (e.message().find("permission denied") != std::string::npos)
          e.context("the role of this URI may not create or alter the schema; connect once as its owner "
                    "(contrib/fleet-role.sql)");
        return std::unexpected(std::move(e));
      }
    }
    return d.exec_void("recording the schema version",
                       "INSERT INTO cronrun.cronrun_meta (key, value) VALUES ('schema_version', $1) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       {std::to_string(kSchemaVersion)});
  };
  if (auto s = step(); !s) {
    d.rollback();
    return s;
  }
  return d.exec_void("committing the migration", "COMMIT");
}

Result<void> PgHistory::require_current() {
  auto v = impl_->version();
  if (!v) return std::unexpected(v.error());
  if (*v == kSchemaVersion) return {};
  if (*v > kSchemaVersion)
    return fail(fmt::format("the fleet history {} has schema version {}, newer than this cronrun's {}: upgrade cronrun",
                            impl_->where, *v, kSchemaVersion),
                ErrorKind::newer);
  if (*v == 0)
    return fail("the fleet history " + impl_->where +
                    " has no cronrun schema yet: a forwarder creates it (cronrun --flush on a fleet host)",
                ErrorKind::not_found);
  return fail(fmt::format("the fleet history {} has schema version {}, older than this cronrun's {}: a forwarder "
                          "migrates it (cronrun --flush on a fleet host)",
                          impl_->where, *v, kSchemaVersion),
              ErrorKind::corrupt);
}

Result<std::vector<RecordOutcome>> PgHistory::put_batch(const std::string& host, const std::vector<BatchRecord>& records) {
  std::string batch;
  size_t bytes = 0;
  for (const auto& r : records) bytes += r.record_json.size() + 32;
  batch.reserve(bytes);
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    // A newline inside the JSON would split the record in two: a JSON text never
    // needs one (strings escape it), so a record carrying one is not JSON we made.
    if (r.record_json.find('\n') != std::string::npos)
      return fail(fmt::format("record {} of the batch contains a raw newline: not one-line JSON", i));
    if (i) batch += '\n';
    batch += r.kind == BatchRecord::Kind::start ? R"({"type":"start","record":)" : R"({"type":"finish","record":)";
    batch += r.record_json;
    batch += '}';
  }
  auto res = impl_->exec(fmt::format("storing a batch of {} record(s)", records.size()),
                         "SELECT ord, outcome, detail FROM cronrun.put_batch($1, $2)", {host, batch});
  if (!res) return std::unexpected(res.error());
  if (static_cast<size_t>(res->rows()) != records.size())
    return fail(fmt::format("storing a batch of {} record(s) ({}): the database answered {} outcome(s)", records.size(),
                            impl_->where, res->rows()),
                ErrorKind::history);
  std::vector<RecordOutcome> out(records.size());
  for (int row = 0; row < res->rows(); ++row) {
    int64_t ord = res->integer(row, 0);
    if (ord < 1 || static_cast<size_t>(ord) > records.size())
      return fail(fmt::format("storing a batch ({}): outcome for record {} of {}", impl_->where, ord, records.size()),
                  ErrorKind::history);
    std::string o = res->text(row, 1);
    RecordOutcome& ro = out[static_cast<size_t>(ord - 1)];
    if (o == "stored")
      ro.kind = RecordOutcome::Kind::stored;
    else if (o == "unchanged")
      ro.kind = RecordOutcome::Kind::unchanged;
    else if (o == "refused")
      ro.kind = RecordOutcome::Kind::refused;
    else
      ro.kind = RecordOutcome::Kind::dead;
    ro.detail = res->opt(row, 2).value_or("");
  }
  return out;
}

Result<bool> PgHistory::mark_lost(const std::string& run_id, int64_t fence, const std::string& note) {
  auto r = impl_->exec("marking run " + run_id + " lost", "SELECT cronrun.mark_lost($1, $2, $3)",
                       {run_id, std::to_string(fence), note});
  if (!r) return std::unexpected(r.error());
  return r->rows() == 1 && r->text(0, 0) == "t";
}

Result<RunRecord> run_from_row(const std::string& host, const std::string& status, const std::string& record_json) {
  Result<RunRecord> r = [&]() -> Result<RunRecord> {
    if (auto fast = run_record_from_text_fast(record_json, /*runner_fields=*/false)) return std::move(*fast);
    auto j = nlohmann::json::parse(record_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail("record is not JSON", ErrorKind::corrupt);
    return run_record_from_json(j);
  }();
  if (!r) return std::unexpected(r.error());
  // What a history row needs (cronprof copies the row into one): without it the
  // copy would refuse the row and fail the whole command, for one host's record.
  if (r->run_id.empty() || r->job.empty()) return fail("record has no run_id or job", ErrorKind::corrupt);
  if (auto t = parse_rfc3339(r->started_at); !t) return std::unexpected(std::move(t.error()).context("started_at"));
  if (r->finished_at)
    if (auto t = parse_rfc3339(*r->finished_at); !t) return std::unexpected(std::move(t.error()).context("finished_at"));
  auto st = parse_run_status(status);
  if (!st) return std::unexpected(st.error());
  r->status = *st;
  r->host = host;
  return r;
}

Result<void> PgHistory::each_run(const RunFilter& filter, const std::function<void(const RunRecord&)>& fn,
                                 const CorruptRowFn& on_corrupt) {
  Impl& d = *impl_;
  std::string where = "TRUE";
  std::vector<std::optional<std::string>> params;
  auto add = [&](const char* cond, std::string value) {
    params.push_back(std::move(value));
    where += fmt::format(" AND {}${}", cond, params.size());
  };
  // Each job's newest: the jobs (given, or every job by a walk of the
  // (job, started_at) index), then one index probe each. A DISTINCT ON over the
  // matching rows would sort them all, records included.
  std::string jobs_from;
  if (filter.newest_per_job) {
    if (filter.job || filter.jobs) {
      params.push_back(filter.job ? text_array({*filter.job}) : text_array(*filter.jobs));
      jobs_from = fmt::format("unnest(${}::text[]) AS j(job)", params.size());
    } else {
      jobs_from = "jobs AS j";
    }
    where += " AND r.job = j.job";
  } else {
    if (filter.job) add("job = ", *filter.job);
    if (filter.jobs) add("job = ANY(", text_array(*filter.jobs)), where += "::text[])";
  }
  if (filter.run_id_prefix) add("starts_with(run_id, ", *filter.run_id_prefix), where += ")";
  if (filter.host) add("host = ", *filter.host);
  if (filter.since_unix_s) add("started_at >= to_timestamp(", param_time(*filter.since_unix_s)), where += ")";
  if (filter.before_unix_s) add("started_at < to_timestamp(", param_time(*filter.before_unix_s)), where += ")";
  if (filter.status) add("status = ", to_string(*filter.status));
  for (RunStatus st : filter.not_statuses) add("status <> ", to_string(st));
  std::string sql = "DECLARE cronrun_runs NO SCROLL CURSOR FOR ";
  if (filter.newest_per_job_host) {
    // The pairs' newest found on the narrow columns, then their records fetched.
    sql += "SELECT r.run_id, r.host, r.status, r.record::text FROM cronrun.runs r JOIN (SELECT DISTINCT ON (job, host) "
           "run_id FROM cronrun.runs WHERE " + where +
           " ORDER BY job, host, started_at DESC, run_id DESC) n USING (run_id) ORDER BY r.job, r.host";
  } else if (!filter.newest_per_job) {
    sql += "SELECT run_id, host, status, record::text FROM cronrun.runs WHERE " + where +
           " ORDER BY started_at DESC, run_id DESC";
  } else {
    if (jobs_from == "jobs AS j")
      sql += "WITH RECURSIVE jobs(job) AS ((SELECT job FROM cronrun.runs ORDER BY job LIMIT 1) UNION ALL "
             "SELECT (SELECT r.job FROM cronrun.runs r WHERE r.job > jobs.job ORDER BY r.job LIMIT 1) FROM jobs "
             "WHERE jobs.job IS NOT NULL) ";
    sql += "SELECT n.run_id, n.host, n.status, n.record::text FROM " + jobs_from +
           " CROSS JOIN LATERAL (SELECT run_id, host, status, record FROM cronrun.runs r WHERE " + where +
           " ORDER BY started_at DESC, run_id DESC LIMIT 1) n WHERE j.job IS NOT NULL ORDER BY j.job";
  }
  if (filter.limit) sql += " LIMIT " + std::to_string(*filter.limit);

  if (auto b = d.exec_void("reading runs", "BEGIN READ ONLY"); !b) return b;
  auto body = [&]() -> Result<void> {
    if (auto c = d.exec_void("reading runs", sql.c_str(), params); !c) return c;
    for (;;) {
      auto chunk = d.exec("reading runs", "FETCH 1000 FROM cronrun_runs");
      if (!chunk) return std::unexpected(chunk.error());
      if (chunk->rows() == 0) return {};
      for (int row = 0; row < chunk->rows(); ++row) {
        std::string run_id = chunk->text(row, 0);
        auto parsed = run_from_row(chunk->text(row, 1), chunk->text(row, 2), chunk->text(row, 3));
        if (!parsed) {
          Error e = std::move(parsed.error()).context("run " + run_id + " in " + d.where);
          if (!on_corrupt) return std::unexpected(std::move(e).with_kind(ErrorKind::corrupt));
          on_corrupt(run_id, e);
          continue;
        }
        fn(*parsed);
      }
    }
  };
  if (auto r = body(); !r) {
    d.rollback();
    return r;
  }
  return d.exec_void("reading runs", "COMMIT");
}

Result<std::vector<DeadLetter>> PgHistory::dead_letters(std::optional<size_t> limit) {
  std::string sql = "SELECT id, host, run_id, extract(epoch FROM received_at)::float8, reason, payload "
                    "FROM cronrun.dead_letters ORDER BY id DESC";
  if (limit) sql += " LIMIT " + std::to_string(*limit);
  auto r = impl_->exec("reading dead letters", sql.c_str());
  if (!r) return std::unexpected(r.error());
  std::vector<DeadLetter> out;
  for (int i = 0; i < r->rows(); ++i)
    out.push_back(DeadLetter{r->integer(i, 0), r->text(i, 1), r->opt(i, 2), r->number(i, 3), r->text(i, 4),
                             r->text(i, 5)});
  return out;
}

Result<uint64_t> PgHistory::dead_letter_count() {
  auto r = impl_->exec("counting dead letters", "SELECT count(*) FROM cronrun.dead_letters");
  if (!r) return std::unexpected(r.error());
  return static_cast<uint64_t>(r->integer(0, 0));
}

Result<std::vector<HostSeen>> PgHistory::hosts_last_seen() {
  auto r = impl_->exec("reading hosts", "SELECT host, extract(epoch FROM last_seen)::float8 FROM cronrun.hosts ORDER BY host");
  if (!r) return std::unexpected(r.error());
  std::vector<HostSeen> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(HostSeen{r->text(i, 0), r->number(i, 1)});
  return out;
}

Result<std::vector<RunningRow>> PgHistory::running_rows() {
  std::string sql = std::string("SELECT run_id, job, host, fence, ") + kTickSql +
                    ", extract(epoch FROM started_at)::float8, extract(epoch FROM now() - updated_at)::float8 "
                    "FROM cronrun.runs WHERE status = 'running' AND fence IS NOT NULL ORDER BY updated_at";
  auto r = impl_->exec("reading running rows", sql.c_str());
  if (!r) return std::unexpected(r.error());
  std::vector<RunningRow> out;
  for (int i = 0; i < r->rows(); ++i)
    out.push_back(RunningRow{r->text(i, 0), r->text(i, 1), r->text(i, 2), r->integer(i, 3), r->opt(i, 4),
                             r->number(i, 5), r->number(i, 6)});
  return out;
}

Result<std::vector<StatusCount>> PgHistory::status_counts(const std::optional<std::string>& job) {
  std::vector<std::optional<std::string>> params;
  std::string sql = "SELECT job, host, status, count(*) FROM cronrun.runs";
  if (job) {
    sql += " WHERE job = $1";
    params.push_back(*job);
  }
  sql += " GROUP BY job, host, status ORDER BY job, host, status";
  auto r = impl_->exec("counting runs", sql.c_str(), params);
  if (!r) return std::unexpected(r.error());
  std::vector<StatusCount> out;
  for (int i = 0; i < r->rows(); ++i) {
    auto st = parse_run_status(r->text(i, 2));
    if (!st) continue;
    out.push_back(StatusCount{r->text(i, 0), r->text(i, 1), *st, static_cast<uint64_t>(r->integer(i, 3))});
  }
  return out;
}

Result<std::vector<JobFence>> PgHistory::job_fences() {
  std::string sql = std::string("SELECT job, fence, host, ") + kTickSql + " FROM cronrun.job_fences ORDER BY job";
  auto r = impl_->exec("reading job fences", sql.c_str());
  if (!r) return std::unexpected(r.error());
  std::vector<JobFence> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(JobFence{r->text(i, 0), r->integer(i, 1), r->text(i, 2), r->opt(i, 3)});
  return out;
}

}  // namespace cronrun::pg
