// cronprof on the fleet against the real servers of the fleet fixture
// (tests/fleet/cluster.sh): the central history (CRONRUN_FLEET_PG) is seeded with
// the records of two hosts through pg_history's batch upsert, then the real
// cronprof binary reads it with --history postgresql://... (runs, summary, show,
// export, ps: host columns; gc refused; a bad or unreachable URI: one line), and
// `cronprof fleet` shows a lock holder put in etcd (CRONRUN_FLEET_ETCD), a running
// row, a run whose lock is gone (lost), a dead letter and a quiet host.
//
// Tests share the database and the cluster with the other fleet tests: job and
// host names carry this process' pid, etcd keys live under /t/cronprof-<pid>.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/etcd.h"
#include "common/pg_history.h"
#include "common/run_record.h"

extern char** environ;

using namespace cronrun;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);)
    if (!part.empty()) out.push_back(part);
  return out;
}

struct Ran {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs cronprof with `args`, COLUMNS as given, stdout/stderr into files.
Ran cronprof(const std::vector<std::string>& args, const std::string& dir, const std::string& columns = "200") {
  std::string bin = env("CRONPROF_BIN");
  std::vector<std::string> argv_s = {bin};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).substr(0, 8) != "COLUMNS=") env_s.push_back(*e);
  env_s.push_back("COLUMNS=" + columns);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string out = dir + "/out", err = dir + "/err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  Ran r;
  if (posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), envp.data()) != 0) return r;
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

class CronprofFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = env("CRONRUN_FLEET_PG");
    ASSERT_FALSE(uri_.empty()) << "CRONRUN_FLEET_PG is not set: run under the fleet fixture";
    ASSERT_FALSE(env("CRONPROF_BIN").empty());
    auto h = pg::PgHistory::open(uri_);
    ASSERT_TRUE(h) << h.error().message();
    ASSERT_TRUE(h->migrate());
    db_.emplace(std::move(*h));
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    tag_ = std::string(info->name()).substr(0, 12) + "-" + std::to_string(getpid());
    char tmpl[] = "/tmp/cronprof-fleet-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string job(const std::string& name) const { return "cp-" + name + "-" + tag_; }
  std::string host(const std::string& name) const { return name + "-" + tag_ + ".example"; }

  // A run record of `job` on `host`, finished with `status` (or running), with a
  // fleet object when fenced.
  static json record(const std::string& run_id, const std::string& job, const std::string& host,
                     const std::string& status, std::optional<int64_t> fence = std::nullopt,
                     const std::string& tick = "2026-12-06T12:00:00Z") {
    json r = to_json(RunRecord{});
    r["run_id"] = run_id;
    r["job"] = job;
    r["host"] = host;
    r["user"] = "root";
    r["command"] = {"/usr/bin/backup", "--all"};
    r["started_at"] = format_rfc3339(std::chrono::system_clock::now() - std::chrono::minutes(5));
    r["status"] = status;
    if (status != "running") {
      r["finished_at"] = format_rfc3339(std::chrono::system_clock::now() - std::chrono::minutes(4));
      r["wall_s"] = 60.0;
      r["exit_code"] = status == "ok" ? 0 : 1;
    }
    if (fence) {
      r["fleet"] = {{"group", "scripts"}, {"host", host}, {"tick", tick}, {"fence", *fence},
                    {"holder", nullptr}, {"lease_ttl_s", 15}, {"note", nullptr}};
    }
    return r;
  }
  void put(const std::string& from_host, const std::vector<json>& records, pg::BatchRecord::Kind kind) {
    std::vector<pg::BatchRecord> batch;
    for (const json& r : records) batch.push_back({kind, r.dump()});
    auto out = db_->put_batch(from_host, batch);
    ASSERT_TRUE(out) << out.error().message();
  }

  std::string uri_;
  std::optional<pg::PgHistory> db_;
  std::string tag_;
  std::string dir_;
};

