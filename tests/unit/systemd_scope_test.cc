// The systemd placement's decision, the scope's properties and the start
// protocol (retry without OOMPolicy, job results), against a fake manager.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runner/systemd_scope.h"

namespace cronrun::systemd {
namespace {

HostFacts systemd_host() {
  HostFacts f;
  f.booted = true;
  f.pure_v2 = true;
  f.uid = 1000;
  f.user = "alice";
  return f;
}

TEST(SystemdDecision, RootOnASystemdV2HostGetsASystemScope) {
  HostFacts f = systemd_host();
  f.is_root = true;
  f.uid = 0;
  Decision d = decide(f);
  EXPECT_EQ(d.path, Path::system_scope);
  EXPECT_NE(d.reason.find("cronrun.slice"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("Delegate=yes"), std::string::npos) << d.reason;
}

TEST(SystemdDecision, NotSystemdHybridOrAnExplicitParentKeepDirectPlacement) {
  HostFacts f = systemd_host();
  f.is_root = true;
  f.booted = false;
  EXPECT_EQ(decide(f).path, Path::direct);
  f = systemd_host();
  f.is_root = true;
  f.pure_v2 = false;
  EXPECT_EQ(decide(f).path, Path::direct);
  f = systemd_host();
  f.is_root = true;
  f.parent_override = true;
  EXPECT_EQ(decide(f).path, Path::direct);
  EXPECT_NE(decide(f).reason.find("--cgroup-parent"), std::string::npos);
}

TEST(SystemdDecision, AUserWithAManagerGetsAUserScopeUnlessAlreadyDelegated) {
  HostFacts f = systemd_host();
  f.user_manager = true;
  Decision d = decide(f);
  EXPECT_EQ(d.path, Path::user_scope);
  EXPECT_NE(d.reason.find("/run/user/1000/bus"), std::string::npos) << d.reason;
  // A unit with Delegate=yes running cronrun: it stays in its own cgroup.
  f.own_cgroup_delegated = true;
  EXPECT_EQ(decide(f).path, Path::direct);
}

TEST(SystemdDecision, AUserWithoutAManagerFallsBackNamingEnableLinger) {
  HostFacts f = systemd_host();
  Decision d = decide(f);
  EXPECT_EQ(d.path, Path::no_user_manager);
  EXPECT_NE(d.reason.find("`loginctl enable-linger alice`"), std::string::npos) << d.reason;
  std::string cause = no_user_manager_cause("alice");
  EXPECT_NE(cause.find("loginctl enable-linger alice"), std::string::npos);
  // The cause is the short part of the one warning line cron mails.
  EXPECT_LT(cause.size(), 80u);
}

TEST(SystemdScope, UnitNameAndSliceCgroups) {
  EXPECT_EQ(scope_unit_name("nightly-report", "0193f1c2-0000-7000-8000-000000000000"),
            "cronrun-nightly-report-0193f1c2-0000-7000-8000-000000000000.scope");
  EXPECT_EQ(slice_cgroup(Path::system_scope, 0), "/cronrun.slice");
  EXPECT_EQ(slice_cgroup(Path::user_scope, 1000), "/user.slice/user-1000.slice/user@1000.service/cronrun.slice");
}

TEST(SystemdScope, ScopesOfAJobAreToldApartFromAnotherJobsWithTheSamePrefix) {
  const std::string id = "0193f1c2-0000-7000-8000-000000000000";
  EXPECT_EQ(run_id_of_scope("cronrun-a-" + id + ".scope", "a"), id);
  EXPECT_FALSE(run_id_of_scope("cronrun-a-b-" + id + ".scope", "a"));
  EXPECT_EQ(run_id_of_scope("cronrun-a-b-" + id + ".scope", "a-b"), id);
  EXPECT_FALSE(run_id_of_scope("cronrun-a-" + id + ".slice", "a"));
  EXPECT_FALSE(run_id_of_scope("cronrun-a-xyz.scope", "a"));
  EXPECT_FALSE(run_id_of_scope("supervisor", "a"));
}

const Property* find(const std::vector<Property>& props, const std::string& name) {
  for (const auto& p : props)
    if (p.name == name) return &p;
  return nullptr;
}

TEST(SystemdScope, PropertiesDelegateTheScopeWithCronrunAsItsProcess) {
  auto props = scope_properties(4242, "backup", "0193f1c2-0000-7000-8000-000000000000", true);
  ASSERT_TRUE(find(props, "Delegate"));
  EXPECT_EQ(find(props, "Delegate")->value, Property::Value(true));
  ASSERT_TRUE(find(props, "PIDs"));
  EXPECT_EQ(find(props, "PIDs")->value, Property::Value(std::vector<uint32_t>{4242}));
  ASSERT_TRUE(find(props, "Slice"));
  EXPECT_EQ(find(props, "Slice")->value, Property::Value(std::string("cronrun.slice")));
  // A failed scope is collected too: no unit of ours is left for `systemctl --failed`.
  ASSERT_TRUE(find(props, "CollectMode"));
  EXPECT_EQ(find(props, "CollectMode")->value, Property::Value(std::string("inactive-or-failed")));
  // The kernel's OOM kill of the job (--memory) must not make systemd stop the scope.
  ASSERT_TRUE(find(props, "OOMPolicy"));
  EXPECT_EQ(find(props, "OOMPolicy")->value, Property::Value(std::string("continue")));
  EXPECT_FALSE(find(scope_properties(4242, "backup", "x", false), "OOMPolicy"));
  // No limit is a scope property: cronrun writes them on the job's leaf.
  EXPECT_FALSE(find(props, "MemoryMax"));
}

class FakeManager final : public ManagerBus {
 public:
  Result<std::string> start_transient_scope(const std::string& unit, const std::vector<Property>& props,
                                            std::chrono::milliseconds) override {
    calls.push_back({unit, props});
    if (!answers.empty()) {
      auto a = answers.front();
      answers.erase(answers.begin());
      return a;
    }
    return std::string("done");
  }
  std::vector<std::pair<std::string, std::vector<Property>>> calls;
  std::vector<Result<std::string>> answers;
};

constexpr auto kTimeout = std::chrono::seconds(5);

TEST(SystemdStart, ADoneJobStartsTheScopeInOneCall) {
  FakeManager m;
  ASSERT_TRUE(start_run_scope(m, 7, "backup", "0193f1c2-0000-7000-8000-000000000000", kTimeout));
  ASSERT_EQ(m.calls.size(), 1u);
  EXPECT_EQ(m.calls[0].first, "cronrun-backup-0193f1c2-0000-7000-8000-000000000000.scope");
  EXPECT_TRUE(find(m.calls[0].second, "OOMPolicy"));
}

TEST(SystemdStart, AManagerWithoutOOMPolicyForScopesIsAskedAgainWithoutIt) {
  FakeManager m;
  m.answers.push_back(fail("asking systemd for x.scope: StartTransientUnit: org.freedesktop.DBus.Error.PropertyReadOnly: "
                           "Cannot set property OOMPolicy, or unknown property."));
  ASSERT_TRUE(start_run_scope(m, 7, "backup", "id", kTimeout));
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_FALSE(find(m.calls[1].second, "OOMPolicy"));
  EXPECT_TRUE(find(m.calls[1].second, "Delegate"));
}

TEST(SystemdStart, OtherRefusalsAndFailedJobsAreErrorsThatSayWhy) {
  FakeManager m;
  m.answers.push_back(fail("asking systemd for x.scope: StartTransientUnit: org.freedesktop.systemd1.UnitExists: "
                           "Unit x.scope already exists."));
  auto r = start_run_scope(m, 7, "backup", "id", kTimeout);
  ASSERT_FALSE(r);
  EXPECT_EQ(m.calls.size(), 1u);
  EXPECT_NE(r.error().message().find("UnitExists"), std::string::npos);

  FakeManager f;
  f.answers.push_back(std::string("failed"));
  r = start_run_scope(f, 7, "backup", "id", kTimeout);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("result 'failed'"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace cronrun::systemd
