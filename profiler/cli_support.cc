// Shared cronprof plumbing: the command line (CLI11's errors as one line, exit
// statuses in --help), history opening with exit-code mapping, windows,
// formatting, tables.
#include "profiler/cli_support.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <chrono>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/run_record.h"
#include "common/units.h"
#include "profiler/central_history.h"
#include "profiler/exit_codes.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

// Messages quote history content (run ids, job names, paths): escaped like the tables.
void print_error(const std::string& message) {
  std::fprintf(stderr, "cronprof: %s\n", term_text(message).c_str());
}

namespace {
std::string& running_subcommand() {
  static std::string name;
  return name;
}
}  // namespace

void set_running_subcommand(std::string name) { running_subcommand() = std::move(name); }

void print_usage_error(const std::string& message) {
  const std::string& sub = running_subcommand();
  if (sub.empty()) return print_error(message + " (see cronprof --help)");
  print_error(fmt::format("{}: {} (see cronprof {} --help)", sub, message, sub));
}

namespace {

// An option word: "--bogus", "-x", "--limit=5"; not "-" (a value: stdout) nor
// the "--" that ends options.
bool is_option_word(const std::string& word) { return word.size() > 1 && word[0] == '-' && word != "--"; }

std::string help_hint(const CLI::App* sub) {
  return sub ? fmt::format("see cronprof {} --help", sub->get_name()) : "see cronprof --help";
}

// What CLI11 did not understand (unknown options, unexpected arguments), in
// command-line order: it keeps them per sub-app, not in the order given, so the
// first one the user typed is the one named.
std::vector<std::string> left_over(const CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> rest = app.remaining(true);
  std::erase(rest, "--");
  std::vector<std::string> ordered;
  for (const std::string& a : args) {
    auto it = std::ranges::find(rest, a);
    if (it == rest.end()) continue;
    ordered.push_back(a);
    rest.erase(it);
  }
  ordered.insert(ordered.end(), rest.begin(), rest.end());
  return ordered;
}

// "runs, show, ... or fleet"
std::string subcommand_names(const CLI::App& app) {
  std::vector<const CLI::App*> subs = app.get_subcommands([](const CLI::App*) { return true; });
  std::string out;
  for (size_t i = 0; i < subs.size(); ++i) {
    if (i > 0) out += i + 1 == subs.size() ? " or " : ", ";
    out += subs[i]->get_name();
  }
  return out;
}

// The option CLI11 names in an error ("--limit", or a positional's name), looked
// up in the subcommand first, then among the global options.
const CLI::Option* find_option(const CLI::App& app, const CLI::App* sub, const std::string& name) {
  const CLI::Option* opt = sub ? sub->get_option_no_throw(name) : nullptr;
  return opt ? opt : app.get_option_no_throw(name);
}

// What a value of `opt` looks like, from its type name (CLI11's UINT, INT and
// FLOAT, or ours: N, DURATION, FILE...); "" when it says nothing (TEXT).
std::string expected_value(const CLI::Option* opt) {
  if (!opt) return "";
  if (opt->get_expected_max() == 0) return "no value (or true/false)";  // a flag
  std::string type = opt->get_type_name();
  type = type.substr(0, type.find(':'));  // ":{json,csv}", ":POSITIVE": the checks, said otherwise
  if (type == "UINT") return "a whole number, 0 or more";
  if (type == "INT") return "a whole number";
  if (type == "FLOAT" || type == "N") return "a number";
  if (type == "TEXT") return "";
  return type;
}

// CLI11's check messages ("NAME: MESSAGE") in our words: "xml not in
// {json,csv,prometheus}" (IsMember), "Value 20 not in range 1.000000 to
// 10.000000" (Range, PositiveNumber). "" for any other message.
std::string rewrite_check(const std::string& what, const CLI::App& app, const CLI::App* sub) {
  const size_t colon = what.find(": ");
  if (colon == std::string::npos) return "";
  const std::string name = what.substr(0, colon), message = what.substr(colon + 2);
  if (size_t at = message.rfind(" not in {"); at != std::string::npos && message.ends_with('}')) {
    std::string members = message.substr(at + 9, message.size() - at - 10), list;
    for (size_t start = 0; start <= members.size();) {
      size_t comma = std::min(members.find(',', start), members.size());
      bool last = comma == members.size();
      list += (start == 0 ? "" : last ? " or " : ", ") + members.substr(start, comma - start);
      start = comma + 1;
    }
    return fmt::format("{}: expected {}, got '{}'", name, list, message.substr(0, at));
  }
  if (size_t at = message.rfind(" not in range "); at != std::string::npos && message.starts_with("Value ")) {
    const std::string value = message.substr(6, at - 6), bounds = message.substr(at + 14);
    const size_t to = bounds.find(" to ");
    if (to == std::string::npos) return "";
    const double lo = std::strtod(bounds.c_str(), nullptr), hi = std::strtod(bounds.c_str() + to + 4, nullptr);
    const CLI::Option* opt = find_option(app, sub, name);
    std::string range;
    // PositiveNumber is the range from the smallest double up, which prints as 0.
    if (hi >= 1e300 && opt && opt->get_type_name().find("POSITIVE") != std::string::npos)
      range = "a number above 0";
    else if (hi >= 1e300)
      range = fmt::format("a number, at least {:g}", lo);
    else
      range = fmt::format("a number from {:g} to {:g}", lo, hi);
    return fmt::format("{}: expected {}, got '{}'", name, range, value);
  }
  return "";
}

// CLI11's own message for the errors not rewritten below, on one line.
std::string one_line(std::string text) {
  for (size_t at; (at = text.find('\n')) != std::string::npos;) text.replace(at, 1, "; ");
  return text;
}

std::string describe_usage_error(const CLI::App& app, const CLI::ParseError& e, const std::vector<std::string>& args) {
  std::vector<CLI::App*> selected = app.get_subcommands();
  const CLI::App* sub = selected.empty() ? nullptr : selected.front();
  // A word judged against a subcommand's options names the subcommand; an
  // option's bad value is "--flag: ..." as the subcommands' own checks say it
  // (window_option), the subcommand named by the help to read.
  const std::string where = sub ? sub->get_name() + ": " : "";
  const std::string hint = help_hint(sub);
  // An option's value is named with the subcommand that has the option (the
  // global --history, --json and --wide belong to none).
  auto owner = [&](const std::string& name) {
    return sub && sub->get_option_no_throw(name) ? where : std::string();
  };

  // A word CLI11 did not understand is the mistake to name, whatever it then
  // complained about ("A subcommand is required" for `cronprof --bogus`).
  std::vector<std::string> rest = left_over(app, args);
  for (const std::string& word : rest)
    if (is_option_word(word)) return fmt::format("{}unknown option '{}' ({})", where, word.substr(0, word.find('=')), hint);
  if (!rest.empty()) {
    if (!sub) return fmt::format("unknown subcommand '{}' (expected {})", rest.front(), subcommand_names(app));
    return fmt::format("{}unexpected argument '{}' ({})", where, rest.front(), hint);
  }

  const std::string what = e.what();
  if (dynamic_cast<const CLI::RequiredError*>(&e) && !sub && app.get_require_subcommand_min() > 0)
    return fmt::format("a subcommand is required: {} ({})", subcommand_names(app), hint);
  if (dynamic_cast<const CLI::RequiredError*>(&e)) {
    // "target is required": a missing positional is named with what it is.
    const std::string name = what.substr(0, what.find(" is required"));
    const CLI::Option* opt = find_option(app, sub, name);
    if (opt && opt->get_positional())
      return fmt::format("{}missing {}: {} ({})", where, name, opt->get_description(), hint);
  }
  if (dynamic_cast<const CLI::ConversionError*>(&e)) {
    // "Could not convert: --limit = x"
    constexpr std::string_view kPrefix = "Could not convert: ";
    const size_t eq = what.find(" = ");
    if (what.starts_with(kPrefix) && eq != std::string::npos) {
      const std::string name = what.substr(kPrefix.size(), eq - kPrefix.size());
      std::string expected = expected_value(find_option(app, sub, name));
      return fmt::format("{}{}: expected {}, got '{}' ({})", owner(name), name,
                         expected.empty() ? "a value" : expected, what.substr(eq + 3), hint);
    }
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && what.ends_with(" missing")) {
    // "--limit: 1 required UINT missing"
    const std::string name = what.substr(0, what.find(':'));
    std::string expected = expected_value(find_option(app, sub, name));
    return fmt::format("{}{}: missing its value{} ({})", owner(name), name,
                       expected.empty() ? "" : ", expected " + expected, hint);
  }
  if (dynamic_cast<const CLI::ValidationError*>(&e))
    if (std::string line = rewrite_check(what, app, sub); !line.empty())
      return fmt::format("{}{} ({})", owner(what.substr(0, what.find(": "))), line, hint);
  return fmt::format("{}{} ({})", where, one_line(what), hint);
}

}  // namespace

