// Root-vs-user and the default paths of a job (DESIGN §2, §5, §8), decided in one
// place. Who runs cronrun is read once (one geteuid(), secure_getenv for the XDG
// variables and HOME) into an Invoker; every default path is a pure function of
// an Invoker and the job name, so the runner, --dry-run, cronprof and the tests
// all compute the same paths, and a test can ask for root's paths as any user.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace cronrun {

struct Invoker {
  uid_t euid = 0;
  // Absolute values only ("" when unset or relative: the XDG base directory spec
  // says relative values are invalid and must be ignored).
  std::string xdg_runtime_dir;
  std::string xdg_state_home;
  std::string xdg_config_home;
  std::string home;  // $HOME, else the passwd entry's home of euid
  std::string drain_file;  // $CRONRUN_DRAIN_FILE ("" when unset)

  bool is_root() const { return euid == 0; }

  // This process: geteuid() once, secure_getenv (so a set-id caller's
  // environment is never trusted).
  static Invoker current();
  // Another user as their environment would have it (nullptr: unset); an unset
  // or relative `home` means the passwd home of `uid`.
  static Invoker of(uid_t uid, const char* xdg_runtime_dir, const char* xdg_state_home, const char* xdg_config_home,
                    const char* home);
};

// The passwd entry of `uid` as the runner needs it, looked up once per process
// and uid (getpwuid walks NSS: nscd probes, nsswitch.conf, /etc/passwd), so the
// run record, the systemd scope and the default home share one lookup.
struct UserEntry {
  bool found = false;
  std::string name;  // pw_name; the number when there is no entry
  std::string home;  // pw_dir ("" when there is no entry)
};
const UserEntry& user_entry(uid_t uid);

// A job's resolved paths: explicit settings where given, else the defaults.
struct JobPaths {
  std::string history;      // SQLite history
  std::string journal;      // the run journal: history + ".journal"
  std::string lock;         // pid-file lock ("" with --flush: no job)
  std::string config;       // the job config read, or the default looked for
  std::string runtime_dir;  // cronrun's private runtime directory
  std::string drain;        // the drain file: while it exists, runs are skipped
};

// /run/cronrun (root), else $XDG_RUNTIME_DIR/cronrun, else /tmp/cronrun-UID.
std::string runtime_dir(const Invoker& who);
// Per-run files ($CRONRUN_COUNTERS): runtime_dir + "/runs".
std::string runs_dir(const Invoker& who);
// /var/lib/cronrun/history.db (root), else $XDG_STATE_HOME/cronrun/history.db,
// else ~/.local/state/cronrun/history.db.
std::string default_history_path(const Invoker& who);
// The run journal beside a history (a fixed decision: one file, "<history>.journal").
std::string journal_path(std::string_view history_path);
// /run/cronrun/locks/NAME.pid (root), else $XDG_RUNTIME_DIR/cronrun/NAME.pid, else
// /tmp/cronrun-UID/NAME.pid.
std::string default_lock_path(const Invoker& who, std::string_view name);
// /etc/cronrun/jobs.d (root), else $XDG_CONFIG_HOME/cronrun/jobs.d, else
// ~/.config/cronrun/jobs.d; the job's file is NAME.json in it.
std::string job_config_dir(const Invoker& who);
std::string default_config_path(const Invoker& who, std::string_view name);
// $CRONRUN_DRAIN_FILE, else /etc/cronrun/drain (DESIGN §1).
std::string drain_path(const Invoker& who);
// Every default at once, for job `name` ("" with --flush: no lock, no config).
JobPaths default_job_paths(const Invoker& who, std::string_view name);

}  // namespace cronrun
