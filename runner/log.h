// cronrun's own messages. Errors and warnings are one line on stderr prefixed
// "cronrun: " (cron mails stderr). START/FINISH events go to stderr when it is a
// terminal and to syslog otherwise. Loggers are synchronous: no thread may exist
// when the job is spawned.
//
// Until set_nonblocking(true), stderr writes wait for the reader (usage errors
// must arrive; nothing is supervised yet). From then on (the run calls it right
// before spawning the job) a message stderr cannot take at once is dropped and
// counted: under cron stderr is the job's output pipe, and a reader that stops
// reading must not stop the supervisor.
#pragma once

#include <cstdint>
#include <string>

namespace cronrun::log {

void setup(int verbosity);  // -1 quiet, 0 normal, 1+ verbose
void event(const std::string& msg);
void info(const std::string& msg);   // shown at -v
void debug(const std::string& msg);  // shown at -vv
void warn(const std::string& msg);
void error(const std::string& msg);

void set_nonblocking(bool on);
// Messages (whole or in part) stderr could not take since set_nonblocking(true).
uint64_t dropped_messages();

}  // namespace cronrun::log