std::string usage_message(const CLI::App& app, const CLI::ParseError& e, const std::vector<std::string>& args) {
  std::string line = describe_usage_error(app, e, args);
  // A central history URI quoted back (given without --history, or to an option
  // that wants a number) keeps its password off stderr, which cron mails: each
  // word as given, then what CLI11 cut from one ("--limit=postgresql://...").
  for (const std::string& word : args) {
    const std::string shown = redact_uri(word);
    if (shown == word) continue;
    for (size_t at = 0; (at = line.find(word, at)) != std::string::npos; at += shown.size())
      line.replace(at, word.size(), shown);
  }
  return redact_uri(line);
}

namespace {

// CLI11 reads "-1" into an unsigned option as its wrap-around (2^64 - 1): every
// unsigned option of `app` and its subcommands refuses a sign first.
void refuse_negative_unsigned(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    if (!opt->get_type_name().starts_with("UINT")) continue;
    opt->check(CLI::Validator(
        [](std::string& v) {
          size_t at = v.find_first_not_of(" \t");
          return at != std::string::npos && v[at] == '-'
                     ? "expected a whole number, 0 or more, got '" + v + "'"
                     : std::string();
        },
        "", "unsigned"));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) refuse_negative_unsigned(*sub);
}

}  // namespace

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  const std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  refuse_negative_unsigned(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(usage_message(app, e, args));
    return kExitUsage;
  }
  return std::nullopt;
}

