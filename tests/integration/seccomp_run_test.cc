// `cronrun --seccomp` end to end (issue 18, DESIGN §11): the real cronrun binary
// runs real programs under each profile; the run record's `seccomp` object, the
// exit status, the FINISH line and --report say what the filter did. A bad
// profile is refused before anything is locked, recorded or created.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "harness.h"
#include "runner/seccomp_profile.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using nlohmann::json;

namespace {

const std::string kCronrun = CRONRUN_BIN;
const std::string kProbe = CRONRUN_SECCOMP_PROBE;

bool installed(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

class SeccompRun : public ::testing::Test {
 protected:
  void SetUp() override {
    static int seq = 0;
    dir_ = fs::temp_directory_path() / ("cronrun-seccomp-run-" + std::to_string(getpid()) + "-" + std::to_string(++seq));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (target_ > 0) {
      ::kill(target_, SIGKILL);
      ::waitpid(target_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  // cronrun with this test's history, lock and summary; no cgroup (the filter
  // does not need one, and these tests leave none behind). -v puts the FINISH
  // line on stderr.
  std::vector<std::string> cmd(std::vector<std::string> opts, std::vector<std::string> job) {
    std::vector<std::string> v = {kCronrun, "-v",      "--history", db(), "--lock", lock(), "--summary", summary(),
                                  "--cgroup", "off", "--name",    "sc"};
    v.insert(v.end(), opts.begin(), opts.end());
    v.push_back("--");
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }
  Ran in_dir(const std::vector<std::string>& argv) {
    // The job's files go to the test's directory.
    std::vector<std::string> sh = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", dir_.string()};
    sh.insert(sh.end(), argv.begin(), argv.end());
    return run(sh, std::chrono::seconds(120), {"HOME=" + dir_.string(), "TMPDIR=" + dir_.string()});
  }
  std::string db() const { return (dir_ / "history.db").string(); }
  std::string lock() const { return (dir_ / "job.pid").string(); }
  std::string summary() const { return (dir_ / "summary.json").string(); }
  json result() const { return read_json(summary()); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // `argv` exits 0 under --seccomp strict with nothing denied, and the record says so.
  void expect_strict_passes(const std::vector<std::string>& argv) {
    if (!installed(argv[0])) GTEST_SKIP() << argv[0] << " is not installed";
    auto r = in_dir(cmd({"--seccomp", "strict"}, argv));
    ASSERT_EQ(r.exit_code, 0) << r.err << "\n" << r.out;
    json s = result();
    ASSERT_TRUE(s["seccomp"].is_object()) << s.dump();
    EXPECT_EQ(s["status"], "ok");
    EXPECT_EQ(s["seccomp"]["profile"], "strict");
    EXPECT_EQ(s["seccomp"]["action"], "EPERM");
    EXPECT_EQ(s["seccomp"]["violations_total"], 0) << s["seccomp"].dump();
    EXPECT_TRUE(s["seccomp"]["failed_by"].is_null());
  }
  static const json* violation(const json& s, const std::string& name) {
    for (const auto& v : s["seccomp"]["violations"])
      if (v["syscall"] == name) return &v;
    return nullptr;
  }
  // The FINISH line cronrun logged (with -v it is on stderr too).
  static std::string finish_line(const Ran& r) {
    std::istringstream in(r.err);
    std::string line;
    while (std::getline(in, line))
      if (line.find("FINISH job=") != std::string::npos) return line;
    return "";
  }

  fs::path dir_;
  pid_t target_ = -1;
};

// --- strict: the programs cron jobs are made of, through cronrun ---------------

TEST_F(SeccompRun, StrictPassesShPipesAndSubstitutions) {
  expect_strict_passes({"/bin/sh", "-c", "echo hi | cat >/dev/null; x=$(echo a); test \"$x\" = a; umask 022"});
}

TEST_F(SeccompRun, StrictPassesBashWithSubshellsAndBackgroundJobs) {
  expect_strict_passes({"/bin/bash", "-c",
                        "set -e; for i in 1 2 3; do echo $i; done | wc -l >/dev/null; (sleep 0; true) & wait; "
                        "echo $((6*7)) > n; [[ $(cat n) == 42 ]]"});
}

TEST_F(SeccompRun, StrictPassesPython3ThreadsMultiprocessingSqliteSocketsSubprocess) {
  expect_strict_passes({"/usr/bin/python3", "-I", "-c", R"PY(
import threading, multiprocessing, sqlite3, socket, subprocess, os, tempfile
def sq(x): return x * x
ts = [threading.Thread(target=sum, args=([1, 2],)) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
with multiprocessing.Pool(2) as pool: assert pool.map(sq, [1, 2, 3]) == [1, 4, 9]
db = sqlite3.connect('t.db'); db.execute('create table t(x)'); db.execute('insert into t values (1)'); db.commit()
assert db.execute('select x from t').fetchone() == (1,); db.close()
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()
c = socket.create_connection(s.getsockname()); conn, _ = s.accept(); c.sendall(b'y'); assert conn.recv(1) == b'y'
assert subprocess.run(['/bin/true']).returncode == 0
with tempfile.TemporaryDirectory() as t: open(os.path.join(t, 'f'), 'w').write('x')
)PY"});
}

TEST_F(SeccompRun, StrictPassesPerlWithFork) {
  expect_strict_passes({"/usr/bin/perl", "-e",
                        "my $p = fork(); die unless defined $p; if ($p == 0) { exit 0 } waitpid($p, 0); die if $?;"});
}

TEST_F(SeccompRun, StrictPassesPhpR) {
  expect_strict_passes({"/usr/bin/php", "-r", "file_put_contents('x.txt', '1'); exit(file_get_contents('x.txt') === '1' ? 0 : 1);"});
}

TEST_F(SeccompRun, StrictPassesTarWithChmodAndGzip) {
  if (!installed("/usr/bin/tar") || !installed("/usr/bin/gzip")) GTEST_SKIP() << "tar or gzip is not installed";
  expect_strict_passes({"/bin/sh", "-c",
                        "set -e; mkdir t; echo a > t/a; chmod 640 t/a; tar -czf t.tgz t; rm -r t; tar -xzf t.tgz; "
                        "test \"$(stat -c %a t/a)\" = 640; gzip -t t.tgz"});
}

TEST_F(SeccompRun, StrictPassesFindPipedIntoSort) {
  expect_strict_passes({"/bin/sh", "-c", "set -e; find /usr/share -maxdepth 2 -name '*.txt' | sort > list; test -f list"});
}

TEST_F(SeccompRun, StrictPassesSqlite3) {
  expect_strict_passes({"/usr/bin/sqlite3", "s.db", "create table a(x); insert into a values (1); select count(*) from a;"});
}

// --- baseline: denied with EPERM, counted once with pid and command ----------

TEST_F(SeccompRun, BaselineDeniesAndCountsEachViolationFromGrandchildrenInTheRecord) {
  if (!installed("/usr/bin/unshare")) GTEST_SKIP() << "unshare (util-linux) is not installed";
  target_ = ::fork();  // a process that is not the job's, to ptrace
  ASSERT_GE(target_, 0);
  if (target_ == 0) {
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::string script = "sh -c 'echo $$ > unshare.pid; exec unshare -U true'; echo unshare=$?;"
                             "sh -c 'exec " + kProbe + " ptrace " + std::to_string(target_) + "';"
                             "sh -c 'exec " + kProbe + " keyctl';"
                             "sh -c 'exec " + kProbe + " io_uring';"
                             "true";
  auto r = in_dir(cmd({"--seccomp", "baseline", "--report"}, {"/bin/sh", "-c", script}));
  ASSERT_EQ(r.exit_code, 0) << r.err << "\n" << r.out;
  EXPECT_NE(r.out.find("unshare=1"), std::string::npos) << r.out;
  for (const char* what : {"ptrace", "keyctl", "io_uring"})
    EXPECT_NE(r.out.find(std::string(" ") + what + " EPERM"), std::string::npos) << what << "\n" << r.out;

  auto probe_pid = [&](const std::string& what) {
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream l(line);
      int pid;
      std::string w;
      if (l >> pid >> w && w == what) return pid;
    }
    return 0;
  };
  int unshare_pid = 0;
  std::ifstream(dir_ / "unshare.pid") >> unshare_pid;
  json s = result();
  ASSERT_TRUE(s["seccomp"].is_object()) << s.dump();
  EXPECT_EQ(s["status"], "ok");
  EXPECT_EQ(s["seccomp"]["profile"], "baseline");
  EXPECT_EQ(s["seccomp"]["action"], "EPERM");
  struct Expect {
    const char* syscall;
    int pid;
    const char* comm;
  } expects[] = {{"unshare", unshare_pid, "unshare"},
                 {"ptrace", probe_pid("ptrace"), "seccomp-probe"},
                 {"keyctl", probe_pid("keyctl"), "seccomp-probe"},
                 {"io_uring_setup", probe_pid("io_uring"), "seccomp-probe"}};
  for (const auto& e : expects) {
    const json* v = violation(s, e.syscall);
    ASSERT_NE(v, nullptr) << e.syscall << " not counted: " << s["seccomp"].dump();
    EXPECT_EQ((*v)["count"], 1) << e.syscall;
    EXPECT_GT(e.pid, 0) << e.syscall;
    EXPECT_EQ((*v)["first_pid"], e.pid) << e.syscall;
    EXPECT_EQ((*v)["comm"], e.comm) << e.syscall;
  }
  EXPECT_EQ(s["seccomp"]["violations_total"], 4) << s["seccomp"].dump();
  EXPECT_TRUE(s["seccomp"]["failed_by"].is_null()) << "the job exited 0";
  EXPECT_NE(finish_line(r).find("status=ok"), std::string::npos) << r.err;
  EXPECT_NE(finish_line(r).find("seccomp_denied=4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("seccomp baseline: 4 syscall(s) denied (EPERM)"), std::string::npos) << r.err;
  EXPECT_EQ(::waitpid(target_, nullptr, WNOHANG), 0) << "the ptrace target was never attached";
}

TEST_F(SeccompRun, AJobFailingOnADeniedSyscallIsToldApartInRecordFinishAndReport) {
  if (!installed("/usr/bin/unshare")) GTEST_SKIP() << "unshare (util-linux) is not installed";
  auto r = in_dir(cmd({"--seccomp", "strict", "--report"}, {"/usr/bin/unshare", "-U", "true"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json s = result();
  EXPECT_EQ(s["status"], "failed");
  ASSERT_TRUE(s["seccomp"].is_object()) << s.dump();
  EXPECT_NE(violation(s, "unshare"), nullptr) << s["seccomp"].dump();
  EXPECT_EQ(s["seccomp"]["failed_by"], "denied syscalls");
  EXPECT_NE(s["isolation"]["note"].get<std::string>().find("failed after 1 denied syscall(s) (EPERM: unshare)"),
            std::string::npos)
      << s["isolation"].dump();
  EXPECT_NE(finish_line(r).find("seccomp_failed_by=\"denied syscalls\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the run failed because of the filter (denied syscalls)"), std::string::npos) << r.err;
}

TEST_F(SeccompRun, NonNativeSyscallsKillTheJobAndTheRecordBlamesTheFilter) {
  for (const char* abi : {"i386", "x32"}) {
    auto r = in_dir(cmd({"--seccomp", "baseline", "--report"}, {kProbe, abi}));
    EXPECT_EQ(r.exit_code, 128 + SIGSYS) << abi << "\n" << r.err << r.out;
    EXPECT_EQ(r.out.find("returned"), std::string::npos) << abi << ": the syscall ran\n" << r.out;
    json s = result();
    EXPECT_EQ(s["status"], "killed") << abi;
    EXPECT_EQ(s["signal"], SIGSYS) << abi;
    ASSERT_TRUE(s["seccomp"].is_object()) << s.dump();
    EXPECT_EQ(s["seccomp"]["failed_by"], "non-native syscall") << abi;
    EXPECT_EQ(s["seccomp"]["violations_total"], 0) << "killed by the arch check, never notified";
    EXPECT_NE(s["isolation"]["note"].get<std::string>().find("killed for a non-native (i386 or x32) syscall"),
              std::string::npos)
        << s["isolation"].dump();
    EXPECT_NE(finish_line(r).find("seccomp_failed_by=\"non-native syscall\""), std::string::npos) << r.err;
  }
}

// --- learn: nothing denied, what strict lacks is recorded for suggest ---------

TEST_F(SeccompRun, LearnRecordsWhatStrictLacksAndAProfileFromItPassesTheJob) {
  if (!installed("/usr/bin/python3") || !installed("/usr/bin/unshare")) GTEST_SKIP() << "python3 or unshare missing";
  // A job that needs a syscall outside strict: chroot to "/" changes nothing.
  const std::vector<std::string> job = {"/usr/bin/python3", "-I", "-c",
                                        "import os, threading\n"
                                        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
                                        "os.chroot('/')\nprint('done')\n"};
  auto strict = in_dir(cmd({"--seccomp", "strict"}, job));
  EXPECT_NE(strict.exit_code, 0) << "the job must need something strict does not allow";

  auto r = in_dir(cmd({"--seccomp", "learn"}, job));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  json s = result();
  ASSERT_TRUE(s["seccomp"].is_object()) << s.dump();
  EXPECT_EQ(s["seccomp"]["profile"], "learn");
  EXPECT_EQ(s["seccomp"]["action"], "continue");
  ASSERT_TRUE(s["seccomp"]["seen"].is_array()) << s["seccomp"].dump();
  std::vector<int> allowed;
  for (auto name : cronrun::seccomp::strict_allowed_names()) allowed.push_back(cronrun::seccomp::syscall_number(name));
  bool chroot = false;
  for (const auto& name : s["seccomp"]["seen"]) {
    chroot = chroot || name == "chroot";
    allowed.push_back(cronrun::seccomp::syscall_number(name.get<std::string>()));
  }
  EXPECT_TRUE(chroot) << s["seccomp"].dump();
  EXPECT_NE(finish_line(r).find("seccomp_seen="), std::string::npos) << r.err;
  EXPECT_TRUE(s["seccomp"]["failed_by"].is_null());

  // What `cronprof suggest --seccomp` writes from the record, as a file profile.
  std::sort(allowed.begin(), allowed.end());
  const std::string file =
      write("learned.json", cronrun::seccomp::profile_json(allowed, EPERM, {{"from", "learn"}, {"runs", 1}}).dump(2));
  auto again = in_dir(cmd({"--seccomp", file}, job));
  EXPECT_EQ(again.exit_code, 0) << again.err << again.out;
  EXPECT_EQ(result()["seccomp"]["violations_total"], 0) << result()["seccomp"].dump();
  EXPECT_EQ(result()["seccomp"]["profile"], file);
  auto ns = in_dir(cmd({"--seccomp", file}, {"/usr/bin/unshare", "-U", "true"}));
  EXPECT_NE(ns.exit_code, 0) << ns.err;
  EXPECT_NE(violation(result(), "unshare"), nullptr) << result()["seccomp"].dump();
}

TEST_F(SeccompRun, WithoutSeccompTheRecordFieldIsNull) {
  auto r = in_dir(cmd({}, {"/bin/true"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json s = result();
  ASSERT_TRUE(s.contains("seccomp")) << s.dump();
  EXPECT_TRUE(s["seccomp"].is_null()) << s.dump();
  auto off = in_dir(cmd({"--seccomp", "off"}, {"/bin/true"}));
  ASSERT_EQ(off.exit_code, 0) << off.err;
  const json o = result();
  ASSERT_TRUE(o.contains("seccomp")) << o.dump();
  EXPECT_TRUE(o["seccomp"].is_null());
}

// --- bad profiles: one line, exit 125, nothing created -----------------------

TEST_F(SeccompRun, ABadProfileIsOneLineAndExit125WithNothingCreated) {
  struct Case {
    std::string value, expect;
  } cases[] = {
      {write("unknown.json", R"({"schema":"cronrun.seccomp/1","default":"errno","allow":["read","frobnicate"]})"),
       "unknown syscall \"frobnicate\" in \"allow\""},
      {write("bad.json", "{\"schema\": "), "not valid JSON"},
      {(dir_ / "missing.json").string(), "No such file"},
      {"strcit", "unknown seccomp profile 'strcit' (expected off, baseline, strict, learn or a profile file)"},
  };
  for (const auto& c : cases) {
    auto r = in_dir(cmd({"--seccomp", c.value}, {"/bin/sh", "-c", "touch ran"}));
    EXPECT_EQ(r.exit_code, 125) << c.value << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.err.starts_with("cronrun: --seccomp: ")) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "ran"));
    EXPECT_FALSE(fs::exists(db())) << "history created";
    EXPECT_FALSE(fs::exists(lock())) << "lock created";
    EXPECT_FALSE(fs::exists(summary())) << "summary written";
  }
  // The same from a job config file names the file and the key.
  const std::string config = write("job.json", "{\"seccomp\": \"" + (dir_ / "bad.json").string() + "\"}");
  auto r = in_dir(cmd({"--config", config}, {"/bin/true"}));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find("config " + config + ": key 'seccomp': "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(db()));
}

}  // namespace
