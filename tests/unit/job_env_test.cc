// runner/job_env.h: the job's environment as execve gets it.
#include "runner/job_env.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cronrun {
namespace {

using Entries = std::vector<std::string>;

TEST(JobEnv, KeepsTheOrderAndTheLastValueOfANameSetTwice) {
  char a[] = "PATH=/usr/bin:/bin", b[] = "HOME=/root", c[] = "NOTAVARIABLE", d[] = "PATH=/sbin", e[] = "=odd";
  char* envp[] = {a, b, c, d, e, nullptr};
  JobEnv env = JobEnv::from(envp);
  EXPECT_EQ(env.entries(), (Entries{"PATH=/sbin", "HOME=/root", "=odd"}));
  EXPECT_EQ(env.get("PATH"), "/sbin");
  EXPECT_EQ(env.get(""), "odd");
  EXPECT_FALSE(env.get("PAT"));
  EXPECT_FALSE(env.get("PATH=/sbin"));
}

TEST(JobEnv, SetReplacesInPlaceAppendsNewNamesAndEraseRemoves) {
  char a[] = "A=1", b[] = "AB=2", c[] = "B=3";
  char* envp[] = {a, b, c, nullptr};
  JobEnv env = JobEnv::from(envp);
  env.set("A", "one");                 // not AB: a name is matched up to its '='
  env.set_entry("AB=two=2");           // the value may hold '='
  env.set_entry("--no-equals-sign");   // ignored
  env.set("CRONRUN_JOB", "backup");
  env.erase("B");
  env.erase("MISSING");
  EXPECT_EQ(env.entries(), (Entries{"A=one", "AB=two=2", "CRONRUN_JOB=backup"}));
  EXPECT_EQ(env.get("AB"), "two=2");
  env.set("EMPTY", "");
  EXPECT_EQ(env.get("EMPTY"), "");
  EXPECT_EQ(std::move(env).take().back(), "EMPTY=");
}

TEST(JobEnv, AnEmptyEnvironmentIsEmpty) {
  char* envp[] = {nullptr};
  EXPECT_TRUE(JobEnv::from(envp).entries().empty());
  EXPECT_TRUE(JobEnv::from(nullptr).entries().empty());
}

}  // namespace
}  // namespace cronrun
