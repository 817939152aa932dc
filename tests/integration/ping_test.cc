// cronrun --ping against a real HTTP server on loopback (ping_server.py), which
// records every request it receives: what reached the server is asserted, and
// what the run record says about it. The server can answer 500, hang or close
// the connection unanswered; a port nobody listens on stands for a server that
// is down. No cgroups: every run uses --cgroup off.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.h"

namespace fs = std::filesystem;
using namespace cronrun::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kCronrun = CRONRUN_BIN;
const std::string kServer = PING_SERVER;
// The check's secret part of the URL, which must never show up in a record or a log.
const std::string kUuid = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278";
// What one run's pings may take at most: a cancelled start ping lets go within
// a second, the finish ping gives up after ping::Policy::total; plus slack.
constexpr auto kRunBound = 25s;

class Ping : public ::testing::Test {
 protected:
  void SetUp() override {
    static int seq = 0;
    dir_ = fs::temp_directory_path() / ("cronrun-ping-" + std::to_string(getpid()) + "-" + std::to_string(++seq));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    stop_server();
    fs::remove_all(dir_);
  }

  // Starts the server in `mode`; the URL of the check on it.
  std::string serve(const std::string& mode) {
    std::string port_file = (dir_ / "port").string();
    server_ = start({"/usr/bin/python3", kServer, "--port-file", port_file, "--log", requests_file(), "--mode", mode},
                    (dir_ / "server.out").string());
    // python3's start on a loaded machine: a generous bound (the file appears whole).
    wait_until([&] { return fs::exists(port_file); });
    EXPECT_TRUE(fs::exists(port_file)) << read_text((dir_ / "server.out").string());
    port_ = std::stoi(read_text(port_file));
    return "http://127.0.0.1:" + std::to_string(port_) + "/ping/" + kUuid;
  }
  void stop_server() {
    if (server_ <= 0) return;
    kill(server_, SIGKILL);
    wait_exit(server_);
    server_ = -1;
  }
  // A loopback port nobody listens on: bound once, then closed.
  static int closed_port() {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    close(s);
    return ntohs(a.sin_port);
  }

