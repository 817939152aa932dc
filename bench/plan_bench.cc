// Benchmark of `cronprof plan`'s core: N crontab entries (default 500, a mix of
// every-5-minutes, every-10, hourly, daily, weekly and monthly jobs, all cronrun
// jobs with profiles) parsed, simulated over the week in both scenarios and
// staggered. Budget: under 1 s for 500 entries (issue: capacity planning).
//
//   plan_bench [--entries N] [--budget-ms MS] [--repeat R]
// Prints the times; exits 1 when the best total exceeds the budget.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "profiler/crontab.h"
#include "profiler/plan.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Lcg {
  uint64_t s = 42;
  uint32_t next(uint32_t n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>((s >> 33) % n);
  }
};

}  // namespace

int main(int argc, char** argv) {
  size_t entries = 500, repeat = 3;
  double budget_ms = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--entries")) entries = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--budget-ms")) budget_ms = std::strtod(argv[i + 1], nullptr);
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::strtoul(argv[i + 1], nullptr, 10);
  }
  using namespace cronrun;
  Lcg rng;
  std::string text;
  std::vector<plan::JobProfile> profiles;
  for (size_t i = 0; i < entries; ++i) {
    std::string job = fmt::format("job-{:04}", i), when;
    double wall = 0;
    switch (rng.next(6)) {
      case 0: when = fmt::format("{}-59/5 * * * *", rng.next(5)); wall = 30 + rng.next(400); break;
      case 1: when = fmt::format("{}-59/10 * * * *", rng.next(10)); wall = 60 + rng.next(900); break;
      case 2: when = fmt::format("{} * * * *", rng.next(60)); wall = 60 + rng.next(3000); break;
      case 3: when = fmt::format("{} {} * * *", rng.next(60), rng.next(24)); wall = 300 + rng.next(7200); break;
      case 4: when = fmt::format("{} {} * * {}", rng.next(60), rng.next(24), rng.next(7)); wall = 600 + rng.next(10800); break;
      default: when = fmt::format("{} {} {} * *", rng.next(60), rng.next(24), 1 + rng.next(28)); wall = 600 + rng.next(7200);
    }
    text += fmt::format("{} cronrun -n {} --memory 2G -- /usr/local/bin/{}\n", when, job, job);
    plan::JobProfile p;
    p.job = job;
    p.runs = 30;
    p.memory_peak_p95_bytes = (64ull + rng.next(4000)) << 20;
    p.cpu_per_wall = 0.05 + rng.next(200) / 100.0;
    p.wall_p50_s = wall;
    p.wall_p95_s = wall * (1.2 + rng.next(100) / 100.0);
    profiles.push_back(p);
  }
  plan::Host host{64ull << 30, 16, "bench"};
  plan::Options opt;
  opt.week = plan::week_containing(2026, 11, 30);

  double best = 1e18;
  for (size_t r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    auto c = crontab::parse_crontab(text, "bench.cron", crontab::Kind::user);
    auto planned = plan::plan_entries(c.entries);
    double parse_ms = ms_since(t0);
    auto t1 = Clock::now();
    plan::PlanResult p = plan::make_plan(planned, profiles, host, opt);
    double plan_ms = ms_since(t1);
    double total = ms_since(t0);
    best = std::min(best, total);
    size_t runs = 0;
    for (const auto& [job, jr] : p.pessimistic.runs) runs += jr.starts;
    std::printf("entries %zu  starts/week %zu  parse %.1f ms  simulate+stagger %.1f ms  total %.1f ms  "
                "(peak %.1f GiB at %s, %zu moves -> %.1f GiB)\n",
                c.entries.size(), runs, parse_ms, plan_ms, total,
                static_cast<double>(p.pessimistic.memory_peak.memory_bytes) / (1ull << 30),
                plan::weekday_hhmm(p.pessimistic.memory_peak.minute).c_str(), p.stagger.moves.size(),
                static_cast<double>(p.stagger.memory_peak_after_bytes) / (1ull << 30));
  }
  std::printf("best total %.1f ms, budget %.0f ms: %s\n", best, budget_ms, best <= budget_ms ? "ok" : "OVER BUDGET");
  return best <= budget_ms ? 0 : 1;
}
