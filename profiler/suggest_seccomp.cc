#include "profiler/suggest_seccomp.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "profiler/text_escape.h"
#include "runner/seccomp_profile.h"

namespace cronrun::prof {

namespace {

bool named(const std::string& syscall) { return seccomp::syscall_number(syscall) >= 0; }

}  // namespace

void SeccompSuggestAcc::add(const SeccompRunView& run) {
  ++runs_;
  if (!run.learn) return;
  ++learned_;
  if (run.status == RunStatus::ok) ++learned_ok_;
  // A run lists each syscall once; a damaged record listing one twice still
  // counts one run.
  std::set<std::string> once(run.seen.begin(), run.seen.end());
  for (const auto& s : once) ++seen_[s];
}

Result<nlohmann::json> seccomp_profile_for(const std::string& job, const SeccompSuggestAcc& acc) {
  if (acc.learned_runs() == 0)
    return std::unexpected(Error("no run of job '" + job + "' under --seccomp learn in the window (" +
                                 std::to_string(acc.runs()) + " runs without it): run it with --seccomp learn first"));
  std::set<std::string> allow;
  for (auto n : seccomp::strict_allowed_names()) allow.emplace(n);
  nlohmann::json counts = nlohmann::json::object();
  nlohmann::json unnamed = nlohmann::json::array();
  for (const auto& [name, runs] : acc.seen()) {
    if (!named(name)) {
      unnamed.push_back(name);
      continue;
    }
    allow.insert(name);
    counts[name] = runs;
  }
  nlohmann::json learned = {{"job", job},
                            {"runs", acc.learned_runs()},
                            {"ok_runs", acc.learned_ok_runs()},
                            {"counts", std::move(counts)}};
  if (!unnamed.empty()) learned["unnamed"] = std::move(unnamed);
  nlohmann::json out = {{"schema", std::string(seccomp::kProfileSchema)},
                        {"default", "errno"},
                        {"errno", "EPERM"},
                        {"allow", std::vector<std::string>(allow.begin(), allow.end())},
                        {"note", "strict's list plus the syscalls job '" + job + "' made in " +
                                     std::to_string(acc.learned_runs()) + " run(s) under --seccomp learn"},
                        {"learned", std::move(learned)}};
  // What we print must be what `cronrun --seccomp FILE` accepts, byte for byte.
  auto check = seccomp::parse_profile(out.dump(2), "the proposed profile");
  if (!check) return std::unexpected(check.error());
  return out;
}

std::string seccomp_evidence(const std::string& job, const SeccompSuggestAcc& acc) {
  std::string s = fmt::format("job {}: {} learned run(s) ({} ok) of {} in the window", term_text(job),
                              acc.learned_runs(), acc.learned_ok_runs(), acc.runs());
  if (acc.learned_ok_runs() < acc.learned_runs())
    s += "; failed learned runs may have stopped before making every syscall they need";
  s += "\n";
  std::vector<std::string> extra, unnamed;
  for (const auto& [name, runs] : acc.seen()) {
    auto item = fmt::format("{} ({}/{})", term_text(name), runs, acc.learned_runs());
    (named(name) ? extra : unnamed).push_back(std::move(item));
  }
  if (extra.empty()) {
    s += "  beyond strict: nothing; strict's list is enough\n";
  } else {
    s += "  beyond strict (runs that made it): ";
    for (size_t i = 0; i < extra.size(); ++i) s += (i ? ", " : "") + extra[i];
    s += "\n";
  }
  if (!unnamed.empty()) {
    s += "  not named by libseccomp, left out (answered ENOSYS): ";
    for (size_t i = 0; i < unnamed.size(); ++i) s += (i ? ", " : "") + unnamed[i];
    s += "\n";
  }
  return s;
}

}  // namespace cronrun::prof
