// seccomp profiles without loading a filter: the built-in lists, the profile file
// parser and its errors, the exported BPF program's shape, the record's `seccomp`
// object and the profile a learn run proposes.
#include <gtest/gtest.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/run_record.h"
#include "runner/log.h"
#include "runner/report.h"
#include "runner/seccomp_filter.h"
#include "runner/seccomp_listener.h"
#include "runner/seccomp_profile.h"
#include "runner/seccomp_record.h"

namespace sc = cronrun::seccomp;

namespace {

bool allows(const sc::Profile& p, std::string_view name) {
  int nr = sc::syscall_number(name);
  return nr >= 0 && std::binary_search(p.allowed.begin(), p.allowed.end(), nr);
}


TEST(SeccompProfile, EveryNameInTheBuiltInListsIsASyscallLibseccompKnows) {
  for (auto n : sc::baseline_denied_names()) EXPECT_GE(sc::syscall_number(n), 0) << n;
  for (auto n : sc::strict_allowed_names()) EXPECT_GE(sc::syscall_number(n), 0) << n;
}

TEST(SeccompProfile, StrictNeverAllowsWhatBaselineDenies) {
  const auto names = sc::baseline_denied_names();
  std::set<std::string_view> denied(names.begin(), names.end());
  for (auto n : sc::strict_allowed_names()) EXPECT_EQ(denied.count(n), 0u) << n << " is in both lists";
}

TEST(SeccompProfile, BaselineAllowsEverythingButItsDenyList) {
  auto p = sc::builtin_profile("baseline");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(p->learn);
  EXPECT_EQ(p->deny_errno, EPERM);
  for (auto n : {"ptrace", "unshare", "setns", "keyctl", "io_uring_setup", "mount", "bpf", "kexec_load",
                 "init_module", "reboot", "swapon", "clock_settime", "iopl", "process_vm_readv",
                 "open_by_handle_at", "userfaultfd", "perf_event_open"})
    EXPECT_FALSE(allows(*p, n)) << n;
  for (auto n : {"read", "write", "openat", "clone", "execve", "personality", "socket", "chroot", "mlock"})
    EXPECT_TRUE(allows(*p, n)) << n;
  EXPECT_EQ(p->allowed.size() + sc::baseline_denied_names().size(), sc::known_syscalls().size());
}

TEST(SeccompProfile, StrictAndLearnShareTheAllowListLearnDeniesNothing) {
  auto strict = sc::builtin_profile("strict");
  auto learn = sc::builtin_profile("learn");
  ASSERT_TRUE(strict && learn);
  EXPECT_FALSE(strict->learn);
  EXPECT_TRUE(learn->learn);
  EXPECT_EQ(strict->allowed, learn->allowed);
  EXPECT_TRUE(allows(*strict, "futex"));
  EXPECT_FALSE(allows(*strict, "chroot"));  // neither denied by baseline nor needed by the test programs
  EXPECT_FALSE(allows(*strict, "ptrace"));
  EXPECT_TRUE(std::is_sorted(strict->allowed.begin(), strict->allowed.end()));
}

TEST(SeccompProfile, UnknownBuiltInIsAnErrorListingTheChoices) {
  auto p = sc::builtin_profile("lenient");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("baseline, strict, learn"), std::string::npos) << p.error().message();
}

TEST(SeccompProfileFile, AnAllowListProfileAllowsItsListAndWhatTheRunnerNeeds) {
  auto p = sc::parse_profile(R"({"schema":"cronrun.seccomp/1","default":"errno","errno":"EACCES",
                                 // comments are allowed, as in job config files
                                 "allow":["read","write","read"],"note":"x","learned":{"runs":3}})",
                             "/etc/cronrun/p.json");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->name, "/etc/cronrun/p.json");
  EXPECT_EQ(p->deny_errno, EACCES);
  EXPECT_FALSE(p->learn);
  EXPECT_TRUE(allows(*p, "read"));
  EXPECT_TRUE(allows(*p, "write"));
  EXPECT_TRUE(allows(*p, "execve"));
  EXPECT_TRUE(allows(*p, "exit_group"));
  EXPECT_FALSE(allows(*p, "openat"));
  EXPECT_EQ(p->allowed.size(), 5u);
}

