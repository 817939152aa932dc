// The fleet forwarder: journal consumer "fleet" -> PostgreSQL, then lost marking.
// See forward.h for the contract. What this file handles:
//
// - Order of commits: PostgreSQL commits a batch (put_batch is one statement, its
//   own transaction) before consume_journal moves the cursor in SQLite. Killed in
//   between, the next pass sends the batch again: every record comes back
//   `unchanged` (or a dead letter already kept), nothing doubles.
// - The detached forwarder is a fork of the runner without exec: it must not keep
//   the runner's descriptors (the job's lock file above all: a forwarder holding it
//   would make the next run of the job wait or skip), so every fd but stdio and
//   sockets is closed. Sockets stay: the journald / syslog sockets are cached by
//   libsystemd and libc, and closing them under those libraries would let a later
//   open reuse the number, so log lines would be written into whatever got it.
#include "runner/forward.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/etcd.h"
#include "common/fd.h"
#include "common/history.h"
#include "common/journal.h"
#include "common/pg_history.h"
#include "common/run_record.h"
#include "runner/log.h"

namespace cronrun::forward {

namespace {

// Dead letters named one by one in the notes of a pass; the rest are counted.
constexpr size_t kMaxOutcomeNotes = 10;

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The forwarder lock beside the history: opened relative to the history's
// directory, never through a symlink, a regular file only. nullopt: another
// forwarder holds it (and `wait` is false).
Result<std::optional<UniqueFd>> take_lock(const std::string& history_path, bool wait) {
  const std::string dir = dir_of(history_path);
  const std::string name = base_of(journal::journal_path(history_path)) + ".forward-lock";
  const std::string path = dir + "/" + name;
  auto dirfd = open_fd(dir, O_RDONLY | O_DIRECTORY);
  if (!dirfd) return std::unexpected(dirfd.error());
  auto fd = open_at(dirfd->get(), name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (!fd) return std::unexpected(fd.error());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail(path + " is not a regular file", ErrorKind::corrupt);
  if (::flock(fd->get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EWOULDBLOCK) return std::nullopt;
    return fail_sys("flock", path);
  }
  return std::optional<UniqueFd>(std::move(*fd));
}

std::string lock_key(const Options& o, const std::string& job) { return o.prefix + "/locks/" + job; }

// The default LockRevisionFn: one range of the lock key per call.
LockRevisionFn etcd_lock_revision(const Options& o, std::shared_ptr<std::optional<etcd::Client>> client) {
  return [o, client](const std::string& job) -> Result<std::optional<int64_t>> {
    if (!*client) {
      auto c = etcd::Client::open(etcd::Options{.endpoints = o.etcd_endpoints, .tls = o.etcd_tls});
      if (!c) return std::unexpected(c.error());
      client->emplace(std::move(*c));
    }
    auto r = (**client).range(lock_key(o, job));
    if (!r) return std::unexpected(r.error().error);
    if (r->kvs.empty()) return std::optional<int64_t>();
    return std::optional<int64_t>(r->kvs.front().create_revision);
  };
}

void count(Report& rep, const std::vector<pg::RecordOutcome>& out, const std::vector<std::string>& run_ids) {
  for (size_t i = 0; i < out.size(); ++i) {
    switch (out[i].kind) {
      case pg::RecordOutcome::Kind::stored: ++rep.stored; break;
      case pg::RecordOutcome::Kind::unchanged: ++rep.unchanged; break;
      case pg::RecordOutcome::Kind::refused: ++rep.refused; break;
      case pg::RecordOutcome::Kind::dead: ++rep.dead; break;
    }
    bool set_aside = out[i].kind == pg::RecordOutcome::Kind::refused || out[i].kind == pg::RecordOutcome::Kind::dead;
    if (!set_aside) continue;
    if (rep.refused + rep.dead <= kMaxOutcomeNotes)
      rep.notes.push_back(fmt::format("run {} set aside as a dead letter: {}", run_ids[i], out[i].detail));
  }
}

// Lost marking (forward.h): counts what it turned lost, notes why it stopped.
void mark_lost(const Options& o, pg::PgHistory& db, Report& rep) {
  LockRevisionFn probe = o.lock_revision;
  if (!probe) {
    if (o.etcd_endpoints.empty()) return;
    probe = etcd_lock_revision(o, std::make_shared<std::optional<etcd::Client>>());
  }
  auto rows = db.running_rows();
  if (!rows) {
    rep.notes.push_back("lost marking skipped: " + rows.error().message());
    return;
  }
  const double ttl_s = static_cast<double>(o.lease_ttl.count());
  for (const auto& row : *rows) {
    if (row.age_s <= ttl_s) continue;  // its holder may still be starting to renew
    auto rev = probe(row.job);
    if (!rev) {
      rep.notes.push_back("lost marking skipped: " + rev.error().message());
      return;
    }
    if (*rev && **rev == row.fence) continue;  // the lock still carries its fence: running
    std::string note = *rev ? fmt::format("fleet lock of {} now has revision {}, not this run's fence {}", row.job,
                                          **rev, row.fence)
                            : fmt::format("fleet lock of {} gone while the run was recorded running", row.job);
    auto m = db.mark_lost(row.run_id, row.fence, note);
    if (!m) {
      rep.notes.push_back("lost marking stopped: " + m.error().message());
      return;
    }
    if (*m) ++rep.marked_lost;
  }
}

}  // namespace

std::optional<Options> options_for(const fleet::Config& c, const std::string& history_path) {
  if (!c.history) return std::nullopt;
  Options o;
  o.history_path = history_path;
  o.pg_uri = *c.history;
  o.host = c.host;
  o.etcd_endpoints = c.etcd;
  o.etcd_tls = c.tls;
  o.prefix = c.prefix;
  o.lease_ttl = c.lease_ttl;
  return o;
}

Result<Report> forward(const Options& o) {
  Report rep;
  auto lock = take_lock(o.history_path, o.wait_for_lock);
  if (!lock) return std::unexpected(std::move(lock.error()).context("fleet forwarder"));
  if (!*lock) {
    rep.busy = true;
    return rep;
  }
  auto ctx = [&](Error e) { return std::unexpected(std::move(e).context("forwarding " + o.history_path + "'s journal")); };

  // The cursor row first: while PostgreSQL is away the fold must not rotate away
  // (and remove) a journal whose fleet records were never sent.
  HistoryOpenOptions ho;
  ho.journal = HistoryOpenOptions::Journal::ignore;
  auto store = HistoryStore::open(o.history_path, HistoryStore::Mode::read_write, nullptr, ho);
  if (!store) return ctx(store.error());
  if (auto r = store->register_journal_consumer(kConsumer); !r) return ctx(r.error());

  auto db = pg::PgHistory::open(o.pg_uri);
  if (!db) return ctx(db.error());
  if (auto m = db->migrate(); !m) return ctx(m.error());

  auto sink = [&](std::span<const journal::Entry> entries) -> Result<void> {
    rep.read += entries.size();
    std::vector<pg::BatchRecord> batch;
    std::vector<std::string> run_ids;
    batch.reserve(entries.size());
    for (const auto& e : entries) {
      if (!e.record.fleet) continue;  // a local run: not the fleet's
      nlohmann::json j = to_json(e.record);
      batch.push_back({e.type == journal::RecordType::start ? pg::BatchRecord::Kind::start
                                                            : pg::BatchRecord::Kind::finish,
                       j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
      run_ids.push_back(e.record.run_id);
    }
    if (batch.empty()) return {};
    auto out = db->put_batch(o.host, batch);
    if (!out) return std::unexpected(out.error());
    ++rep.batches;
    rep.sent += batch.size();
    count(rep, *out, run_ids);
    return {};
  };
  auto consumed = store->consume_journal(kConsumer, o.batch_records, sink);
  if (!consumed) return ctx(consumed.error());
  for (auto& n : consumed->notes) rep.notes.push_back(std::move(n));
  if (rep.refused + rep.dead > kMaxOutcomeNotes)
    rep.notes.push_back(fmt::format("{} more dead letter(s) not named here", rep.refused + rep.dead - kMaxOutcomeNotes));
  // Nothing to send: still tell the fleet this host is alive.
  if (rep.batches == 0)
    if (auto h = db->put_batch(o.host, {}); !h) return ctx(h.error());

  mark_lost(o, *db, rep);
  return rep;
}

std::string describe(const Report& r, const std::string& pg_uri) {
  if (r.busy) return "another forwarder is sending this journal; left it to that one";
  return fmt::format("forwarded {} fleet record(s) of {} read to {} in {} batch(es): {} stored, {} unchanged, {} "
                     "refused (stale fence), {} dead letter(s); {} run(s) marked lost",
                     r.sent, r.read, pg::redact_uri(pg_uri), r.batches, r.stored, r.unchanged, r.refused, r.dead,
                     r.marked_lost);
}

namespace {

// In the detached forwarder: everything the runner had set up for its job goes.
void detach_state() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  ::prctl(PR_SET_NAME, "cronrun-forward");
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    if (null > 2) ::close(null);
  }
  // Every other descriptor but sockets (see the top of this file).
  std::vector<int> close_these;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int self = ::dirfd(d);
    while (struct dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long fd = std::strtol(e->d_name, &end, 10);
      if (*end || end == e->d_name || fd <= 2 || fd == self) continue;
      struct stat st {};
      if (::fstat(static_cast<int>(fd), &st) == 0 && S_ISSOCK(st.st_mode)) continue;
      close_these.push_back(static_cast<int>(fd));
    }
    ::closedir(d);
  }
  for (int fd : close_these) ::close(fd);
}

}  // namespace

Result<pid_t> spawn_forwarder(const Options& opts) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_sys("pipe2", "fleet forwarder");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t child = ::fork();
  if (child < 0) return fail_sys("fork", "fleet forwarder");
  if (child == 0) {
    rd.reset();
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      wr.reset();
      detach_state();
      auto r = forward(opts);
      if (!r)
        log::error("fleet forwarder: " + r.error().message());
      else if (!r->busy) {
        for (const auto& n : r->notes) log::warn("fleet forwarder: " + n);
        log::info("fleet forwarder: " + describe(*r, opts.pg_uri));
      }
      ::_exit(r ? 0 : 1);
    }
    int err = errno;
    pid_t msg[2] = {grandchild, grandchild < 0 ? err : 0};
    ssize_t n = ::write(wr.get(), msg, sizeof msg);
    ::_exit(n == static_cast<ssize_t>(sizeof msg) && grandchild > 0 ? 0 : 1);
  }
  wr.reset();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    if (errno != EINTR) return fail_sys("waitpid", "fleet forwarder");
  pid_t msg[2] = {-1, 0};
  ssize_t n;
  do n = ::read(rd.get(), msg, sizeof msg);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof msg)) return fail("fleet forwarder: the intermediate process died before forking");
  if (msg[0] < 0) return fail_sys("fork", "fleet forwarder (second fork)", msg[1]);
  return msg[0];
}

}  // namespace cronrun::forward
