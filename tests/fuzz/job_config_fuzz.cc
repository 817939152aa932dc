// Job config files (runner/cli.h): JSON with comments, keys are cronrun's long
// option names, values go through the same parsers as the flags. A config under
// /etc/cronrun/jobs.d is root's, but --config names any file, and cronprof suggest
// --write edits them.
//
// parse_job_config(text, path, spec) is the pure parser (added for issue 14).
// Builds of a tree without it (CRONRUN_FUZZ_HAVE_PARSE_JOB_CONFIG unset) fuzz
// load_job_config() on a private temporary file holding the input instead: the
// same code, one file read more per input.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "runner/cli.h"
#include "runner/job_spec.h"
#include "tests/fuzz/fuzz.h"

namespace {

#ifndef CRONRUN_FUZZ_HAVE_PARSE_JOB_CONFIG
struct TempConfig {
  std::string path;
  int fd = -1;
  TempConfig() {
    const char* tmp = std::getenv("TMPDIR");
    path = std::string(tmp && *tmp ? tmp : "/tmp") + "/cronrun-fuzz-config.XXXXXX";
    fd = mkstemp(path.data());
    FUZZ_CHECK_MSG(fd >= 0, path);
  }
  ~TempConfig() {
    ::close(fd);
    ::unlink(path.c_str());
  }
};
#endif

cronrun::Result<void> parse_config(std::string_view text, cronrun::JobSpec& spec) {
#ifdef CRONRUN_FUZZ_HAVE_PARSE_JOB_CONFIG
  return cronrun::parse_job_config(text, "fuzz.json", spec);
#else
  static TempConfig file;
  FUZZ_CHECK(::ftruncate(file.fd, 0) == 0);
  FUZZ_CHECK(::pwrite(file.fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
  return cronrun::load_job_config(file.path, spec);
#endif
}

}  // namespace

int cronrun_fuzz_job_config(const uint8_t* data, size_t size) {
  using namespace cronrun;
  JobSpec spec;
  auto r = parse_config(fuzz::as_text(data, size), spec);
  if (!r) {
    // Errors name the file, for the "cronrun: ..." line.
    FUZZ_CHECK_MSG(!r.error().message().empty(), fuzz::as_text(data, size));
    return 0;
  }
  // What a config accepts is what the runner then uses: durations and limits in range.
  FUZZ_CHECK(spec.kill_after.count() >= 0);
  FUZZ_CHECK(spec.lock_wait.count() >= 0);
  if (spec.timeout) FUZZ_CHECK(spec.timeout->count() >= 0);
  if (spec.nice) FUZZ_CHECK(*spec.nice >= -20 && *spec.nice <= 19);
  return 0;
}
