// dbcount-run: runs one command the way cronrun --count-db-queries does (a
// dbcount::Session, its env() added to the command's environment, collect() after
// it exits) and writes {"exit_code", "signal", "counters"} as JSON. It lets the DB
// tier exercise the preload library and the runner's reader without the rest of
// cronrun.
//
//   dbcount-run --out FILE [--base DIR] [--no-tsc] -- COMMAND [ARG...]
//
// --no-tsc clears CRONRUN_DB_FLAG_TSC in the fresh file, so the job's processes
// time with clock_gettime (the path taken where the TSC is not trusted).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/db_counter.h"

extern "C" {
#include "preload/cronrun_db_shm.h"
}

namespace {

int usage() {
  std::fprintf(stderr, "usage: dbcount-run --out FILE [--base DIR] [--no-tsc] -- COMMAND [ARG...]\n");
  return 125;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out, base;
  bool no_tsc = false;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (a == "--base" && i + 1 < argc) {
      base = argv[++i];
    } else if (a == "--no-tsc") {
      no_tsc = true;
    } else {
      return usage();
    }
  }
  if (out.empty() || i >= argc) return usage();

  auto session = base.empty() ? cronrun::dbcount::Session::create("dbcount-run")
                              : cronrun::dbcount::Session::create_in(base, "dbcount-run");
  if (!session) {
    std::fprintf(stderr, "dbcount-run: %s\n", session.error().message().c_str());
    return 125;
  }
  if (no_tsc) {
    int fd = open(session->file_path().c_str(), O_RDWR | O_CLOEXEC);
    uint32_t flags = 0;
    if (fd < 0 || pwrite(fd, &flags, sizeof flags, offsetof(cronrun_db_shm, flags)) != sizeof flags) {
      std::perror("dbcount-run: --no-tsc");
      return 125;
    }
    close(fd);
  }
  std::vector<std::string> env = session->env();
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("dbcount-run: fork");
    return 125;
  }
  if (pid == 0) {
    for (auto& kv : env) putenv(kv.data());
    execvp(argv[i], argv + i);
    std::fprintf(stderr, "dbcount-run: exec %s: %s\n", argv[i], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::perror("dbcount-run: waitpid");
      return 125;
    }
  }
  auto counters = session->collect();
  if (!counters) {
    std::fprintf(stderr, "dbcount-run: %s\n", counters.error().message().c_str());
    return 125;
  }
  nlohmann::json j;
  j["exit_code"] = WIFEXITED(status) ? nlohmann::json(WEXITSTATUS(status)) : nlohmann::json(nullptr);
  j["signal"] = WIFSIGNALED(status) ? nlohmann::json(WTERMSIG(status)) : nlohmann::json(nullptr);
  j["counters"] = *counters;
  std::ofstream(out) << j.dump(2) << "\n";
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
