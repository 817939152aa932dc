// Crontab files as cron(8) reads them: user crontabs (five time fields, then the
// command) and system ones (/etc/crontab, /etc/cron.d/*: a user field before the
// command). The parser follows Debian's cron (Vixie cron 3.0 with Debian's
// patches): what that daemon would refuse is rejected here with the file, line and
// reason, so the capacity plan never counts a job cron would not run.
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cronrun::crontab {

// When the entry fires. Bits are indexed by the calendar value itself:
// minutes 0-59, hours 0-23, days of month 1-31, months 1-12, days of week 0-6
// (0 = Sunday; a 7 in the text is folded onto 0).
struct Schedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;
  std::bitset<13> months;
  std::bitset<7> days_of_week;
  // Vixie cron calls a day field "star" when its text begins with '*' (so "*/2"
  // counts as star). Only when neither day field is star does a day match if
  // EITHER field matches; otherwise both must match.
  bool dom_star = true;
  bool dow_star = true;
  bool reboot = false;  // @reboot: once at daemon start, never on the clock

  // True when the entry fires at this local wall-clock minute.
  bool matches_day(int day_of_month, int month, int day_of_week) const;
  bool matches(int minute, int hour, int day_of_month, int month, int day_of_week) const;
};

// Parses the time part of a line: five fields ("*/5 2-4 * jan-mar mon,fri") or
// one of the @ words. The error text says which field and why.
Result<Schedule> parse_schedule(std::string_view text);

// The five fields a schedule prints as, for proposals: minimal ranges and steps
// ("0-50/10", "1,13", "*").
std::string format_minutes(const std::bitset<60>& minutes);
std::string format_hours(const std::bitset<24>& hours);

enum class Kind { user, system };
const char* to_string(Kind k);
// /etc/crontab and files in a directory named cron.d are system crontabs (user
// field present); anything else is read as a user crontab.
Kind kind_for_path(std::string_view path);

struct Entry {
  std::string file;
  int line = 0;                      // 1-based
  std::string time_text;             // the schedule as written: "5-55/10 * * * *" or "@daily"
  std::vector<std::string> fields;   // the five time fields ("@daily" expanded)
  Schedule schedule;
  std::optional<std::string> user;   // system crontabs only
  std::string command;               // up to the first unescaped '%', "\%" unescaped
  std::optional<std::string> stdin_text;  // after the first '%', '%' turned into newlines
  std::optional<std::string> cron_tz;     // CRON_TZ in force at this line, if any
};

struct EnvSetting {
  std::string file;
  int line = 0;
  std::string name;
  std::string value;
};

struct Rejected {
  std::string file;
  int line = 0;  // 0: the whole file (e.g. ignored by cron because of its name)
  std::string text;
  std::string reason;
};

struct Crontab {
  std::vector<Entry> entries;
  std::vector<EnvSetting> env;
  std::vector<Rejected> rejected;

  void append(Crontab&& other);
};

// Whether a user name exists (system crontabs name the user each line runs as).
using UserExists = std::function<bool(const std::string& user)>;

// Parses crontab text as Debian's cron loads one file: all or nothing. Every line
// cron would refuse is in `rejected` with its line and reason and, as cron then
// ignores the whole file ("Syntax error, this crontab file will be ignored"), one
// more Rejected with line 0 says so and the file gives no entries and no
// environment. Such lines: a bad time field, no command, a system-crontab line
// whose user field is missing (the command's first word taken as the user: cron
// looks it up and fails with "bad username"), more than kMaxCrontabLines
// entries and settings. `user_exists`, when given, is asked about each system
// entry's user (cron's getpwnam); without it only names no account can have ('/'
// in them, or a command that would start with '-') are refused.
Crontab parse_crontab(std::string_view text, std::string_view file_name, Kind kind,
                      const UserExists& user_exists = {});
// Debian's cron: "crontab must not be longer than 10000 lines, this crontab file
// will be ignored" (entries and settings; comments and blank lines not counted).
inline constexpr int kMaxCrontabLines = 10000;

// Reads one file, or every file of a directory as cron reads /etc/cron.d: names
// made only of [A-Za-z0-9_-] (so "x.dpkg-old" and "x~" are skipped and reported
// as rejected with line 0). `kind` overrides kind_for_path(). The system
// crontabs cron itself reads (under /etc/) have their users looked up in this
// host's passwd database, as cron would; copies elsewhere (checked before they
// are installed, test fixtures) get only the lexical user check. Errors: the path
// cannot be read.
Result<Crontab> load_crontab(const std::string& path, std::optional<Kind> kind = std::nullopt);

// cron.d's file-name rule (run-parts' default LANANA-ish rule as used by Debian cron).
bool valid_cron_d_name(std::string_view name);

}  // namespace cronrun::crontab
