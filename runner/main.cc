// cronrun: parse the command line into a JobSpec and run it. Nothing else here.
#include <unistd.h>

#include <iostream>

#include "common/fd.h"

#include "runner/cli.h"
#include "runner/dry_run.h"
#include "runner/flush.h"
#include "runner/log.h"
#include "runner/run.h"

int main(int argc, char** argv) {
  if (!cronrun::open_standard_fds()) {
    // stderr may be the closed one: the exit code says it.
    static const char msg[] = "cronrun: /dev/null: cannot open it in place of a closed standard descriptor\n";
    [[maybe_unused]] ssize_t n = ::write(2, msg, sizeof msg - 1);
    return 125;
  }
  auto args = cronrun::parse_args(argc, argv);
  if (!args) {
    std::cerr << "cronrun: " << args.error().message() << "\n";
    return 125;
  }
  if (args->exit_now) return args->exit_code;
  cronrun::log::setup(args->spec.verbosity);
  if (args->spec.flush) return cronrun::run_flush(args->spec);
  if (args->spec.dry_run) return cronrun::dry_run(args->spec, args->json);
  return cronrun::run_job(args->spec);
}
