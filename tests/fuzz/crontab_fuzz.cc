// Crontab files: cronprof plan reads every user's crontab and /etc/cron.d, files
// their owners wrote (profiler/crontab.h), and looks for the cronrun call in each
// command (profiler/crontab_cronrun.h). The first byte picks the kind (user or
// system); the rest is the file.
#include <string>

#include "profiler/crontab.h"
#include "profiler/crontab_cronrun.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_crontab(const uint8_t* data, size_t size) {
  using namespace cronrun;
  if (size == 0) return 0;
  auto kind = (data[0] & 1) ? crontab::Kind::system : crontab::Kind::user;
  std::string_view text = fuzz::as_text(data + 1, size - 1);
  crontab::Crontab tab = crontab::parse_crontab(text, "fuzz", kind);
  for (const auto& e : tab.entries) {
    FUZZ_CHECK(e.line >= 1);
    FUZZ_CHECK_MSG(!e.command.empty(), e.time_text);
    FUZZ_CHECK(kind == crontab::Kind::user || e.user.has_value());
    // The schedule reads back the same from its own printed form (the plan's
    // proposals print minutes and hours this way).
    if (!e.schedule.reboot) {
      FUZZ_CHECK(e.fields.size() == 5);
      std::string printed = crontab::format_minutes(e.schedule.minutes) + " " +
                            crontab::format_hours(e.schedule.hours) + " * * *";
      auto again = crontab::parse_schedule(printed);
      FUZZ_CHECK_MSG(again.has_value(), printed);
      FUZZ_CHECK_MSG(again->minutes == e.schedule.minutes && again->hours == e.schedule.hours, printed);
      (void)e.schedule.matches(0, 0, 1, 1, 0);
    }
    (void)crontab::find_cronrun(e.command);
  }
  for (const auto& r : tab.rejected) FUZZ_CHECK_MSG(!r.reason.empty(), r.text);
  return 0;
}
