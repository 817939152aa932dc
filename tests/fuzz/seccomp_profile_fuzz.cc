// seccomp profile files (runner/seccomp_profile.h): written by admins and by
// `cronprof suggest --seccomp`, read by the runner as root before every run.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "runner/seccomp_profile.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_seccomp_profile(const uint8_t* data, size_t size) {
  namespace sc = cronrun::seccomp;
  const std::string path = "fuzz/profile.json";
  auto p = sc::parse_profile(cronrun::fuzz::as_text(data, size), path);
  if (!p) {
    // Every error names the file.
    FUZZ_CHECK_MSG(p.error().message().find(path) != std::string::npos, p.error().message());
    return 0;
  }
  // The allowed list is sorted, unique, only known syscalls, and always lets the
  // runner start the job.
  FUZZ_CHECK(std::is_sorted(p->allowed.begin(), p->allowed.end()));
  FUZZ_CHECK(std::adjacent_find(p->allowed.begin(), p->allowed.end()) == p->allowed.end());
  for (int nr : p->allowed) FUZZ_CHECK(!sc::syscall_name(nr).empty());
  for (const char* needed : {"execve", "exit", "exit_group"})
    FUZZ_CHECK_MSG(std::binary_search(p->allowed.begin(), p->allowed.end(), sc::syscall_number(needed)), needed);
  FUZZ_CHECK(p->deny_errno > 0);
  // Written back as a profile file, it reads back the same.
  auto again = sc::parse_profile(sc::profile_json(p->allowed, p->deny_errno, nullptr).dump(), path);
  FUZZ_CHECK_MSG(again.has_value(), again ? std::string() : again.error().message());
  FUZZ_CHECK(again->allowed == p->allowed);
  FUZZ_CHECK(again->deny_errno == p->deny_errno);
  return 0;
}
