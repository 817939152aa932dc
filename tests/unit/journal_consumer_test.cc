// A journal consumer other than the history's own fold
// (HistoryStore::consume_journal, used by the fleet forwarder): it gets every
// record in order in bounded batches, its cursor moves only after its sink
// succeeded (a failed sink gets the same records again), the fold does not rotate
// the journal while it is behind nor remove a retired journal it still reads, and
// a consumer that starts late begins at the retired journal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/history.h"
#include "common/journal.h"

namespace cronrun {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cronrun-consumer-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

RunRecord record(int i) {
  RunRecord r;
  char id[64];
  std::snprintf(id, sizeof id, "0193f1c2-0000-7000-8000-%012d", i);
  r.run_id = id;
  r.job = "job";
  r.host = "box1";
  r.command = {"/bin/true", std::to_string(i)};
  r.started_at = "2026-11-23T02:10:00.123Z";
  r.finished_at = "2026-11-23T02:10:01.123Z";
  r.status = RunStatus::ok;
  r.exit_code = 0;
  return r;
}

journal::Writer writer(const std::string& history) {
  UniqueFd dir(::open(std::filesystem::path(history).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto w = journal::Writer::open(std::move(dir), history, 0644);
  EXPECT_TRUE(w.has_value()) << (w ? "" : w.error().message());
  return std::move(*w);
}

HistoryStore make_history(const std::string& path) {
  HistoryOpenOptions o;
  o.journal = HistoryOpenOptions::Journal::ignore;
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write, nullptr, o);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return std::move(*s);
}

// Consumes with `name`, collecting the command's index of each record.
Result<FoldReport> consume(HistoryStore& s, std::vector<int>& seen, size_t batch = 500, const std::string& name = "fleet",
                           int fail_on_call = -1) {
  int call = 0;
  return s.consume_journal(name, batch, [&](std::span<const journal::Entry> es) -> Result<void> {
    EXPECT_LE(es.size(), batch);
    if (call++ == fail_on_call) return fail("database away");
    for (const auto& e : es) seen.push_back(std::stoi(e.record.command.at(1)));
    return {};
  });
}

std::vector<int> range(int from, int to) {
  std::vector<int> v;
  for (int i = from; i <= to; ++i) v.push_back(i);
  return v;
}

TEST(JournalConsumer, GetsEveryRecordInOrderAndResumesAfterAFailedSink) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(w.append(journal::RecordType::finish, record(i)));

  std::vector<int> seen;
  auto first = consume(store, seen, 3, "fleet", /*fail_on_call=*/1);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().message(), "database away");
  EXPECT_EQ(seen, range(1, 3));
  // The failed batch (4..6) comes again, then the rest; then nothing.
  auto second = consume(store, seen, 3);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->records, 7u);
  EXPECT_EQ(seen, range(1, 10));
  auto third = consume(store, seen, 3);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->records, 0u);
  EXPECT_EQ(seen, range(1, 10));
  // The history's own fold is a separate cursor: it still folds all ten.
  auto fold = store.fold_journal(true);
  ASSERT_TRUE(fold);
  EXPECT_EQ(fold->records, 10u);
  // The fold's own name is not a consumer name.
  EXPECT_FALSE(consume(store, seen, 3, HistoryStore::kJournalConsumer));
}

TEST(JournalConsumer, RotationWaitsForTheConsumerAndItFollowsIntoTheNewJournal) {
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  std::vector<int> seen;
  ASSERT_TRUE(consume(store, seen));  // registers the consumer's cursor
  int n = 0;
  uint64_t size = 0;
  while (size < journal::kFoldThresholdBytes) size = w.append(journal::RecordType::finish, record(++n)).value();

  auto fold = store.fold_journal(true);
  ASSERT_TRUE(fold) << fold.error().message();
  EXPECT_FALSE(fold->rotated);  // the consumer has not read it

  ASSERT_TRUE(consume(store, seen));
  EXPECT_EQ(seen, range(1, n));
  fold = store.fold_journal(true);
  ASSERT_TRUE(fold);
  EXPECT_TRUE(fold->rotated);
  // The consumer's cursor is still in the retired journal: it is kept.
  EXPECT_EQ(::access(journal::retired_path(db).c_str(), F_OK), 0);

  // `w` still holds the retired file: its record lands there and, seeing the
  // sticky bit, again in the new journal. The consumer reads the rest of the
  // retired file, then the new journal: the record twice, as journal.h allows.
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(n + 1)));
  ASSERT_TRUE(consume(store, seen));
  std::vector<int> twice = range(1, n + 1);
  twice.push_back(n + 1);
  EXPECT_EQ(seen, twice);
  ASSERT_TRUE(store.fold_journal(true));
  EXPECT_NE(::access(journal::retired_path(db).c_str(), F_OK), 0);  // nobody reads it now
  ASSERT_TRUE(consume(store, seen));
  EXPECT_EQ(seen, twice);
}

TEST(JournalConsumer, ALateConsumerStartsAtTheRetiredJournal) {
  // A fold killed after its swap leaves records in the retired file; a consumer
  // without a cursor reads them before the journal's.
  TempDir t;
  std::string db = t.file("h.db");
  auto store = make_history(db);
  auto w = writer(db);
  ASSERT_TRUE(w.append(journal::RecordType::finish, record(1)));
  std::string jpath = journal::journal_path(db), rpath = journal::retired_path(db);
  ASSERT_EQ(::rename(jpath.c_str(), rpath.c_str()), 0);
  UniqueFd dir(::open(std::filesystem::path(db).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(journal::create_new(dir.get(), "h.db.journal", jpath, 0644, nullptr).has_value());
  auto w2 = writer(db);
  ASSERT_TRUE(w2.append(journal::RecordType::finish, record(2)));

  std::vector<int> seen;
  auto rep = consume(store, seen);
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(seen, range(1, 2));
  // The retired file now has the sticky bit: an appender still on it writes again.
  struct stat st {};
  ASSERT_EQ(::stat(rpath.c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_ISVTX);
}

}  // namespace
}  // namespace cronrun
