// The libFuzzer harnesses of the parsers of input cronrun and cronprof do not
// control (tests/fuzz/README.md). Each harness is a plain function so that the same
// code runs under libFuzzer (entry.cc, clang) and over the saved inputs in the
// g++ unit tests (tests/unit/fuzz_regression_test.cc). A harness returns 0; a
// broken property aborts with a message, which both runners report as a failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace cronrun::fuzz {

[[noreturn]] inline void check_failed(const char* file, int line, const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s %.*s\n", file, line, what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace cronrun::fuzz

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : ::cronrun::fuzz::check_failed(__FILE__, __LINE__, #cond, ""))
#define FUZZ_CHECK_MSG(cond, detail) \
  ((cond) ? (void)0 : ::cronrun::fuzz::check_failed(__FILE__, __LINE__, #cond, (detail)))

// One per parser; the names are the fuzzer names (fuzz_<name>) and the fixture
// directories (tests/fixtures/fuzz/<name>/).
int cronrun_fuzz_units(const uint8_t* data, size_t size);
int cronrun_fuzz_job_config(const uint8_t* data, size_t size);
int cronrun_fuzz_counters(const uint8_t* data, size_t size);
int cronrun_fuzz_cgroup_host(const uint8_t* data, size_t size);
int cronrun_fuzz_cgroup_files(const uint8_t* data, size_t size);
int cronrun_fuzz_crontab(const uint8_t* data, size_t size);
int cronrun_fuzz_cronrun_call(const uint8_t* data, size_t size);
int cronrun_fuzz_run_record(const uint8_t* data, size_t size);
int cronrun_fuzz_history_row(const uint8_t* data, size_t size);
int cronrun_fuzz_journal(const uint8_t* data, size_t size);
int cronrun_fuzz_seccomp_profile(const uint8_t* data, size_t size);
int cronrun_fuzz_etcd_answer(const uint8_t* data, size_t size);
int cronrun_fuzz_fleet_config(const uint8_t* data, size_t size);
int cronrun_fuzz_central_row(const uint8_t* data, size_t size);
