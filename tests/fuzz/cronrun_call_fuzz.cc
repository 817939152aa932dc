// One crontab command line as shell text: the cronrun call found in it and its
// options (profiler/crontab_cronrun.h).
#include <string>

#include "profiler/crontab_cronrun.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_cronrun_call(const uint8_t* data, size_t size) {
  using namespace cronrun;
  std::string_view text = fuzz::as_text(data, size);
  (void)crontab::shell_split(text);
  auto call = crontab::find_cronrun(text);
  if (call && *call) {
    const crontab::CronrunCall& c = **call;
    FUZZ_CHECK_MSG(!c.job.empty(), text);
    FUZZ_CHECK_MSG(!c.command.empty(), text);
  } else if (!call) {
    FUZZ_CHECK(!call.error().message().empty());
  }
  return 0;
}