TEST_F(CronprofFleet, EverySubcommandReadsTheCentralHistoryWithItsHosts) {
  const std::string backup = job("backup"), report = job("report");
  const std::string box1 = host("box1"), box2 = host("box2");
  const std::string r1 = new_run_id(), r2 = new_run_id(), r3 = new_run_id(), r4 = new_run_id();
  put(box1, {record(r1, backup, box1, "ok", 101, "2026-12-06T01:00:00Z"),
             record(r2, backup, box1, "failed", 102, "2026-12-06T02:00:00Z")},
      pg::BatchRecord::Kind::finish);
  put(box2, {record(r3, backup, box2, "ok", 103, "2026-12-06T03:00:00Z")}, pg::BatchRecord::Kind::finish);
  put(box2, {record(r4, report, box2, "running", 104, "2026-12-06T04:00:00Z")}, pg::BatchRecord::Kind::start);

  // runs: a HOST column, each run on its own host.
  Ran runs = cronprof({"--history", uri_, "runs", "--job", backup}, dir_);
  ASSERT_EQ(runs.rc, 0) << runs.err;
  EXPECT_THAT(runs.out, HasSubstr("HOST"));
  EXPECT_EQ(lines(runs.out), 4u) << runs.out;
  for (const std::string& id : {r1, r2, r3}) EXPECT_THAT(runs.out, HasSubstr(id));
  std::istringstream in(runs.out);
  for (std::string l; std::getline(in, l);) {
    if (l.find(r1) != std::string::npos || l.find(r2) != std::string::npos) {
      EXPECT_THAT(l, HasSubstr(box1));
    }
    if (l.find(r3) != std::string::npos) {
      EXPECT_THAT(l, HasSubstr(box2));
    }
  }
  EXPECT_THAT(runs.err, Not(HasSubstr("/tmp/cronprof-central"))) << "the private copy is not the user's business";

  Ran runs_json = cronprof({"--history", uri_, "--json", "runs", "--job", backup}, dir_);
  ASSERT_EQ(runs_json.rc, 0) << runs_json.err;
  json rj = json::parse(runs_json.out);
  ASSERT_EQ(rj["runs"].size(), 3u);
  std::set<std::string> hosts;
  for (const json& r : rj["runs"]) hosts.insert(r["host"].get<std::string>());
  EXPECT_EQ(hosts, (std::set<std::string>{box1, box2}));

  // summary: the three runs of both hosts, one failure.
  Ran summary = cronprof({"--history", uri_, "--json", "summary", "--job", backup}, dir_);
  ASSERT_EQ(summary.rc, 0) << summary.err;
  json sj = json::parse(summary.out);
  ASSERT_EQ(sj["jobs"].size(), 1u);
  EXPECT_EQ(sj["jobs"][0]["runs"], 3);
  EXPECT_EQ(sj["jobs"][0]["failures"], 1);

  // show: the host and the fleet line.
  Ran show = cronprof({"--history", uri_, "show", r3}, dir_);
  ASSERT_EQ(show.rc, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("on " + box2));
  EXPECT_THAT(show.out, HasSubstr("fence 103"));
  EXPECT_THAT(show.out, HasSubstr("tick 2026-12-06T03:00:00Z"));
  EXPECT_THAT(show.out, HasSubstr("group scripts"));

  // export csv: one line per run with its host.
  Ran csv = cronprof({"--history", uri_, "export", "--format", "csv", "--job", backup}, dir_);
  ASSERT_EQ(csv.rc, 0) << csv.err;
  EXPECT_EQ(lines(csv.out), 4u) << csv.out;
  EXPECT_THAT(csv.out, HasSubstr("," + box1 + ","));
  EXPECT_THAT(csv.out, HasSubstr("," + box2 + ","));

  // export prometheus: per job and host, so the runs of two hosts do not
  // collapse into one series (box1's newest run failed, box2's succeeded), and
  // the file passes promtool.
  Ran prom = cronprof({"--history", uri_, "export", "--format", "prometheus", "--job", backup}, dir_);
  ASSERT_EQ(prom.rc, 0) << prom.err;
  const std::string b1 = "cronjob=\"" + backup + "\",host=\"" + box1 + "\"";
  const std::string b2 = "cronjob=\"" + backup + "\",host=\"" + box2 + "\"";
  EXPECT_THAT(prom.out, HasSubstr("cronrun_runs_total{" + b1 + ",status=\"ok\"} 1\n"));
  EXPECT_THAT(prom.out, HasSubstr("cronrun_runs_total{" + b1 + ",status=\"failed\"} 1\n"));
  EXPECT_THAT(prom.out, HasSubstr("cronrun_runs_total{" + b2 + ",status=\"ok\"} 1\n"));
  EXPECT_THAT(prom.out, HasSubstr("cronrun_last_run_success{" + b2 + "} 1\n"));
  if (::access("/usr/bin/promtool", X_OK) == 0) {
    std::string file = dir_ + "/central.prom";
    std::ofstream(file) << prom.out;
    std::string check = "/usr/bin/promtool check metrics < " + file + " > " + dir_ + "/promtool.out 2>&1";
    EXPECT_EQ(std::system(check.c_str()), 0) << slurp(dir_ + "/promtool.out");
    EXPECT_EQ(slurp(dir_ + "/promtool.out"), "");
  }

  // ps: the running row of box2, with its host, not taken for lost here.
  Ran ps = cronprof({"--history", uri_, "--json", "ps"}, dir_);
  ASSERT_EQ(ps.rc, 0) << ps.err;
  bool found = false;
  const json ps_doc = json::parse(ps.out);
  for (const json& r : ps_doc["runs"]) {
    if (r["run_id"] != r4) continue;
    found = true;
    EXPECT_EQ(r["host"], box2);
    EXPECT_EQ(r["job"], report);
  }
  EXPECT_TRUE(found) << ps.out;
  Ran ps_text = cronprof({"--history", uri_, "ps"}, dir_);
  ASSERT_EQ(ps_text.rc, 0) << ps_text.err;
  EXPECT_THAT(ps_text.out, HasSubstr("HOST"));
  EXPECT_THAT(ps_text.out, HasSubstr(r4));

  // gc: refused on the central history, one line naming --history, nothing deleted.
  Ran gc = cronprof({"--history", uri_, "gc", "--keep", "1s"}, dir_);
  EXPECT_EQ(gc.rc, 2);
  EXPECT_EQ(lines(gc.err), 1u) << gc.err;
  EXPECT_THAT(gc.err, HasSubstr("--history"));
  size_t still = 0;
  pg::RunFilter f;
  f.job = backup;
  ASSERT_TRUE(db_->each_run(f, [&](const RunRecord&) { ++still; }));
  EXPECT_EQ(still, 3u);
}

