// Command line and job config → a resolved JobSpec. The only place CLI11 and
// nlohmann exceptions are caught; everything past here sees typed values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "runner/job_spec.h"

namespace cronrun {

struct ParsedArgs {
  JobSpec spec;
  bool json = false;      // --json: --dry-run prints one JSON document
  bool exit_now = false;  // --help / --version printed
  int exit_code = 0;
};

// Parses argv; on a usage or config error returns an Error whose message names the
// flag or file and what was expected (the caller prints "cronrun: <message>" and
// exits 125).
// `host_cpus` bounds --cpu (check_cpu_quota); `who` decides root-vs-user and
// the default paths (spec.is_root, spec.paths), read once. The shorter forms use
// host_cpu_count() and Invoker::current().
Result<ParsedArgs> parse_args(int argc, char** argv, unsigned host_cpus, const Invoker& who);
Result<ParsedArgs> parse_args(int argc, char** argv, unsigned host_cpus);
Result<ParsedArgs> parse_args(int argc, char** argv);

// Parses the text of a job config (JSON, `//` and `/* */` comments allowed) into
// `spec`; keys are the long option names. Pure: no I/O, never throws. Unknown keys,
// bad values and any JSON error come back as an Error naming `path_for_errors` and
// the key. On error `spec` may be partly updated.
Result<void> parse_job_config(std::string_view text, const std::string& path_for_errors, JobSpec& spec);

// Reads the job config at `path` (a regular file, read non-blocking and bounded,
// symlinks followed: configs in /etc are often links) and parses it with
// parse_job_config.
Result<void> load_job_config(const std::string& path, JobSpec& spec);

}  // namespace cronrun
