// cronprof on the fleet without servers: the private SQLite copy of central rows
// (status column authoritative, another host's runner never probed here, the
// copy removed afterwards), the --history branch (gc refused on a central
// history), URIs with their password hidden, and `cronprof fleet`'s pure half:
// groups with nesting and cycles, lost marking against the locks, quiet hosts,
// the JSON's schema and the tables fitted to the terminal.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/history.h"
#include "common/pg_history.h"
#include "common/run_record.h"
#include "profiler/central_history.h"
#include "profiler/cli_support.h"
#include "profiler/exit_codes.h"
#include "profiler/fleet.h"
#include "profiler/fleet_source.h"
#include "profiler/show.h"

namespace cronrun::prof {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RunRecord sample(const std::string& id, const std::string& job, const std::string& host, RunStatus status) {
  RunRecord r;
  r.run_id = id;
  r.job = job;
  r.host = host;
  r.user = "root";
  r.command = {"/bin/true"};
  r.started_at = "2026-12-06T12:00:00.000Z";
  r.status = status;
  if (status != RunStatus::running) {
    r.finished_at = "2026-12-06T12:00:01.500Z";
    r.wall_s = 1.5;
    r.exit_code = 0;
  }
  return r;
}

TEST(CentralUri, SchemesAndPasswordsHidden) {
  EXPECT_TRUE(is_central_history_uri("postgresql://cronrun@127.0.0.1:25432/cronrun"));
  EXPECT_TRUE(is_central_history_uri("postgres://h/db"));
  EXPECT_FALSE(is_central_history_uri("/var/lib/cronrun/history.db"));
  EXPECT_FALSE(is_central_history_uri("postgresql:/nope"));
  EXPECT_EQ(redact_uri("postgresql://cronrun:s3cret@db.example:5432/cronrun"),
            "postgresql://cronrun:***@db.example:5432/cronrun");
  EXPECT_EQ(redact_uri("postgresql://cronrun@db/cronrun?sslmode=require&password=s3cret"),
            "postgresql://cronrun@db/cronrun?sslmode=require&password=***");
  EXPECT_EQ(redact_uri("postgresql://db/cronrun"), "postgresql://db/cronrun");
}

// libpq quotes a URI it cannot parse whole, and a malformed %-token of the
// password as written: the message that reaches stderr, the journal or cron's
// mail must not carry the password in any of its forms. (Parse errors: libpq
// fails before it connects anywhere, so no server is needed.)
TEST(CentralUri, LibpqMessagesAboutAUriNeverShowItsPassword) {
  const std::vector<std::string> uris = {
      "postgresql://fwd:p%zzS3cretB@127.0.0.1:1/cronrun",       // invalid percent-encoded token: "p%zzS3cretB"
      "postgresql://fwd:S3cretE@[::1:1/cronrun",                // the whole URI quoted
      "postgresql://fwd@127.0.0.1:1/cronrun?password=S3cret%41C=x",  // "extra key/value separator": the pair quoted
  };
  for (const auto& uri : uris) {
    auto copy = LocalCopy::create();
    ASSERT_TRUE(copy) << copy.error().message();
    auto read = copy_central_history(uri, *copy, [](const std::string&, const Error&) {});
    ASSERT_FALSE(read) << uri;
    const std::string msg = read.error().error.message();
    EXPECT_THAT(msg, Not(HasSubstr("S3cret"))) << uri;
    EXPECT_THAT(msg, HasSubstr("***")) << msg;
  }
  EXPECT_EQ(pg::redact_secrets("invalid percent-encoded token: \"p%zzS3cret\"", "postgresql://u:p%zzS3cret@h/db"),
            "invalid percent-encoded token: \"***\"");
  EXPECT_EQ(pg::redact_secrets("token \"S3cret@x\" and S3cret", "postgresql://u:S3cret%40x@h/db"),
            "token \"***\" and S3cret");
}

// cronprof(1): `fleet` exits 3 when there is no fleet config, 2 when it is bad.
TEST(FleetSource, NoFleetConfigIsExit3AndABadOneExit2) {
  auto missing = fleet::find_source("/nonexistent-cronrun-test/fleet.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), kExitHistoryMissing);
  char tmpl[] = "/tmp/cronprof-fleetsrc-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string bad = std::string(tmpl) + "/fleet.json";
  std::FILE* f = std::fopen(bad.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("{\"etcd\": []}", f);
  std::fclose(f);
  auto unparsable = fleet::find_source(bad);
  ASSERT_FALSE(unparsable);
  EXPECT_EQ(unparsable.error(), kExitUsage);
  std::filesystem::remove_all(tmpl);
}

TEST(CentralCopy, StatusesAsCentralAndAnotherHostsRunnerIsNeverProbedHere) {
  RunRecord running = sample("0193a000-0000-7000-8000-000000000001", "backup", "box1", RunStatus::running);
  // A runner of another host: another boot, a pid that may well exist here.
  running.boot_id = "00000000-0000-0000-0000-000000000000";
  running.runner_pid = 1;
  RunRecord finished = sample("0193a000-0000-7000-8000-000000000002", "backup", "box2", RunStatus::ok);
  // The forwarder's verdict (pg_history gives the row's status in the record).
  RunRecord marked_lost = sample("0193a000-0000-7000-8000-000000000003", "report", "box2", RunStatus::lost);

  std::string dir;
  {
    auto copy = LocalCopy::create();
    ASSERT_TRUE(copy) << copy.error().message();
    dir = std::filesystem::path(copy->path()).parent_path();
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    ASSERT_TRUE(copy->add(running));
    ASSERT_TRUE(copy->add(finished));
    ASSERT_TRUE(copy->add(marked_lost));
    // A replayed row stays one row.
    ASSERT_TRUE(copy->add(finished));
    ASSERT_TRUE(copy->close_writer());

    auto store = HistoryStore::open(copy->path(), HistoryStore::Mode::read_only);
    ASSERT_TRUE(store) << store.error().message();
    auto all = store->runs(RunFilter{});
    ASSERT_TRUE(all) << all.error().message();
    ASSERT_EQ(all->size(), 3u);
    std::map<std::string, RunRecord> by_id;
    for (const RunRecord& r : *all) by_id[r.run_id] = r;
    EXPECT_EQ(by_id[running.run_id].status, RunStatus::running);
    EXPECT_EQ(by_id[running.run_id].host, "box1");
    EXPECT_EQ(by_id[marked_lost.run_id].status, RunStatus::lost);
    EXPECT_EQ(by_id[finished.run_id].host, "box2");
    auto live = store->in_progress();
    ASSERT_TRUE(live);
    ASSERT_EQ(live->size(), 1u);
    EXPECT_EQ(live->front().run_id, running.run_id);
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the private copy outlived cronprof";
}

TEST(CentralCopy, ALibpqParseErrorIsBadUsageAndARefusedConnectionIsUnreadable) {
  EXPECT_EQ(fault_of_connect_error(Error("connecting to postgresql://x: invalid URI query parameter: \"nope\"",
                                         ErrorKind::history)),
            CentralFault::bad_uri);
  EXPECT_EQ(exit_code_for(CentralFault::bad_uri), kExitUsage);
  EXPECT_EQ(fault_of_connect_error(Error("connecting to postgresql://127.0.0.1:1/x: connection to server at "
                                         "\"127.0.0.1\", port 1 failed: Connection refused",
                                         ErrorKind::history)),
            CentralFault::unreachable);
  EXPECT_EQ(exit_code_for(CentralFault::unreachable), kExitUnreadable);
  EXPECT_EQ(exit_code_for(CentralFault::newer_schema), kExitNewerSchema);
}

TEST(PrepareHistory, APathIsItsOwnLabelAndGcIsRefusedOnACentralHistory) {
  Global g;
  g.history_path = "/tmp/nonexistent-history.db";
  auto local = prepare_history(g, "runs");
  ASSERT_TRUE(local);
  EXPECT_FALSE(local->has_value());
  EXPECT_EQ(g.history_label, g.history_path);
  EXPECT_FALSE(g.central);

  Global c;
  c.history_path = "postgresql://cronrun:pw@127.0.0.1:1/cronrun";
  testing::internal::CaptureStderr();
  auto gc = prepare_history(c, "gc");
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(gc);
  EXPECT_EQ(gc.error(), kExitUsage);
  EXPECT_THAT(err, HasSubstr("gc: --history postgresql://cronrun:***@127.0.0.1:1/cronrun"));
  EXPECT_THAT(err, Not(HasSubstr("pw")));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);

  // `fleet` reads PostgreSQL itself: no copy, the URI kept for it.
  Global f;
  f.history_path = "postgresql://127.0.0.1:1/cronrun";
  auto fleet = prepare_history(f, "fleet");
  ASSERT_TRUE(fleet);
  EXPECT_FALSE(fleet->has_value());
  EXPECT_TRUE(f.central);
  EXPECT_EQ(f.history_path, "postgresql://127.0.0.1:1/cronrun");
}

TEST(ShowFleet, AFleetRunShowsItsHostAndFleetLineALocalRunHasNone) {
  RunRecord r = sample("0193a000-0000-7000-8000-000000000006", "backup", "box2.example", RunStatus::skipped);
  EXPECT_THAT(render_profile(r), Not(HasSubstr("  fleet")));
  r.fleet = FleetRecord{.group = "scripts", .host = "box2.example", .tick = "2026-12-06T12:00:00Z", .fence = std::nullopt,
                        .holder = FleetHolder{.host = "box1.example", .revision = 4711}, .lease_ttl_s = 30,
                        .note = std::nullopt};
  std::string text = render_profile(r);
  EXPECT_THAT(text, HasSubstr("on box2.example"));
  EXPECT_THAT(text, HasSubstr("  fleet      group scripts, host box2.example, tick 2026-12-06T12:00:00Z, no fence"));
  EXPECT_THAT(text, HasSubstr("held by host box1.example (revision 4711)"));
  r.fleet->fence = 4712;
  r.fleet->holder.reset();
  EXPECT_THAT(render_profile(r), HasSubstr("fence 4712, lease 30s"));
}

// ---------- cronprof fleet ----------

fleet::FleetView view() {
  fleet::FleetView v;
  v.now_s = 1796558400;  // 2026-12-06T12:00:00Z
  v.prefix = "/cronrun";
  v.endpoints = {"http://127.0.0.1:23791", "http://127.0.0.1:23792"};
  v.history = "postgresql://cronrun@127.0.0.1:25432/cronrun";
  return v;
}

TEST(FleetGroups, NestedGroupsExpandAndACycleIsNamed) {
  fleet::FleetView v = view();
  fleet::parse_groups(R"({"groups": {"scripts1": "box1", "scripts3": ["box1", "box2"],
                                     "all": ["scripts1", "box3"], "a": ["b"], "b": ["a", "box4"]}})",
                      v);
  ASSERT_FALSE(v.groups_error);
  std::map<std::string, fleet::Group> by;
  for (const auto& g : v.groups) by[g.name] = g;
  EXPECT_EQ(by["scripts1"].hosts, std::vector<std::string>({"box1"}));
  EXPECT_EQ(by["all"].hosts, std::vector<std::string>({"box1", "box3"}));
  EXPECT_EQ(by["all"].members, std::vector<std::string>({"scripts1", "box3"}));
  EXPECT_FALSE(by["all"].error);
  ASSERT_TRUE(by["a"].error);
  EXPECT_THAT(*by["a"].error, HasSubstr("a -> b -> a"));

