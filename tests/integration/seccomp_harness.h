// Runs a program under a seccomp profile the way the runner will: the filter is
// compiled in the parent, the forked child installs it (install_in_child) as its
// last step and execs; the parent reads the exec outcome from a CLOEXEC status
// pipe, receives the listener and supervises it in a poll loop with the child's
// pidfd until the child has exited and no task uses the filter any more.
// Used by tests/integration/seccomp_test.cc and the `seccomp-run` tool of
// bench/seccomp.sh.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "runner/seccomp_filter.h"
#include "runner/seccomp_listener.h"
#include "runner/seccomp_profile.h"

namespace cronrun::seccomp::testing {

struct RunOptions {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C"};
  std::string cwd;          // "" = inherit
  int stdout_fd = -1;       // -1 = inherit; stderr follows stdout
  // Close the listener as soon as it is received: the supervisor "died".
  bool close_listener = false;
  // Never receive the listener at all (dropped with the channel).
  bool drop_channel = false;
  std::chrono::seconds limit{120};
};

struct RunOutcome {
  int wait_status = -1;     // as from waitpid; -1 when the child never ran
  std::string exec_error;   // set when install or exec failed in the child
  std::string error;        // the harness's own failure (timeout, listener)
  bool timed_out = false;
  std::optional<Summary> summary;  // when the listener was received and kept
  double exec_ms = 0;       // fork to exec outcome known
  double cpu_us = 0;        // the child's user + system CPU (its waited-for children included)
};

// `profile` nullptr: no filter (the unfiltered reference run).
RunOutcome run_filtered(const Profile* profile, const std::vector<std::string>& argv, const RunOptions& opt = {});

// "exit 0", "signal SIGSYS", ...
std::string describe(const RunOutcome& o);

}  // namespace cronrun::seccomp::testing
