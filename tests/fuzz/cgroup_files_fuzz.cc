// The cgroup files the runner reads while and after a job runs (memory.stat,
// cpu.stat, io.stat, blkio, pressure, cgroup.procs, ...), cgroup paths and leaf
// names found in directories a delegated user can write, and /proc/<pid>/stat
// lines whose command name the job chooses. Every parser gets the whole input.
#include <string>

#include "common/run_record.h"
#include "runner/cgroup_internal.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_cgroup_files(const uint8_t* data, size_t size) {
  using namespace cronrun;
  std::string_view text = fuzz::as_text(data, size);
  if (auto keyed = cgroup::parse_flat_keyed(text)) {
    for (const auto& [key, value] : *keyed) FUZZ_CHECK_MSG(!key.empty(), text);
  }
  (void)cgroup::parse_u64(text);
  (void)cgroup::parse_io_stat(text);
  (void)cgroup::parse_blkio_service_bytes(text);
  if (auto p = cgroup::parse_pressure(text)) FUZZ_CHECK(p->some_total_usec.has_value());
  if (auto pids = cgroup::parse_pid_list(text)) {
    for (pid_t pid : *pids) FUZZ_CHECK(pid > 0);
  }
  for (const auto& w : cgroup::split_words(text)) FUZZ_CHECK_MSG(!w.empty(), text);
  if (auto pid = cgroup::parse_runner_leaf_name(text)) {
    FUZZ_CHECK(*pid > 0);
    FUZZ_CHECK(cgroup::parse_runner_leaf_name(cgroup::runner_leaf_name(*pid)) == pid);
  }
  if (auto norm = cgroup::normalize_relative(text)) {
    // Normalized: absolute, no empty, "." or ".." components, and a fixed point.
    FUZZ_CHECK_MSG(!norm->empty() && norm->front() == '/', *norm);
    FUZZ_CHECK_MSG(norm->find("//") == std::string::npos, *norm);
    FUZZ_CHECK_MSG(norm->find("/../") == std::string::npos && !norm->ends_with("/.."), *norm);
    auto again = cgroup::normalize_relative(*norm);
    FUZZ_CHECK_MSG(again && *again == *norm, *norm);
  }
  // A mount root and a cgroup path, split at the first NUL.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    std::string_view root = text.substr(0, nul), path = text.substr(nul + 1);
    if (auto mapped = cgroup::map_into_mount(root, path)) {
      FUZZ_CHECK_MSG(root == "/" || (!mapped->empty() && mapped->front() == '/'), *mapped);
    }
  }
  (void)parse_stat_start_ticks(text);
  return 0;
}