  fleet::FleetView bad = view();
  fleet::parse_groups("[1]", bad);
  ASSERT_TRUE(bad.groups_error);
  EXPECT_THAT(*bad.groups_error, HasSubstr("etcd /cronrun/config"));
}

TEST(FleetLost, ARunWhoseLockIsGoneOrReplacedIsLostAndOneStillHeldIsNot) {
  fleet::FleetView v = view();
  v.holders = {fleet::Holder{.job = "backup", .host = "box1", .run_id = "r1", .tick = "2026-12-06T11:59:00Z", .fence = 100},
               fleet::Holder{.job = "report", .host = "box2", .run_id = "r9", .tick = "2026-12-06T11:59:00Z", .fence = 205}};
  v.running = {fleet::InProgress{.run_id = "r1", .job = "backup", .host = "box1", .fence = 100, .started_at_s = v.now_s - 60},
               fleet::InProgress{.run_id = "r2", .job = "report", .host = "box3", .fence = 150, .started_at_s = v.now_s - 600},
               fleet::InProgress{.run_id = "r3", .job = "sync", .host = "box3", .fence = 170, .started_at_s = v.now_s - 600},
               fleet::InProgress{.run_id = "r4", .job = "local", .host = "box3", .started_at_s = v.now_s - 600}};
  fleet::mark_lost(v);
  EXPECT_FALSE(v.running[0].lost);
  EXPECT_TRUE(v.running[1].lost);
  EXPECT_THAT(v.running[1].lost_why, HasSubstr("fence 205 (host box2)"));
  EXPECT_TRUE(v.running[2].lost);
  EXPECT_THAT(v.running[2].lost_why, HasSubstr("no lock of sync"));
  EXPECT_FALSE(v.running[3].lost) << "an unfenced run has no lock to check";
  EXPECT_TRUE(fleet::alerts(v));

  // Without the locks nothing is declared lost.
  fleet::FleetView blind = view();
  blind.etcd_error = "no endpoint answered";
  blind.running = {fleet::InProgress{.run_id = "r3", .job = "sync", .host = "box3", .fence = 170}};
  fleet::mark_lost(blind);
  EXPECT_FALSE(blind.running[0].lost);
}