// `runs`, `summary`, `suggest`, `ps` and `show` copy only the rows they read (their
// window, job, status; show's run-id prefix or job): an unreadable row outside the window is never read, so never
// reported, while a window that covers it reports it. summary's LAST SUCCESS
// still comes from before the window (each job's newest ok run is copied too).
TEST_F(CronprofFleet, TheCopyHoldsOnlyTheRowsTheSubcommandReads) {
  const std::string j = job("window"), box = host("box1");
  auto at = [](int days_ago) {
    return format_rfc3339(std::chrono::system_clock::now() - std::chrono::hours(24 * days_ago));
  };
  const std::string old_ok = new_run_id(), recent = new_run_id();
  json a = record(old_ok, j, box, "ok");
  a["started_at"] = at(40);
  a["finished_at"] = at(40);
  json b = record(recent, j, box, "failed");
  put(box, {a, b}, pg::BatchRecord::Kind::finish);
  // A row no reader can use, 50 days old, put in with SQL (put_batch would refuse it).
  const std::string bad = "bad-" + tag_;
  std::string sql = "psql -qAt '" + uri_ + "' -c \"INSERT INTO cronrun.runs (run_id, job, host, status, started_at, "
                    "record) VALUES ('" + bad + "', '" + j + "', '" + box + "', 'ok', now() - interval '50 days', "
                    "'{\\\"schema\\\": \\\"nope\\\"}'::jsonb)\" > " + dir_ + "/psql.out 2>&1";
  ASSERT_EQ(std::system(sql.c_str()), 0) << slurp(dir_ + "/psql.out");
  struct Drop {
    std::string sql;
    ~Drop() { (void)std::system(sql.c_str()); }
  } drop{"psql -qAt '" + uri_ + "' -c \"DELETE FROM cronrun.runs WHERE run_id = '" + bad + "'\" >/dev/null 2>&1"};

  Ran week = cronprof({"--history", uri_, "--json", "runs", "--job", j, "--since", "7d"}, dir_);
  ASSERT_EQ(week.rc, 0) << week.err;
  EXPECT_EQ(json::parse(week.out)["runs"].size(), 1u) << week.out;
  EXPECT_THAT(week.err, Not(HasSubstr("unreadable"))) << "the copy read a row outside the window";
  Ran all = cronprof({"--history", uri_, "--json", "runs", "--job", j, "--since", "60d"}, dir_);
  ASSERT_EQ(all.rc, 0) << all.err;
  EXPECT_EQ(json::parse(all.out)["runs"].size(), 2u) << all.out;
  EXPECT_THAT(all.err, HasSubstr("skipped 1 unreadable row"));

  Ran summary = cronprof({"--history", uri_, "--json", "summary", "--job", j, "--since", "7d"}, dir_);
  ASSERT_EQ(summary.rc, 0) << summary.err;
  EXPECT_THAT(summary.err, Not(HasSubstr("unreadable")));
  json sj = json::parse(summary.out);
  ASSERT_EQ(sj["jobs"].size(), 1u) << summary.out;
  EXPECT_EQ(sj["jobs"][0]["runs"], 1);
  EXPECT_EQ(sj["jobs"][0]["failures"], 1);
  EXPECT_EQ(sj["jobs"][0]["last_success"], a["started_at"]) << "the newest ok run before the window";

  Ran suggest = cronprof({"--history", uri_, "suggest", "--job", j, "--since", "7d"}, dir_);
  ASSERT_EQ(suggest.rc, 0) << suggest.err;
  EXPECT_THAT(suggest.out, HasSubstr("1 run in 7 days"));
  EXPECT_THAT(suggest.err, Not(HasSubstr("unreadable")));
  Ran ps = cronprof({"--history", uri_, "ps"}, dir_);
  ASSERT_EQ(ps.rc, 0) << ps.err;
  EXPECT_THAT(ps.err, Not(HasSubstr("unreadable")));
  // show copies the runs its word is a prefix of and the newest run of the job so named.
  Ran show_job = cronprof({"--history", uri_, "--json", "show", j}, dir_);
  ASSERT_EQ(show_job.rc, 0) << show_job.err;
  EXPECT_EQ(json::parse(show_job.out)["run_id"], recent);
  EXPECT_THAT(show_job.err, Not(HasSubstr("unreadable")));
  Ran show_run = cronprof({"--history", uri_, "--json", "show", old_ok.substr(0, old_ok.size() - 2)}, dir_);
  ASSERT_EQ(show_run.rc, 0) << show_run.err;
  EXPECT_EQ(json::parse(show_run.out)["run_id"], old_ok);
  EXPECT_THAT(show_run.err, Not(HasSubstr("unreadable")));
  Ran show_none = cronprof({"--history", uri_, "show", "no-such-" + tag_}, dir_);
  EXPECT_EQ(show_none.rc, 7) << show_none.err;
  // A window that does not parse copies nothing and is the subcommand's usage error.
  Ran typo = cronprof({"--history", uri_, "runs", "--since", "7x"}, dir_);
  EXPECT_EQ(typo.rc, 2);
  EXPECT_THAT(typo.err, HasSubstr("--since"));
}

