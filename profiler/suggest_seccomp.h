// A seccomp profile for a job from its learned runs (`cronprof suggest --seccomp JOB`).
//
// A run under `--seccomp learn` records, in its `seccomp` object, every syscall it
// made outside `strict`'s list ("seen"). The proposal allows strict's list plus the
// union of what the job's learned runs saw, says in "learned" how many runs saw
// each syscall, and is a profile file `cronrun --seccomp FILE` takes as is (it is
// checked with cronrun's own profile parser before it is printed). A syscall the
// listener could only number ("syscall_<nr>": libseccomp 2.5 does not name it)
// cannot be listed by name; it is reported, not allowed — the filter answers ENOSYS
// to it, which is what a libc expects of a kernel without it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"
#include "common/run_record.h"

namespace cronrun::prof {

// What one run contributes (from its record's `seccomp` object).
struct SeccompRunView {
  std::string profile;            // "learn", "strict", ... or a file path; "" = no filter
  bool learn = false;
  std::vector<std::string> seen;  // learn only
  RunStatus status = RunStatus::ok;
};

class SeccompSuggestAcc {
 public:
  void add(const SeccompRunView& run);

  uint64_t runs() const { return runs_; }
  uint64_t learned_runs() const { return learned_; }
  uint64_t learned_ok_runs() const { return learned_ok_; }
  // Syscall name -> number of learned runs that made it.
  const std::map<std::string, uint64_t>& seen() const { return seen_; }

 private:
  uint64_t runs_ = 0, learned_ = 0, learned_ok_ = 0;
  std::map<std::string, uint64_t> seen_;
};

// The proposed profile (schema cronrun.seccomp/1), checked by cronrun's parser;
// an error when the acc holds no learned run or the check fails.
Result<nlohmann::json> seccomp_profile_for(const std::string& job, const SeccompSuggestAcc& acc);

// The evidence in words, for stderr (the profile itself goes to stdout).
std::string seccomp_evidence(const std::string& job, const SeccompSuggestAcc& acc);

}  // namespace cronrun::prof