TEST(SeccompProfileFile, ADenyListProfileAllowsEveryOtherKnownSyscall) {
  auto p = sc::parse_profile(R"({"schema":"cronrun.seccomp/1","default":"allow","deny":["ptrace","mount"]})",
                             "deny.json");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->deny_errno, EPERM);
  EXPECT_FALSE(allows(*p, "ptrace"));
  EXPECT_FALSE(allows(*p, "mount"));
  EXPECT_TRUE(allows(*p, "keyctl"));
  EXPECT_EQ(p->allowed.size() + 2, sc::known_syscalls().size());
}

TEST(SeccompProfileFile, BadInputIsAnErrorNamingTheFileAndWhatWasExpected) {
  const std::string f = "/srv/job/profile.json";
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"{", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"default":"errno","allow":[]})", "\"schema\" must be \"cronrun.seccomp/1\""},
      {R"({"schema":"cronrun.seccomp/2","default":"errno","allow":[]})", "\"schema\" must be"},
      {R"({"schema":"cronrun.seccomp/1","allow":[]})", "\"default\" must be"},
      {R"({"schema":"cronrun.seccomp/1","default":"kill","allow":[]})", "\"default\" must be"},
      {R"({"schema":"cronrun.seccomp/1","default":"errno","allow":["read","frobnicate"]})",
       "unknown syscall \"frobnicate\" in \"allow\""},
      {R"({"schema":"cronrun.seccomp/1","default":"errno","allow":["read",7]})", "must hold syscall names"},
      {R"({"schema":"cronrun.seccomp/1","default":"errno","allow":"read"})", "\"allow\" must be an array"},
      {R"({"schema":"cronrun.seccomp/1","default":"errno"})", "\"allow\" must be an array"},
      {R"({"schema":"cronrun.seccomp/1","default":"errno","allow":[],"deny":["ptrace"]})",
       "\"deny\" does not go with \"default\": \"errno\""},
      {R"({"schema":"cronrun.seccomp/1","default":"allow","deny":["execve"]})", "cannot deny \"execve\""},
      {R"({"schema":"cronrun.seccomp/1","default":"errno","allow":[],"errno":"EIO"})", "\"errno\" must be"},
      {R"({"schema":"cronrun.seccomp/1","default":"errno","allow":[],"alow":[]})", "unknown key \"alow\""},
      {"", "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto p = sc::parse_profile(c.text, f);
    ASSERT_FALSE(p) << c.text;
    const std::string m = p.error().message();
    EXPECT_NE(m.find("seccomp profile " + f + ": "), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << c.text << " -> " << m;
  }
}

TEST(SeccompProfileFile, ResolveReadsAFileAndNamesAMissingOne) {
  char dir_template[] = "/tmp/cronrun-seccomp-unit.XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string good = dir + "/good.json";
  std::ofstream(good) << R"({"schema":"cronrun.seccomp/1","default":"errno","allow":["getpid"]})";
  auto p = sc::resolve_profile(good);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(allows(*p, "getpid"));
  auto missing = sc::resolve_profile(dir + "/missing.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find(dir + "/missing.json"), std::string::npos) << missing.error().message();
  auto fifo_path = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo_path.c_str(), 0600), 0);
  auto fifo = sc::resolve_profile(fifo_path);  // must not block
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().message().find(fifo_path), std::string::npos) << fifo.error().message();
  EXPECT_EQ(sc::resolve_profile("strict")->name, "strict");
  std::filesystem::remove_all(dir);
}

