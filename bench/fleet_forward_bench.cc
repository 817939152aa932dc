// Forwarding throughput into the central history (bench/fleet_forward.sh): a
// fresh history whose journal holds RUNS fleet runs (a start and a finish record
// each, ~1.5 KiB of JSON apiece, as the runner writes them), forwarded to
// PostgreSQL by forward::forward() with BATCH records per round trip. Prints
// records/s of the whole pass (journal read, the batch function, the cursor
// commits). A figure for people, not a test.
//
//   fleet_forward_bench PG_URI RUNS BATCH [BATCH...]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "common/history.h"
#include "common/journal.h"
#include "common/run_record.h"
#include "runner/forward.h"

using namespace cronrun;

namespace {

RunRecord make(const std::string& job, int i, RunStatus status) {
  RunRecord r;
  r.run_id = new_run_id();
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
      if (!w->append(journal::RecordType::start, make(job, i, RunStatus::running)) ||
          !w->append(journal::RecordType::finish, make(job, i, RunStatus::ok))) {
        std::fprintf(stderr, "journal append failed\n");
        return 1;
      }
    }
    forward::Options fo;
    fo.history_path = history;
    fo.pg_uri = uri;
    fo.host = "bench1";
    fo.batch_records = batch;
    auto t0 = std::chrono::steady_clock::now();
    auto rep = forward::forward(fo);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!rep) {
      std::fprintf(stderr, "%s\n", rep.error().message().c_str());
      rc = 1;
      continue;
    }
    std::printf("batch %5zu: %llu records (%llu stored) in %.3f s = %.0f records/s, %llu round trips\n", batch,
                static_cast<unsigned long long>(rep->sent), static_cast<unsigned long long>(rep->stored), s,
                static_cast<double>(rep->sent) / s, static_cast<unsigned long long>(rep->batches));
  }
  std::filesystem::remove_all(dir);
  return rc;
}
