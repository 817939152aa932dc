// Machine output of the history (`cronprof export`): JSON (an array of run
// records), CSV (one flat row per run), and Prometheus text for node_exporter's
// textfile collector.
//
// With --crontab, also per job of the crontabs (even one that never ran): the
// missed and late ticks of the last day and its state, from the same computation
// as `cronprof status` (profiler/status.h).
//
// Prometheus: per job, the newest run that executed (skipped runs are not runs
// of the job: a lock skip says nothing about whether it works) as gauges, the
// newest success's start time, and every run ever recorded by status as a counter
// (the rows kept plus those `cronprof gc` removed, so gc never lowers it), all
// prefixed `cronrun_` with a `cronjob` label (Prometheus keeps `job` for the
// scrape job and renames a scraped `job` label to `exported_job`), HELP and TYPE
// for every family and no sample timestamps (the textfile collector rejects
// them). "No success in two intervals" is one rule:
//   time() - cronrun_last_success_timestamp_seconds > 2 * <interval>
// A job that never succeeded exports 0 there, so that rule fires for it too.
//
// On the fleet's central history (`--history postgresql://...`) runs of many
// hosts share one history: every family of the runs also has a `host` label,
// the figures are per job and host (the schedule's, from --crontab, stay per job:
// a fleet's tick is claimed once, whatever the host).
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
  std::optional<std::string> host;        // the `host` label: set on a history of many hosts
  std::optional<RunFigures> last;         // newest finished (or lost) run that was not skipped
  std::optional<double> last_success_s;   // newest `ok` start
  std::map<RunStatus, uint64_t> counts;   // runs ever recorded, by status (kept rows plus removed ones)
  uint64_t running = 0;                   // runs in progress now (runner alive)
  // Rows of the job are still in the history. A job known only from what gc
  // removed exports its counter alone: no "never succeeded" for a retired job.
  bool has_rows = false;
  // Against the crontab schedule (export --crontab; profiler/status.h), for the
  // jobs the crontabs run: the window's due ticks that had no run at all and
  // those whose run started after the grace, and the job's one state.
  struct Schedule {
    uint64_t missed = 0;
    uint64_t late = 0;
    std::string state;  // status::to_string(JobState)
  };
  std::optional<Schedule> schedule;
};

// Folds one history row into `m`: its status count, and `last` when it is the
// newest run that executed and ended.
void add_run(JobMetrics& m, const RunFigures& x);

// The states a job's schedule can be in (status::JobState), as label values.
const std::vector<std::string>& schedule_states();

// Every job's metrics from the history (`job`: only that one), in name order;
// `by_host`: per job and host, in that order. Damaged rows go to `on_corrupt`.
Result<std::vector<JobMetrics>> prometheus_metrics(const HistoryStore& store, const std::optional<std::string>& job,
                                                   const HistoryStore::CorruptRowFn& on_corrupt, bool by_host = false);
std::string prometheus_text(const std::vector<JobMetrics>& jobs, double generated_unix_s);
// Escapes a label value: backslash, double quote and newline as the format says;
// other controls and bytes that are not UTF-8 spelled out first (text_escape.h).
std::string prometheus_label(const std::string& value);

std::string csv_header();
std::string csv_row(const RunRecord& r);
// RFC 4180 quoting when the field needs it.
std::string csv_field(const std::string& v);

}  // namespace cronrun::prof
