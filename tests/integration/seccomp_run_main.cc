// seccomp-run: runs a program under a seccomp profile with the test supervisor
// (seccomp_harness.h), for bench/seccomp.sh and by hand, until the runner
// itself takes --seccomp.
//   seccomp-run [--profile off|baseline|strict|learn|FILE] [--repeat N]
//               [--learned-out FILE] [--cache DIR] -- PROGRAM ARGS...
// Prints one line per run: "run=I resolve_us=R compile_us=C load_us=L exec_us=E wall_us=W cpu_us=U
// status=S violations=V", then the last run's `seccomp` record object on a line of its own.
// load_us: load_filter() with the cache in DIR (the runner's path: a hit after the first run).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/seccomp_harness.h"

namespace sc = cronrun::seccomp;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string profile_name = "off", learned_out, cache_dir;
  int repeat = 1;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--profile" && i + 1 < argc) profile_name = argv[++i];
    else if (a == "--repeat" && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (a == "--learned-out" && i + 1 < argc) learned_out = argv[++i];
    else if (a == "--cache" && i + 1 < argc) cache_dir = argv[++i];
    else {
      std::fprintf(stderr, "usage: seccomp-run [--profile P] [--repeat N] [--learned-out FILE] -- PROGRAM ARGS...\n");
      return 2;
    }
  }
  if (i >= argc || repeat < 1) {
    std::fprintf(stderr, "seccomp-run: no program given\n");
    return 2;
  }
  std::vector<std::string> cmd(argv + i, argv + argc);
  sc::testing::RunOptions opt;
  if (const char* path = std::getenv("PATH")) opt.env = {std::string("PATH=") + path, "LANG=C"};
  opt.limit = std::chrono::seconds(3600);
  int last_status = 0;
  for (int run = 0; run < repeat; ++run) {
    const auto t0 = Clock::now();
    std::optional<sc::Profile> profile;
    // The first run of a process also builds the native syscall table, as every
    // cronrun run will (a process runs one job).
    const auto r0 = Clock::now();
    if (profile_name != "off") {
      auto p = sc::resolve_profile(profile_name);
      if (!p) {
        std::fprintf(stderr, "cronrun: --seccomp %s: %s\n", profile_name.c_str(), p.error().message().c_str());
        return 125;
      }
      profile = std::move(*p);
    }
    const double resolve_us = std::chrono::duration<double, std::micro>(Clock::now() - r0).count();
    // The compile happens inside run_filtered; time it separately once per run.
    double compile_us = 0, load_us = 0;
    if (profile) {
      const auto c0 = Clock::now();
      auto f = sc::compile_filter(*profile, {3, 4});
      compile_us = std::chrono::duration<double, std::micro>(Clock::now() - c0).count();
      if (!f) {
        std::fprintf(stderr, "seccomp-run: %s\n", f.error().message().c_str());
        return 125;
      }
      if (!cache_dir.empty()) {
        const auto l0 = Clock::now();
        auto l = sc::load_filter(*profile, {3, 4}, cache_dir);
        load_us = std::chrono::duration<double, std::micro>(Clock::now() - l0).count();
        if (!l) {
          std::fprintf(stderr, "seccomp-run: %s\n", l.error().message().c_str());
          return 125;
        }
      }
    }
    auto o = sc::testing::run_filtered(profile ? &*profile : nullptr, cmd, opt);
    const double wall_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    last_status = o.wait_status >= 0 && WIFEXITED(o.wait_status) ? WEXITSTATUS(o.wait_status) : 128;
    std::printf("run=%d resolve_us=%.0f compile_us=%.0f load_us=%.0f exec_us=%.0f wall_us=%.0f cpu_us=%.0f status=\"%s\" violations=%llu\n", run, resolve_us, compile_us,
                load_us, o.exec_ms * 1000.0, wall_us, o.cpu_us, sc::testing::describe(o).c_str(),
                o.summary ? static_cast<unsigned long long>(o.summary->violations_total) : 0ULL);
    if (run + 1 == repeat && o.summary) {
      std::printf("%s\n", o.summary->to_json().dump().c_str());
      if (!learned_out.empty()) std::ofstream(learned_out) << o.summary->learned_profile().dump(2) << "\n";
    }
  }
  return last_status;
}
