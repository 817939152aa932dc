// contrib/completions/_cronrun against the option table (common/job_options.cc),
// as completion_test.cc checks the bash one: zsh loads the file with compinit,
// a line is typed into it on a pseudo-terminal and TAB pressed
// (tests/package/zsh_complete.zsh), and the matches _arguments hands to compadd
// are read back. The tests walk the table, so an option added there without its
// zsh completion fails here: it is not offered, its value is taken for the job's
// command, or a value offered is one the option's parser refuses.
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "common/job_options.h"

namespace jo = cronrun::job_options;

namespace {

const std::string kSource = CRONRUN_SOURCE_DIR;

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Ran {
  int status;
  std::string out;
};

Ran run(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return {::pclose(p), out};
}

std::vector<std::string> lines(const std::string& out) {
  std::vector<std::string> v;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
    if (nl > start) v.push_back(out.substr(start, nl - start));
  return v;
}

class ZshCompletion : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run("command -v zsh >/dev/null").status, 0) << "zsh is missing: install it (scripts/install-deps.sh)";
    // An empty working directory: file-name completion offers nothing, so what
    // is offered comes from the completion's own lists.
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-zsh-completion-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // What zsh offers for a line whose last word is the one being completed.
  std::vector<std::string> complete(const std::vector<std::string>& words) {
    std::string cmd = "cd " + shell_quoted(dir_.string()) + " && zsh -f " +
                      shell_quoted(kSource + "/tests/package/zsh_complete.zsh") + " " +
                      shell_quoted(kSource + "/contrib/completions");
    for (const std::string& w : words) {
      cmd += ' ';  // appended apart: GCC 12 -O3 takes " " + string&& for an overlapping memcpy (-Wrestrict)
      cmd += shell_quoted(w);
    }
    Ran r = run(cmd + " 2>&1");
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << cmd << "\n" << r.out;
    return lines(r.out);
  }

  static bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  static bool any_long_option(const std::vector<std::string>& v) {
    return std::any_of(v.begin(), v.end(), [](const std::string& s) { return s.rfind("--", 0) == 0 && s != "--"; });
  }
  static std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& w : v) s += (s.empty() ? "" : " ") + w;
    return s;
  }

  std::filesystem::path dir_;
};

// The file is a compdef function zsh reads without an error, and compinit binds
// it to cronrun by its #compdef line.
TEST_F(ZshCompletion, LoadsAndIsBoundToCronrun) {
  std::string script = "fpath=(" + shell_quoted(kSource + "/contrib/completions") +
                       " $fpath); autoload -U compinit && compinit -u -D && autoload -U +X _cronrun && "
                       "print -r -- $_comps[cronrun] $_comps[cronprof]";
  Ran r = run("zsh -f -c " + shell_quoted(script) + " 2>&1");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.out;
  EXPECT_EQ(r.out, "_cronrun _cronprof\n");
  for (const char* f : {"_cronrun", "_cronprof"}) {
    Ran n = run("zsh -n " + shell_quoted(kSource + "/contrib/completions/" + f) + " 2>&1");
    EXPECT_TRUE(WIFEXITED(n.status) && WEXITSTATUS(n.status) == 0) << f << ": " << n.out;
  }
}

TEST_F(ZshCompletion, OffersEveryOptionTheRunnerAcceptsOnItsCommandLine) {
  auto offered = complete({"cronrun", "-"});
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable()) continue;
    EXPECT_TRUE(has(offered, o.flag())) << o.flag() << " is not offered by contrib/completions/_cronrun";
    if (o.short_name != '\0') {
      EXPECT_TRUE(has(offered, std::string("-") + o.short_name)) << "-" << o.short_name << " is not offered";
    }
  }
  EXPECT_TRUE(has(offered, "--")) << "the end of the options is offered too";
}

TEST_F(ZshCompletion, OffersNoOptionTheRunnerRefuses) {
  auto offered = complete({"cronrun", "-"});
  EXPECT_FALSE(offered.empty());
  for (const std::string& w : offered) {
    if (w == "--") continue;
    const jo::Option* o = w.rfind("--", 0) == 0 ? jo::find_long(w.substr(2))
                          : w.size() == 2 && w[0] == '-' ? jo::find_short(w[1])
                                                         : nullptr;
    EXPECT_TRUE(o && o->command_line_settable()) << w << " is offered but cronrun does not accept it";
  }
}

