// What cronprof prints from the history is not its own text: job names, commands,
// hosts, users, counter names, notes, paths and skip reasons come from whoever ran
// the job, and a job's argv or its $CRONRUN_COUNTERS file is under the control of
// the job's owner, not of the admin who reads the profile. A terminal obeys the
// escape sequences in what it is shown (clear the screen, move the cursor, rewrite
// earlier lines, set the window title, and on some terminals answer back), so an
// untrusted string reaches the terminal, a CSV cell or a Prometheus label only
// through the functions here. One rule for every output, so `runs`, `show` and
// the CSV export show the same string the same way.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace cronrun::prof {

// `text` made safe to print: C0 controls, DEL and C1 controls (U+0080..U+009F)
// become \n, \r, \t, \e or \xNN; bytes that are not UTF-8 become \xNN; Unicode
// bidirectional overrides and isolates (which reorder what a reader sees)
// become \u{NNNN}. Printable UTF-8, backslashes included, is kept as it is.
std::string term_text(std::string_view text);

// term_text for each line of a multi-line text cronprof composed itself: its own
// line breaks are kept, everything else is escaped.
std::string term_lines(std::string_view text);

// Whether `text` is valid UTF-8 without any of what term_text escapes.
bool is_plain_text(std::string_view text);

// j.dump(indent) that never throws on strings that are not UTF-8 (nlohmann's
// type_error 316): invalid bytes become U+FFFD. The text is ASCII without raw
// controls (everything else is \uXXXX inside its string), so it is safe on a
// terminal too. Every JSON cronprof prints goes through this.
std::string json_text(const nlohmann::json& j, int indent = -1);

}  // namespace cronrun::prof