  std::vector<std::string> cmd(std::vector<std::string> opts, std::vector<std::string> job) {
    std::vector<std::string> v = {kCronrun, "--no-history", "--cgroup", "off", "--lock", lock(),
                                  "--summary", summary()};
    v.insert(v.end(), opts.begin(), opts.end());
    v.push_back("--");
    v.insert(v.end(), job.begin(), job.end());
    return v;
  }
  // Runs cronrun; `took` is how long it ran.
  Ran run_timed(const std::vector<std::string>& argv, std::chrono::duration<double>& took) {
    auto t0 = std::chrono::steady_clock::now();
    Ran r = run(argv, 60s);
    took = std::chrono::steady_clock::now() - t0;
    return r;
  }
  // A job that ends once the server has received `n` start pings (attempts
  // included): waiting for the event, not for a guess at the retries' timing.
  std::vector<std::string> until_start_attempts(int n) const {
    return {"/bin/sh", "-c",
            "i=0; while [ \"$(cat \"$0\" 2>/dev/null | grep -c '/start\"')\" -lt " + std::to_string(n) +
                " ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
            requests_file()};
  }
  std::string lock() const { return (dir_ / "job.pid").string(); }
  std::string summary() const { return (dir_ / "summary.json").string(); }
  std::string requests_file() const { return (dir_ / "requests.jsonl").string(); }
  json record() const { return read_json(summary()); }
  // Every request the server received, in arrival order.
  std::vector<json> requests() const {
    std::vector<json> out;
    std::ifstream f(requests_file());
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  fs::path dir_;
  pid_t server_ = -1;
  int port_ = 0;
};

TEST_F(Ping, StartAndSuccessPingsReachTheServerWithTheRunIdAndTheOutputTail) {
  std::string url = serve("ok");
  auto r = run(cmd({"--ping", url}, {"/bin/sh", "-c", "echo first-line; echo last-line-of-output"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json rec = record();
  std::string rid = rec["run_id"];
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0]["method"], "POST");
  EXPECT_EQ(reqs[0]["path"], "/ping/" + kUuid + "/start");
  EXPECT_EQ(reqs[0]["query"], "rid=" + rid);
  EXPECT_EQ(reqs[1]["method"], "POST");
  EXPECT_EQ(reqs[1]["path"], "/ping/" + kUuid);
  EXPECT_EQ(reqs[1]["query"], "rid=" + rid);
  // The body: the FINISH line, then the job's output (passthrough still copies it).
  std::string body = reqs[1]["body"];
  EXPECT_NE(body.find(rid), std::string::npos) << body;
  EXPECT_NE(body.find("first-line\nlast-line-of-output\n"), std::string::npos) << body;
  EXPECT_NE(r.out.find("last-line-of-output"), std::string::npos) << r.out;
  EXPECT_EQ(reqs[1]["content_type"], "text/plain; charset=utf-8");
  EXPECT_EQ(std::string(reqs[1]["user_agent"]).rfind("cronrun/", 0), 0u);

  const json& p = rec["pings"];
  EXPECT_EQ(p["url_host"], "127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(p["sent"], 2);
  EXPECT_EQ(p["failed"], 0);
  ASSERT_EQ(p["pings"].size(), 2u);
  EXPECT_EQ(p["pings"][0]["kind"], "start");
  EXPECT_EQ(p["pings"][0]["http_status"], 200);
  EXPECT_EQ(p["pings"][0]["attempts"], 1);
  EXPECT_EQ(p["pings"][1]["kind"], "success");
  EXPECT_EQ(p["pings"][1]["endpoint"], "");
  EXPECT_TRUE(p["pings"][1]["error"].is_null());
  // The check's secret is in neither the record nor cronrun's messages.
  EXPECT_EQ(read_text(summary()).find(kUuid), std::string::npos);
  EXPECT_EQ(r.err.find(kUuid), std::string::npos) << r.err;
}

TEST_F(Ping, FailingJobSendsItsExitCodeAndKeepsIt) {
  std::string url = serve("ok");
  auto r = run(cmd({"--ping", url, "--output", "on-failure"}, {"/bin/sh", "-c", "echo went-wrong >&2; exit 3"}));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1]["path"], "/ping/" + kUuid + "/3");
  EXPECT_NE(std::string(reqs[1]["body"]).find("went-wrong"), std::string::npos) << reqs[1]["body"];
  json rec = record();
  EXPECT_EQ(rec["pings"]["pings"][1]["kind"], "failure");
  EXPECT_EQ(rec["pings"]["pings"][1]["endpoint"], "/3");
  EXPECT_EQ(rec["pings"]["sent"], 2);
}

TEST_F(Ping, UrlWithATrailingSlashAndAQueryKeepsBoth) {
  std::string url = serve("ok") + "/?create=1";
  auto r = run(cmd({"--ping", url}, {"/bin/true"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  std::string rid = record()["run_id"];
  EXPECT_EQ(reqs[0]["path"], "/ping/" + kUuid + "/start");
  EXPECT_EQ(reqs[0]["query"], "create=1&rid=" + rid);
  EXPECT_EQ(reqs[1]["path"], "/ping/" + kUuid);
}

TEST_F(Ping, ServerDownLeavesTheExitStatusAndRecordsTheFailure) {
  std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/ping/" + kUuid;
  std::chrono::duration<double> took{};
  auto r = run_timed(cmd({"--ping", url}, {"/bin/sh", "-c", "sleep 4; exit 7"}), took);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_LT(took, kRunBound);
  json rec = record();
  EXPECT_EQ(rec["status"], "failed");
  const json& p = rec["pings"];
  EXPECT_EQ(p["sent"], 0);
  EXPECT_EQ(p["failed"], 2);
  for (const json& one : p["pings"]) {
    EXPECT_FALSE(one["delivered"]);
    EXPECT_EQ(one["attempts"], 3) << one;  // retried: a refused connection may be a restart
    EXPECT_TRUE(one["http_status"].is_null());
    EXPECT_NE(std::string(one["error"]).find("onnect"), std::string::npos) << one;
  }
  EXPECT_EQ(p["pings"][1]["endpoint"], "/7");
  // One warning line names the host, never the secret.
  EXPECT_NE(r.err.find("--ping 127.0.0.1:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(kUuid), std::string::npos) << r.err;
}

TEST_F(Ping, HangingServerHoldsNeitherTheJobNorTheRunBeyondTheBound) {
  std::string url = serve("hang");
  std::chrono::duration<double> took{};
  auto r = run_timed(cmd({"--ping", url}, {"/bin/sh", "-c", "exit 0"}), took);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(took, kRunBound);
  json rec = record();
  EXPECT_EQ(rec["status"], "ok");
  // The start ping hangs on its own thread: the job did not wait for it.
  EXPECT_LT(rec["start_delay_s"].get<double>(), 2.0);
  const json& p = rec["pings"];
  ASSERT_EQ(p["pings"].size(), 2u);
  EXPECT_EQ(p["pings"][0]["kind"], "start");
  EXPECT_NE(std::string(p["pings"][0]["error"]).find("cancelled"), std::string::npos) << p;
  EXPECT_EQ(p["pings"][1]["kind"], "success");
  EXPECT_NE(std::string(p["pings"][1]["error"]).find("imed out"), std::string::npos) << p;
  EXPECT_EQ(p["failed"], 2);
  // The server saw the start, and the finish only after it (never a start last).
  auto reqs = requests();
  ASSERT_GE(reqs.size(), 2u);
  EXPECT_EQ(reqs.front()["path"], "/ping/" + kUuid + "/start");
  for (size_t i = 1; i < reqs.size(); ++i) EXPECT_EQ(reqs[i]["path"], "/ping/" + kUuid);
}

TEST_F(Ping, ServerErrorsAreRetriedUntilOneIsDelivered) {
  std::string url = serve("fail-first:2");
  // The job lasts until the server has the third start attempt (whose answer the
  // start grace waits for), so none of them is cancelled, however slow the host.
  auto r = run(cmd({"--ping", url}, until_start_attempts(3)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reqs[i]["path"], "/ping/" + kUuid + "/start") << i;
  EXPECT_EQ(reqs[0]["query"], reqs[2]["query"]);
  EXPECT_EQ(reqs[3]["path"], "/ping/" + kUuid);
  json rec = record();
  const json& p = rec["pings"];
  EXPECT_EQ(p["pings"][0]["attempts"], 3);
  EXPECT_EQ(p["pings"][0]["http_status"], 200);
  EXPECT_TRUE(p["pings"][0]["delivered"]);
  EXPECT_EQ(p["sent"], 2);
  EXPECT_EQ(r.err.find("not delivered"), std::string::npos) << r.err;
}

TEST_F(Ping, NotFoundIsNotRetriedAndClosedConnectionsAre) {
  std::string url = serve("status:404");
  auto r = run(cmd({"--ping", url}, {"/bin/sh", "-c", "sleep 1"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(requests().size(), 2u);  // a wrong check does not become right by asking again
  EXPECT_EQ(record()["pings"]["pings"][1]["http_status"], 404);
  EXPECT_EQ(record()["pings"]["failed"], 2);

  stop_server();
  fs::remove(requests_file());
  fs::remove(dir_ / "port");
  url = serve("close");
  r = run(cmd({"--ping", url}, until_start_attempts(3)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(requests().size(), 6u);  // three attempts each
  EXPECT_EQ(record()["pings"]["pings"][1]["attempts"], 3);
}

TEST_F(Ping, LockSkipIsLoggedToTheCheckWithoutAStart) {
  std::string url = serve("ok");
  pid_t holder = start({kCronrun, "--no-history", "--cgroup", "off", "--lock", lock(), "--", "/bin/sleep", "10"},
                       (dir_ / "holder.out").string());
  for (int i = 0; i < 500 && read_text(lock()) != std::to_string(holder) + "\n"; ++i)
    std::this_thread::sleep_for(10ms);
  auto r = run(cmd({"--ping", url}, {"/bin/true"}));
  kill(holder, SIGTERM);
  wait_exit(holder);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(record()["status"], "skipped");
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["path"], "/ping/" + kUuid + "/log");
  EXPECT_NE(std::string(reqs[0]["body"]).find("skipped"), std::string::npos) << reqs[0]["body"];

  // --on-locked fail exits 75, and the check hears a failure.
  fs::remove(requests_file());
  holder = start({kCronrun, "--no-history", "--cgroup", "off", "--lock", lock(), "--", "/bin/sleep", "10"},
                 (dir_ / "holder.out").string());
  // The first holder's pid may still be in the file: wait for this holder's.
  for (int i = 0; i < 500 && read_text(lock()) != std::to_string(holder) + "\n"; ++i)
    std::this_thread::sleep_for(10ms);
  r = run(cmd({"--ping", url, "--on-locked", "fail"}, {"/bin/true"}));
  kill(holder, SIGTERM);
  wait_exit(holder);
  EXPECT_EQ(r.exit_code, 75) << r.err;
  reqs = requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["path"], "/ping/" + kUuid + "/75");
}

TEST_F(Ping, ConfigFileKeySetsThePing) {
  std::string url = serve("ok");
  std::string config = (dir_ / "job.json").string();
  std::ofstream(config) << json{{"ping", url}}.dump();
  auto r = run(cmd({"--config", config}, {"/bin/true"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(requests().size(), 2u);
}

TEST_F(Ping, BadUrlIsAUsageErrorThatNamesTheFlagAndCreatesNothing) {
  for (std::string bad : {"ftp://hc-ping.com/" + kUuid, "hc-ping.com/" + kUuid, "https:///" + kUuid,
                          "https://hc-ping.com:0/" + kUuid, "https://hc ping.com/" + kUuid}) {
    auto r = run(cmd({"--ping", bad}, {"/bin/true"}));
    EXPECT_EQ(r.exit_code, 125) << bad;
    EXPECT_EQ(r.err.rfind("cronrun: --ping: expected an http:// or https:// URL", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.find(kUuid), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(summary()));
    EXPECT_FALSE(fs::exists(lock()));
  }
}

}  // namespace

namespace {

// libcurl and what it pulls in are opened only by runs that ping: a run without
// --ping maps none of it (the job looks at its supervisor's maps).
TEST_F(Ping, RunWithoutPingDoesNotLoadLibcurl) {
  auto r = run(cmd({}, {"/bin/sh", "-c", "grep -c libcurl /proc/$PPID/maps; true"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0\n");
  std::string url = serve("ok");
  r = run(cmd({"--ping", url}, {"/bin/sh", "-c", "sleep 1; grep -c libcurl /proc/$PPID/maps; true"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out, "0\n");  // the same check sees it when the run pings
}

}  // namespace
