// `cronprof suggest --seccomp`: the profile proposed from a job's learned runs is
// one cronrun's own parser takes, allows strict's list plus exactly what the
// learned runs saw, counts runs (not calls), and leaves out what it cannot name.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "profiler/show.h"
#include "profiler/suggest_seccomp.h"
#include "runner/seccomp_profile.h"

namespace sc = cronrun::seccomp;
using cronrun::RunStatus;
using cronrun::prof::SeccompRunView;
using cronrun::prof::SeccompSuggestAcc;

namespace {

SeccompRunView learned(std::vector<std::string> seen, RunStatus st = RunStatus::ok) {
  return {.profile = "learn", .learn = true, .seen = std::move(seen), .status = st};
}

bool lists(const nlohmann::json& profile, const std::string& name) {
  const auto& a = profile.at("allow");
  return std::find(a.begin(), a.end(), name) != a.end();
}

}  // namespace

TEST(SeccompSuggest, NoLearnedRunIsAnErrorThatSaysWhatToDo) {
  SeccompSuggestAcc acc;
  acc.add({.profile = "strict", .learn = false, .seen = {}, .status = RunStatus::ok});
  acc.add({.profile = "", .learn = false, .seen = {}, .status = RunStatus::ok});
  auto p = cronrun::prof::seccomp_profile_for("backup", acc);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("--seccomp learn"), std::string::npos) << p.error().message();
  EXPECT_NE(p.error().message().find("2 runs"), std::string::npos) << p.error().message();
}

TEST(SeccompSuggest, ProfileIsStrictPlusTheUnionSeenAndParsesAsAFile) {
  SeccompSuggestAcc acc;
  acc.add(learned({"unshare", "ptrace"}));
  acc.add(learned({"ptrace", "ptrace"}, RunStatus::failed));  // a name twice in a damaged record: one run
  acc.add({.profile = "strict", .learn = false, .seen = {"keyctl"}, .status = RunStatus::ok});  // not learned
  auto p = cronrun::prof::seccomp_profile_for("backup", acc);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->at("schema"), "cronrun.seccomp/1");
  EXPECT_TRUE(lists(*p, "unshare"));
  EXPECT_TRUE(lists(*p, "ptrace"));
  EXPECT_FALSE(lists(*p, "keyctl"));  // seen only outside learn mode
  for (auto n : sc::strict_allowed_names()) EXPECT_TRUE(lists(*p, std::string(n))) << n;
  EXPECT_EQ(p->at("learned").at("runs"), 2);
  EXPECT_EQ(p->at("learned").at("ok_runs"), 1);
  EXPECT_EQ(p->at("learned").at("counts").at("ptrace"), 2);
  EXPECT_EQ(p->at("learned").at("counts").at("unshare"), 1);

  // The file cronrun reads: allows exactly strict + seen, denies the rest with EPERM.
  auto prof = sc::parse_profile(p->dump(2), "proposal.json");
  ASSERT_TRUE(prof) << prof.error().message();
  EXPECT_EQ(prof->deny_errno, 1);
  auto has = [&](std::string_view n) {
    int nr = sc::syscall_number(n);
    return std::binary_search(prof->allowed.begin(), prof->allowed.end(), nr);
  };
  EXPECT_TRUE(has("unshare"));
  EXPECT_TRUE(has("ptrace"));
  EXPECT_FALSE(has("keyctl"));
  EXPECT_FALSE(has("kexec_load"));
}

TEST(SeccompSuggest, UnnamedSyscallsAreReportedNotAllowed) {
  SeccompSuggestAcc acc;
  acc.add(learned({"syscall_999", "setns"}));
  auto p = cronrun::prof::seccomp_profile_for("j", acc);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(lists(*p, "syscall_999"));
  EXPECT_TRUE(lists(*p, "setns"));
  EXPECT_EQ(p->at("learned").at("unnamed"), nlohmann::json::array({"syscall_999"}));
  std::string ev = cronrun::prof::seccomp_evidence("j", acc);
  EXPECT_NE(ev.find("syscall_999"), std::string::npos) << ev;
  EXPECT_NE(ev.find("setns (1/1)"), std::string::npos) << ev;
}

TEST(SeccompSuggest, EvidenceSaysWhenStrictIsEnough) {
  SeccompSuggestAcc acc;
  acc.add(learned({}));
  auto p = cronrun::prof::seccomp_profile_for("j", acc);
  ASSERT_TRUE(p);
  EXPECT_NE(cronrun::prof::seccomp_evidence("j", acc).find("strict's list is enough"), std::string::npos);
}

// The record's `seccomp` object survives the history's JSON both ways, and
// `cronprof show` says what the filter denied, to whom, or that there was none.
TEST(SeccompRecord, RoundTripsAndShowSaysWhatWasDenied) {
  cronrun::RunRecord r;
  r.run_id = "r1";
  r.job = "backup";
  r.started_at = "2026-12-06T09:00:00.000Z";
  r.status = RunStatus::failed;
  EXPECT_EQ(cronrun::prof::render_seccomp(r), "off");
  EXPECT_TRUE(cronrun::to_json(r).at("seccomp").is_null());

  cronrun::SeccompRecord sc;
  sc.profile = "baseline";
  sc.action = "EPERM";
  sc.violations_total = 3;
  sc.violations = {{"unshare", 2, 4242, "unshare"}, {"keyctl", 1, 4250, "keyctl\x1b[2J"}};
  r.seccomp = sc;
  nlohmann::json j = cronrun::to_json(r);
  ASSERT_TRUE(j.contains("seccomp"));
  EXPECT_FALSE(j["seccomp"].contains("seen"));  // not a learn run
  auto back = cronrun::run_record_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_TRUE(back->seccomp);
  EXPECT_EQ(back->seccomp->violations.size(), 2u);
  EXPECT_EQ(back->seccomp->violations[0].first_pid, 4242);
  EXPECT_EQ(back->seccomp->violations_total, 3u);

  std::string line = cronrun::prof::render_seccomp(*back);
  EXPECT_NE(line.find("3 violation(s) answered EPERM"), std::string::npos) << line;
  EXPECT_NE(line.find("unshare ×2 (first pid 4242 unshare)"), std::string::npos) << line;
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << "a job-chosen command name reaches the terminal raw";

  // learn: "seen" kept; the line points at suggest.
  r.seccomp->profile = "learn";
  r.seccomp->action = "continue";
  r.seccomp->seen = {"unshare", "keyctl"};
  j = cronrun::to_json(r);
  back = cronrun::run_record_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->seccomp->seen, (std::vector<std::string>{"unshare", "keyctl"}));
  EXPECT_NE(cronrun::prof::render_seccomp(*back).find("suggest --seccomp backup"), std::string::npos);

  // A wrong type is an error naming the field, not a silently empty filter.
  j["seccomp"]["violations"] = "many";
  auto bad = cronrun::run_record_from_json(j);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("seccomp.violations"), std::string::npos) << bad.error().message();
}
