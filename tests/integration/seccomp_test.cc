// seccomp profiles on real programs (DESIGN §11, issue 18): strict passes the
// interpreters and tools cron jobs are made of; baseline denies and counts, also
// from grandchildren; foreign ABIs are killed; learn proposes a profile the same
// job passes; the filter fails closed without its supervisor; and the child never
// waits on a notification between loading the filter and exec.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/integration/seccomp_harness.h"

namespace fs = std::filesystem;
namespace sc = cronrun::seccomp;
using sc::testing::describe;
using sc::testing::run_filtered;
using sc::testing::RunOptions;
using sc::testing::RunOutcome;

namespace {

const std::string kProbe = CRONRUN_SECCOMP_PROBE;

bool installed(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

class Seccomp : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cronrun-seccomp-it.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    out_path_ = dir_ + "/out";
  }
  void TearDown() override {
    if (target_ > 0) {
      ::kill(target_, SIGKILL);
      ::waitpid(target_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  sc::Profile profile(const char* name) {
    auto p = sc::builtin_profile(name);
    EXPECT_TRUE(p) << p.error().message();
    return *p;
  }

  // Runs argv under `p` with output captured in out(); cwd is the test's dir.
  RunOutcome run(const sc::Profile* p, const std::vector<std::string>& argv, RunOptions opt = {}) {
    UniqueOut f(::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    opt.stdout_fd = f.fd;
    opt.cwd = dir_;
    opt.env.push_back("HOME=" + dir_);
    opt.env.push_back("TMPDIR=" + dir_);
    return run_filtered(p, argv, opt);
  }
  std::string out() const {
    std::ifstream in(out_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static bool exited_zero(const RunOutcome& o) { return o.wait_status >= 0 && WIFEXITED(o.wait_status) && WEXITSTATUS(o.wait_status) == 0; }
  static std::string violations(const RunOutcome& o) { return o.summary ? o.summary->to_json().dump() : "(no listener)"; }
  static const sc::Violation* find(const RunOutcome& o, const std::string& name) {
    if (!o.summary) return nullptr;
    for (const auto& v : o.summary->violations)
      if (v.syscall == name) return &v;
    return nullptr;
  }
  int read_pid(const std::string& file) {
    std::ifstream in(dir_ + "/" + file);
    int pid = 0;
    in >> pid;
    return pid;
  }

  struct UniqueOut {
    explicit UniqueOut(int f) : fd(f) {}
    ~UniqueOut() {
      if (fd >= 0) ::close(fd);
    }
    int fd;
  };

  // Expect `argv` to exit 0 under strict with no syscall denied.
  void expect_strict_passes(const std::vector<std::string>& argv) {
    if (!installed(argv[0])) GTEST_SKIP() << argv[0] << " is not installed (scripts/install-deps.sh all)";
    auto p = profile("strict");
    auto o = run(&p, argv);
    EXPECT_TRUE(exited_zero(o)) << describe(o) << "\noutput:\n" << out() << "\nseccomp: " << violations(o);
    ASSERT_TRUE(o.summary);
    EXPECT_EQ(o.summary->violations_total, 0u) << violations(o) << "\noutput:\n" << out();
    EXPECT_EQ(find(o, "clone3"), nullptr) << "clone3 must be ENOSYS in the kernel, never notified";
  }

  std::string dir_, out_path_;
  pid_t target_ = -1;
};

// --- strict: the programs cron jobs are made of ------------------------------

TEST_F(Seccomp, StrictPassesShPipesAndSubstitutions) {
  expect_strict_passes({"/bin/sh", "-c", "echo hi | cat >/dev/null; x=$(echo a); test \"$x\" = a; umask 022"});
}

TEST_F(Seccomp, StrictPassesBashWithSubshellsAndBackgroundJobs) {
  expect_strict_passes({"/bin/bash", "-c",
                        "set -e; for i in 1 2 3; do echo $i; done | wc -l >/dev/null; (sleep 0; true) & wait; "
                        "read -r h < /etc/hostname; echo $((6*7)) > n; [[ $(cat n) == 42 ]]"});
}

TEST_F(Seccomp, StrictPassesPython3ThreadsMultiprocessingSqliteSocketsSubprocess) {
  expect_strict_passes({"/usr/bin/python3", "-I", "-c", R"PY(
import threading, multiprocessing, sqlite3, socket, subprocess, os, tempfile, hashlib, time
def sq(x): return x * x
ts = [threading.Thread(target=time.sleep, args=(0.01,)) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
with multiprocessing.Pool(2) as pool: assert pool.map(sq, [1, 2, 3]) == [1, 4, 9]
q = multiprocessing.Queue(); p = multiprocessing.Process(target=q.put, args=(1,)); p.start(); assert q.get() == 1; p.join()
db = sqlite3.connect('t.db'); db.execute('create table t(x)'); db.execute('insert into t values (1)'); db.commit()
assert db.execute('select x from t').fetchone() == (1,); db.close()
a, b = socket.socketpair(); a.send(b'x'); assert b.recv(1) == b'x'
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()
c = socket.create_connection(s.getsockname()); conn, _ = s.accept(); c.sendall(b'y'); assert conn.recv(1) == b'y'
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 0)); u.sendto(b'z', u.getsockname()); u.recvfrom(1)
assert subprocess.run(['/bin/true']).returncode == 0
assert subprocess.check_output(['echo', 'x'], text=True) == 'x\n'
with tempfile.TemporaryDirectory() as t: open(os.path.join(t, 'f'), 'w').write('x')
hashlib.sha256(os.urandom(8)).hexdigest()
)PY"});
}

TEST_F(Seccomp, StrictPassesPerlWithFork) {
  expect_strict_passes({"/usr/bin/perl", "-e",
                        "my $p = fork(); die unless defined $p; if ($p == 0) { exit 0 } waitpid($p, 0); "
                        "die if $?; open(my $f, '>', 'p.txt') or die; print $f 'x'; close $f or die;"});
}

TEST_F(Seccomp, StrictPassesPhpR) {
  expect_strict_passes({"/usr/bin/php", "-r",
                        "file_put_contents('x.txt', json_encode([1, 2])); if (file_get_contents('x.txt') !== '[1,2]') exit(1);"});
}

TEST_F(Seccomp, StrictPassesTarWithChmodAndGzip) {
  if (!installed("/usr/bin/tar") || !installed("/usr/bin/gzip")) GTEST_SKIP() << "tar or gzip is not installed";
  expect_strict_passes({"/bin/sh", "-c",
                        "set -e; mkdir t; echo a > t/a; chmod 640 t/a; tar -czf t.tgz t; rm -r t; tar -xzf t.tgz; "
                        "test \"$(stat -c %a t/a)\" = 640; tar -cf t.tar t; gzip t.tar; gzip -t t.tar.gz; "
                        "gzip -d t.tar.gz; test -f t.tar"});
}

TEST_F(Seccomp, StrictPassesFindPipedIntoSort) {
  expect_strict_passes({"/bin/sh", "-c", "set -e; find /usr/share -maxdepth 2 -name '*.txt' | sort > list; test -f list"});
}

TEST_F(Seccomp, StrictPassesSqlite3) {
  expect_strict_passes({"/usr/bin/sqlite3", "s.db",
                        "create table a(x); insert into a values (1); select count(*) from a;"});
}

// --- baseline: denied, answered EPERM, counted once with pid and command -------

TEST_F(Seccomp, BaselineDeniesAndCountsEachViolationFromGrandchildren) {
  if (!installed("/usr/bin/unshare")) GTEST_SKIP() << "unshare (util-linux) is not installed";
  // Something to ptrace that is not the job's.
  target_ = ::fork();
  ASSERT_GE(target_, 0);
  if (target_ == 0) {
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto p = profile("baseline");
  // sh -> sh -> program: every violation comes from a grandchild of the job.
  const std::string script =
      "sh -c 'echo $$ > unshare.pid; exec unshare -U true' ; echo unshare=$?;"
      "sh -c 'exec " + kProbe + " ptrace " + std::to_string(target_) + "';"
      "sh -c 'exec " + kProbe + " keyctl';"
      "sh -c 'exec " + kProbe + " io_uring';"
      "sh -c 'exec " + kProbe + " clone-newuser';"
      "true";
  auto o = run(&p, {"/bin/sh", "-c", script});
  const std::string text = out();
  ASSERT_TRUE(exited_zero(o)) << describe(o) << "\n" << text;
  ASSERT_TRUE(o.summary) << describe(o);
  EXPECT_NE(text.find("unshare=1"), std::string::npos) << text;
  EXPECT_NE(text.find("Operation not permitted"), std::string::npos) << text;
  for (const char* what : {"ptrace", "keyctl", "io_uring", "clone-newuser"})
    EXPECT_NE(text.find(std::string(" ") + what + " EPERM"), std::string::npos) << what << "\n" << text;

  auto probe_pid = [&](const std::string& what) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream l(line);
      int pid;
      std::string w;
      if (l >> pid >> w && w == what) return pid;
    }
    return 0;
  };
  struct Expect {
    const char* syscall;
    int pid;
    const char* comm;
  } expects[] = {
      {"unshare", read_pid("unshare.pid"), "unshare"},
      {"ptrace", probe_pid("ptrace"), "seccomp-probe"},
      {"keyctl", probe_pid("keyctl"), "seccomp-probe"},
      {"io_uring_setup", probe_pid("io_uring"), "seccomp-probe"},
      {"clone", probe_pid("clone-newuser"), "seccomp-probe"},
  };
  for (const auto& e : expects) {
    const sc::Violation* v = find(o, e.syscall);
    ASSERT_NE(v, nullptr) << e.syscall << " not counted: " << violations(o);
    EXPECT_EQ(v->count, 1u) << e.syscall;
    EXPECT_GT(e.pid, 0) << e.syscall;
    EXPECT_EQ(v->first_pid, e.pid) << e.syscall;
    EXPECT_EQ(v->comm, e.comm) << e.syscall;
  }
  EXPECT_EQ(o.summary->violations_total, 5u) << violations(o);
  auto j = o.summary->to_json();
  EXPECT_EQ(j["profile"], "baseline");
  EXPECT_EQ(j["action"], "EPERM");
  // The target was never attached.
  EXPECT_EQ(::waitpid(target_, nullptr, WNOHANG), 0);
}

TEST_F(Seccomp, BaselineLetsHarmlessPersonalitiesThroughAndDeniesTheRest) {
  auto p = profile("baseline");
  auto o = run(&p, {"/bin/sh", "-c",
                    kProbe + " personality ffffffff; " + kProbe + " personality 0040000; " + kProbe +
                        " personality 0400000; " + kProbe + " personality 0100000"});
  const std::string text = out();
  ASSERT_TRUE(exited_zero(o)) << describe(o) << "\n" << text;
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> results;
  while (std::getline(lines, line)) results.push_back(line.substr(line.find(' ') + 1));
  EXPECT_EQ(results, (std::vector<std::string>{"personality ok", "personality ok", "personality EPERM",
                                               "personality EPERM"}))
      << text;
  const sc::Violation* v = find(o, "personality");
  ASSERT_NE(v, nullptr) << violations(o);
  EXPECT_EQ(v->count, 2u);
}

TEST_F(Seccomp, ForeignAbisAreKilledNotServed) {
  auto unfiltered = run(nullptr, {kProbe, "i386"});
  const std::string plain = out();
  auto p = profile("baseline");
  auto i386 = run(&p, {kProbe, "i386"});
  const std::string filtered = out();
  ASSERT_TRUE(i386.wait_status >= 0 && WIFSIGNALED(i386.wait_status)) << describe(i386) << "\n" << filtered;
  EXPECT_EQ(WTERMSIG(i386.wait_status), SIGSYS) << describe(i386);
  EXPECT_EQ(filtered.find("returned"), std::string::npos) << filtered;
  // Without the filter, this kernel serves int $0x80 (so the kill above is the filter's doing).
  if (exited_zero(unfiltered)) {
    EXPECT_NE(plain.find("i386 returned"), std::string::npos) << plain;
  }

  auto x32 = run(&p, {kProbe, "x32"});
  ASSERT_TRUE(x32.wait_status >= 0 && WIFSIGNALED(x32.wait_status)) << describe(x32) << "\n" << out();
  EXPECT_EQ(WTERMSIG(x32.wait_status), SIGSYS);
  // Neither reached the listener: the architecture check comes first.
  ASSERT_TRUE(i386.summary && x32.summary);
  EXPECT_EQ(i386.summary->violations_total + x32.summary->violations_total, 0u);
}

// --- learn: nothing denied; the proposed profile passes the job ---------------

TEST_F(Seccomp, LearnedProfilePassesTheSameJobAndStillDeniesUnshare) {
  if (!installed("/usr/bin/python3") || !installed("/usr/bin/unshare")) GTEST_SKIP() << "python3 or unshare missing";
  // A job that needs a syscall outside strict: chroot to "/" changes nothing.
  const std::vector<std::string> job = {
      "/usr/bin/python3", "-I", "-c",
      "import os, threading, sqlite3\n"
      "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
      "os.chroot('/')\n"
      "sqlite3.connect(':memory:').execute('select 1')\n"
      "print('done')\n"};
  auto strict = profile("strict");
  auto under_strict = run(&strict, job);
  EXPECT_FALSE(exited_zero(under_strict)) << "the job must need something strict does not allow";
  EXPECT_NE(find(under_strict, "chroot"), nullptr) << violations(under_strict);

  auto learn = profile("learn");
  auto learned_run = run(&learn, job);
  ASSERT_TRUE(exited_zero(learned_run)) << describe(learned_run) << "\n" << out();
  ASSERT_TRUE(learned_run.summary);
  const sc::Violation* chroot = find(learned_run, "chroot");
  ASSERT_NE(chroot, nullptr) << violations(learned_run);
  EXPECT_EQ(chroot->comm, "python3");
  EXPECT_EQ(learned_run.summary->to_json()["action"], "continue");

  const std::string file = dir_ + "/learned.json";
  std::ofstream(file) << learned_run.summary->learned_profile().dump(2);
  auto learned = sc::resolve_profile(file);
  ASSERT_TRUE(learned) << learned.error().message();
  auto again = run(&*learned, job);
  EXPECT_TRUE(exited_zero(again)) << describe(again) << "\n" << out() << "\n" << violations(again);
  EXPECT_EQ(again.summary->violations_total, 0u) << violations(again);

  auto ns = run(&*learned, {"/usr/bin/unshare", "-U", "true"});
  EXPECT_FALSE(exited_zero(ns)) << describe(ns);
  const sc::Violation* v = find(ns, "unshare");
  ASSERT_NE(v, nullptr) << violations(ns);
  EXPECT_EQ(v->count, 1u);
}

// --- fail closed, and no deadlock in the exec window ---------------------------

TEST_F(Seccomp, WithoutItsSupervisorTheFilterFailsClosedWithEnosys) {
  auto p = profile("baseline");
  RunOptions closed;
  closed.close_listener = true;  // received, then closed: the supervisor is gone
  auto o = run(&p, {kProbe, "keyctl"}, closed);
  EXPECT_TRUE(exited_zero(o)) << describe(o);
  EXPECT_NE(out().find("keyctl ENOSYS"), std::string::npos) << out();

  RunOptions dropped;
  dropped.drop_channel = true;  // never received: dropped with the channel
  auto d = run(&p, {kProbe, "keyctl"}, dropped);
  EXPECT_TRUE(exited_zero(d)) << describe(d);
  EXPECT_NE(out().find("keyctl ENOSYS"), std::string::npos) << out();

  // Learn fails closed too: what would have been let through is refused.
  auto learn = profile("learn");
  auto l = run(&learn, {kProbe, "keyctl"}, closed);
  EXPECT_TRUE(exited_zero(l)) << describe(l);
  EXPECT_NE(out().find("keyctl ENOSYS"), std::string::npos) << out();
}

TEST_F(Seccomp, AProfileWithoutSendmsgOrWriteNeitherBlocksTheChildNorHidesAFailedExec) {
  // Only read allowed: sendmsg (the listener hand-over) and write (the exec
  // failure report) would be notified, with nobody listening yet.
  auto p = sc::parse_profile(R"({"schema":"cronrun.seccomp/1","default":"errno","allow":["read"]})", "read-only.json");
  ASSERT_TRUE(p) << p.error().message();
  auto missing = run(&*p, {dir_ + "/no-such-program"});
  EXPECT_FALSE(missing.timed_out) << describe(missing);
  EXPECT_NE(missing.exec_error.find("No such file"), std::string::npos) << describe(missing);

  auto ran = run(&*p, {"/bin/true"});
  EXPECT_FALSE(ran.timed_out) << describe(ran);
  ASSERT_TRUE(ran.summary) << describe(ran);
  // The job's loader was denied (and counted); the hand-over was not.
  EXPECT_GT(ran.summary->violations_total, 0u);
  EXPECT_EQ(find(ran, "sendmsg"), nullptr) << violations(ran);
  EXPECT_FALSE(exited_zero(ran)) << describe(ran);
}

}  // namespace
