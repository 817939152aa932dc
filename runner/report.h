// Human renderings of a run: the --report profile (cron mails it) and the
// one-line START/FINISH log events.
#pragma once

#include <string>

#include "common/run_record.h"

namespace cronrun {

std::string format_report(const RunRecord& r);

}  // namespace cronrun