// `status` and `report --crontab` copy what the state against the schedule reads:
// the crontabs' jobs from their oldest tick matched on (a weekly job's, days before
// a one-day window) and, before it, each job's newest run of each kind. So a
// weekly job's run at its tick four days ago is on time though a manual run came
// after it, a job whose only executed run failed 20 days ago (skips since) is
// failing, and an unreadable row behind an older readable one is never read. The
// whole-history copy reads such rows; a window-only copy gets both states wrong.
TEST_F(CronprofFleet, StatusCopiesTheTicksItMatchesAndTheNewestRunsBeforeThem) {
  ASSERT_EQ(::setenv("TZ", "UTC", 1), 0);
  const std::string weekly = job("weekly"), minutely = job("minutely"), other = job("other");
  const std::string box = host("box1");
  const auto now = std::chrono::system_clock::now();
  const auto days = [](int n) { return std::chrono::hours(24 * n); };
  // The weekly tick four days ago, 03:00 UTC.
  const std::time_t four_ago = std::chrono::system_clock::to_time_t(now - days(4));
  std::tm tm{};
  ::gmtime_r(&four_ago, &tm);
  tm.tm_hour = 3;
  tm.tm_min = 0;
  tm.tm_sec = 0;
  const auto tick = std::chrono::system_clock::from_time_t(::timegm(&tm));
  const int weekday = tm.tm_wday;

  auto run = [&](const std::string& j, const std::string& status, std::chrono::system_clock::time_point at) {
    json r = record(new_run_id(), j, box, status);
    r["started_at"] = format_rfc3339(at);
    if (status != "running") r["finished_at"] = format_rfc3339(at + std::chrono::seconds(5));
    if (status == "skipped") r["exit_code"] = nullptr;
    return r;
  };
  put(box, {run(weekly, "ok", now - days(10)), run(weekly, "ok", tick + std::chrono::seconds(10)),
            run(weekly, "ok", now - days(2)), run(minutely, "failed", now - days(20)),
            run(minutely, "skipped", now - std::chrono::seconds(5)), run(other, "ok", now - days(5))},
      pg::BatchRecord::Kind::finish);
  // Unreadable rows no status reads: the weekly job's behind its run 10 days ago, and
  // one of a job no crontab names.
  const std::string bad = "bad-" + tag_, bad_other = "bad-other-" + tag_;
  std::string sql = "psql -qAt '" + uri_ + "' -c \"INSERT INTO cronrun.runs (run_id, job, host, status, started_at, "
                    "record) VALUES ('" + bad + "', '" + weekly + "', '" + box + "', 'ok', now() - interval '50 days', "
                    "'{\\\"schema\\\": \\\"nope\\\"}'::jsonb), ('" + bad_other + "', '" + other + "', '" + box +
                    "', 'ok', now() - interval '50 days', '{\\\"schema\\\": \\\"nope\\\"}'::jsonb)\" > " + dir_ +
                    "/psql.out 2>&1";
  ASSERT_EQ(std::system(sql.c_str()), 0) << slurp(dir_ + "/psql.out");
  struct Drop {
    std::string sql;
    ~Drop() { (void)std::system(sql.c_str()); }
  } drop{"psql -qAt '" + uri_ + "' -c \"DELETE FROM cronrun.runs WHERE run_id IN ('" + bad + "', '" + bad_other +
         "')\" >/dev/null 2>&1"};

  std::filesystem::create_directory(dir_ + "/cron.d");
  const std::string crontab = dir_ + "/cron.d/jobs";
  {
    std::ofstream f(crontab);
    f << "0 3 * * " << weekday << " root cronrun -n " << weekly << " -- /bin/true\n"
      << "* * * * * root cronrun -n " << minutely << " -- /bin/true\n";
  }
  // Installed 60 days ago: every tick since is expected.
  const std::time_t installed = std::chrono::system_clock::to_time_t(now - days(60));
  struct timespec times[2] = {{installed, 0}, {installed, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, crontab.c_str(), times, 0), 0);

  Ran st = cronprof({"--history", uri_, "--json", "status", "--crontab", dir_ + "/cron.d", "--since", "1d"}, dir_);
  EXPECT_EQ(st.rc, 8) << "a failing job alerts\n" << st.err;
  json sj = json::parse(st.out);
  std::map<std::string, std::string> state;
  for (const json& j : sj["jobs"]) state[j["job"].get<std::string>()] = j["state"].get<std::string>();
  EXPECT_EQ(state[weekly], "up") << "its tick's run was on time\n" << st.out;
  EXPECT_EQ(state[minutely], "failing") << "its last executed run failed\n" << st.out;
  EXPECT_EQ(state.count(other), 0u);
  EXPECT_THAT(st.err, Not(HasSubstr("unreadable"))) << "the copy read a row status does not need";

  // The report's states are status's; its table is the window's (every job).
  Ran rp = cronprof({"--history", uri_, "--json", "report", "--html", dir_ + "/report.html", "--since", "1d",
                     "--crontab", dir_ + "/cron.d"},
                    dir_);
  ASSERT_EQ(rp.rc, 0) << rp.err;
  const std::string html = slurp(dir_ + "/report.html");
  EXPECT_THAT(html, HasSubstr("data-state=\"up\" data-job=\"" + weekly + "\""));
  EXPECT_THAT(html, HasSubstr("data-state=\"failing\" data-job=\"" + minutely + "\""));
  EXPECT_THAT(rp.err, Not(HasSubstr("unreadable")));
  // export's csv of a window, and plan's profiles, copy the window alone.
  Ran csv = cronprof({"--history", uri_, "export", "--format", "csv", "--job", weekly, "--since", "7d"}, dir_);
  ASSERT_EQ(csv.rc, 0) << csv.err;
  EXPECT_EQ(lines(csv.out), 3u) << "header and the two runs of the week\n" << csv.out;
  EXPECT_THAT(csv.err, Not(HasSubstr("unreadable")));
  Ran plan = cronprof({"--history", uri_, "plan", "--crontab", dir_ + "/cron.d", "--since", "7d"}, dir_);
  ASSERT_EQ(plan.rc, 0) << plan.err;
  EXPECT_THAT(plan.err, Not(HasSubstr("unreadable")));
  // Prometheus' counters are all-time, counted by the database (the unreadable
  // row is a recorded run too); the copy holds each job's newest runs per host.
  Ran prom = cronprof({"--history", uri_, "export", "--format", "prometheus", "--job", weekly}, dir_);
  ASSERT_EQ(prom.rc, 0) << prom.err;
  EXPECT_THAT(prom.err, Not(HasSubstr("unreadable")));
  const std::string wl = "cronjob=\"" + weekly + "\",host=\"" + box + "\"";
  EXPECT_THAT(prom.out, HasSubstr("cronrun_runs_total{" + wl + ",status=\"ok\"} 4\n")) << prom.out;
  EXPECT_THAT(prom.out, HasSubstr("cronrun_runs_total{" + wl + ",status=\"failed\"} 0\n"));
  EXPECT_THAT(prom.out, HasSubstr("cronrun_last_success_timestamp_seconds{" + wl + "} " +
                                  std::to_string(std::chrono::system_clock::to_time_t(now - days(2)))));
  // A host whose runs of a job were all skipped still has its counter.
  const std::string box2 = host("box2");
  json on_box2 = run(minutely, "skipped", now - std::chrono::seconds(30));
  on_box2["host"] = box2;
  put(box2, {on_box2}, pg::BatchRecord::Kind::finish);
  Ran prom2 = cronprof({"--history", uri_, "export", "--format", "prometheus", "--job", minutely, "--crontab",
                        dir_ + "/cron.d"},
                       dir_);
  ASSERT_EQ(prom2.rc, 0) << prom2.err;
  const std::string m1 = "cronjob=\"" + minutely + "\",host=\"" + box + "\"";
  const std::string m2 = "cronjob=\"" + minutely + "\",host=\"" + box2 + "\"";
  EXPECT_THAT(prom2.out, HasSubstr("cronrun_runs_total{" + m1 + ",status=\"failed\"} 1\n")) << prom2.out;
  EXPECT_THAT(prom2.out, HasSubstr("cronrun_runs_total{" + m1 + ",status=\"skipped\"} 1\n"));
  EXPECT_THAT(prom2.out, HasSubstr("cronrun_runs_total{" + m2 + ",status=\"skipped\"} 1\n"));
  EXPECT_THAT(prom2.out, HasSubstr("cronrun_last_run_success{" + m1 + "} 0\n"));
  EXPECT_THAT(prom2.out, HasSubstr("cronrun_job_state{cronjob=\"" + minutely + "\",state=\"failing\"} 1\n"));
  if (::access("/usr/bin/promtool", X_OK) == 0) {
    std::ofstream(dir_ + "/central.prom") << prom2.out;
    std::string check = "/usr/bin/promtool check metrics < " + dir_ + "/central.prom > " + dir_ + "/promtool.out 2>&1";
    EXPECT_EQ(std::system(check.c_str()), 0) << slurp(dir_ + "/promtool.out");
  }
}

