// Hostile neighbours (issue 14, items 11 and 12), as root on this host. Another
// user (uid 65534, forked and setuid here) plants what a neighbour can in a shared
// sticky directory like /tmp: symlinks into root-only places, FIFOs, setgid
// directories. Root then runs the real cronrun with paths there. Every test
// asserts the effect that matters: the victim file or directory is unchanged, the
// neighbour got nothing, the runner did not hang.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "harness.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using namespace std::chrono_literals;

namespace {

const std::string kCronrun = CRONRUN_BIN;
constexpr uid_t kNeighbour = 65534;

// Runs `act` as the neighbour in a child process; true when every step worked.
bool as_neighbour(const std::function<bool()>& act) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(kNeighbour) != 0 || setuid(kNeighbour) != 0) _exit(99);
    _exit(act() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
    static int seq = 0;
    dir_ = fs::temp_directory_path() / ("cronrun-hostile-" + std::to_string(getpid()) + "-" + std::to_string(++seq));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    chmod(dir_.c_str(), 0755);
    shared_ = dir_ / "shared";  // a /tmp of our own: root's, sticky, world-writable
    fs::create_directory(shared_);
    chmod(shared_.c_str(), 01777);
    secret_ = dir_ / "secret";  // root-only
    fs::create_directory(secret_);
    chmod(secret_.c_str(), 0700);
    victim_ = secret_ / "victim";
    std::ofstream(victim_) << "root-only data\n";
    chmod(victim_.c_str(), 0600);
    marker_ = dir_ / "job-ran";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Root's cronrun with a lock and history of this test's own, no cgroup.
  std::vector<std::string> cmd(std::vector<std::string> opts, std::vector<std::string> job = {}) {
    std::vector<std::string> v = {kCronrun, "--history", (dir_ / "history.db").string(), "--cgroup", "off"};
    bool own_lock = false;
    for (const auto& o : opts) own_lock = own_lock || o == "--lock";
    if (!own_lock) v.insert(v.end(), {"--lock", (dir_ / "job.pid").string()});
    v.insert(v.end(), opts.begin(), opts.end());
    v.push_back("--");
    if (job.empty()) job = {"/bin/sh", "-c", "echo job-secret; touch " + marker_.string()};
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }
  void expect_victim_unchanged() {
    EXPECT_EQ(read_text(victim_.string()), "root-only data\n");
    EXPECT_EQ(listing(secret_), std::vector<std::string>{"victim"});
  }

  fs::path dir_, shared_, secret_, victim_, marker_;
};