std::string exit_status_help(std::string_view subcommand) {
  // The codes of profiler/exit_codes.h each subcommand can give; cronprof(1)
  // EXIT STATUS says the same at length.
  std::vector<std::string> codes = {"0 ok", "1 failed (I/O, a write)", "2 bad usage", "3 no history",
                                    "4 history unreadable", "5 history newer than this cronprof",
                                    "6 history damaged or not a cronrun history"};
  if (subcommand == "plan" || subcommand == "report" || subcommand == "status")
    codes[3] = "3 no central history (a missing local history reads as nothing recorded)";
  if (subcommand.empty()) {
    codes.push_back("7 no such run or job (show, suggest)");
    codes.push_back("8 alert (status: a job failing or missed; fleet: a run lost or a host quiet)");
  } else if (subcommand == "show") {
    codes.push_back("7 no such run or job");
  } else if (subcommand == "suggest") {
    codes.push_back("7 no runs of that job");
  } else if (subcommand == "status") {
    codes.push_back("8 a job failing or missed its schedule");
  } else if (subcommand == "fleet") {
    codes = {"0 ok",
             "1 failed",
             "2 bad usage, or a fleet config that does not parse",
             "3 no fleet config, or no cronrun history in the central database",
             "4 etcd or the central history unreadable (what could be read is shown)",
             "5 central history newer than this cronprof",
             "8 a run lost or a host quiet too long"};
  }
  // One code a line: a code and its meaning are never split by wrapping.
  std::string text = "Exit status:";
  for (const std::string& c : codes) {
    const size_t space = c.find(' ');
    text += fmt::format("\n  {:<3}{}", c.substr(0, space), c.substr(space + 1));
  }
  if (subcommand.empty())
    text += "\nSee cronprof(1), EXIT STATUS.";
  else
    text += "\nThe global options --history, --json and --wide work after the subcommand too (see cronprof --help).";
  return text;
}

int exit_code_for(HistoryFault fault) {
  switch (fault) {
    case HistoryFault::none: return kExitOk;
    case HistoryFault::missing: return kExitHistoryMissing;
    case HistoryFault::unreadable: return kExitUnreadable;
    case HistoryFault::newer_schema: return kExitNewerSchema;
    case HistoryFault::corrupt: return kExitCorrupt;
    case HistoryFault::other: return kExitFailure;
  }
  return kExitFailure;
}