TEST(SeccompFilter, EveryProfileCompilesToANativeOnlyProgramTheKernelTakes) {
  for (auto name : {"baseline", "strict", "learn"}) {
    auto p = sc::builtin_profile(name);
    ASSERT_TRUE(p);
    auto f = sc::compile_filter(*p, {5, 6});
    ASSERT_TRUE(f) << name << ": " << f.error().message();
    ASSERT_GT(f->size(), 4u);
    EXPECT_LE(f->size(), static_cast<size_t>(BPF_MAXINSNS));
    // First: load the arch and compare it with the native one.
    EXPECT_EQ(f->data()[0].code, BPF_LD | BPF_W | BPF_ABS);
    EXPECT_EQ(f->data()[0].k, 4u);  // offsetof(struct seccomp_data, arch)
    EXPECT_EQ(f->data()[1].k, static_cast<uint32_t>(AUDIT_ARCH_X86_64));
    // x32: numbers with __X32_SYSCALL_BIT are refused before any syscall rule.
    bool x32_check = false;
    for (size_t i = 0; i < 6; ++i)
      if (f->data()[i].code == (BPF_JMP | BPF_JGE | BPF_K) && f->data()[i].k == 0x40000000u) x32_check = true;
    EXPECT_TRUE(x32_check) << name;
  }
}

TEST(SeccompFilter, AnAllowListWithoutSendmsgOrWriteStillCompilesTheExecWindow) {
  auto p = sc::parse_profile(R"({"schema":"cronrun.seccomp/1","default":"errno","allow":["read"]})", "p.json");
  ASSERT_TRUE(p);
  auto with = sc::compile_filter(*p, {7, 9});
  auto without = sc::compile_filter(*p, {-1, -1});
  ASSERT_TRUE(with && without);
  // Two argument-checked rules more: the program is longer, and names fd 7 and 9.
  EXPECT_GT(with->size(), without->size());
  bool seven = false, nine = false;
  for (size_t i = 0; i < with->size(); ++i) {
    if (with->data()[i].code == (BPF_JMP | BPF_JEQ | BPF_K) && with->data()[i].k == 7) seven = true;
    if (with->data()[i].code == (BPF_JMP | BPF_JEQ | BPF_K) && with->data()[i].k == 9) nine = true;
  }
  EXPECT_TRUE(seven);
  EXPECT_TRUE(nine);
}

TEST(SeccompListener, ReadCommNamesThisProcessAndNothingForAGonePid) {
  char expected[32] = {};
  std::FILE* f = std::fopen("/proc/self/comm", "r");
  ASSERT_NE(f, nullptr);
  ASSERT_NE(std::fgets(expected, sizeof expected, f), nullptr);
  std::fclose(f);
  std::string e = expected;
  if (!e.empty() && e.back() == '\n') e.pop_back();
  EXPECT_EQ(sc::read_comm(::getpid()), e);
  EXPECT_EQ(sc::read_comm(0x3fffffff), "");
}

sc::Summary sample_summary(bool learn) {
  sc::Summary s;
  s.profile = learn ? "learn" : "baseline";
  s.learn = learn;
  s.deny_errno = EPERM;
  s.violations_total = 3;
  s.violations.push_back({sc::syscall_number("unshare"), "unshare", 2, 4242, "unshare"});
  s.violations.push_back({sc::syscall_number("keyctl"), "keyctl", 1, 4243, "probe"});
  s.violations.push_back({999, "syscall_999", 1, 4244, "new"});
  auto strict = sc::builtin_profile("strict");
  s.profile_allowed = strict->allowed;
  return s;
}

TEST(SeccompSummary, RecordObjectListsEachViolationWithCountPidAndCommand) {
  auto j = sample_summary(false).to_json();
  EXPECT_EQ(j["profile"], "baseline");
  EXPECT_EQ(j["action"], "EPERM");
  EXPECT_EQ(j["violations_total"], 3);
  ASSERT_EQ(j["violations"].size(), 3u);
  EXPECT_EQ(j["violations"][0], nlohmann::json({{"syscall", "unshare"}, {"count", 2}, {"first_pid", 4242},
                                                {"comm", "unshare"}}));
  EXPECT_FALSE(j.contains("seen"));
  auto l = sample_summary(true).to_json();
  EXPECT_EQ(l["action"], "continue");
  EXPECT_EQ(l["seen"], nlohmann::json({"unshare", "keyctl", "syscall_999"}));
}

