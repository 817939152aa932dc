// history_bench: synthetic histories and the runner's insert cost.
//
//   history_bench generate DB RUNS JOBS [DAYS]
//       Appends RUNS synthetic runs of JOBS jobs spread over the last DAYS days
//       (default 30) to DB, through the real schema (HistoryStore creates it) but
//       in one bulk transaction — a million single-row commits with fsync would
//       take hours and measure the disk, not the history.
//   history_bench insert DB COUNT
//       What the runner pays per run: COUNT x (begin_run + finish_run) through
//       HistoryStore, each its own durable transaction. Prints the median and p95
//       microseconds of the pair.
//
// bench/history_bench.sh drives both and times `cronprof summary`.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/history.h"
#include "common/run_record.h"

namespace {

using cronrun::HistoryStore;
using cronrun::RunRecord;
using cronrun::RunStatus;

std::string rfc3339(double unix_s) {
  time_t t = static_cast<time_t>(unix_s);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((unix_s - static_cast<double>(t)) * 1000));
  return buf;
}

// A plausible finished run of job `j`: wall and memory vary per job and per run.
RunRecord synthetic(std::mt19937_64& rng, int job, double started) {
  std::lognormal_distribution<double> jitter(0.0, 0.25);
  std::uniform_real_distribution<double> u(0, 1);
  RunRecord r;
  r.run_id = cronrun::new_run_id();
  r.job = "job-" + std::to_string(job);
  r.host = "bench";
  r.user = "root";
  r.command = {"/usr/local/bin/" + r.job, "--full"};
  r.started_at = rfc3339(started);
  double wall = (5.0 + job % 50 * 12.0) * jitter(rng);
  r.wall_s = wall;
  r.finished_at = rfc3339(started + wall);
  double roll = u(rng);
  r.status = roll < 0.95 ? RunStatus::ok : roll < 0.98 ? RunStatus::failed : roll < 0.99 ? RunStatus::oom
                                                                                         : RunStatus::skipped;
  if (r.status == RunStatus::skipped) {
    r.wall_s = 0;
    r.skip_reason = "lock held by pid 1234";
    return r;
  }
  r.exit_code = r.status == RunStatus::ok ? 0 : 1;
  r.isolation = {"v2", "/cronrun/" + r.job + "/" + r.run_id, "cgroup", std::nullopt};
  r.limits.memory_max_bytes = 2ULL << 30;
  r.limits.cpu_quota_pct = 150;
  r.limits.timeout_s = 3000;
  r.usage.cpu_user_s = wall * 0.6 * jitter(rng);
  r.usage.cpu_system_s = wall * 0.05;
  r.usage.memory_peak_bytes = static_cast<uint64_t>((64.0 + job % 20 * 50.0) * jitter(rng) * (1 << 20));
  r.usage.max_rss_bytes = *r.usage.memory_peak_bytes / 2;
  r.usage.io_read_bytes = 1 << 20;
  r.usage.io_write_bytes = 1 << 19;
  r.usage.pids_peak = 3;
  r.usage.oom_kills = r.status == RunStatus::oom ? 1 : 0;
  r.usage.memory_max_events = 0;
  r.usage.memory_high_events = 0;
  r.usage.cpu_throttled_s = wall * 0.01;
  r.usage.cpu_nr_throttled = 10;
  r.usage.pressure_some_s = {0.1, 0.0, 0.05};
  if (job % 3 == 0) {
    r.counters["db.queries"] = std::floor(1000 * jitter(rng));
    r.counters["db.time_s"] = wall * 0.2;
    r.counters["db.processes"] = 1;
    r.counters["db.processes_with_client"] = 1;
  }
  return r;
}

