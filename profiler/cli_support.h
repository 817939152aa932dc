// What every cronprof subcommand shares: opening the history read-only with a
// one-line error and a distinct exit code, time windows ("7d"), and the plain
// text tables people read. Nothing here prints a traceback or a half table: a
// failure is one line on stderr, prefixed "cronprof: ".
#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"
#include "common/history.h"
#include "profiler/command.h"

namespace CLI {
class ParseError;
}

namespace cronrun::prof {

// Parses cronprof's command line into `app` (the global options and every
// subcommand registered). --help prints the help of what it follows on stdout; a
// usage error prints usage_message() as one "cronprof: " line on stderr, never
// CLI11's own text. Returns the exit code when parsing ends the program (0 after
// --help, kExitUsage), nothing when the selected subcommand is to run.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// The line (without "cronprof: ") for a usage error CLI11 raised while parsing
// `args` (argv without argv[0]) into `app`: the unknown option or subcommand, the
// unexpected argument, or the option whose value was wrong and what it expects,
// prefixed by the subcommand it was given to, and the --help to read.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e, const std::vector<std::string>& args);

// The "Exit status:" paragraph of `cronprof --help` (subcommand "") or of that
// subcommand's --help: the codes of profiler/exit_codes.h it can exit with.
std::string exit_status_help(std::string_view subcommand);

// "cronprof: <message>" on stderr.
void print_error(const std::string& message);
// A usage error found after parsing (a bad --since, a --config without --write):
// "cronprof: SUB: <message> (see cronprof SUB --help)", as CLI11's own are said.
void print_usage_error(const std::string& message);
// The subcommand being run, for print_usage_error (main sets it).
void set_running_subcommand(std::string name);

// The exit code for a failure of this kind (profiler/exit_codes.h).
int exit_code_for(HistoryFault fault);

// Opens the history at g.history_path. On failure prints one line naming the path
// and what to do, and returns the exit code as the unexpected value. read_write
// (gc) still refuses to create a history that does not exist.
std::expected<HistoryStore, int> open_history(const Global& g,
                                              HistoryStore::Mode mode = HistoryStore::Mode::read_only);
// What reading (or folding) the run journal found wrong — damaged stretches
// skipped, a damaged header, a torn last record — one stderr line each (the first
// few, then a count): the runs shown are every run that could be read.
void print_journal_notes(const HistoryStore& store);
// Prints a failed query's error and returns its exit code.
int query_failed(const HistoryStore& store, const Error& e);

// The rows of a listing that could not be read. Each is named on stderr (run id
// and why, the first kMaxNamed of them) and report() ends with the count, so
// `runs`, `summary`, `suggest` and `export` show every other row and still exit 0:
// one damaged row must not hide the whole history.
class SkippedRows {
 public:
  static constexpr size_t kMaxNamed = 20;
  // What to pass to HistoryStore::each_run / scan. Keeps a pointer to this.
  HistoryStore::CorruptRowFn callback();
  // "cronprof: skipped N unreadable rows of PATH ..." on stderr when N > 0.
  void report(const std::string& history_path) const;
  size_t count() const { return count_; }