TEST(SeccompSummary, LearnedProfileIsAProfileFileAllowingStrictPlusWhatWasSeen) {
  auto s = sample_summary(true);
  auto j = s.learned_profile();
  EXPECT_EQ(j["schema"], "cronrun.seccomp/1");
  EXPECT_EQ(j["learned"]["counts"]["unshare"], 2);
  EXPECT_EQ(j["learned"]["unnamed"], nlohmann::json({999}));
  auto p = sc::parse_profile(j.dump(), "learned.json");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(allows(*p, "unshare"));
  EXPECT_TRUE(allows(*p, "keyctl"));
  EXPECT_TRUE(allows(*p, "futex"));
  EXPECT_FALSE(allows(*p, "ptrace"));
  auto strict = sc::builtin_profile("strict");
  EXPECT_EQ(p->allowed.size(), strict->allowed.size() + 2);
}

// --- the compiled-filter cache (seccomp_cache.cc) -----------------------------

class SeccompCache : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronrun-seccomp-cache.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::filesystem::path> cached() const {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path());
    return out;
  }
  static std::vector<sock_filter> insns(const sc::CompiledFilter& f) { return {f.data(), f.data() + f.size()}; }
  static bool same(const sc::CompiledFilter& a, const sc::CompiledFilter& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(sock_filter)) == 0;
  }
  std::string dir_;
};

TEST_F(SeccompCache, TheFirstRunCompilesAndKeepsTheProgramLaterRunsReadIt) {
  auto p = sc::builtin_profile("strict");
  ASSERT_TRUE(p);
  std::string note;
  auto first = sc::load_filter(*p, {5, 6}, dir_, &note);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(note, "");
  auto compiled = sc::compile_filter(*p, {5, 6});
  ASSERT_TRUE(compiled);
  EXPECT_TRUE(same(*first, *compiled));
  auto files = cached();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(files[0].filename().string().starts_with("seccomp-")) << files[0];
  struct stat st;
  ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The second load takes the file, not libseccomp: change one instruction's
  // constant in the file and the loaded program has it.
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(24 + static_cast<std::streamoff>(offsetof(sock_filter, k)));  // first instruction after the header
    uint32_t k = 8;
    f.write(reinterpret_cast<const char*>(&k), sizeof k);
  }
  auto second = sc::load_filter(*p, {5, 6}, dir_, &note);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->data()[0].k, 8u);
  EXPECT_EQ(second->size(), compiled->size());

  // Other descriptors in the exec window are another program, another file.
  auto other = sc::load_filter(*p, {7, 8}, dir_, &note);
  ASSERT_TRUE(other);
  EXPECT_EQ(cached().size(), 2u);
}

TEST_F(SeccompCache, ADamagedOrPlantedCacheFileIsNeverLoadedTheProfileIsCompiled) {
  auto p = sc::builtin_profile("baseline");
  ASSERT_TRUE(p);
  auto compiled = sc::compile_filter(*p, {5, 6});
  ASSERT_TRUE(compiled);
  ASSERT_TRUE(sc::load_filter(*p, {5, 6}, dir_));
  const auto file = cached().at(0);

  // Cut short: not the program it is named after.
  std::filesystem::resize_file(file, 40);
  std::string note;
  auto cut = sc::load_filter(*p, {5, 6}, dir_, &note);
  ASSERT_TRUE(cut);
  EXPECT_TRUE(same(*cut, *compiled));
  EXPECT_NE(note.find("not the filter it is named after"), std::string::npos) << note;

  // A symlink in its place is not followed.
  std::filesystem::remove(file);
  std::ofstream(dir_ + "/elsewhere") << "x";
  std::filesystem::create_symlink(dir_ + "/elsewhere", file);
  note.clear();
  auto linked = sc::load_filter(*p, {5, 6}, dir_, &note);
  ASSERT_TRUE(linked);
  EXPECT_TRUE(same(*linked, *compiled));
  EXPECT_NE(note, "");

  // No cache directory at all: compiled, said.
  note.clear();
  auto none = sc::load_filter(*p, {5, 6}, dir_ + "/missing", &note);
  ASSERT_TRUE(none);
  EXPECT_TRUE(same(*none, *compiled));
  EXPECT_NE(note.find("missing"), std::string::npos) << note;
}

