// Fleet mode's configuration (runner/fleet_config.h): fleet.json's parse, defaults
// and errors, its safe lookup and open, the groups (switchman's format, nesting,
// cycles, membership), the grace check, --tick's forms and normalization, the
// run record's `fleet` field through JSON and the journal payload, and the fleet
// options' usage errors (the real binary: exit 125, one line naming the flag,
// nothing created).
#include <fcntl.h>
#include <pthread.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/journal.h"
#include "common/run_record.h"
#include "runner/cli.h"
#include "runner/dry_run.h"
#include "runner/fleet_config.h"
#include "runner/job_spec.h"

using namespace cronrun;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string msg(const Error& e) { return e.message(); }

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos; }

class FleetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cronrun-fleetconf-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    ::chmod(dir_.c_str(), 0755);
    std::string d = dir_.string();
    fs::create_directories(dir_ / "config/cronrun");
    user_ = Invoker::of(65534, (d + "/run").c_str(), (d + "/state").c_str(), (d + "/config").c_str(), d.c_str());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }

  Result<ParsedArgs> args(std::vector<std::string> words) {
    words.insert(words.begin(), "cronrun");
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    return parse_args(static_cast<int>(argv.size()), argv.data(), 8, user_);
  }

  fs::path dir_;
  Invoker user_;
};

constexpr const char* kMinimal = R"({"etcd": ["http://127.0.0.1:23791"], "host": "box1"})";

}  // namespace

// ---- fleet.json: parse, defaults, errors ----

TEST(FleetConfigParse, DefaultsAndEveryKeyWithComments) {
  auto c = fleet::parse_config(R"({"etcd": ["http://10.0.0.5:2379"]})", "f.json");
  ASSERT_TRUE(c) << msg(c.error());
  EXPECT_EQ(c->etcd, std::vector<std::string>{"http://10.0.0.5:2379"});
  EXPECT_EQ(c->prefix, "/cronrun");
  EXPECT_EQ(c->lease_ttl, 30s);
  EXPECT_FALSE(c->history);
  EXPECT_FALSE(c->host_in_file);
  EXPECT_EQ(c->unavailable, fleet::Unavailable::skip);
  EXPECT_EQ(c->path, "f.json");

  auto full = fleet::parse_config(R"(// the fleet
{
  "etcd": ["http://127.0.0.1:23791", "https://[::1]:23792/", "http://etcd-3.example.com:2379"],
  "prefix": "/t/x-1",  // per test
  "lease_ttl": "6s",
  "history": "postgresql://cronrun@127.0.0.1:25432/cronrun",
  "host": "box2.example.com",
  "unavailable": "run"
})",
                                   "f.json");
  ASSERT_TRUE(full) << msg(full.error());
  EXPECT_EQ(full->etcd, (std::vector<std::string>{"http://127.0.0.1:23791", "https://[::1]:23792",
                                                  "http://etcd-3.example.com:2379"}));
  EXPECT_EQ(full->prefix, "/t/x-1");
  EXPECT_EQ(full->lease_ttl, 6s);
  EXPECT_EQ(*full->history, "postgresql://cronrun@127.0.0.1:25432/cronrun");
  EXPECT_EQ(*full->host_in_file, "box2.example.com");
  EXPECT_EQ(full->unavailable, fleet::Unavailable::run);

  // A number is seconds.
  auto n = fleet::parse_config(R"({"etcd": ["http://h:1"], "lease_ttl": 9})", "f.json");
  ASSERT_TRUE(n) << msg(n.error());
  EXPECT_EQ(n->lease_ttl, 9s);

  auto tls = fleet::parse_config(R"({"etcd": ["https://e1:2379", "https://e2:2379"], "etcd_ca": "/etc/cronrun/ca.pem",
                                     "etcd_cert": "/etc/cronrun/c.pem", "etcd_key": "/etc/cronrun/c.key"})",
                                 "f.json");
  ASSERT_TRUE(tls) << msg(tls.error());
  EXPECT_EQ(*tls->etcd_ca, "/etc/cronrun/ca.pem");
  EXPECT_EQ(*tls->etcd_cert, "/etc/cronrun/c.pem");
  EXPECT_EQ(*tls->etcd_key, "/etc/cronrun/c.key");
  EXPECT_TRUE(tls->tls.empty());  // read by load_config, not by the parser
}