TEST(FleetHosts, QuietAfterTheWindowOldestFirst) {
  fleet::FleetView v = view();
  v.hosts = {{"box1", v.now_s - 30}, {"box2", v.now_s - 7200}, {"box3", v.now_s - 4000}};
  auto quiet = fleet::quiet_hosts(v);
  ASSERT_EQ(quiet.size(), 2u);
  EXPECT_EQ(quiet[0].host, "box2");
  EXPECT_EQ(quiet[1].host, "box3");
  v.quiet_after_s = 5000;
  EXPECT_EQ(fleet::quiet_hosts(v).size(), 1u);
  v.quiet_after_s = 8000;
  EXPECT_FALSE(fleet::alerts(v));
}

fleet::FleetView full_view() {
  fleet::FleetView v = view();
  fleet::parse_groups(R"({"groups": {"scripts1": "box1", "all": ["scripts1", "box2", "a-rather-long-host-name.example.org"]}})", v);
  v.groups_configured = true;
  v.holders = {fleet::Holder{.job = "nightly-database-backup-of-everything", .host = "box1",
                             .run_id = "0193a000-0000-7000-8000-000000000001", .tick = "2026-12-06T11:59:00Z",
                             .fence = 100, .ttl_left_s = 12}};
  v.running = {fleet::InProgress{.run_id = "0193a000-0000-7000-8000-000000000001", .job = "nightly-database-backup-of-everything",
                                 .host = "box1", .fence = 100, .started_at_s = v.now_s - 60},
               fleet::InProgress{.run_id = "0193a000-0000-7000-8000-000000000002", .job = "report", .host = "box2",
                                 .fence = 90, .started_at_s = v.now_s - 600}};
  v.dead_letters_total = 7;
  v.dead_letters = {fleet::DeadLetter{.id = 7, .host = "box2", .run_id = "0193a000-0000-7000-8000-000000000009",
                                      .reason = "stale fence: 80 is below job_fences.fence 90 of job report", .received_at_s = v.now_s - 100}};
  v.hosts = {{"box1", v.now_s - 30}, {"box2", v.now_s - 7200}};
  fleet::mark_lost(v);
  return v;
}

