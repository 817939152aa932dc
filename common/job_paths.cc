// The default paths of a job. Root's live in the system directories (FHS: state in
// /var/lib, runtime in /run, config in /etc); a user's in the XDG base
// directories, with the spec's fallbacks, except the runtime directory: with no
// $XDG_RUNTIME_DIR there is no per-user tmpfs, so /tmp/cronrun-UID is used, and
// whoever creates it checks that it is 0700 and ours (common/safe_file.h).
#include "common/job_paths.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <utility>
#include <fmt/format.h>

namespace cronrun {
namespace {

std::string absolute_or_empty(const char* v) { return v && v[0] == '/' ? std::string(v) : std::string(); }

}  // namespace

Invoker Invoker::of(uid_t uid, const char* xdg_runtime_dir, const char* xdg_state_home, const char* xdg_config_home,
                    const char* home) {
  Invoker who;
  who.euid = uid;
  who.xdg_runtime_dir = absolute_or_empty(xdg_runtime_dir);
  who.xdg_state_home = absolute_or_empty(xdg_state_home);
  who.xdg_config_home = absolute_or_empty(xdg_config_home);
  who.home = absolute_or_empty(home);
  if (who.home.empty()) who.home = absolute_or_empty(user_entry(uid).home.c_str());
  return who;
}

const UserEntry& user_entry(uid_t uid) {
  // One entry: a process asks about one user (itself, or one other in tests). A
  // call for another uid replaces it, so callers copy what they keep.
  static std::optional<std::pair<uid_t, UserEntry>> cached;
  if (cached && cached->first == uid) return cached->second;
  UserEntry e;
  if (const passwd* pw = ::getpwuid(uid)) {
    e.found = true;
    e.name = pw->pw_name ? pw->pw_name : std::to_string(uid);
    e.home = pw->pw_dir ? pw->pw_dir : "";
  } else {
    e.name = std::to_string(uid);
  }
  cached.emplace(uid, std::move(e));
  return cached->second;
}

Invoker Invoker::current() {
  Invoker who = of(::geteuid(), ::secure_getenv("XDG_RUNTIME_DIR"), ::secure_getenv("XDG_STATE_HOME"),
                   ::secure_getenv("XDG_CONFIG_HOME"), ::secure_getenv("HOME"));
  if (const char* drain = ::secure_getenv("CRONRUN_DRAIN_FILE")) who.drain_file = drain;
  return who;
}

std::string runtime_dir(const Invoker& who) {
  if (who.is_root()) return "/run/cronrun";
  if (!who.xdg_runtime_dir.empty()) return who.xdg_runtime_dir + "/cronrun";
  return fmt::format("/tmp/cronrun-{}", who.euid);
}

std::string runs_dir(const Invoker& who) { return runtime_dir(who) + "/runs"; }

std::string default_history_path(const Invoker& who) {
  if (who.is_root()) return "/var/lib/cronrun/history.db";
  if (!who.xdg_state_home.empty()) return who.xdg_state_home + "/cronrun/history.db";
  return who.home + "/.local/state/cronrun/history.db";
}

std::string journal_path(std::string_view history_path) { return std::string(history_path) + ".journal"; }

std::string default_lock_path(const Invoker& who, std::string_view name) {
  // Root's locks have a directory of their own beside the other runtime files;
  // a user's sit in the (private) runtime directory itself.
  if (who.is_root()) return fmt::format("{}/locks/{}.pid", runtime_dir(who), name);
  return fmt::format("{}/{}.pid", runtime_dir(who), name);
}

std::string job_config_dir(const Invoker& who) {
  if (who.is_root()) return "/etc/cronrun/jobs.d";
  if (!who.xdg_config_home.empty()) return who.xdg_config_home + "/cronrun/jobs.d";
  return who.home + "/.config/cronrun/jobs.d";
}

std::string default_config_path(const Invoker& who, std::string_view name) {
  return fmt::format("{}/{}.json", job_config_dir(who), name);
}

std::string drain_path(const Invoker& who) {
  return who.drain_file.empty() ? "/etc/cronrun/drain" : who.drain_file;
}

JobPaths default_job_paths(const Invoker& who, std::string_view name) {
  JobPaths p;
  p.history = default_history_path(who);
  p.journal = journal_path(p.history);
  p.runtime_dir = runtime_dir(who);
  p.drain = drain_path(who);
  if (!name.empty()) {
    p.lock = default_lock_path(who, name);
    p.config = default_config_path(who, name);
  }
  return p;
}

}  // namespace cronrun