TEST_F(CronprofFleet, ABadOrUnreachableUriFailsWithOneLineNamingHistory) {
  // Nothing listens on port 1.
  Ran away = cronprof({"--history", "postgresql://cronrun:s3cret@127.0.0.1:1/cronrun?connect_timeout=2", "runs"}, dir_);
  EXPECT_EQ(away.rc, 4) << away.err;
  EXPECT_EQ(lines(away.err), 1u) << away.err;
  EXPECT_THAT(away.err, HasSubstr("cronprof: --history postgresql://cronrun:***@127.0.0.1:1/cronrun"));
  EXPECT_THAT(away.err, Not(HasSubstr("s3cret")));
  EXPECT_EQ(away.out, "");

  Ran bad = cronprof({"--history", uri_ + "?no_such_option=1", "summary"}, dir_);
  EXPECT_EQ(bad.rc, 2) << bad.err;
  EXPECT_EQ(lines(bad.err), 1u) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("--history"));

  // A database without the cronrun schema: no history there.
  std::string other = uri_.substr(0, uri_.rfind('/') + 1) + "postgres";
  Ran empty = cronprof({"--history", other, "runs"}, dir_);
  EXPECT_EQ(empty.rc, 3) << empty.err;
  EXPECT_EQ(lines(empty.err), 1u) << empty.err;
}

