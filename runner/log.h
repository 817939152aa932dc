// cronrun's own messages. Errors and warnings are one line on stderr prefixed
// "cronrun: " (cron mails stderr). START/FINISH events go to stderr when it is a
// terminal; otherwise to the journal when journald listens
// (/run/systemd/journal/socket), with the fields and priorities of DESIGN §9, and
// else to syslog (facility cron) as key=value text at the same priorities.
// Warnings and errors also go to the journal or syslog when stderr is not a
// terminal. Loggers are synchronous: no thread may exist when the job is spawned.
//
// Until set_nonblocking(true), stderr writes wait for the reader (usage errors
// must arrive; nothing is supervised yet). From then on (the run calls it right
// before spawning the job) a message stderr cannot take at once is dropped and
// counted: under cron stderr is the job's output pipe, and a reader that stops
// reading must not stop the supervisor.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/run_record.h"

namespace cronrun::log {

void setup(int verbosity);  // -1 quiet, 0 normal, 1+ verbose
void event(const std::string& msg);
void info(const std::string& msg);   // shown at -v
void debug(const std::string& msg);  // shown at -vv
void warn(const std::string& msg);
void error(const std::string& msg);

// START (the job was started) or FINISH (the run ended, skipped runs included).
enum class Event { start, finish };
void run_event(Event kind, const RunRecord& r);
// The run later warnings and errors belong to: they carry its CRONRUN_JOB and
// CRONRUN_RUN_ID in the journal.
void set_run(const std::string& job, const std::string& run_id);

// The pieces of an event, for the tests.
// Syslog priority: START and ok/skipped runs LOG_INFO; failed, timeout, oom,
// killed, lost LOG_WARNING; error (cronrun's own failure) LOG_ERR.
int event_priority(Event kind, const RunRecord& r);
// "FINISH job=x run_id=... status=failed exit=3 wall_s=0.012 peak_bytes=... command=\"...\"":
// key=value pairs, a figure the record lacks left out, values quoted when needed.
std::string event_text(Event kind, const RunRecord& r);
// The journal fields, "NAME=value" each: MESSAGE (event_text), PRIORITY,
// SYSLOG_IDENTIFIER, SYSLOG_FACILITY, MESSAGE_ID, CRONRUN_*.
std::vector<std::string> event_fields(Event kind, const RunRecord& r);
// A value as key=value text wants it: as is when it is a plain word, else in
// double quotes with \" \\ \n \t \r and \xHH for other control bytes.
std::string kv_value(std::string_view v);
// argv as one line: arguments a shell would split or expand are single-quoted.
std::string command_line(const std::vector<std::string>& argv);

void set_nonblocking(bool on);
// Messages (whole or in part) stderr could not take since set_nonblocking(true).
uint64_t dropped_messages();

}  // namespace cronrun::log
