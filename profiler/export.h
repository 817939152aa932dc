// Machine output of the history (`cronprof export`): JSON (an array of run
// records), CSV (one flat row per run), and Prometheus text for node_exporter's
// textfile collector.
//
// Prometheus: per job, the newest finished run's figures as gauges, the newest
// success's start time, and run counts by status, all prefixed `cronrun_` with a
// `job` label, HELP and TYPE for every family and no sample timestamps (the
// textfile collector rejects them). "No success in two intervals" is one rule:
//   time() - cronrun_last_success_timestamp_seconds > 2 * <interval>
// A job that never succeeded exports 0 there, so that rule fires for it too.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/history.h"
#include "common/run_record.h"

namespace cronrun::prof {

struct JobMetrics {
  std::string job;
  std::optional<RunFigures> last;         // newest finished (or lost) run
  std::optional<double> last_success_s;   // newest `ok` start
  std::map<RunStatus, uint64_t> counts;   // rows by status (running split from lost)
};

std::string prometheus_text(const std::vector<JobMetrics>& jobs, double generated_unix_s);
// Escapes a label value: backslash, double quote and newline as the format says;
// other controls and bytes that are not UTF-8 spelled out first (text_escape.h).
std::string prometheus_label(const std::string& value);

std::string csv_header();
std::string csv_row(const RunRecord& r);
// RFC 4180 quoting when the field needs it.
std::string csv_field(const std::string& v);

}  // namespace cronrun::prof
