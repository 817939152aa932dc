// Forwarding throughput into the central history (bench/fleet_forward.sh): a
// fresh history whose journal holds RUNS fleet runs (a start and a finish record
// each, ~1.5 KiB of JSON apiece, as the runner writes them), forwarded to
// PostgreSQL by forward::forward() with BATCH records per round trip. Prints
// records/s of the whole pass (journal read, the batch function, the cursor
// commits) and where its time went: this process's CPU (journal, JSON, libpq,
// SQLite), the PostgreSQL server's CPU (when CRONRUN_BENCH_PG_PID names the
// postmaster: its children's CPU, live and reaped), and the rest (waiting: round
// trips, I/O, other load). A figure for people, not a test.
//
//   fleet_forward_bench PG_URI RUNS BATCH [BATCH...]
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "common/history.h"
#include "common/journal.h"
#include "common/run_record.h"
#include "runner/forward.h"

using namespace cronrun;

namespace {

RunRecord make(const std::string& job, const std::string& run_id, int i, RunStatus status) {
  RunRecord r;
  r.run_id = run_id;
  r.job = job;
  r.host = "bench1";
  r.user = "root";
  r.command = {"/usr/local/bin/report", "--full", std::to_string(i)};
  auto tick = std::chrono::system_clock::time_point(std::chrono::seconds(1'900'000'000 + i));
  r.started_at = format_rfc3339(tick);
  r.status = status;
  r.isolation = {"v2", "/cronrun/" + job + "/" + r.run_id, "cgroup", std::nullopt};
  if (status != RunStatus::running) {
    r.finished_at = format_rfc3339(tick + std::chrono::milliseconds(5));
    r.wall_s = 0.005;
    r.exit_code = 0;
    r.usage.cpu_user_s = 0.001;
    r.usage.cpu_system_s = 0.002;
    r.usage.memory_peak_bytes = 1 << 20;
  }
  FleetRecord f;
  f.group = "bench";
  f.host = "bench1";
  f.tick = format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(tick)).substr(0, 19) + "Z";
  f.fence = 1000 + i;
  f.lease_ttl_s = 30;
  r.fleet = f;
  return r;
}

double self_cpu_s() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// utime, stime, cutime, cstime of /proc/PID/stat, in seconds; ppid through `ppid`.
double proc_cpu_s(pid_t pid, bool with_children, pid_t* ppid = nullptr) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string state;
  long long v[15] = {};
  rest >> state;
  for (auto& x : v) rest >> x;  // ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  if (ppid) *ppid = static_cast<pid_t>(v[0]);
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return static_cast<double>(v[10] + v[11] + (with_children ? v[12] + v[13] : 0)) / tick;
}

// The PostgreSQL server's CPU: the postmaster's with its reaped children's, and
// its live children's. 0 without CRONRUN_BENCH_PG_PID.
double server_cpu_s() {
  const char* p = std::getenv("CRONRUN_BENCH_PG_PID");
  if (!p || !*p) return 0;
  const pid_t postmaster = static_cast<pid_t>(std::atoi(p));
  double total = proc_cpu_s(postmaster, true);
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (*end || pid <= 0 || pid == postmaster) continue;
      pid_t ppid = 0;
      double cpu = proc_cpu_s(static_cast<pid_t>(pid), false, &ppid);
      if (ppid == postmaster) total += cpu;
    }
    ::closedir(d);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s PG_URI RUNS BATCH [BATCH...]\n", argv[0]);
    return 2;
  }
  const std::string uri = argv[1];
  const int runs = std::atoi(argv[2]);
  char tmpl[] = "/tmp/cronrun-fwd-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  int rc = 0;
  for (int a = 3; a < argc; ++a) {
    const size_t batch = static_cast<size_t>(std::atoi(argv[a]));
    const std::string history = fmt::format("{}/h{}.db", dir, batch);
    HistoryOpenOptions o;
    o.journal = HistoryOpenOptions::Journal::ignore;
    if (auto s = HistoryStore::open(history, HistoryStore::Mode::read_write, nullptr, o); !s) {
      std::fprintf(stderr, "%s\n", s.error().message().c_str());
      return 1;
    }
    auto w = journal::Writer::open(UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)), history, 0644);
    if (!w) {
      std::fprintf(stderr, "%s\n", w.error().message().c_str());
      return 1;
    }
    const std::string job = fmt::format("bench-{}-{}-b{}", getpid(), runs, batch);
    for (int i = 0; i < runs; ++i) {
      // One run: its start and its finish carry the same run id, as the runner's do.
      const std::string run_id = new_run_id();
      if (!w->append(journal::RecordType::start, make(job, run_id, i, RunStatus::running)) ||
          !w->append(journal::RecordType::finish, make(job, run_id, i, RunStatus::ok))) {
        std::fprintf(stderr, "journal append failed\n");
        return 1;
      }
    }
    forward::Options fo;
    fo.history_path = history;
    fo.pg_uri = uri;
    fo.host = "bench1";
    fo.batch_records = batch;
    const double server0 = server_cpu_s(), client0 = self_cpu_s();
    auto t0 = std::chrono::steady_clock::now();
    auto rep = forward::forward(fo);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double client = self_cpu_s() - client0;
    ::usleep(200'000);  // the backend exits and is reaped: its CPU moves to the postmaster's children
    const double server = server_cpu_s() - server0;
    if (!rep) {
      std::fprintf(stderr, "%s\n", rep.error().message().c_str());
      rc = 1;
      continue;
    }
    const double n = static_cast<double>(rep->sent);
    std::printf("batch %5zu: %llu records (%llu stored, %llu refused, %llu dead) in %.3f s = %.0f records/s, %llu round trips; per record: "
                "client CPU %.0f us, server CPU %.0f us, wall %.0f us\n",
                batch, static_cast<unsigned long long>(rep->sent), static_cast<unsigned long long>(rep->stored),
                static_cast<unsigned long long>(rep->refused), static_cast<unsigned long long>(rep->dead), s,
                n / s, static_cast<unsigned long long>(rep->batches), client / n * 1e6, server / n * 1e6, s / n * 1e6);
  }
  std::filesystem::remove_all(dir);
  return rc;
}