std::expected<HistoryStore, int> open_history(const Global& g, HistoryStore::Mode mode) {
  if (mode == HistoryStore::Mode::read_write && ::access(g.history_path.c_str(), F_OK) != 0) {
    // gc must not create an empty history where the user mistyped a path.
    mode = HistoryStore::Mode::read_only;  // read_only reports "missing" precisely
  }
  HistoryFault fault = HistoryFault::none;
  auto store = HistoryStore::open(g.history_path, mode, &fault);
  if (store) {
    print_journal_notes(*store);
    return std::move(*store);
  }
  std::string hint;
  switch (fault) {
    case HistoryFault::missing:
      hint = " (no run recorded yet? pass --history PATH to read another history)";
      break;
    case HistoryFault::unreadable: hint = " (check its permissions, and those of its -wal/-shm files)"; break;
    case HistoryFault::corrupt: {
      struct stat st {};
      if (::lstat(g.history_path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        hint = " (--history names the history's file, e.g. ~/.local/state/cronrun/history.db)";
        break;
      }
      hint = " (the file is damaged or is not a cronrun history; if it is one, `cronrun --flush --history " +
             g.history_path + "` as its owner moves it aside and starts a new one from the unfolded runs)";
      break;
    }
    default: break;
  }
  print_error(store.error().message() + hint);
  return std::unexpected(exit_code_for(fault));
}

void print_journal_notes(const HistoryStore& store) {
  constexpr size_t kMaxShown = 5;
  const auto& notes = store.journal_report().notes;
  for (size_t i = 0; i < notes.size() && i < kMaxShown; ++i) print_error("run journal: " + notes[i]);
  if (notes.size() > kMaxShown) print_error(fmt::format("run journal: {} more such notes", notes.size() - kMaxShown));
}

int query_failed(const HistoryStore& store, const Error& e) {
  print_error(e.message());
  HistoryFault f = store.last_fault();
  return f == HistoryFault::none ? kExitFailure : exit_code_for(f);
}

HistoryStore::CorruptRowFn SkippedRows::callback() {
  return [this](const std::string& run_id, const Error& why) {
    if (++count_ <= kMaxNamed) print_error("skipped unreadable history row, run " + run_id + ": " + why.message());
  };
}

void SkippedRows::report(const std::string& history_path) const {
  if (count_ == 0) return;
  std::string more = count_ > kMaxNamed ? fmt::format(" ({} not named above)", count_ - kMaxNamed) : "";
  print_error(fmt::format("skipped {} unreadable row{} of {}{}; the other rows are shown", count_,
                          count_ == 1 ? "" : "s", history_path, more));
}

double now_unix_s() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

CentralScope window_scope(const std::string& since, const std::string& job, const std::string& status) {
  CentralScope s;
  auto cutoff = since_cutoff(since, now_unix_s());
  if (!cutoff) {
    s.nothing = true;
    return s;
  }
  s.since_unix_s = *cutoff;
  if (!job.empty()) s.job = job;
  if (!status.empty()) {
    auto st = parse_run_status(status);
    if (!st) s.nothing = true;
    else s.status = *st;
  }
  return s;
}

Result<double> since_cutoff(const std::string& text, double now_s) {
  auto d = units::parse_duration(text);
  if (!d) return std::unexpected(d.error());
  return now_s - static_cast<double>(d->count()) / 1000.0;
}

std::expected<double, int> window_option(const char* flag, const std::string& text, double now_s) {
  auto cutoff = since_cutoff(text, now_s);
  if (cutoff) return *cutoff;
  print_usage_error(std::string(flag) + ": " + cutoff.error().message());
  return std::unexpected(kExitUsage);
}

std::string format_utc(double unix_s) {
  // A row's time is whatever the file holds: outside years 0..9999 (or NaN) it is
  // no time a person could read, and converting it to time_t would be undefined.
  constexpr double kYear0 = -62167219200.0, kYear10000 = 253402300800.0;
  if (!(unix_s >= kYear0 && unix_s < kYear10000)) return "-";
  time_t t = static_cast<time_t>(std::floor(unix_s));
  struct tm tm {};
  if (!gmtime_r(&t, &tm)) return "-";
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

nlohmann::json json_time(double unix_s) {
  constexpr double kYear0 = -62167219200.0, kYear10000 = 253402300800.0;
  if (!(unix_s >= kYear0 && unix_s < kYear10000)) return nullptr;
  // To the nearest millisecond: a time read back from the history's REAL column
  // (…00.123 stored as …00.12299999) prints as the record wrote it.
  auto ms = std::chrono::milliseconds(std::llround(unix_s * 1000.0));
  return format_rfc3339(std::chrono::system_clock::time_point(ms));
}

size_t terminal_width(const char* columns_env, int fd) {
  if (columns_env && *columns_env) {
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(columns_env, &end, 10);
    if (errno == 0 && *end == '\0' && v > 0 && v < 100000 && columns_env[0] != '-') return v;
  }
  struct winsize ws {};
  if (::isatty(fd) && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

size_t output_width(const Global& g) {
  if (g.wide) return 0;
  return terminal_width(std::getenv("COLUMNS"), STDOUT_FILENO);
}

// Prose under the table: wrapped at blanks to `width`, continuation lines
// indented, so a long path or reason is read whole rather than cut.
std::string wrap_prose(const std::string& s, size_t width) {
  // The line's own indentation starts every piece; continuations go 4 further.
  const size_t lead = std::min(s.find_first_not_of(' '), s.size());
  const std::string first(lead, ' ');
  const std::string indent = first + "    ";
  if (width <= indent.size() + 8) return s + "\n";
  std::string out, line = first;
  size_t pos = lead;
  while (pos < s.size()) {
    size_t end = s.find(' ', pos);
    if (end == std::string::npos) end = s.size();
    std::string word = s.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() > first.size() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = indent;
    } else if (line.size() > first.size() && line != indent) {
      line += ' ';
    }
    line += word;
    // A word longer than a line (a long path) is cut into line-sized pieces.
    while (line.size() > width) {
      out += line.substr(0, width) + "\n";
      line = indent + line.substr(width);
    }
  }
  return out + line + "\n";
}

size_t display_width(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // count lead bytes
  return n;
}

std::string shorten(std::string_view text, size_t width) {
  if (display_width(text) <= width) return std::string(text);
  if (width == 0) return "";
  std::string out;
  size_t cols = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bool lead = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (lead && ++cols == width) break;
    out += text[i];
  }
  return out + "\u2026";
}

std::string size_or_dash(const std::optional<uint64_t>& bytes) {
  return bytes ? units::format_size(*bytes) : "-";
}
std::string size_or_dash(const std::optional<double>& bytes) {
  if (!bytes || !(*bytes >= 0)) return "-";
  // No real run's byte count, and beyond what uint64_t holds.
  if (*bytes >= 18446744073709551616.0) return ">" + units::format_size(UINT64_MAX);
  return units::format_size(static_cast<uint64_t>(std::round(*bytes)));
}
std::string duration_or_dash(const std::optional<double>& seconds) {
  return seconds ? units::format_duration_s(*seconds) : "-";
}
std::string number_or_dash(const std::optional<double>& v, int decimals) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : "-";
}

namespace {
std::vector<Column> plain_columns(std::vector<std::string> header, std::vector<bool> right_aligned) {
  right_aligned.resize(header.size(), false);
  std::vector<Column> columns;
  for (size_t i = 0; i < header.size(); ++i) columns.push_back(Column{.header = std::move(header[i]), .right = right_aligned[i]});
  return columns;
}
}  // namespace

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : Table(plain_columns(std::move(header), std::move(right_aligned))) {}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {
  for (const Column& c : columns_) {
    header_.push_back(c.header);
    right_.push_back(c.right);
    shown_.push_back(c.stand_in_for < 0);
  }
  width_.resize(header_.size(), 0);
  widen(header_);
  cut_ = width_;
}

void Table::escape(std::vector<std::string>& row) const {
  row.resize(header_.size());
  // Cells carry history content (job names, run ids): never raw to the terminal.
  for (auto& cell : row) cell = term_text(cell);
}

void Table::widen(const std::vector<std::string>& row) {
  for (size_t i = 0; i < row.size(); ++i) width_[i] = std::max(width_[i], display_width(row[i]));
  cut_ = width_;
}

void Table::add(std::vector<std::string> row) {
  escape(row);
  widen(row);
  rows_.push_back(std::move(row));
}

void Table::measure(std::vector<std::string> row) {
  escape(row);
  widen(row);
}

void Table::fit(size_t width) {
  const size_t n = columns_.size();
  std::vector<bool> dropped(n, false);
  auto visible = [&](size_t i) {
    int principal = columns_[i].stand_in_for;
    return !dropped[i] && (principal < 0 || dropped[static_cast<size_t>(principal)]);
  };
  // The line's width with every visible column at its natural width, or with the
  // shortenable ones at their minimum.
  auto total = [&](bool at_min) {
    size_t sum = 0, count = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!visible(i)) continue;
      size_t w = width_[i];
      if (at_min && columns_[i].min_width > 0) w = std::min(w, columns_[i].min_width);
      sum += w;
      ++count;
    }
    return sum + (count ? 2 * (count - 1) : 0);
  };
  cut_ = width_;
  line_max_ = width;
  if (width > 0) {
    std::vector<size_t> order;
    for (size_t i = 0; i < n; ++i)
      if (columns_[i].drop > 0) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return columns_[a].drop > columns_[b].drop; });
    for (size_t k = 0; k < order.size() && total(true) > width; ++k) dropped[order[k]] = true;
    // Then the widest shortenable column loses a column at a time.
    for (size_t t = total(false); t > width; --t) {
      size_t best = n;
      for (size_t i = 0; i < n; ++i) {
        if (!visible(i) || columns_[i].min_width == 0 || cut_[i] <= columns_[i].min_width) continue;
        if (best == n || cut_[i] > cut_[best]) best = i;
      }
      if (best == n) break;
      --cut_[best];
    }
  }
  for (size_t i = 0; i < n; ++i) shown_[i] = visible(i);
}