// A neighbour's FIFO at root's --summary path, with the neighbour reading it: the
// old runner wrote the summary (the command line, counters, paths) into it.
TEST_F(Hostile, SummaryFifoIsRefusedAndTheNeighbourReadsNothing) {
  std::string summary = (shared_ / "summary.json").string();
  ASSERT_TRUE(as_neighbour([&] { return mkfifo(summary.c_str(), 0666) == 0; }));
  int reader = open(summary.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // the neighbour's reading end
  ASSERT_GE(reader, 0);
  auto r = run(cmd({"--name", "fifo-summary", "--summary", summary}), 20s);
  char buf[4096];
  ssize_t got = read(reader, buf, sizeof buf);
  close(reader);
  EXPECT_LE(got, 0) << "the neighbour read: " << std::string(buf, static_cast<size_t>(std::max<ssize_t>(got, 0)));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find("cronrun: --summary: " + summary + ": is a FIFO"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(marker_)) << "the job ran although its summary target was refused";
}

// The same FIFO with nobody reading: the old runner hung in open(2), lock held.
TEST_F(Hostile, SummaryFifoWithoutAReaderDoesNotHangTheRunner) {
  std::string summary = (shared_ / "summary.json").string();
  ASSERT_TRUE(as_neighbour([&] { return mkfifo(summary.c_str(), 0666) == 0; }));
  auto r = run(cmd({"--name", "fifo-hang", "--summary", summary}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_EQ(r.err.find("harness: timed out"), std::string::npos) << r.err;
}

// A neighbour's symlink from root's --summary path to a root-only file, and to a
// block device (a loop device over a file here): neither is written.
TEST_F(Hostile, SummarySymlinkToARootOnlyFileOrABlockDeviceIsRefused) {
  std::string summary = (shared_ / "summary.json").string();
  std::string img = (secret_ / "disk.img").string();
  {
    std::ofstream(img) << std::string(1 << 20, '\0');
  }
  std::string loop_file = (dir_ / "loopdev").string();
  bool have_loop = std::system(("losetup -f --show " + img + " > " + loop_file + " 2>/dev/null").c_str()) == 0;
  std::string loop = read_text(loop_file);
  if (!loop.empty() && loop.back() == '\n') loop.pop_back();
  std::string target = have_loop ? loop : victim_.string();
  ASSERT_TRUE(as_neighbour([&] { return symlink(target.c_str(), summary.c_str()) == 0; }));
  auto r = run(cmd({"--name", "link-summary", "--summary", summary}), 20s);
  if (have_loop) std::system(("losetup -d " + loop).c_str());
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(summary + ": is a symlink owned by uid 65534"), std::string::npos) << r.err;
  EXPECT_TRUE(read_text(img) == std::string(1 << 20, '\0')) << "the summary was written over the device";
  fs::remove(img);
  expect_victim_unchanged();
  if (!have_loop) GTEST_SKIP() << "no loop device here: only the root-only file target was tried";
}

// --log-dir in a shared directory: the neighbour plants DIR/NAME as a symlink into
// a root-only directory. The old runner wrote the job's output there.
TEST_F(Hostile, LogDirSubdirectorySymlinkIsRefused) {
  std::string job_dir = (shared_ / "linked-log").string();
  ASSERT_TRUE(as_neighbour([&] { return symlink(secret_.c_str(), job_dir.c_str()) == 0; }));
  auto r = run(cmd({"--name", "linked-log", "--log-dir", shared_.string()}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(job_dir + ": is a symlink, expected a directory"), std::string::npos) << r.err;
  expect_victim_unchanged();
  // Refused before the lock and the start record, as a bad DIR is.
  EXPECT_FALSE(fs::exists(dir_ / "job.pid")) << "a lock file was made for a refused run";
  EXPECT_FALSE(fs::exists(dir_ / "history.db.journal")) << "a refused run was recorded";
  EXPECT_FALSE(fs::exists(marker_));
}

// The neighbour prepares DIR/NAME as a setgid 2777 directory of their group: the
// old runner's 0640 log took that group, and so the neighbour read the job's output.
TEST_F(Hostile, LogDirSetgidSubdirectoryOfTheNeighbourIsRefused) {
  std::string job_dir = (shared_ / "sgid-log").string();
  ASSERT_TRUE(as_neighbour([&] { return mkdir(job_dir.c_str(), 0777) == 0 && chmod(job_dir.c_str(), 02777) == 0; }));
  auto r = run(cmd({"--name", "sgid-log", "--log-dir", shared_.string()}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(job_dir + ": owned by uid 65534"), std::string::npos) << r.err;
  EXPECT_TRUE(listing(job_dir).empty()) << "a log was written into the neighbour's directory";
  // Refused before the lock and the start record, as a bad DIR is.
  EXPECT_FALSE(fs::exists(dir_ / "job.pid")) << "a lock file was made for a refused run";
  EXPECT_FALSE(fs::exists(dir_ / "history.db.journal")) << "a refused run was recorded";
  EXPECT_FALSE(fs::exists(marker_));
}

// A log directory that is fine: still works, the job's directory is root's 0750.
TEST_F(Hostile, LogDirInASharedDirectoryStillWorks) {
  auto r = run(cmd({"--name", "good-log", "--log-dir", shared_.string()}), 20s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(lstat((shared_ / "good-log").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777 & ~0750u, 0u);
  auto logs = listing(shared_ / "good-log");
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(read_text((shared_ / "good-log" / logs[0]).string()), "job-secret\n");
}

// A mistyped --log-dir is not created (nor its parents), and nothing runs.
TEST_F(Hostile, MissingLogDirIsRefusedBeforeTheJob) {
  std::string logs = (dir_ / "typo" / "logs").string();
  auto r = run(cmd({"--name", "typo-log", "--log-dir", logs}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find("cronrun: --log-dir: open " + (dir_ / "typo").string() + ": No such file or directory"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "typo"));
  EXPECT_FALSE(fs::exists(marker_));
  EXPECT_FALSE(fs::exists(dir_ / "history.db")) << "a refused run was recorded";
}

// --lock through a directory symlink the neighbour planted: the old runner wrote its
// pid over a root-only file.
TEST_F(Hostile, LockThroughAPlantedDirectorySymlinkIsRefused) {
  std::string link = (shared_ / "locks").string();
  ASSERT_TRUE(as_neighbour([&] { return symlink(secret_.c_str(), link.c_str()) == 0; }));
  auto r = run(cmd({"--name", "linked-lock", "--lock", link + "/victim"}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(link + ": is a symlink owned by uid 65534; refusing to follow it"), std::string::npos) << r.err;
  expect_victim_unchanged();
  EXPECT_FALSE(fs::exists(marker_));
}

// A neighbour's file at the lock path in a shared directory is not taken over.
TEST_F(Hostile, LockFileOfTheNeighbourInASharedDirectoryIsRefused) {
  std::string lock = (shared_ / "job.pid").string();
  ASSERT_TRUE(as_neighbour([&] {
    int fd = open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
    return fd >= 0 && write(fd, "1\n", 2) == 2 && close(fd) == 0;
  }));
  auto r = run(cmd({"--name", "their-lock", "--lock", lock}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(lock + ": owned by uid 65534 in a directory others can write"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(lock), "1\n");
}

// `cronrun --lock /usr/local/bin/tool ...` without `--`: the old runner cut the
// program down to a pid line.
TEST_F(Hostile, LockOnAProgramIsRefusedAndTheProgramUnchanged) {
  fs::path tool = dir_ / "tool";
  fs::copy_file("/bin/true", tool);
  auto before = fs::file_size(tool);
  std::string content = read_text(tool.string());
  auto r = run(cmd({"--name", "tool-lock", "--lock", tool.string()}), 20s);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(tool.string() + ": exists and is not a cronrun lock file"), std::string::npos) << r.err;
  EXPECT_EQ(fs::file_size(tool), before);
  EXPECT_EQ(read_text(tool.string()), content);
  EXPECT_FALSE(fs::exists(marker_));
}

// The job replaces $CRONRUN_COUNTERS with a FIFO: the old runner blocked in open(2)
// after the job ended, lock held, row `running`, forever.
TEST_F(Hostile, JobsCountersFifoDoesNotHangTheRunner) {
  std::string summary = (dir_ / "summary.json").string();
  auto r = run(cmd({"--name", "counters-fifo", "--summary", summary},
                   {"/bin/sh", "-c", "rm -f \"$CRONRUN_COUNTERS\" && mkfifo \"$CRONRUN_COUNTERS\""}),
               30s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("job counters not read: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": is a FIFO, expected a regular file"), std::string::npos) << r.err;
  auto s = read_json(summary);
  EXPECT_EQ(s["status"], "ok");
  EXPECT_NE(s["isolation"]["note"].get<std::string>().find("job counters not read"), std::string::npos) << s.dump();
  // The lock was released: the next run takes it.
  auto again = run(cmd({"--name", "counters-fifo"}, {"/bin/true"}), 30s);
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

// The same with --count-db-queries' shared counter file.
TEST_F(Hostile, JobsDbCounterFifoDoesNotHangTheRunner) {
  std::string summary = (dir_ / "summary.json").string();
  auto r = run(cmd({"--name", "db-fifo", "--count-db-queries", "--summary", summary},
                   {"/bin/sh", "-c", "rm -f \"$CRONRUN_DB_COUNTERS\" && mkfifo \"$CRONRUN_DB_COUNTERS\""}),
               30s);
  if (r.exit_code == 125 && r.err.find("library not found") != std::string::npos)
    GTEST_SKIP() << "libcronrun-db.so not built: " << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("is a FIFO, expected a regular file"), std::string::npos) << r.err;
  auto s = read_json(summary);
  EXPECT_EQ(s["status"], "ok");
  EXPECT_NE(s["isolation"]["note"].get<std::string>().find("DB-query counters not read"), std::string::npos)
      << s.dump();
}

// What people legitimately pass still works.
TEST_F(Hostile, SummaryToDevNullAndToStdoutStillWork) {
  auto null = run(cmd({"--name", "sum-null", "--summary", "/dev/null"}, {"/bin/true"}), 20s);
  EXPECT_EQ(null.exit_code, 0) << null.err;
  // The runner's stdout is a regular file here. The old runner took /dev/stdout for a
  // regular file to replace and renamed its temp file over the /dev/stdout symlink.
  auto out = run(cmd({"--name", "sum-stdout", "--summary", "/dev/stdout"}, {"/bin/true"}), 20s);
  if (!fs::is_symlink("/dev/stdout")) {
    ADD_FAILURE() << "/dev/stdout was replaced; restoring the symlink";
    fs::remove("/dev/stdout");
    fs::create_symlink("/proc/self/fd/1", "/dev/stdout");
  }
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("\"job\": \"sum-stdout\""), std::string::npos) << out.out;
}

}  // namespace
