// Turning the listener's summary into the record, and telling a failure caused by
// the filter apart from the job's own.
#include "runner/seccomp_record.h"

#include <csignal>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace cronrun::seccomp {

SeccompRecord to_record(const Summary& summary, const std::optional<std::string>& note) {
  // From to_json(), so the record and the summary cannot drift apart.
  const nlohmann::json j = summary.to_json();
  SeccompRecord r;
  r.profile = j.at("profile").get<std::string>();
  r.action = j.at("action").get<std::string>();
  r.violations_total = j.at("violations_total").get<uint64_t>();
  r.answers_lost = j.at("answers_lost").get<uint64_t>();
  for (const auto& v : j.at("violations"))
    r.violations.push_back({v.at("syscall").get<std::string>(), v.at("count").get<uint64_t>(),
                            v.at("first_pid").get<int64_t>(), v.at("comm").get<std::string>()});
  if (auto seen = j.find("seen"); seen != j.end())
    for (const auto& name : *seen) r.seen.push_back(name.get<std::string>());
  r.note = note;
  return r;
}

std::optional<std::string> blame(RunRecord& rec) {
  if (!rec.seccomp) return std::nullopt;
  SeccompRecord& sc = *rec.seccomp;
  if (rec.status == RunStatus::killed && rec.signal == SIGSYS) {
    sc.failed_by = "non-native syscall";
    return "seccomp: killed for a non-native (i386 or x32) syscall, which the filter never lets through";
  }
  const bool failed = rec.status == RunStatus::failed || rec.status == RunStatus::killed;
  if (!failed || sc.action == "continue" || sc.violations_total == 0) return std::nullopt;
  sc.failed_by = "denied syscalls";
  std::string names;
  for (size_t i = 0; i < sc.violations.size() && i < 3; ++i) names += (i ? ", " : "") + sc.violations[i].syscall;
  if (sc.violations.size() > 3) names += fmt::format(" and {} more", sc.violations.size() - 3);
  return fmt::format("seccomp: the job failed after {} denied syscall(s) ({}: {})", sc.violations_total, sc.action,
                     names);
}

}  // namespace cronrun::seccomp