std::string Table::line(std::vector<std::string> row) const {
  escape(row);
  return format_line(row);
}

std::string Table::format_line(const std::vector<std::string>& row) const {
  std::string l;
  size_t last = row.size();
  while (last > 0 && !shown_[last - 1]) --last;
  for (size_t i = 0; i < last; ++i) {
    if (!shown_[i]) continue;
    std::string cell = display_width(row[i]) > cut_[i] ? shorten(row[i], cut_[i]) : row[i];
    size_t w = display_width(cell);
    // A row wider than measured (not measured first) is printed whole, unaligned.
    size_t pad = cut_[i] > w ? cut_[i] - w : 0;
    bool is_last = i + 1 == last;
    if (right_[i]) l.append(pad, ' ');
    l += cell;
    if (!right_[i] && !is_last) l.append(pad, ' ');
    if (!is_last) l += "  ";
  }
  while (!l.empty() && l.back() == ' ') l.pop_back();
  if (line_max_ > 0 && display_width(l) > line_max_) l = shorten(l, line_max_);
  l += '\n';
  return l;
}

std::string Table::render() const {
  std::string out = format_line(header_);
  for (const auto& r : rows_) out += format_line(r);
  return out;
}

JsonListPrinter::JsonListPrinter(std::FILE* out, const std::string& key)
    : JsonListPrinter(out, key, nlohmann::json::object()) {}