// --- the run record's `seccomp` object and the verdict on a failed run ---------

TEST(SeccompRecord, TheRecordFieldIsTheSummaryObjectAndSurvivesTheHistory) {
  for (bool learn : {false, true}) {
    auto s = sample_summary(learn);
    cronrun::RunRecord r;
    r.seccomp = sc::to_record(s, std::nullopt);
    auto j = cronrun::to_json(r);
    auto expected = s.to_json();
    expected["note"] = nullptr;
    expected["failed_by"] = nullptr;
    EXPECT_EQ(j["seccomp"], expected) << learn;
    auto back = cronrun::run_record_from_json(j);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(cronrun::to_json(*back)["seccomp"], j["seccomp"]);
  }
  cronrun::RunRecord off;
  EXPECT_TRUE(cronrun::to_json(off)["seccomp"].is_null());
  // A learn run that saw nothing outside strict still says so, for suggest.
  sc::Summary quiet;
  quiet.profile = "learn";
  quiet.learn = true;
  cronrun::RunRecord r;
  r.seccomp = sc::to_record(quiet, std::nullopt);
  EXPECT_EQ(cronrun::to_json(r)["seccomp"]["seen"], nlohmann::json::array());
}

TEST(SeccompRecord, AFailureIsBlamedOnTheFilterOnlyWhenItDidSomething) {
  auto record = [](cronrun::RunStatus status, std::optional<int> signal, bool learn, uint64_t violations) {
    cronrun::RunRecord r;
    r.status = status;
    r.signal = signal;
    r.exit_code = signal ? 128 + *signal : 1;
    auto s = sample_summary(learn);
    if (violations == 0) {
      s.violations.clear();
      s.violations_total = 0;
    }
    r.seccomp = sc::to_record(s, std::nullopt);
    return r;
  };
  auto sigsys = record(cronrun::RunStatus::killed, SIGSYS, false, 0);
  auto why = sc::blame(sigsys);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("non-native"), std::string::npos);
  EXPECT_EQ(sigsys.seccomp->failed_by, "non-native syscall");
  EXPECT_NE(cronrun::log::event_text(cronrun::log::Event::finish, sigsys).find("seccomp_failed_by=\"non-native syscall\""), std::string::npos);

  auto denied = record(cronrun::RunStatus::failed, std::nullopt, false, 3);
  why = sc::blame(denied);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "seccomp: the job failed after 3 denied syscall(s) (EPERM: unshare, keyctl, syscall_999)");
  EXPECT_EQ(denied.seccomp->failed_by, "denied syscalls");
  const std::string line = cronrun::log::event_text(cronrun::log::Event::finish, denied);
  EXPECT_NE(line.find(" seccomp_denied=3 seccomp_failed_by=\"denied syscalls\""), std::string::npos) << line;
  EXPECT_NE(cronrun::format_report(denied).find("the run failed because of the filter (denied syscalls)"),
            std::string::npos);

  // Not the filter's doing: a clean failure, a success with denials, learn.
  for (auto r : {record(cronrun::RunStatus::failed, std::nullopt, false, 0),
                 record(cronrun::RunStatus::ok, std::nullopt, false, 3),
                 record(cronrun::RunStatus::failed, std::nullopt, true, 3)}) {
    EXPECT_FALSE(sc::blame(r));
    EXPECT_FALSE(r.seccomp->failed_by);
    EXPECT_EQ(cronrun::log::event_text(cronrun::log::Event::finish, r).find("seccomp_failed_by"), std::string::npos);
  }
  cronrun::RunRecord off;
  off.status = cronrun::RunStatus::killed;
  off.signal = SIGSYS;
  EXPECT_FALSE(sc::blame(off));
}

}  // namespace
