// contrib/completions/cronrun against the option table (common/job_options.cc):
// bash sources bash-completion and the file, COMP_WORDS/COMP_CWORD are set as
// bash would set them, _cronrun runs, and COMPREPLY is read back. The tests walk
// the table, so an option added there without its completion fails here: it is
// not offered, its value is taken for the job's command, or a value the
// completion offers is one the option's parser refuses.
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

constexpr const char* kBashCompletion = "/usr/share/bash-completion/bash_completion";

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class Completion : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kBashCompletion))
        << kBashCompletion << " is missing: install bash-completion (scripts/install-deps.sh)";
    // An empty working directory: file-name completion offers nothing, so what
    // COMPREPLY holds comes from the completion's own lists.
    dir_ = std::filesystem::temp_directory_path() / ("cronrun-completion-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // COMPREPLY for a command line whose last word is the one being completed.
  // `typed`: the line as typed when bash split it into more words than the
  // spaces do (at the ':' of COMP_WORDBREAKS); default: the words joined by spaces.
  std::vector<std::string> complete(const std::vector<std::string>& words, const std::string& typed = "") {
    std::string script = "cd " + shell_quoted(dir_.string()) + " && source " + kBashCompletion + " && source " +
                         shell_quoted(std::string(CRONRUN_SOURCE_DIR) + "/contrib/completions/cronrun") +
                         " && COMP_WORDS=(";
    std::string line;
    for (const std::string& w : words) {
      script += shell_quoted(w) + " ";
      line += (line.empty() ? "" : " ") + w;
    }
    if (!typed.empty()) line = typed;
    script += "); COMP_CWORD=" + std::to_string(words.size() - 1) + "; COMP_LINE=" + shell_quoted(line) +
              "; COMP_POINT=${#COMP_LINE}; _cronrun cronrun \"${COMP_WORDS[COMP_CWORD]}\" "
              "\"${COMP_WORDS[COMP_CWORD-1]}\" 2>/dev/null; printf '%s\\n' \"${COMPREPLY[@]}\"";
    std::string cmd = "bash --norc --noprofile -c " + shell_quoted(script);
    FILE* p = ::popen(cmd.c_str(), "r");
    EXPECT_NE(p, nullptr);
    if (!p) return {};
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << out;
    std::vector<std::string> reply;
    size_t start = 0;
    for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
      if (nl > start) reply.push_back(out.substr(start, nl - start));
    return reply;
  }

  static bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  static bool any_long_option(const std::vector<std::string>& v) {
    return std::any_of(v.begin(), v.end(), [](const std::string& s) { return s.rfind("--", 0) == 0; });
  }

  std::filesystem::path dir_;
};

TEST_F(Completion, OffersEveryOptionTheRunnerAcceptsOnItsCommandLine) {
  auto longs = complete({"cronrun", "--"});
  auto shorts = complete({"cronrun", "-"});
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable()) continue;
    EXPECT_TRUE(has(longs, o.flag())) << o.flag() << " is not offered by contrib/completions/cronrun";
    if (o.short_name != '\0') {
      EXPECT_TRUE(has(shorts, std::string("-") + o.short_name)) << "-" << o.short_name << " is not offered";
    }
  }
  EXPECT_TRUE(has(longs, "--")) << "the end of the options is offered too";
}

TEST_F(Completion, OffersNoOptionTheRunnerRefuses) {
  for (const std::string& w : complete({"cronrun", "-"})) {
    if (w == "--") continue;
    const jo::Option* o = w.rfind("--", 0) == 0 ? jo::find_long(w.substr(2)) : jo::find_short(w[1]);
    EXPECT_TRUE(o && o->command_line_settable()) << w << " is offered but cronrun does not accept it";
  }
}