JsonListPrinter::JsonListPrinter(std::FILE* out, const std::string& key, const nlohmann::json& others) : out_(out) {
  nlohmann::json doc = others;
  doc[key] = nlohmann::json::array();
  std::string text = json_text(doc, 2);
  // `{\n  ...\n  "KEY": [],\n  ...\n}`: the head ends at that '[', the tail starts after its ']'.
  std::string marker = json_text(nlohmann::json(key)) + ": []";
  size_t at = text.find("\n  " + marker);
  size_t open = at + 3 + marker.size() - 2;  // the '['
  std::string head = text.substr(0, open + 1);
  tail_ = text.substr(open + 2);
  std::fputs(head.c_str(), out_);
}

void JsonListPrinter::add(const nlohmann::json& element) {
  std::string text = json_text(element, 2);
  std::string indented = first_ ? "\n    " : ",\n    ";
  indented.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    indented += c;
    if (c == '\n') indented += "    ";  // json_text escapes the newlines inside strings
  }
  std::fputs(indented.c_str(), out_);
  first_ = false;
}

void JsonListPrinter::finish() {
  std::fputs(first_ ? "]" : "\n  ]", out_);
  std::fputs(tail_.c_str(), out_);
  std::fputs("\n", out_);
}

}  // namespace cronrun::prof