TEST(FleetConfigParse, BadKeysAndValuesAreOneLineNamingFileAndKey) {
  struct Case {
    const char* text;
    const char* key;
    const char* says;
  } cases[] = {
      {R"({"etcd": ["http://h:1"], "lease-ttl": "5s"})", "lease-ttl", "unknown key 'lease-ttl'"},
      {R"({"prefix": "/x"})", "etcd", "required"},
      {R"({"etcd": []})", "etcd", "non-empty list"},
      {R"({"etcd": "http://h:2379"})", "etcd", "list of endpoints"},
      {R"({"etcd": ["h:2379"]})", "etcd", "scheme must be http or https"},
      {R"({"etcd": ["ftp://h:2379"]})", "etcd", "scheme must be http or https"},
      {R"({"etcd": ["http://h"]})", "etcd", "port is required"},
      {R"({"etcd": ["http://h:0"]})", "etcd", "1-65535"},
      {R"({"etcd": ["http://h:99999"]})", "etcd", "1-65535"},
      {R"({"etcd": ["http://h:2379/v3"]})", "etcd", "no user, path or query"},
      {R"({"etcd": ["http://u:p@h:2379"]})", "etcd", "no user, path or query"},
      {R"({"etcd": ["http://::1:2379"]})", "etcd", "[ADDR]:PORT"},
      {R"({"etcd": [5]})", "etcd", "endpoint strings"},
      {R"({"etcd": ["http://h:1"], "lease_ttl": "2s"})", "lease_ttl", "at least 3s"},
      {R"({"etcd": ["http://h:1"], "lease_ttl": "1500ms"})", "lease_ttl", "whole seconds"},
      {R"({"etcd": ["http://h:1"], "lease_ttl": "soon"})", "lease_ttl", "not a duration"},
      {R"({"etcd": ["http://h:1"], "lease_ttl": -5})", "lease_ttl", "whole seconds"},
      {R"({"etcd": ["http://h:1"], "lease_ttl": 2.5})", "lease_ttl", "whole seconds"},
      {R"({"etcd": ["http://h:1"], "unavailable": "maybe"})", "unavailable", "expected skip|run, got 'maybe'"},
      {R"({"etcd": ["http://h:1"], "prefix": "cronrun"})", "prefix", "starts with /"},
      {R"({"etcd": ["http://h:1"], "prefix": "/cronrun/"})", "prefix", "no trailing /"},
      {R"({"etcd": ["http://h:1"], "prefix": "/"})", "prefix", "like /cronrun"},
      {R"({"etcd": ["http://h:1"], "history": "mysql://x"})", "history", "PostgreSQL URI"},
      {R"({"etcd": ["http://h:1"], "history": 5})", "history", "expected a string"},
      {R"({"etcd": ["http://h:1"], "host": "box_1"})", "host", "host name"},
      {R"({"etcd": ["http://h:1"], "host": "-box"})", "host", "host name"},
      // fuzz_fleet_config: a value with a control character was echoed as it was,
      // one error on several lines. Shown with '?' for the character.
      {R"({"etcd": ["http://h\n:1"]})", "etcd", "got 'http://h?:1'"},
      {R"({"etcd": ["http://h:1"], "host": "a\nb"})", "host", "got 'a?b'"},
      {R"({"etcd": ["http://h:1"], "unavailable": "x\ny"})", "unavailable", "got 'x?y'"},
      {R"({"etcd": ["http://h:1"], "prefix": "/a\nb"})", "prefix", "got '/a?b'"},
      {R"({"etcd": ["http://h:1"], "lease_ttl": "5\ns"})", "lease_ttl", "got '5?s'"},
      {R"({"etcd": ["http://h:1"], "k\ny": 1})", "k?y", "unknown key"},
      {R"({"etcd": ["https://h:1"], "etcd_ca": "ca.pem"})", "etcd_ca", "expected an absolute path to a PEM file"},
      {R"({"etcd": ["https://h:1"], "etcd_ca": 3})", "etcd_ca", "expected a string"},
      {R"({"etcd": ["https://h:1"], "etcd_cert": "/c.pem"})", "etcd_cert", "etcd_cert and etcd_key go together"},
      {R"({"etcd": ["https://h:1"], "etcd_key": "/c.key"})", "etcd_key", "etcd_cert and etcd_key go together"},
      {R"({"etcd": ["https://h:1", "http://h:2"], "etcd_ca": "/ca.pem"})", "etcd_ca",
       "TLS files are for https:// endpoints, and 'http://h:2' is not one"},
  };
  // nlohmann quotes the byte it stopped at, DEL as it is
  // (tests/fixtures/fuzz/fleet_config/crash-del-in-json-error.json).
  for (std::string text : {std::string("\x7f{}"), std::string("{\"groups\": \x7f}")}) {
    auto r = fleet::parse_config(text, "f.json");
    ASSERT_FALSE(r);
    EXPECT_EQ(msg(r.error()).find('\x7f'), std::string::npos) << msg(r.error());
    auto g = fleet::Groups::parse(text, "etcd /cronrun/config");
    ASSERT_FALSE(g);
    EXPECT_EQ(msg(g.error()).find('\x7f'), std::string::npos) << msg(g.error());
  }
  for (const Case& c : cases) {
    auto r = fleet::parse_config(c.text, "/etc/cronrun/fleet.json");
    ASSERT_FALSE(r) << c.text;
    std::string m = msg(r.error());
    EXPECT_NE(m.find("fleet config /etc/cronrun/fleet.json"), std::string::npos) << m;
    EXPECT_NE(m.find(std::string("'") + c.key + "'"), std::string::npos) << c.text << ": " << m;
    EXPECT_NE(m.find(c.says), std::string::npos) << c.text << ": " << m;
    EXPECT_TRUE(one_line(m)) << m;
  }
  // The history URI may hold a password: an error never echoes it.
  auto secret = fleet::parse_config(R"({"etcd": ["http://h:1"], "history": "postgresq://u:hunter2@db/x"})", "f");
  ASSERT_FALSE(secret);
  EXPECT_EQ(msg(secret.error()).find("hunter2"), std::string::npos) << msg(secret.error());

  // Nor does a syntax error next to it (nlohmann quotes the token it last read,
  // the URI with its password, or a password cut at a control character), nor an
  // endpoint refused for carrying a user and password.
  for (const char* text : {"{\"etcd\": [\"http://h:1\"], \"history\": \"postgresql://u:hunter2@db/x\"h}",
                           "{\"etcd\": [\"http://h:1\"], \"history\": \"postgresql://u:hunter2\tx@db/x\"}",
                           "{\"etcd\": [\"http://root:hunter2@h:2379\"]}"}) {
    auto r = fleet::parse_config(text, "f");
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(msg(r.error()).find("hunter2"), std::string::npos) << msg(r.error());
    EXPECT_TRUE(one_line(msg(r.error()))) << msg(r.error());
  }

  auto json = fleet::parse_config("{\"etcd\": [\n\"http://h:1\",,]}", "f.json");
  ASSERT_FALSE(json);
  EXPECT_NE(msg(json.error()).find("fleet config f.json: line 2: invalid JSON"), std::string::npos) << msg(json.error());
  EXPECT_FALSE(fleet::parse_config("[1]", "f.json"));
}

// ---- the lookup and the safe open ----

TEST_F(FleetFiles, DefaultPathIsRootsOrTheUsersXdgConfig) {
  Invoker root = Invoker::of(0, nullptr, nullptr, nullptr, "/root");
  EXPECT_EQ(fleet::default_config_path(root), "/etc/cronrun/fleet.json");
  EXPECT_EQ(fleet::default_config_path(user_), (dir_ / "config/cronrun/fleet.json").string());
  Invoker no_xdg = Invoker::of(65534, nullptr, nullptr, nullptr, "/home/u");
  EXPECT_EQ(fleet::default_config_path(no_xdg), "/home/u/.config/cronrun/fleet.json");

  // Found there without --fleet-config.
  write("config/cronrun/fleet.json", kMinimal);
  auto c = fleet::load_config(std::nullopt, std::nullopt, user_);
  ASSERT_TRUE(c) << msg(c.error());
  EXPECT_EQ(c->path, (dir_ / "config/cronrun/fleet.json").string());
  EXPECT_EQ(c->host, "box1");
  EXPECT_EQ(c->host_from, "fleet config");
}

TEST_F(FleetFiles, MissingFilesAreNamed) {
  auto none = fleet::load_config(std::nullopt, std::nullopt, user_);
  ASSERT_FALSE(none);
  EXPECT_NE(msg(none.error()).find((dir_ / "config/cronrun/fleet.json").string() + ": not found"), std::string::npos)
      << msg(none.error());
  EXPECT_NE(msg(none.error()).find("--fleet-config"), std::string::npos) << msg(none.error());
  auto explicit_missing = fleet::load_config((dir_ / "nope/fleet.json").string(), std::nullopt, user_);
  ASSERT_FALSE(explicit_missing);
  EXPECT_NE(msg(explicit_missing.error()).find("nope/fleet.json: not found"), std::string::npos)
      << msg(explicit_missing.error());
}

TEST_F(FleetFiles, HostIsTheFlagThenTheFileThenTheFqdn) {
  std::string with_host = write("with.json", kMinimal);
  auto flag = fleet::load_config(with_host, "box9", user_);
  ASSERT_TRUE(flag) << msg(flag.error());
  EXPECT_EQ(flag->host, "box9");
  EXPECT_EQ(flag->host_from, "--host");

  std::string without = write("without.json", R"({"etcd": ["http://127.0.0.1:23791"]})");
  auto fq = fleet::load_config(without, std::nullopt, user_);
  ASSERT_TRUE(fq) << msg(fq.error());
  auto expected = fleet::fqdn();
  ASSERT_TRUE(expected);
  EXPECT_EQ(fq->host, expected->name);
  char short_name[256] = {};
  ASSERT_EQ(::gethostname(short_name, sizeof short_name - 1), 0);
  EXPECT_EQ(fq->host.substr(0, std::string(short_name).size()), short_name);
  // Not an FQDN: said, never silent.
  EXPECT_EQ(fq->note.has_value(), fq->host.find('.') == std::string::npos) << fq->host;
  EXPECT_EQ(fq->host_from, fq->note ? "hostname" : "FQDN");
}

TEST_F(FleetFiles, OnlyARegularFileReadBoundedAndNeverThroughASymlink) {
  std::string real = write("real.json", kMinimal);
  fs::create_symlink(real, dir_ / "link.json");
  auto link = fleet::load_config((dir_ / "link.json").string(), std::nullopt, user_);
  ASSERT_FALSE(link);
  EXPECT_NE(msg(link.error()).find("symlink"), std::string::npos) << msg(link.error());

  ASSERT_EQ(::mkfifo((dir_ / "fifo.json").c_str(), 0644), 0);
  auto fifo = fleet::load_config((dir_ / "fifo.json").string(), std::nullopt, user_);  // must not block
  ASSERT_FALSE(fifo);
  EXPECT_NE(msg(fifo.error()).find("FIFO"), std::string::npos) << msg(fifo.error());

  std::string big = write("big.json", "{\"etcd\": [\"http://h:1\"]}" + std::string(fleet::kMaxConfigBytes, ' '));
  auto large = fleet::load_config(big, std::nullopt, user_);
  ASSERT_FALSE(large);
  EXPECT_NE(msg(large.error()).find("cap"), std::string::npos) << msg(large.error());

  // A directory others can write (not sticky) on the way is refused.
  fs::create_directories(dir_ / "open");
  ::chmod((dir_ / "open").c_str(), 0777);
  std::string in_open = write("open/fleet.json", kMinimal);
  auto open = fleet::load_config(in_open, std::nullopt, user_);
  ASSERT_FALSE(open);
  EXPECT_NE(msg(open.error()).find("writable by group or others"), std::string::npos) << msg(open.error());
  for (const auto& e : {link.error(), fifo.error(), large.error(), open.error()}) EXPECT_TRUE(one_line(msg(e)));
}

// The history URI's password must not be readable by every user of the host:
// with one in it, the file must be readable by its owner alone.
TEST_F(FleetFiles, APasswordInTheHistoryUriIsRefusedInAFileOthersCanRead) {
  const std::string text =
      R"({"etcd": ["http://127.0.0.1:23791"], "host": "box1", "history": "postgresql://fwd:hunter2@db/cronrun"})";
  for (mode_t mode : {0644, 0640}) {
    auto r = fleet::load_config(write("pw.json", text, mode), std::nullopt, user_);
    ASSERT_FALSE(r) << mode;
    std::string m = msg(r.error());
    EXPECT_NE(m.find("pw.json: key 'history': the URI carries a password"), std::string::npos) << m;
    EXPECT_NE(m.find(".pgpass"), std::string::npos) << m;
    EXPECT_EQ(m.find("hunter2"), std::string::npos) << m;
    EXPECT_TRUE(one_line(m)) << m;
  }
  EXPECT_TRUE(fleet::load_config(write("pw.json", text, 0600), std::nullopt, user_));
  // Without a password (it is in ~/.pgpass) the file may be world-readable.
  EXPECT_TRUE(fleet::load_config(
      write("nopw.json", R"({"etcd": ["http://127.0.0.1:23791"], "host": "box1", "history": "postgresql://fwd@db/x"})"),
      std::nullopt, user_));
}

TEST_F(FleetFiles, RootRefusesAFileOthersCouldChange) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (the check is root's)";
  std::string group_writable = write("gw.json", kMinimal, 0664);
  auto gw = fleet::load_config(group_writable, std::nullopt, user_);
  ASSERT_FALSE(gw);
  EXPECT_NE(msg(gw.error()).find("writable by group or others (mode 0664)"), std::string::npos) << msg(gw.error());

  std::string theirs = write("theirs.json", kMinimal, 0644);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  auto owned = fleet::load_config(theirs, std::nullopt, user_);
  ASSERT_FALSE(owned);
  EXPECT_NE(msg(owned.error()).find("owned by uid 65534"), std::string::npos) << msg(owned.error());

  std::string fine = write("fine.json", kMinimal, 0644);
  EXPECT_TRUE(fleet::load_config(fine, std::nullopt, user_));
}

// ---- groups ----

TEST(FleetGroups, SwitchmansFormatWithNesting) {
  auto g = fleet::Groups::parse(R"({"groups": {"scripts1": "box1", "scripts3": ["box1", "box2"],
                                               "all": ["scripts1", "box3", "scripts3"]}, "other": 1})",
                                "etcd /cronrun/config");
  ASSERT_TRUE(g) << msg(g.error());
  EXPECT_EQ(*g->hosts("scripts1"), std::vector<std::string>{"box1"});
  EXPECT_EQ(*g->hosts("scripts3"), (std::vector<std::string>{"box1", "box2"}));
  // Nested, and box1 reached twice (through two groups) is neither a cycle nor a duplicate.
  EXPECT_EQ(*g->hosts("all"), (std::vector<std::string>{"box1", "box2", "box3"}));
  EXPECT_TRUE(*g->contains("all", "box2"));
  EXPECT_TRUE(*g->contains("all", "BOX2")) << "host names are case-insensitive";
  EXPECT_FALSE(*g->contains("scripts1", "box2"));
  EXPECT_TRUE(g->check_cycles());

  auto unknown = g->contains("nightly", "box1");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(msg(unknown.error()), "group nightly not in the fleet config (etcd /cronrun/config)");

  auto empty = fleet::Groups::parse(R"({"groups": {"none": []}})", "x");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty->contains("none", "box1"));
}

TEST(FleetGroups, ACycleIsAnErrorNamingIt) {
  auto g = fleet::Groups::parse(
      R"({"groups": {"a": ["b", "box1"], "b": ["c"], "c": ["a"], "fine": ["box2"], "self": ["self"]}})", "etcd /p/config");
  ASSERT_TRUE(g) << msg(g.error());
  auto r = g->contains("a", "box1");
  ASSERT_FALSE(r);
  EXPECT_EQ(msg(r.error()), "groups form a cycle: a -> b -> c -> a (etcd /p/config)");
  auto from_b = g->hosts("b");
  ASSERT_FALSE(from_b);
  EXPECT_NE(msg(from_b.error()).find("b -> c -> a -> b"), std::string::npos) << msg(from_b.error());
  EXPECT_EQ(msg(g->hosts("self").error()), "groups form a cycle: self -> self (etcd /p/config)");
  // A group off the cycle still resolves; the whole-config check finds the cycle.
  EXPECT_TRUE(*g->contains("fine", "box2"));
  EXPECT_FALSE(g->check_cycles());
}

TEST(FleetGroups, BadDocumentsAreRefused) {
  for (const char* text : {R"([])", R"({"group": {"a": "b"}})", R"({"groups": ["a"]})", R"({"groups": {"a": 5}})",
                           R"({"groups": {"a": ["b", 5]}})", R"({"groups": {"a": [""]}})", "{\"groups\": {"}) {
    auto g = fleet::Groups::parse(text, "etcd /cronrun/config");
    ASSERT_FALSE(g) << text;
    EXPECT_NE(msg(g.error()).find("groups config (etcd /cronrun/config)"), std::string::npos) << msg(g.error());
    EXPECT_TRUE(one_line(msg(g.error())));
  }
}

// fuzz_fleet_config: the groups document comes from etcd, where anyone with etcd
// access writes it, and every runner of the fleet expands it before each run.
// Nesting was expanded by recursion, one stack frame per level, with a linear
// search of the path per group: a chain of groups as deep as an etcd value can
// hold (about 80,000 under the 1.5 MiB request limit) overflowed the runner's
// stack (SIGSEGV), and took quadratic time. A chain of any depth expands, and a
// cycle at its end is still named, on a line of readable length. The test runs
// in a thread with a small stack, so that a shorter chain (a faster test) already
// fails on a recursive expansion.
TEST(FleetGroups, ADeepChainOfGroupsExpandsWithoutRecursion) {
  constexpr int kDepth = 20000;
  std::string doc = R"({"groups": {)";
  for (int i = 0; i < kDepth; ++i) doc += "\"g" + std::to_string(i) + "\":\"g" + std::to_string(i + 1) + "\",";
  doc += "\"g" + std::to_string(kDepth) + "\": [\"box1\", \"box2\"]}}";
  std::string cyclic = doc;
  cyclic.replace(cyclic.rfind("[\"box1\", \"box2\"]"), 16, "\"g0\"");

  struct Out {
    const std::string* doc;
    const std::string* cyclic;
    std::optional<Result<std::vector<std::string>>> hosts, cycle;
    std::optional<Result<void>> check, check_cyclic;
  } out{&doc, &cyclic, {}, {}, {}, {}};
  auto body = [](void* arg) -> void* {
    auto* o = static_cast<Out*>(arg);
    auto g = fleet::Groups::parse(*o->doc, "etcd /cronrun/config");
    auto c = fleet::Groups::parse(*o->cyclic, "etcd /cronrun/config");
    if (!g || !c) return nullptr;
    o->hosts = g->hosts("g0");
    o->check = g->check_cycles();
    o->cycle = c->hosts("g0");
    o->check_cyclic = c->check_cycles();
    return nullptr;
  };
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 1 << 20), 0);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, body, &out), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  pthread_attr_destroy(&attr);

  ASSERT_TRUE(out.hosts && *out.hosts) << (out.hosts ? msg(out.hosts->error()) : "parse failed");
  EXPECT_EQ(**out.hosts, (std::vector<std::string>{"box1", "box2"}));
  EXPECT_TRUE(*out.check);
  ASSERT_TRUE(out.cycle && !*out.cycle);
  const std::string m = msg(out.cycle->error());
  EXPECT_TRUE(m.starts_with("groups form a cycle: g0 -> g1 -> ")) << m.substr(0, 200);
  EXPECT_TRUE(m.ends_with("-> g20000 -> g0 (etcd /cronrun/config)")) << m.substr(0, 200);
  EXPECT_LT(m.size(), 200u) << "a line of stderr, not the whole chain";
  EXPECT_FALSE(*out.check_cyclic);
}

// fuzz_fleet_config: a group name or member with a control character (JSON allows
// "\n" in a string) went into errors as it was, one error printed as several
// lines on stderr and in the record. Such a name can be no host: refused, shown
// with the character replaced.
TEST(FleetGroups, ControlCharactersInNamesAreRefusedOnOneLine) {
  for (const char* text : {R"({"groups": {"a\nFAKE LOG LINE": ["a\nFAKE LOG LINE"]}})",
                           R"({"groups": {"a": ["box1\r"]}})", R"({"groups": {"a": "\u0007"}})"}) {
    auto g = fleet::Groups::parse(text, "etcd /cronrun/config");
    ASSERT_FALSE(g) << text;
    EXPECT_TRUE(one_line(msg(g.error()))) << msg(g.error());
    EXPECT_NE(msg(g.error()).find("control character"), std::string::npos) << msg(g.error());
  }
}

TEST(FleetKeys, UnderThePrefix) {
  EXPECT_EQ(fleet::config_key("/cronrun"), "/cronrun/config");
  EXPECT_EQ(fleet::lock_key("/cronrun", "report"), "/cronrun/locks/report");
  EXPECT_EQ(fleet::runs_prefix("/cronrun", "report"), "/cronrun/runs/report/");
  EXPECT_EQ(fleet::tick_key("/cronrun", "report", "2026-12-06T12:00:00Z"), "/cronrun/runs/report/2026-12-06T12:00:00Z");
}

// ---- the grace check ----

TEST(FleetGrace, KillAfterPlusMarginPlusARenewalMustFitTheLease) {
  // The defaults fit: 10s + 1s + 10s < 30s.
  EXPECT_TRUE(fleet::grace_fits(10s, fleet::kDefaultLeaseTtl));
  EXPECT_TRUE(fleet::grace_fits(8999ms, 15s));   // 8.999 + 1 + 5 < 15
  EXPECT_FALSE(fleet::grace_fits(9s, 15s));      // 9 + 1 + 5 = 15: not under
  EXPECT_FALSE(fleet::grace_fits(10s, 15s));
  EXPECT_TRUE(fleet::grace_fits(0s, 3s));        // 0 + 1 + 1 < 3
  EXPECT_FALSE(fleet::grace_fits(1s, 3s));
  auto r = fleet::check_grace(10s, 15s, "/etc/cronrun/fleet.json");
  ASSERT_FALSE(r);
  std::string m = msg(r.error());
  EXPECT_NE(m.find("--kill-after 10"), std::string::npos) << m;
  EXPECT_NE(m.find("lease_ttl 15"), std::string::npos) << m;
  EXPECT_NE(m.find("/etc/cronrun/fleet.json"), std::string::npos) << m;
  EXPECT_NE(m.find("below 9"), std::string::npos) << m;
  EXPECT_TRUE(one_line(m));
  EXPECT_TRUE(fleet::check_grace(10s, 30s, "f"));
}

// ---- --tick ----

TEST(FleetTick, FormsAndNormalization) {
  const std::string t = "2026-12-06T12:00:00Z";
  for (const char* given : {"2026-12-06T12:00:00Z", "2026-12-06T12:00", "2026-12-06T12:00Z", "2026-12-06T12:00:00",
                            "2026-12-06T13:00:00+01:00", "2026-12-06T12:00:00.000Z", "2026-12-06t12:00:00z",
                            "1796558400"}) {
    auto secs = parse_tick(given);
    ASSERT_TRUE(secs) << given << ": " << msg(secs.error());
    EXPECT_EQ(*secs, 1796558400) << given;
    EXPECT_EQ(format_tick(*secs), t) << given;
    // The option's value is the normalized spelling.
    auto v = job_options::get(job_options::Id::tick).parse(given);
    ASSERT_TRUE(v);
    EXPECT_EQ(std::get<std::string>(*v), t) << given;
  }
  EXPECT_EQ(format_tick(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_tick(951868799), "2000-02-29T23:59:59Z");
  // The default: the start truncated to the minute.
  EXPECT_EQ(default_tick(1796558400 + 59), t);
  EXPECT_EQ(default_tick(1796558400), t);
  EXPECT_EQ(default_tick(1796558400 + 60), "2026-12-06T12:01:00Z");
  // Fixed width: ticks sort as text in time order (etcd keys).
  EXPECT_LT(format_tick(999999999), format_tick(1000000000));

  for (const char* bad : {"", "noon", "2026-12-06", "2026-12-06T12", "2026-13-06T12:00", "2026-12-06T12:00:00.5Z",
                          "12:00", "-60", "99999999999999999999", "2026-12-06T12:00+0100"}) {
    auto r = parse_tick(bad);
    EXPECT_FALSE(r) << bad << " parsed as " << (r ? format_tick(*r) : "");
    if (!r) {
      EXPECT_NE(msg(r.error()).find("expected a time like"), std::string::npos) << msg(r.error());
      EXPECT_NE(msg(r.error()).find(std::string("'") + bad + "'"), std::string::npos) << msg(r.error());
    }
  }
  EXPECT_NE(msg(parse_tick("2026-12-06T12:00:00.5Z").error()).find("whole seconds"), std::string::npos);
}

// ---- the run record's `fleet` ----

TEST(FleetRecord, RoundTripsThroughJsonAndTheJournalWithAndWithout) {
  RunRecord r;
  r.run_id = "0193f1c2-0000-7000-8000-000000000001";
  r.job = "report";
  r.started_at = "2026-12-06T12:00:00.123Z";
  r.status = RunStatus::skipped;

  // Without: null, and a reader of an older record (no key at all) reads none.
  nlohmann::json plain = to_json(r);
  ASSERT_TRUE(plain.contains("fleet"));
  EXPECT_TRUE(plain["fleet"].is_null());
  auto back = run_record_from_json(plain);
  ASSERT_TRUE(back) << msg(back.error());
  EXPECT_FALSE(back->fleet);
  plain.erase("fleet");
  ASSERT_TRUE(run_record_from_json(plain));
  EXPECT_FALSE(run_record_from_json(plain)->fleet);

  FleetRecord f;
  f.group = "scripts3";
  f.host = "box2";
  f.tick = "2026-12-06T12:00:00Z";
  f.holder = FleetHolder{"box1", 4711};
  f.lease_ttl_s = 30;
  f.note = "tick 2026-12-06T12:00:00Z of report already claimed by host box1 (revision 4711)";
  r.fleet = f;
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["fleet"], nlohmann::json::parse(R"j({"group": "scripts3", "host": "box2", "tick": "2026-12-06T12:00:00Z",
      "fence": null, "holder": {"host": "box1", "revision": 4711}, "lease_ttl_s": 30,
      "note": "tick 2026-12-06T12:00:00Z of report already claimed by host box1 (revision 4711)"})j"));
  auto again = run_record_from_json(j);
  ASSERT_TRUE(again) << msg(again.error());
  ASSERT_TRUE(again->fleet);
  EXPECT_EQ(to_json(*again), j);

  // A run that holds the lock: a fence, no holder; through the journal payload.
  r.status = RunStatus::ok;
  r.fleet->holder.reset();
  r.fleet->fence = 9007199254740993;  // above 2^53: kept exact
  r.fleet->note.reset();
  auto payload = journal::record_payload(r);
  ASSERT_TRUE(payload) << msg(payload.error());
  auto decoded = journal::decode_payload(*payload);
  ASSERT_TRUE(decoded) << msg(decoded.error());
  ASSERT_TRUE(decoded->fleet);
  EXPECT_EQ(*decoded->fleet->fence, 9007199254740993);
  EXPECT_FALSE(decoded->fleet->holder);
  EXPECT_EQ(*decoded->fleet->group, "scripts3");
  EXPECT_EQ(to_json(*decoded), to_json(r));

  // Wrong types are errors naming the key.
  nlohmann::json bad = j;
  bad["fleet"]["fence"] = "12";
  auto e = run_record_from_json(bad);
  ASSERT_FALSE(e);
  EXPECT_NE(msg(e.error()).find("'fleet.fence'"), std::string::npos) << msg(e.error());
  bad = j;
  bad["fleet"]["holder"] = "box1";
  EXPECT_FALSE(run_record_from_json(bad));
  bad = j;
  bad["fleet"] = 5;
  EXPECT_FALSE(run_record_from_json(bad));

  // Invalid UTF-8 in a fleet string is replaced, so the record is writable.
  r.fleet->note = std::string("bad \xff byte");
  EXPECT_EQ(make_valid_utf8(r), 1u);
  EXPECT_TRUE(is_valid_utf8(*r.fleet->note));
}

// ---- the options ----

TEST_F(FleetFiles, OptionsResolveIntoTheSpecAndTheFleetConfig) {
  std::string path = write("fleet.json", R"({"etcd": ["http://127.0.0.1:23791"], "lease_ttl": "15s", "host": "box1"})");
  auto r = args({"--group", "scripts1", "--fleet-config", path, "--host", "box7.example.com", "--tick",
                 "2026-12-06T12:00", "--on-revoke", "term", "--kill-after", "5s", "--", "true"});
  ASSERT_TRUE(r) << msg(r.error());
  const JobSpec& s = r->spec;
  EXPECT_TRUE(fleet_mode(s));
  EXPECT_EQ(*s.group, "scripts1");
  EXPECT_EQ(*s.fleet_config_path, path);
  EXPECT_EQ(*s.tick, "2026-12-06T12:00:00Z");
  EXPECT_EQ(s.on_revoke, OnRevoke::term);
  ASSERT_TRUE(s.fleet);
  EXPECT_EQ(s.fleet->host, "box7.example.com");
  EXPECT_EQ(s.fleet->lease_ttl, 15s);

  // The same keys in a job config; the command line wins.
  std::string job = write("job.json", R"({"group": "g1", "fleet-config": ")" + path +
                                          R"(", "host": "boxc", "on-revoke": "term", "kill-after": "1s"})");
  auto c = args({"-c", job, "--on-revoke", "finish", "--", "true"});
  ASSERT_TRUE(c) << msg(c.error());
  EXPECT_EQ(*c->spec.group, "g1");
  EXPECT_EQ(c->spec.fleet->host, "boxc");
  EXPECT_EQ(c->spec.on_revoke, OnRevoke::finish);
  EXPECT_FALSE(c->spec.tick) << "unset: the start's minute, decided at run time";

  // --flush runs no job: the default --kill-after need not fit a short lease.
  std::string short_ttl = write("short.json", R"({"etcd": ["http://127.0.0.1:23791"], "lease_ttl": "3s", "host": "b"})");
  auto flush = args({"--flush", "--fleet-config", short_ttl});
  ASSERT_TRUE(flush) << msg(flush.error());
  EXPECT_TRUE(flush->spec.flush);
  ASSERT_TRUE(flush->spec.fleet);
  EXPECT_EQ(flush->spec.fleet->lease_ttl, 3s);

  // Not in fleet mode: nothing is read, nothing is set.
  auto local = args({"--", "true"});
  ASSERT_TRUE(local);
  EXPECT_FALSE(fleet_mode(local->spec));
  EXPECT_FALSE(local->spec.fleet);
  auto dry = describe_dry_run(local->spec, {});
  EXPECT_TRUE(dry["fleet"].is_null());
  EXPECT_NE(format_dry_run_text(dry).find("fleet:            off"), std::string::npos) << format_dry_run_text(dry);
}

TEST_F(FleetFiles, OptionErrorsNameTheFlag) {
  std::string path = write("fleet.json", R"({"etcd": ["http://127.0.0.1:23791"], "lease_ttl": "15s", "host": "b"})");
  struct Case {
    std::vector<std::string> words;
    std::string says;
  } cases[] = {
      {{"--group", "bad/name", "--fleet-config", path}, "--group: expected a group name"},
      {{"--group", "..", "--fleet-config", path}, "--group: expected a group name"},
      {{"--fleet-config", path, "--host", "box_1"}, "--host: expected a host name"},
      {{"--fleet-config", path, "--host", std::string(254, 'a')}, "--host: expected a host name"},
      {{"--fleet-config", path, "--tick", "noon"}, "--tick: expected a time like"},
      {{"--fleet-config", path, "--on-revoke", "kill"}, "--on-revoke: expected finish|term, got 'kill'"},
      {{"--fleet-config", ""}, "--fleet-config: expected a fleet config file"},
      {{"--host", "box1"}, "--host: only in fleet mode"},
      {{"--tick", "1796558400"}, "--tick: only in fleet mode"},
      {{"--on-revoke", "term"}, "--on-revoke: only in fleet mode"},
      {{"--group", "g"}, "fleet config " + (dir_ / "config/cronrun/fleet.json").string() + ": not found"},
      {{"--fleet-config", path}, "--kill-after 10s does not fit lease_ttl 15s"},
      {{"--fleet-config", path, "--kill-after", "9s"}, "--kill-after 9s does not fit lease_ttl 15s"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> words = c.words;
    words.insert(words.end(), {"--", "true"});
    auto r = args(words);
    ASSERT_FALSE(r) << c.says;
    EXPECT_NE(msg(r.error()).find(c.says), std::string::npos) << msg(r.error());
    EXPECT_TRUE(one_line(msg(r.error())));
  }
  // --tick is command-line only: a fixed tick in a job config would skip every later run.
  JobSpec spec;
  auto key = parse_job_config(R"({"tick": "2026-12-06T12:00"})", "j.json", spec);
  ASSERT_FALSE(key);
  EXPECT_NE(msg(key.error()).find("unknown key 'tick'"), std::string::npos);
  auto bad_key = parse_job_config(R"({"on-revoke": "later"})", "j.json", spec);
  ASSERT_FALSE(bad_key);
  EXPECT_NE(msg(bad_key.error()).find("config j.json: key 'on-revoke': expected finish|term"), std::string::npos);
}

// The real binary: a usage error is exit 125, one line on stderr naming the flag,
// and nothing is recorded or locked for it.
TEST_F(FleetFiles, TheBinaryExits125WithOneLineAndCreatesNothing) {
  std::string path = write("fleet.json", R"({"etcd": ["http://127.0.0.1:1"], "lease_ttl": "15s", "host": "b"})");
  std::string history = (dir_ / "h/history.db").string();
  fs::create_directories(dir_ / "h");
  std::string lock = (dir_ / "h/job.pid").string();
  struct Case {
    std::vector<std::string> words;
    std::string says;
  } cases[] = {
      {{"--tick", "noon", "--fleet-config", path}, "cronrun: --tick: expected a time like"},
      {{"--group", "a b", "--fleet-config", path}, "cronrun: --group: expected a group name"},
      {{"--on-revoke", "x", "--fleet-config", path}, "cronrun: --on-revoke: expected finish|term"},
      {{"--host", "box1"}, "cronrun: --host: only in fleet mode"},
      {{"--fleet-config", path}, "cronrun: --kill-after 10s does not fit lease_ttl 15s of fleet config " + path},
      {{"--fleet-config", (dir_ / "missing.json").string()}, "cronrun: fleet config " + (dir_ / "missing.json").string() + ": not found"},
  };
  for (const Case& c : cases) {
    std::string err_path = (dir_ / "stderr").string();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      std::vector<std::string> words{CRONRUN_BIN, "--history", history, "--lock", lock};
      words.insert(words.end(), c.words.begin(), c.words.end());
      words.insert(words.end(), {"--", "touch", (dir_ / "ran").string()});
      std::vector<char*> argv;
      for (auto& w : words) argv.push_back(w.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 125) << c.says;
    std::ifstream in(err_path);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all.rfind(c.says, 0), 0u) << all;
    EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1) << all;
    EXPECT_FALSE(fs::exists(dir_ / "ran")) << c.says;
    EXPECT_FALSE(fs::exists(history)) << c.says;
    EXPECT_FALSE(fs::exists(history + ".journal")) << c.says;
    EXPECT_FALSE(fs::exists(lock)) << c.says;
  }
}

// ---- --dry-run ----

TEST_F(FleetFiles, DryRunShowsTheFleetWithoutContactingEtcd) {
  // An endpoint nobody listens on: --dry-run never contacts it.
  std::string path = write("fleet.json", R"({"etcd": ["http://127.0.0.1:1", "http://127.0.0.1:2"], "prefix": "/p",
      "lease_ttl": "30s", "history": "postgresql://cronrun:s3cret@db.example.com/cronrun", "host": "box1"})",
                           0600);  // a password in it: readable by its owner alone
  auto r = args({"--group", "scripts1", "--fleet-config", path, "--tick", "1796558400", "--on-revoke", "term",
                 "--name", "report", "--", "true"});
  ASSERT_TRUE(r) << msg(r.error());
  auto j = describe_dry_run(r->spec, {});
  const auto& f = j["fleet"];
  EXPECT_EQ(f["config"], path);
  EXPECT_EQ(f["etcd"], nlohmann::ordered_json::parse(R"(["http://127.0.0.1:1", "http://127.0.0.1:2"])"));
  EXPECT_EQ(f["prefix"], "/p");
  EXPECT_EQ(f["lease_ttl_s"], 30);
  EXPECT_EQ(f["host"], "box1");
  EXPECT_EQ(f["group"], "scripts1");
  EXPECT_EQ(f["tick"], "2026-12-06T12:00:00Z");
  EXPECT_EQ(f["on_revoke"], "term");
  EXPECT_EQ(f["unavailable"], "skip");
  EXPECT_EQ(f["keys"]["lock"], "/p/locks/report");
  EXPECT_EQ(f["keys"]["tick"], "/p/runs/report/2026-12-06T12:00:00Z");
  EXPECT_EQ(f["deadline"]["term_s_after_renewal"], 19.0);  // 30 - 10 - 1
  EXPECT_EQ(f["deadline"]["kill_s_after_renewal"], 29.0);
  EXPECT_EQ(f["history"], "postgresql://cronrun@db.example.com/cronrun");
  std::string text = format_dry_run_text(j);
  for (const std::string& want : {std::string("fleet-config:     ") + path, std::string("etcd:             http://127.0.0.1:1 http://127.0.0.1:2"),
                                  std::string("prefix:           /p"), std::string("lease-ttl:        30.0s (renewed every 10.0s; cut off from etcd: SIGTERM 19.0s, kill 29.0s"),
                                  std::string("host:             box1 (from fleet config)"),
                                  std::string("fleet:            group scripts1"),
                                  std::string("tick:             2026-12-06T12:00:00Z"),
                                  std::string("on-revoke:        term")})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
  EXPECT_EQ(j.dump().find("s3cret"), std::string::npos);

  // Without --tick: the default is said.
  auto no_tick = args({"--fleet-config", path, "--", "true"});
  ASSERT_TRUE(no_tick) << msg(no_tick.error());
  std::string t2 = format_dry_run_text(describe_dry_run(no_tick->spec, {}));
  EXPECT_NE(t2.find("tick:             the start time truncated to the minute"), std::string::npos) << t2;
  EXPECT_NE(t2.find("fleet:            on, no group"), std::string::npos) << t2;
}