TEST(FleetOutput, JsonHasItsSchemaAndEveryPart) {
  nlohmann::json j = fleet::to_json(full_view());
  EXPECT_EQ(j["schema"], "cronrun.fleet/1");
  EXPECT_EQ(j["generated_at"], "2026-12-06T12:00:00.000Z");
  EXPECT_EQ(j["locks"][0]["fence"], 100);
  EXPECT_EQ(j["locks"][0]["ttl_left_s"], 12);
  EXPECT_EQ(j["running"][0]["status"], "running");
  EXPECT_EQ(j["running"][1]["status"], "lost");
  EXPECT_EQ(j["dead_letters"]["total"], 7);
  EXPECT_EQ(j["dead_letters"]["newest"][0]["run_id"], "0193a000-0000-7000-8000-000000000009");
  EXPECT_EQ(j["hosts"][1]["quiet"], true);
  EXPECT_EQ(j["hosts"][0]["quiet"], false);
  EXPECT_EQ(j["alert"], true);
  EXPECT_EQ(j["groups"][0]["name"], "all");
  EXPECT_EQ(j["groups"][0]["hosts"].size(), 3u);
}

TEST(FleetOutput, EveryLineFitsTheTerminalAndEachPartIsThere) {
  fleet::FleetView v = full_view();
  for (size_t width : {size_t(60), size_t(80), size_t(120)}) {
    std::string text = fleet::render(v, width);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      EXPECT_LE(display_width(line), width) << "at " << width << ": " << line;
    EXPECT_THAT(text, HasSubstr("GROUPS"));
    EXPECT_THAT(text, HasSubstr("LOCKS (1)"));
    EXPECT_THAT(text, HasSubstr("RUNS IN PROGRESS (2, 1 lost)"));
    EXPECT_THAT(text, HasSubstr("DEAD LETTERS (7)"));
    EXPECT_THAT(text, HasSubstr("quiet"));
  }
  std::string wide = fleet::render(v, 0);
  EXPECT_THAT(wide, HasSubstr("nightly-database-backup-of-everything"));
  EXPECT_THAT(wide, HasSubstr("12s"));
  EXPECT_THAT(wide, HasSubstr("stale fence: 80"));
  EXPECT_THAT(wide, HasSubstr("(the newest 1 of 7)"));
}

TEST(FleetOutput, AnUnreachableEtcdSaysUnknownRatherThanNone) {
  fleet::FleetView v = view();
  v.etcd_error = "no endpoint answered (http://127.0.0.1:23791: Connection refused)";
  std::string text = fleet::render(v, 80);
  EXPECT_THAT(text, HasSubstr("LOCKS (?)"));
  EXPECT_THAT(text, HasSubstr("unknown: etcd: no endpoint answered"));
  EXPECT_THAT(text, Not(HasSubstr("no job holds a lock")));
}

}  // namespace
}  // namespace cronrun::prof
