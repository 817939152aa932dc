// Root-vs-user and the default paths (common/job_paths.h), decided once: the
// rules for root and for users with and without the XDG variables, the journal
// beside the history, and a JobSpec whose paths are resolved by parse_args so
// that no later step computes a default.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/history.h"
#include "common/job_paths.h"
#include "runner/cli.h"
#include "runner/counters.h"

using namespace cronrun;

namespace {

Result<ParsedArgs> parse_as(const Invoker& who, std::vector<std::string> words) {
  words.insert(words.begin(), "cronrun");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  return parse_args(static_cast<int>(argv.size()), argv.data(), 8, who);
}

// No config file can exist under /nonexistent, so parse_args reads none.
const Invoker kRoot = Invoker::of(0, "/nonexistent/run", "/nonexistent/state", "/nonexistent/config", "/root");
const Invoker kUser = Invoker::of(1000, "/run/user/1000", "/home/u/st", "/home/u/cf", "/home/u");
const Invoker kBareUser = Invoker::of(1000, nullptr, "relative/state", nullptr, "/home/u");

}  // namespace

TEST(JobPaths, RootUsesTheSystemDirectoriesWhateverItsEnvironment) {
  JobPaths p = default_job_paths(kRoot, "nightly");
  EXPECT_EQ(p.history, "/var/lib/cronrun/history.db");
  EXPECT_EQ(p.journal, "/var/lib/cronrun/history.db.journal");
  EXPECT_EQ(p.lock, "/run/cronrun/locks/nightly.pid");
  EXPECT_EQ(p.config, "/etc/cronrun/jobs.d/nightly.json");
  EXPECT_EQ(p.runtime_dir, "/run/cronrun");
  EXPECT_EQ(runs_dir(kRoot), "/run/cronrun/runs");
}

TEST(JobPaths, AUserUsesTheXdgDirectories) {
  JobPaths p = default_job_paths(kUser, "nightly");
  EXPECT_EQ(p.history, "/home/u/st/cronrun/history.db");
  EXPECT_EQ(p.journal, "/home/u/st/cronrun/history.db.journal");
  EXPECT_EQ(p.lock, "/run/user/1000/cronrun/nightly.pid");
  EXPECT_EQ(p.config, "/home/u/cf/cronrun/jobs.d/nightly.json");
  EXPECT_EQ(p.runtime_dir, "/run/user/1000/cronrun");
}

TEST(JobPaths, WithoutXdgVariablesTheFallbacksAndRelativeValuesAreIgnored) {
  JobPaths p = default_job_paths(kBareUser, "nightly");
  EXPECT_EQ(p.history, "/home/u/.local/state/cronrun/history.db");
  EXPECT_EQ(p.lock, "/tmp/cronrun-1000/nightly.pid");
  EXPECT_EQ(p.config, "/home/u/.config/cronrun/jobs.d/nightly.json");
  EXPECT_EQ(p.runtime_dir, "/tmp/cronrun-1000");
  EXPECT_EQ(runs_dir(kBareUser), "/tmp/cronrun-1000/runs");
  // No name (--flush): no lock and no config, the history as ever.
  JobPaths flush = default_job_paths(kBareUser, "");
  EXPECT_TRUE(flush.lock.empty());
  EXPECT_TRUE(flush.config.empty());
  EXPECT_EQ(flush.history, p.history);
  EXPECT_EQ(drain_path(kBareUser), "/etc/cronrun/drain");
}

TEST(JobPaths, TheOldEntryPointsForwardToTheOneRule) {
  // HistoryStore::default_path{,_for} (cronprof, plan_run.cc) and the counters
  // directory give what this module gives.
  EXPECT_EQ(HistoryStore::default_path_for(1000, "/x/state", "/home/u"),
            default_history_path(Invoker::of(1000, nullptr, "/x/state", nullptr, "/home/u")));
  EXPECT_EQ(HistoryStore::default_path(), default_history_path(Invoker::current()));
  EXPECT_EQ(runtime_dir(), runs_dir(Invoker::current()));
  EXPECT_EQ(Invoker::current().euid, ::geteuid());
}

TEST(ResolvedJob, ParseArgsFillsRootAndEveryPathOnce) {
  auto r = parse_as(kRoot, {"--name", "nightly", "--", "/bin/true"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->spec.is_root);
  EXPECT_EQ(r->spec.paths.history, "/var/lib/cronrun/history.db");
  EXPECT_EQ(r->spec.paths.journal, "/var/lib/cronrun/history.db.journal");
  EXPECT_EQ(r->spec.paths.lock, "/run/cronrun/locks/nightly.pid");
  EXPECT_EQ(r->spec.paths.config, "/etc/cronrun/jobs.d/nightly.json");
  EXPECT_EQ(r->spec.paths.runtime_dir, "/run/cronrun");

  auto u = parse_as(kBareUser, {"--", "/usr/local/bin/report"});
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_FALSE(u->spec.is_root);
  EXPECT_EQ(u->spec.paths.lock, "/tmp/cronrun-1000/report.pid");
}

TEST(ResolvedJob, ExplicitPathsWinAndTheJournalFollowsTheHistory) {
  auto r = parse_as(kUser, {"--history", "/srv/h.db", "--lock", "/srv/j.pid", "--", "job"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->spec.paths.history, "/srv/h.db");
  EXPECT_EQ(r->spec.paths.journal, "/srv/h.db.journal");
  EXPECT_EQ(r->spec.paths.lock, "/srv/j.pid");
  EXPECT_EQ(*r->spec.lock_path, "/srv/j.pid");  // as given: run.cc must not create its directory
  auto d = parse_as(kUser, {"--", "job"});
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_FALSE(d->spec.lock_path);
  EXPECT_FALSE(d->spec.history_path);
}
