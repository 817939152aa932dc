#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace cronrun::testing {
namespace fs = std::filesystem;

namespace {

pid_t spawn_with(const std::vector<std::string>& argv, int out_fd, int err_fd,
                 const std::vector<std::string>& extra_env) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (const auto& e : extra_env) env.push_back(e);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    std::vector<char*> a, en;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    for (const auto& s : env) en.push_back(const_cast<char*>(s.c_str()));
    en.push_back(nullptr);
    execve(a[0], a.data(), en.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

Ran run(const std::vector<std::string>& argv, std::chrono::seconds limit, const std::vector<std::string>& extra_env) {
  char out_tmpl[] = "/tmp/cronrun-it-outXXXXXX", err_tmpl[] = "/tmp/cronrun-it-errXXXXXX";
  int out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  pid_t pid = spawn_with(argv, out_fd, err_fd, extra_env);
  Ran r;
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.err = "harness: timed out\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_tmpl);
  r.err += read_text(err_tmpl);
  close(out_fd);
  close(err_fd);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return r;
}

pid_t start(const std::vector<std::string>& argv, const std::string& log) {
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid = spawn_with(argv, fd, fd, {});
  close(fd);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  std::string text = read_text(path);
  if (text.empty()) return nlohmann::json();
  return nlohmann::json::parse(text);
}

bool alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  // A zombie is dead for our purposes.
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  return close_paren == std::string::npos || stat.size() < close_paren + 3 || stat[close_paren + 2] != 'Z';
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool wait_for_lock_holder(const std::string& path, pid_t pid) {
  const std::string want = std::to_string(pid) + "\n";
  return wait_until([&] { return read_text(path) == want; });
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::istringstream kids(read_text((task.path() / "children").string()));
    for (pid_t kid; kids >> kid;) out.push_back(kid);
  }
  return out;
}

bool catches(pid_t pid, int sig) {
  std::istringstream status(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("SigCgt:")) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
  return false;
}

std::vector<std::string> cgroup_mounts() {
  std::vector<std::string> out;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream rest(line.substr(sep + 3));
    std::string type;
    rest >> type;
    if (type != "cgroup" && type != "cgroup2") continue;
    std::istringstream head(line);
    std::string id, parent, devno, root, mnt;
    head >> id >> parent >> devno >> root >> mnt;
    out.push_back(mnt);
  }
  return out;
}

std::vector<std::string> leftover_cgroups(const std::string& parent) {
  std::vector<std::string> out;
  for (const auto& m : cgroup_mounts()) {
    fs::path p = fs::path(m) / parent.substr(1);
    std::error_code ec;
    if (!fs::is_directory(p, ec)) continue;
    // Run cgroups are <parent>/<job>/<run-id>; <job> itself stays between runs.
    for (auto it = fs::recursive_directory_iterator(p, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it.depth() >= 1 && it->is_directory(ec)) out.push_back(it->path().string());
  }
  return out;
}

void remove_cgroup_parent(const std::string& parent) {
  for (const auto& m : cgroup_mounts()) {
    fs::path p = fs::path(m) / parent.substr(1);
    std::error_code ec;
    if (!fs::is_directory(p, ec)) continue;
    std::vector<fs::path> dirs;
    for (auto it = fs::recursive_directory_iterator(p, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory(ec)) dirs.push_back(it->path());
    // Deepest first; a dir that still holds processes gets them killed first.
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.string().size() > b.string().size();
    });
    dirs.push_back(p);
    for (const auto& d : dirs) {
      std::ifstream procs(d / "cgroup.procs");
      pid_t pid;
      while (procs >> pid) kill(pid, SIGKILL);
      // EBUSY until the killed processes have left it: a loaded machine takes its time.
      wait_until([&] { return rmdir(d.c_str()) == 0 || errno != EBUSY; });
    }
  }
}

}  // namespace cronrun::testing