 private:
  size_t count_ = 0;
};

double now_unix_s();
// What a subcommand with --since, --job (and --status) reads of a central history
// (command.h): those rows; a window or status that does not parse copies nothing
// (the subcommand reports it). Empty job or status: any.
CentralScope window_scope(const std::string& since, const std::string& job, const std::string& status = "");
// "7d", "12h", "90m" -> the Unix time that long before `now_s`.
Result<double> since_cutoff(const std::string& text, double now_s);
// since_cutoff for a command-line window: on bad input prints "cronprof: FLAG: ..."
// and gives kExitUsage as the error, ready to return from a subcommand.
std::expected<double, int> window_option(const char* flag, const std::string& text, double now_s);
// Unix seconds -> "2026-11-23T02:10:00Z" (UTC, second precision).
std::string format_utc(double unix_s);
// A time in JSON, in the run record's one form ("2026-11-23T02:10:00.123Z", UTC,
// milliseconds; DESIGN section 4); null for a time no clock could show.
nlohmann::json json_time(double unix_s);
// Sizes/durations/numbers for tables; "-" for a figure that was not measured.
std::string size_or_dash(const std::optional<uint64_t>& bytes);
std::string size_or_dash(const std::optional<double>& bytes);
std::string duration_or_dash(const std::optional<double>& seconds);
std::string number_or_dash(const std::optional<double>& v, int decimals = 0);

// How wide tables for people may be (DESIGN section 6): 0 (no limit) with --wide,
// else $COLUMNS when it is a positive number, else the width of the terminal on
// stdout (TIOCGWINSZ), else 80.
size_t output_width(const Global& g);
// The same from explicit inputs: `columns_env` ($COLUMNS or nullptr), `fd` the
// output (probed with TIOCGWINSZ only when it is a terminal).
size_t terminal_width(const char* columns_env, int fd);

// Columns `text` takes on a terminal: one per code point (text already escaped by
// term_text, so no controls; wide East Asian characters count as one).
size_t display_width(std::string_view text);
// `text` in at most `width` columns: cut at a code point, the last column an
// ellipsis, when it is longer.
std::string shorten(std::string_view text, size_t width);

// One column of a Table: how it is aligned, and what a narrow terminal may do to
// it (nothing by default).
struct Column {
  std::string header;
  bool right = false;      // numbers: right-aligned
  size_t min_width = 0;    // > 0: long cells may be shortened, with an ellipsis, down to this
  int drop = 0;            // > 0: may be left out when the table does not fit, the highest first
  int stand_in_for = -1;   // a compact form of that column, shown only when that column is left out
};

// Prose for people (notes, reasons, paths under a table): wrapped at blanks to
// `width` (0: not at all), continuation lines indented, so a long path or reason
// is read whole rather than cut; ends with a newline.
std::string wrap_prose(const std::string& s, size_t width);

// A plain text table: a header row, left-aligned text columns and right-aligned
// numeric ones, two spaces between columns.
//
// fit(width) makes every line fit in `width` columns, never wrapped: first the
// columns that may go are left out (highest `drop` first) until what is left fits
// with its shortenable cells at their minimum, then the longest shortenable
// columns are cut down until the line fits; on a terminal too narrow even for
// that, each line is cut at `width` with an ellipsis.
//
// A listing too long to hold (`runs --limit 0` over a large history) is printed in
// two passes over the same rows: measure() each row, then header_line() and
// line() each row again; the text is the same as add() and render() would give.
class Table {
 public:
  // `right_aligned[i]` for column i.
  Table(std::vector<std::string> header, std::vector<bool> right_aligned);
  explicit Table(std::vector<Column> columns);
  void add(std::vector<std::string> row);
  std::string render() const;
  // Lays the measured columns out for `width` (0: everything, unshortened).
  void fit(size_t width);
  bool empty() const { return rows_.empty(); }

  // Widens the columns for `row` without keeping it.
  void measure(std::vector<std::string> row);
  std::string header_line() const { return format_line(header_); }
  // One row, padded to the widths measured so far.
  std::string line(std::vector<std::string> row) const;

 private:
  void escape(std::vector<std::string>& row) const;
  void widen(const std::vector<std::string>& row);
  std::string format_line(const std::vector<std::string>& row) const;

  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<Column> columns_;
  std::vector<size_t> width_;  // measured (natural) widths
  std::vector<size_t> cut_;    // widths after fit()
  std::vector<bool> shown_;    // after fit(); stand-ins hidden before
  size_t line_max_ = 0;        // 0: no limit
  std::vector<std::vector<std::string>> rows_;
};

// Prints {"KEY": [ELEMENT, ...], OTHER...} to `out` exactly as json_text(that
// object, 2) would, one element at a time, so a long list of records is never
// held. `others` holds the document's other members ("schema", ...).
class JsonListPrinter {
 public:
  JsonListPrinter(std::FILE* out, const std::string& key, const nlohmann::json& others);
  JsonListPrinter(std::FILE* out, const std::string& key);
  void add(const nlohmann::json& element);
  // Closes the list and the object (not after an error: a list cut short stays
  // invalid JSON rather than look complete).
  void finish();

 private:
  std::FILE* out_;
  std::string tail_;  // what follows the list's closing bracket
  bool first_ = true;
};

}  // namespace cronrun::prof