TEST_F(CronprofFleet, FleetShowsHoldersRunsInProgressLostRunsDeadLettersAndQuietHosts) {
  const std::string prefix = "/t/cronprof-" + tag_;
  auto endpoints = split(env("CRONRUN_FLEET_ETCD"), ',');
  ASSERT_FALSE(endpoints.empty());
  auto client = etcd::Client::open(etcd::Options{.endpoints = endpoints});
  ASSERT_TRUE(client) << client.error().message();
  const std::string box1 = host("box1"), box2 = host("box2"), box3 = host("box3");
  ASSERT_TRUE(client->put(prefix + "/config",
                          json{{"groups", {{"scripts", json::array({box1, box2})}, {"all", json::array({"scripts", box3})}}}}
                              .dump()));
  // A lock held by box1, on a lease, as the runner's claim leaves it.
  const std::string held_job = job("held"), gone_job = job("gone");
  const std::string held_run = new_run_id(), gone_run = new_run_id();
  auto lease = client->lease_grant(60);
  ASSERT_TRUE(lease);
  ASSERT_TRUE(client->put(prefix + "/locks/" + held_job,
                          json{{"run_id", held_run}, {"host", box1}, {"pid", 4242}, {"tick", "2026-12-06T12:00:00Z"},
                               {"started_at", "2026-12-06T12:00:00.100Z"}}
                              .dump(),
                          lease->id));
  auto lock = client->range(prefix + "/locks/" + held_job);
  ASSERT_TRUE(lock);
  ASSERT_EQ(lock->kvs.size(), 1u);
  const int64_t fence = lock->kvs[0].create_revision;

  // Its running row, and one of another job whose lock is gone (box2 vanished).
  put(box1, {record(held_run, held_job, box1, "running", fence, "2026-12-06T12:00:00Z")}, pg::BatchRecord::Kind::start);
  put(box2, {record(gone_run, gone_job, box2, "running", fence - 1, "2026-12-06T11:00:00Z")},
      pg::BatchRecord::Kind::start);
  // A poisoned record from box2: a dead letter.
  json poisoned = record(new_run_id(), job("poison"), box2, "ok");
  poisoned["started_at"] = "not a time";
  put(box2, {poisoned}, pg::BatchRecord::Kind::finish);
  // box3 forwarded once, long ago.
  put(box3, {}, pg::BatchRecord::Kind::finish);
  std::string psql = "/usr/lib/postgresql/15/bin/psql";
  std::string sql = "UPDATE cronrun.hosts SET last_seen = now() - interval '3 hours' WHERE host = '" + box3 + "'";
  ASSERT_EQ(std::system((psql + " -q -X -v ON_ERROR_STOP=1 '" + uri_ + "' -c \"" + sql + "\" >/dev/null").c_str()), 0);

  std::string config = dir_ + "/fleet.json";
  {
    std::ofstream f(config);
    f << json{{"etcd", endpoints}, {"prefix", prefix}, {"history", uri_}}.dump();
  }
  ::chmod(config.c_str(), 0600);

  Ran fj = cronprof({"--json", "fleet", "--fleet-config", config}, dir_);
  EXPECT_EQ(fj.rc, 8) << "a lost run and a quiet host alert\n" << fj.err;
  json v = json::parse(fj.out);
  EXPECT_EQ(v["schema"], "cronrun.fleet/1");
  EXPECT_EQ(v["prefix"], prefix);
  bool saw_group = false;
  for (const json& g : v["groups"])
    if (g["name"] == "all") {
      saw_group = true;
      EXPECT_EQ(g["hosts"], json::array({box1, box2, box3}));
    }
  EXPECT_TRUE(saw_group) << v["groups"].dump();
  ASSERT_EQ(v["locks"].size(), 1u);
  EXPECT_EQ(v["locks"][0]["job"], held_job);
  EXPECT_EQ(v["locks"][0]["host"], box1);
  EXPECT_EQ(v["locks"][0]["run_id"], held_run);
  EXPECT_EQ(v["locks"][0]["fence"], fence);
  EXPECT_GT(v["locks"][0]["ttl_left_s"].get<int64_t>(), 0);
  EXPECT_LE(v["locks"][0]["ttl_left_s"].get<int64_t>(), 60);
  bool saw_held = false, saw_gone = false;
  for (const json& r : v["running"]) {
    if (r["run_id"] == held_run) {
      saw_held = true;
      EXPECT_EQ(r["status"], "running");
      EXPECT_EQ(r["host"], box1);
    }
    if (r["run_id"] == gone_run) {
      saw_gone = true;
      EXPECT_EQ(r["status"], "lost");
      EXPECT_THAT(r["lost_why"].get<std::string>(), HasSubstr("no lock of " + gone_job));
    }
  }
  EXPECT_TRUE(saw_held && saw_gone) << v["running"].dump();
  EXPECT_GE(v["dead_letters"]["total"].get<int64_t>(), 1);
  bool saw_dead = false;
  for (const json& d : v["dead_letters"]["newest"]) saw_dead = saw_dead || d["host"] == box2;
  EXPECT_TRUE(saw_dead) << v["dead_letters"].dump();
  bool quiet3 = false, quiet1 = true;
  for (const json& h : v["hosts"]) {
    if (h["host"] == box3) quiet3 = h["quiet"];
    if (h["host"] == box1) quiet1 = h["quiet"];
  }
  EXPECT_TRUE(quiet3);
  EXPECT_FALSE(quiet1);

  // The table for people, fitted to 80 columns.
  Ran text = cronprof({"fleet", "status", "--fleet-config", config}, dir_, "80");
  EXPECT_EQ(text.rc, 8) << text.err;
  EXPECT_THAT(text.out, HasSubstr("LOCKS (1)"));
  EXPECT_THAT(text.out, HasSubstr(box1));
  EXPECT_THAT(text.out, HasSubstr("lost"));
  EXPECT_THAT(text.out, HasSubstr("DEAD LETTERS"));
  EXPECT_THAT(text.out, HasSubstr("quiet"));
  std::istringstream in(text.out);
  for (std::string l; std::getline(in, l);) {
    size_t cols = 0;
    for (char c : l) cols += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    EXPECT_LE(cols, 80u) << l;
  }

  // The lock released: the running row of held_job reads as lost too.
  ASSERT_TRUE(client->lease_revoke(lease->id));
  Ran after = cronprof({"--json", "fleet", "--fleet-config", config}, dir_);
  json a = json::parse(after.out);
  EXPECT_EQ(a["locks"].size(), 0u);
  bool held_lost = false;
  for (const json& r : a["running"]) {
    if (r["run_id"] == held_run) held_lost = r["status"] == "lost";
  }
  EXPECT_TRUE(held_lost) << a["running"].dump();

  // etcd away (a config naming a port nothing listens on): one line, exit 4, the
  // central history's part still shown.
  std::string away = dir_ + "/away.json";
  {
    std::ofstream f(away);
    f << json{{"etcd", {"http://127.0.0.1:1"}}, {"prefix", prefix}, {"history", uri_}}.dump();
  }
  Ran down = cronprof({"fleet", "--fleet-config", away}, dir_);
  EXPECT_EQ(down.rc, 4) << down.err;
  EXPECT_EQ(lines(down.err), 1u) << down.err;
  EXPECT_THAT(down.out, HasSubstr("DEAD LETTERS"));

  client->delete_range(prefix + "/", etcd::prefix_end(prefix + "/"));
}

}  // namespace