TEST_F(Completion, AnOptionsValueIsCompletedAsAValueAndThenSkipped) {
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable()) continue;
    std::vector<std::string> spellings{o.flag()};
    if (o.short_name != '\0') spellings.push_back(std::string("-") + o.short_name);
    for (const std::string& flag : spellings) {
      // Right after the option: its value (no option list), unless it takes none.
      auto after = complete({"cronrun", flag, "--"});
      bool takes_value = o.arity == jo::Arity::one || o.arity == jo::Arity::many;
      if (takes_value) {
        EXPECT_FALSE(any_long_option(after)) << flag << " takes a value, but options are offered after it";
      } else {
        EXPECT_TRUE(has(after, "--help")) << flag << " takes no value, but options are not offered after it";
      }
      // After the option and its value (an example the parser accepts), options
      // again: the value was not taken for the job's command.
      std::vector<std::string> words{"cronrun", flag};
      if (takes_value) words.push_back(std::string(o.example));
      words.push_back("--he");
      EXPECT_TRUE(has(complete(words), "--help")) << flag << " " << (takes_value ? o.example : "")
                                                  << ": options are not offered after it";
    }
  }
}

// An enum option's parser names its values in its error ("expected skip|fail,
// got ..."): each is offered, and each value offered parses.
TEST_F(Completion, OffersExactlyTheValuesAnEnumOptionAccepts) {
  const std::regex listed("^expected ([a-z-]+(\\|[a-z-]+)+)");
  int enums = 0;
  for (const jo::Option& o : jo::all()) {
    if (!o.command_line_settable() || o.arity != jo::Arity::one) continue;
    auto refused = o.parse("\x01");
    std::smatch m;
    std::string message = refused ? std::string() : refused.error().message();
    if (!std::regex_search(message, m, listed)) continue;
    ++enums;
    auto offered = complete({"cronrun", o.flag(), ""});
    std::string values = m[1].str();
    for (size_t start = 0, bar;; start = bar + 1) {
      bar = values.find('|', start);
      std::string v = values.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      EXPECT_TRUE(has(offered, v)) << o.flag() << " accepts " << v << " but the completion does not offer it";
      if (bar == std::string::npos) break;
    }
    for (const std::string& v : offered) {
      EXPECT_TRUE(o.parse(v).has_value()) << o.flag() << " " << v << " is offered but refused by the parser";
    }
  }
  EXPECT_GE(enums, 3) << "the enum options (--cgroup, --on-locked, --output) were not recognized";
}

// bash splits a word at ':' (COMP_WORDBREAKS): "--tick 2026-12-06T12:00" reaches the
// completion as "--tick" "2026-12-06T12" ":" "00", and "--ping https://..." as
// "https" ":" "//...". The value is one word again, so what follows is options,
// not the job's command.
TEST_F(Completion, AValueWithColonsStaysOneWordAsBashSplitsIt) {
  EXPECT_TRUE(has(complete({"cronrun", "--tick", "2026-12-06T12", ":", "00", "--he"},
                           "cronrun --tick 2026-12-06T12:00 --he"),
                  "--help"));
  EXPECT_TRUE(has(complete({"cronrun", "--ping", "https", ":", "//hc-ping.com/x", "--rep"},
                           "cronrun --ping https://hc-ping.com/x --rep"),
                  "--report"));
}

TEST_F(Completion, TheJobsCommandIsCompletedAsThatCommandsOwn) {
  // After "--", ls's own completion (bash-completion's _longopt reads ls --help).
  auto after_dashes = complete({"cronrun", "--name", "x", "--memory", "1G", "--", "ls", "--al"});
  EXPECT_TRUE(has(after_dashes, "--all")) << "ls's options are not completed after --";
  EXPECT_FALSE(has(after_dashes, "--name"));
  // Without "--": the first word that is not an option or a value is the command.
  EXPECT_TRUE(has(complete({"cronrun", "--memory", "1G", "--report", "ech"}), "echo"));
  EXPECT_TRUE(has(complete({"cronrun", "--env", "A=1", "B=2", "ls", "--al"}), "--all"))
      << "--env's KEY=VALUE words were taken for the command";
  EXPECT_TRUE(has(complete({"cronrun", "--lock", "/tmp/x.pid", "ls", "--al"}), "--all"));
  EXPECT_TRUE(has(complete({"cronrun", "--lock", "--rep"}), "--report")) << "--lock's value is optional";
}

}  // namespace