int generate(const std::string& path, long runs, int jobs, double days) {
  {
    auto s = HistoryStore::open(path, HistoryStore::Mode::read_write);
    if (!s) {
      std::fprintf(stderr, "history_bench: %s\n", s.error().message().c_str());
      return 1;
    }
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "INSERT INTO runs (run_id, job, status, started_at, finished_at, wall_s, exit_code, cpu_s, memory_peak_bytes, "
      "max_rss_bytes, oom_kills, host, runner_pid, boot_id, record, cpu_throttled_s, db_queries, db_time_s, "
      "memory_max_bytes, cpu_quota_pct, timeout_s, pids_peak, pids_max_events, pids_max) VALUES (?1,?2,?3,?4,?5,?6,?7,"
      "?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24)";
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "history_bench: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  std::mt19937_64 rng(42);
  double now = static_cast<double>(::time(nullptr));
  double start = now - days * 86400;
  double step = days * 86400 / static_cast<double>(runs);
  auto bind_opt = [&](int i, const auto& v) {
    if (v)
      sqlite3_bind_double(st, i, static_cast<double>(*v));
    else
      sqlite3_bind_null(st, i);
  };
  for (long i = 0; i < runs; ++i) {
    double t = start + static_cast<double>(i) * step;
    RunRecord r = synthetic(rng, static_cast<int>(i % jobs), t);
    std::string json = cronrun::to_json(r).dump();
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, r.run_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, r.job.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, cronrun::to_string(r.status), -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, t);
    sqlite3_bind_double(st, 5, t + r.wall_s.value_or(0));
    bind_opt(6, r.wall_s);
    bind_opt(7, r.exit_code);
    std::optional<double> cpu;
    if (r.usage.cpu_user_s) cpu = *r.usage.cpu_user_s + r.usage.cpu_system_s.value_or(0);
    bind_opt(8, cpu);
    if (r.usage.memory_peak_bytes)
      sqlite3_bind_int64(st, 9, static_cast<sqlite3_int64>(*r.usage.memory_peak_bytes));
    else
      sqlite3_bind_null(st, 9);
    bind_opt(10, r.usage.max_rss_bytes);
    bind_opt(11, r.usage.oom_kills);
    sqlite3_bind_text(st, 12, "bench", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, 0);
    sqlite3_bind_text(st, 14, "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, json.c_str(), static_cast<int>(json.size()), SQLITE_TRANSIENT);
    bind_opt(16, r.usage.cpu_throttled_s);
    auto q = r.counters.find("db.queries");
    if (q != r.counters.end())
      sqlite3_bind_double(st, 17, q->second);
    else
      sqlite3_bind_null(st, 17);
    sqlite3_bind_null(st, 18);
    if (r.limits.memory_max_bytes)
      sqlite3_bind_int64(st, 19, static_cast<sqlite3_int64>(*r.limits.memory_max_bytes));
    else
      sqlite3_bind_null(st, 19);
    bind_opt(20, r.limits.cpu_quota_pct);
    bind_opt(21, r.limits.timeout_s);
    bind_opt(22, r.usage.pids_peak);
    bind_opt(23, r.usage.pids_max_events);
    bind_opt(24, r.limits.pids_max);
    if (sqlite3_step(st) != SQLITE_DONE) {
      std::fprintf(stderr, "history_bench: insert: %s\n", sqlite3_errmsg(db));
      return 1;
    }
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return 0;
}

int insert(const std::string& path, int count) {
  auto s = HistoryStore::open(path, HistoryStore::Mode::read_write);
  if (!s) {
    std::fprintf(stderr, "history_bench: %s\n", s.error().message().c_str());
    return 1;
  }
  std::mt19937_64 rng(7);
  std::vector<double> us;
  for (int i = 0; i < count; ++i) {
    RunRecord r = synthetic(rng, i % 500, static_cast<double>(::time(nullptr)));
    r.status = RunStatus::running;
    r.runner_pid = ::getpid();
    auto t0 = std::chrono::steady_clock::now();
    auto b = s->begin_run(r);
    r.status = RunStatus::ok;
    auto f = s->finish_run(r);
    auto t1 = std::chrono::steady_clock::now();
    if (!b || !f) {
      std::fprintf(stderr, "history_bench: %s\n", (!b ? b.error() : f.error()).message().c_str());
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("begin_run+finish_run: median %.0f us, p95 %.0f us over %d runs\n", us[us.size() / 2],
              us[us.size() * 95 / 100], count);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "generate" && argc >= 5)
    return generate(argv[2], std::atol(argv[3]), std::atoi(argv[4]), argc > 5 ? std::atof(argv[5]) : 30.0);
  if (cmd == "insert" && argc == 4) return insert(argv[2], std::atoi(argv[3]));
  std::fprintf(stderr, "usage: history_bench generate DB RUNS JOBS [DAYS] | insert DB COUNT\n");
  return 2;
}
