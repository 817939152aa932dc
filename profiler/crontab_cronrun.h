// Finding the cronrun call inside a crontab command, so a crontab entry can be
// joined with its history by job name (DESIGN §2: --name, else the basename of
// COMMAND). Crontab commands are shell text ("test -x /usr/bin/cronrun && nice -n 10
// cronrun --name=x -- /opt/x.sh >/dev/null 2>&1"), so this reads them as sh would
// split them: quotes, escapes, operators and redirections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "profiler/crontab.h"

namespace cronrun::crontab {

struct CronrunCall {
  std::string job;                      // --name, else basename of command[0]
  bool name_given = false;              // job came from --name
  std::vector<std::string> command;     // the job's command words
  bool lock = true;                     // cronrun's default; --no-lock turns it off
  std::optional<std::string> lock_path; // --lock PATH: jobs sharing a path share the lock
  std::optional<uint64_t> memory_max_bytes;  // --memory
  std::optional<std::string> config;    // -c/--config
  std::optional<std::string> history;   // --history (the plan reads one history only)
};

// Splits shell text into words and operators as sh would (quotes removed). Only what
// the search needs: no expansions, and here-documents are not understood.
struct ShellToken {
  enum class Type { word, op, redirect } type;
  std::string text;
};
std::vector<ShellToken> shell_split(std::string_view text);

// The first cronrun call in command position (possibly after VAR=value
// assignments and wrappers such as exec, nice, ionice, nohup, chronic, env, sudo,
// setsid, timeout), its options read with cronrun's own option table and grammar
// (common/job_options.h). nullopt when the command does not run a job with
// cronrun (no cronrun call, or `cronrun --flush`); an Error when the runner would
// refuse the call (an unknown option, a value that does not parse, no COMMAND, an
// invalid --name), with the runner's message.
Result<std::optional<CronrunCall>> find_cronrun(std::string_view shell_command);

// The home directory cron runs `e` in (where a relative path on the line
// starts): its user's for a system crontab line, the spool file's owner for
// /var/spool/cron/crontabs/NAME, else this process's user; "" when unknown.
std::string cron_home(const Entry& e);
// Whether `named` (a line's --history value, relative ones from `home`) is the
// history file `read`: the same device and inode when both exist (a symlink or
// another spelling of the path is the same history), else the same absolute
// path once normalized.
bool same_history(const std::string& named, const std::string& home, const std::string& read);

}  // namespace cronrun::crontab
