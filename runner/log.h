// cronrun's own messages. Errors and warnings are one line on stderr prefixed
// "cronrun: " (cron mails stderr). START/FINISH events go to stderr when it is a
// terminal and to syslog otherwise. Loggers are synchronous: no thread may exist
// when the job is spawned.
#pragma once

#include <string>

namespace cronrun::log {

void setup(int verbosity);  // -1 quiet, 0 normal, 1+ verbose
void event(const std::string& msg);
void info(const std::string& msg);   // shown at -v
void debug(const std::string& msg);  // shown at -vv
void warn(const std::string& msg);
void error(const std::string& msg);

}  // namespace cronrun::log
