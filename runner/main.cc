// cronrun: parse the command line into a JobSpec and run it. Nothing else here.
#include <iostream>

#include "runner/cli.h"
#include "runner/dry_run.h"
#include "runner/flush.h"
#include "runner/log.h"
#include "runner/run.h"

int main(int argc, char** argv) {
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
