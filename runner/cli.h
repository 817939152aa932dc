// Command line and job config → a resolved JobSpec. The only place CLI11 and
// nlohmann exceptions are caught; everything past here sees typed values.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "runner/job_spec.h"

namespace cronrun {

struct ParsedArgs {
  JobSpec spec;
  bool exit_now = false;  // --help / --version printed
  int exit_code = 0;
};

// Parses argv; on a usage or config error returns an Error whose message names the
// flag or file and what was expected (the caller prints "cronrun: <message>" and
// exits 125).
Result<ParsedArgs> parse_args(int argc, char** argv);

// Reads a job config (JSON, `//` and `/* */` comments allowed) into `spec`; keys are
// the long option names. Unknown keys and bad values name the file and key.
Result<void> load_job_config(const std::string& path, JobSpec& spec);

}  // namespace cronrun