TEST_F(ZshCompletion, AnOptionsValueIsCompletedAsAValueAndThenSkipped) {
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable()) continue;
    std::vector<std::string> spellings{o.flag()};
    if (o.short_name != '\0') spellings.push_back(std::string("-") + o.short_name);
    for (const std::string& flag : spellings) {
      // Right after the option: its value (no option list), unless it takes none.
      auto after = complete({"cronrun", flag, "--"});
      bool takes_value = o.arity == jo::Arity::one || o.arity == jo::Arity::many;
      if (takes_value) {
        EXPECT_FALSE(any_long_option(after)) << flag << " takes a value, but options are offered after it: "
                                             << joined(after);
      } else {
        // (zsh offers an option given once no more, so not necessarily --help)
        EXPECT_TRUE(any_long_option(after)) << flag << " takes no value, but options are not offered after it";
      }
      // After the option and its value (an example the parser accepts), options
      // again: the value was not taken for the job's command.
      std::vector<std::string> words{"cronrun", flag};
      if (takes_value) words.push_back(std::string(o.example));
      words.push_back("--");
      EXPECT_TRUE(any_long_option(complete(words))) << flag << " " << (takes_value ? o.example : "")
                                                    << ": options are not offered after it";
    }
  }
}

// The values an option's parser names in its error ("expected skip|fail, got
// ...", "CLASS realtime|best-effort|idle", "expected off, baseline, strict,
// learn or a profile file"): each is offered, and each value offered parses.
TEST_F(ZshCompletion, OffersExactlyTheValuesAnOptionsParserNames) {
  const std::regex barred("([a-z][a-z-]*(\\|[a-z][a-z-]*)+)");
  const std::regex listed("expected ((?:[a-z][a-z-]*, )+[a-z][a-z-]*) or ");
  int lists = 0;
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable() || o.arity != jo::Arity::one) continue;
    auto refused = o.parse("\x01");
    if (refused) refused = o.parse("");
    std::string message = refused ? std::string() : refused.error().message();
    std::smatch m;
    std::vector<std::string> values;
    std::string list;
    char sep = '|';
    if (std::regex_search(message, m, barred)) {
      list = m[1].str();
    } else if (std::regex_search(message, m, listed)) {
      list = m[1].str();
      sep = ',';
    } else {
      continue;
    }
    for (size_t start = 0;;) {
      size_t end = list.find(sep, start);
      values.push_back(list.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + (sep == ',' ? 2 : 1);
    }
    ++lists;
    auto offered = complete({"cronrun", o.flag(), ""});
    for (const std::string& v : values) {
      EXPECT_TRUE(has(offered, v)) << o.flag() << " accepts " << v << " but the zsh completion does not offer it";
    }
    for (const std::string& v : offered) {
      EXPECT_TRUE(o.parse(v).has_value()) << o.flag() << " " << v << " is offered but refused by the parser";
    }
  }
  EXPECT_GE(lists, 6) << "the options with named values (--ionice, --cgroup, --seccomp, --on-locked, --output, "
                         "--on-revoke) were not recognized";
}

// --ionice CLASS:LEVEL: the levels offered after a class all parse.
TEST_F(ZshCompletion, IoniceLevelsParse) {
  auto offered = complete({"cronrun", "--ionice", "best-effort:"});
  EXPECT_EQ(offered.size(), 8u) << joined(offered);
  for (const std::string& v : offered) {
    EXPECT_TRUE(jo::get(jo::Id::ionice).parse(v).has_value()) << v << " is offered but refused";
  }
}

TEST_F(ZshCompletion, TheJobsCommandIsCompletedAsThatCommandsOwn) {
  // After "--", ls's own completion.
  auto after_dashes = complete({"cronrun", "--name", "x", "--memory", "1G", "--", "ls", "--al"});
  EXPECT_TRUE(has(after_dashes, "--all")) << "ls's options are not completed after --: " << joined(after_dashes);
  EXPECT_FALSE(has(after_dashes, "--name"));
  EXPECT_FALSE(has(complete({"cronrun", "--", "--he"}), "--help")) << "after --, a word is the command's";
  // Without "--": the first word that is not an option or a value is the command.
  EXPECT_TRUE(has(complete({"cronrun", "--memory", "1G", "--report", "ech"}), "echo"));
  EXPECT_TRUE(has(complete({"cronrun", "--env", "A=1", "B=2", "ls", "--al"}), "--all"))
      << "--env's KEY=VALUE words were taken for the command";
  EXPECT_TRUE(has(complete({"cronrun", "--env", "A=1", "ech"}), "echo"))
      << "after --env's value, the job's command may follow";
  EXPECT_TRUE(has(complete({"cronrun", "--lock", "/tmp/x.pid", "ls", "--al"}), "--all"));
  EXPECT_TRUE(has(complete({"cronrun", "--lock", "--rep"}), "--report")) << "--lock's value is optional";
  EXPECT_FALSE(has(complete({"cronrun", "--lock", "ech"}), "echo")) << "the word after --lock is its PATH";
  // Short groups: -vn NAME and -nNAME take the name, then the command.
  EXPECT_TRUE(has(complete({"cronrun", "-vn", "x", "ls", "--al"}), "--all"));
  EXPECT_TRUE(has(complete({"cronrun", "-nx", "ls", "--al"}), "--all"));
  EXPECT_TRUE(has(complete({"cronrun", "-q", "ls", "--al"}), "--all"));
}

}  // namespace
