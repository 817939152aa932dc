// The plan for people (aligned tables, "1.5 GiB", "Mon 02:00") and for machines
// (`--json`: every figure in bytes, cores and seconds, minutes of the week as
// numbers next to their "Mon 02:00" text). The JSON is a superset of the text, so
// scripts never need to parse the table.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/plan.h"
#include "profiler/text_escape.h"

namespace cronrun::plan {

namespace {

using nlohmann::json;
using prof::shorten;
using prof::term_text;

std::string size(uint64_t b) { return units::format_size(b); }
std::string cores(double c) { return fmt::format("{:.2f}", c); }
std::string dur(const std::optional<double>& s) { return s ? units::format_duration_s(*s) : "-"; }

std::string signed_size(int64_t b) {
  // fmt, not "-" + std::string: g++ 12 -O2 warns falsely on operator+(const char*, string&&) (GCC PR 105329).
  return b < 0 ? fmt::format("-{}", size(static_cast<uint64_t>(-b))) : size(static_cast<uint64_t>(b));
}

json week_json(const WeekStart& w) { return fmt::format("{:04}-{:02}-{:02}", w.year, w.month, w.day); }

json contributor_json(const Contributor& c) {
  return {{"job", c.job},
          {"where", c.where},
          {"started_minute", c.start_minute},
          {"started", weekday_hhmm(c.start_minute)},
          {"memory_bytes", c.memory_bytes},
          {"cpu_cores", c.cpu_cores}};
}

json peak_json(const Peak& p) {
  json jobs = json::array();
  for (const auto& c : p.jobs) jobs.push_back(contributor_json(c));
  return {{"minute", p.minute},
          {"at", weekday_hhmm(p.minute)},
          {"memory_bytes", p.memory_bytes},
          {"cpu_cores", p.cpu_cores},
          {"jobs", jobs}};
}

json scenario_json(const Scenario& s, const Host& h) {
  json runs = json::object();
  for (const auto& [job, r] : s.runs) runs[job] = {{"starts", r.starts}, {"lost", r.lost}};
  return {{"memory_peak", peak_json(s.memory_peak)},
          {"cpu_peak", peak_json(s.cpu_peak)},
          {"memory_headroom_bytes", static_cast<int64_t>(h.memory_bytes) - static_cast<int64_t>(s.memory_peak.memory_bytes)},
          {"cpu_headroom_cores", h.cpus - s.cpu_peak.cpu_cores},
          {"lost_runs", s.lost_total},
          {"runs", runs}};
}

}  // namespace

nlohmann::json to_json(const PlanResult& p, const std::vector<crontab::Rejected>& rejected) {
  json entries = json::array();
  for (const auto& e : p.entries) {
    json j = {{"where", e.where},
              {"schedule", e.schedule},
              {"command", e.command},
              {"job", e.job.empty() ? json(nullptr) : json(e.job)},
              {"status", to_string(e.status)},
              {"starts_per_week", e.starts_per_week}};
    if (!e.note.empty()) j["note"] = e.note;
    entries.push_back(std::move(j));
  }
  json outlasting = json::array();
  for (const auto& o : p.outlasting) {
    outlasting.push_back({{"job", o.job},
                          {"where", o.where},
                          {"interval_s", o.interval_s},
                          {"wall_p50_s", o.wall_p50_s ? json(*o.wall_p50_s) : json(nullptr)},
                          {"wall_p95_s", o.wall_p95_s ? json(*o.wall_p95_s) : json(nullptr)},
                          {"starts_per_week", o.starts},
                          {"lock", o.lock},
                          {"lost_per_week", {{"typical", o.lost_typical}, {"pessimistic", o.lost_pessimistic}}}});
  }
  json moves = json::array();
  for (const auto& m : p.stagger.moves) {
    moves.push_back({{"job", m.job}, {"where", m.where}, {"from", m.before}, {"to", m.after}, {"shift_minutes", m.shift_minutes}});
  }
  json rej = json::array();
  for (const auto& r : rejected) {
    rej.push_back({{"file", r.file}, {"line", r.line}, {"text", r.text}, {"reason", r.reason}});
  }
  json demand = json::array();
  for (const auto& row : hourly_memory_max(p.pessimistic)) demand.push_back(row);
  return {
      {"schema", "cronrun.plan/1"},
      {"week_start", week_json(p.week)},
      {"host", {{"memory_bytes", p.host.memory_bytes}, {"cpus", p.host.cpus}, {"source", p.host.source}}},
      {"typical", scenario_json(p.typical, p.host)},
      {"pessimistic", scenario_json(p.pessimistic, p.host)},
      {"outlasting_interval", outlasting},
      {"stagger",
       {{"method", p.stagger.method},
        {"scenario", "pessimistic"},
        {"memory_peak_before_bytes", p.stagger.memory_peak_before_bytes},
        {"memory_peak_before", weekday_hhmm(p.stagger.memory_peak_before_minute)},
        {"memory_peak_after_bytes", p.stagger.memory_peak_after_bytes},
        {"memory_peak_after", weekday_hhmm(p.stagger.memory_peak_after_minute)},
        {"cpu_peak_before_cores", p.stagger.cpu_peak_before_cores},
        {"cpu_peak_after_cores", p.stagger.cpu_peak_after_cores},
        {"typical_memory_peak_after_bytes", p.stagger.typical_memory_peak_after_bytes},
        {"moves", moves}}},
      {"hourly_memory_max_bytes", demand},
      {"entries", entries},
      {"rejected", rej},
      {"notes", p.notes},
  };
}

namespace {

using Lines = std::string;
void put(Lines& out, const std::string& s) { out += s + "\n"; }

// A job name in the 24-column field of the tables below: escaped, and shortened
// with an ellipsis when longer (fmt pads by code points, as display_width counts).
std::string name24(const std::string& job) { return shorten(term_text(job), 24); }

void scenario_table(Lines& out, const PlanResult& p) {
  auto row = [&](const std::string& label, const std::string& a, const std::string& b) {
    put(out, fmt::format("{:<22}{:<30}{}", label, a, b));
  };
  row("", "typical (wall p50)", "pessimistic (wall p95)");
  const Scenario* sc[2] = {&p.typical, &p.pessimistic};
  std::string cells[2][5];
  for (int i = 0; i < 2; ++i) {
    const Scenario& s = *sc[i];
    cells[i][0] = fmt::format("{}  {}", size(s.memory_peak.memory_bytes), weekday_hhmm(s.memory_peak.minute));
    int64_t room = static_cast<int64_t>(p.host.memory_bytes) - static_cast<int64_t>(s.memory_peak.memory_bytes);
    cells[i][1] = p.host.memory_bytes
                      ? fmt::format("{} ({:.0f}%)", signed_size(room),
                                    100.0 * static_cast<double>(room) / static_cast<double>(p.host.memory_bytes))
                      : "-";
    cells[i][2] = fmt::format("{} cores  {}", cores(s.cpu_peak.cpu_cores), weekday_hhmm(s.cpu_peak.minute));
    cells[i][3] = fmt::format("{} cores", cores(p.host.cpus - s.cpu_peak.cpu_cores));
    cells[i][4] = std::to_string(s.lost_total);
  }
  row("peak memory", cells[0][0], cells[1][0]);
  row("  memory headroom", cells[0][1], cells[1][1]);
  row("peak CPU", cells[0][2], cells[1][2]);
  row("  CPU headroom", cells[0][3], cells[1][3]);
  row("lost runs per week", cells[0][4], cells[1][4]);
}

void contributors(Lines& out, const char* title, const Peak& pk) {
  if (pk.jobs.empty()) return;
  put(out, "");
  put(out, fmt::format("{} {} (pessimistic): {} memory, {} cores", title, weekday_hhmm(pk.minute),
                       size(pk.memory_bytes), cores(pk.cpu_cores)));
  for (size_t i = 0; i < pk.jobs.size(); ++i) {
    if (i == 10) {
      put(out, fmt::format("  ... and {} more", pk.jobs.size() - 10));
      break;
    }
    const auto& c = pk.jobs[i];
    put(out, fmt::format("  {:<24} {:>11}  {:>6} cores  started {}  {}", name24(c.job), size(c.memory_bytes),
                         cores(c.cpu_cores), weekday_hhmm(c.start_minute), c.where));
  }
}

void outlasting(Lines& out, const PlanResult& p) {
  put(out, "");
  if (p.outlasting.empty()) {
    put(out, "No job's p95 wall time exceeds its interval.");
    return;
  }
  put(out, "Jobs whose p95 wall time exceeds their interval (lost runs per week, typical / pessimistic):");
  for (const auto& o : p.outlasting) {
    put(out, fmt::format("  {:<24} every {:>8}  p50 {:>8}  p95 {:>8}  {}  {}", name24(o.job),
                         units::format_duration_s(o.interval_s), dur(o.wall_p50_s), dur(o.wall_p95_s),
                         o.lock ? fmt::format("lost {}/{} of {}", o.lost_typical, o.lost_pessimistic, o.starts)
                                : std::string("no lock: runs overlap"),
                         o.where.front()));
  }
}

void stagger(Lines& out, const Stagger& st) {
  put(out, "");
  if (st.moves.empty()) {
    put(out, fmt::format("Stagger: no move lowers the pessimistic memory peak ({} at {}).",
                         size(st.memory_peak_before_bytes), weekday_hhmm(st.memory_peak_before_minute)));
  } else {
    put(out, fmt::format("Stagger proposal: pessimistic memory peak {} at {} -> {} at {} (CPU {} -> {} cores)",
                         size(st.memory_peak_before_bytes), weekday_hhmm(st.memory_peak_before_minute),
                         size(st.memory_peak_after_bytes), weekday_hhmm(st.memory_peak_after_minute),
                         cores(st.cpu_peak_before_cores), cores(st.cpu_peak_after_cores)));
    for (const auto& m : st.moves)
      put(out, fmt::format("  {:<24} {:<18} -> {:<18} {}", name24(m.job), m.before, m.after, m.where));
  }
  put(out, fmt::format("  ({})", st.method));
}

std::string why_not(const EntryReport& e) {
  switch (e.status) {
    case EntryStatus::not_cronrun: return "not run through cronrun";
    case EntryStatus::no_history:
      return "cronrun job '" + e.job + "', no runs in the window" + (e.note.empty() ? "" : ": " + e.note);
    case EntryStatus::reboot: return "@reboot";
    case EntryStatus::not_this_week: return "job '" + e.job + "' does not fire this week";
    case EntryStatus::bad_call: return "unreadable cronrun call: " + e.note;
    case EntryStatus::profiled: break;
  }
  return "";
}

void unprofiled(Lines& out, const PlanResult& p) {
  bool header = false;
  for (const auto& e : p.entries) {
    if (e.status == EntryStatus::profiled) continue;
    if (!header) {
      put(out, "");
      put(out, "Not profiled:");
      header = true;
    }
    std::string cmd = shorten(term_text(e.command), 70);
    put(out, fmt::format("  {}  {}  ({}/week) {}", e.where, e.schedule, e.starts_per_week, why_not(e)));
    put(out, fmt::format("      {}", cmd));
  }
  header = false;
  for (const auto& e : p.entries) {
    if (e.status != EntryStatus::profiled || e.note.empty()) continue;
    if (!header) {
      put(out, "");
      put(out, "Profiled, with caveats:");
      header = true;
    }
    put(out, fmt::format("  {}: {}: {}", e.where, e.job, e.note));
  }
}

void rejected_lines(Lines& out, const std::vector<crontab::Rejected>& rejected) {
  if (rejected.empty()) return;
  put(out, "");
  put(out, "Rejected lines (cron would not run them):");
  for (const auto& r : rejected) {
    if (r.line > 0) {
      put(out, fmt::format("  {}:{}: {}  [{}]", r.file, r.line, r.reason, r.text));
    } else {
      put(out, fmt::format("  {}: {}", r.file, r.reason));
    }
  }
}

}  // namespace

std::string format_text(const PlanResult& p, const std::vector<crontab::Rejected>& rejected, size_t width) {
  Lines out;
  size_t profiled = 0;
  for (const auto& e : p.entries) profiled += e.status == EntryStatus::profiled;
  put(out, fmt::format("Capacity plan for the week of Mon {:04}-{:02}-{:02}", p.week.year, p.week.month, p.week.day));
  put(out, fmt::format("{} crontab entries: {} profiled, {} not profiled; {} rejected lines", p.entries.size(),
                       profiled, p.entries.size() - profiled, rejected.size()));
  put(out, fmt::format("Host: {} memory, {} CPUs ({})", size(p.host.memory_bytes), p.host.cpus, p.host.source));
  put(out, "");
  if (profiled == 0) {
    put(out, "No entry is a cronrun job with history in the window: no demand to plan yet.");
  } else {
    scenario_table(out, p);
    contributors(out, "Memory peak", p.pessimistic.memory_peak);
    // Below what the table shows (0.00 cores) the CPU peak names nobody useful.
    if (p.pessimistic.cpu_peak.cpu_cores >= 0.005) contributors(out, "CPU peak", p.pessimistic.cpu_peak);
    outlasting(out, p);
    stagger(out, p.stagger);
  }
  // From here on the plan is prose (entries with their reasons, rejected lines,
  // notes): wrapped to the width, never cut, so a reason or path is read whole.
  const size_t prose_from = out.size();
  unprofiled(out, p);
  rejected_lines(out, rejected);
  if (!p.notes.empty()) put(out, "");
  for (const auto& n : p.notes) put(out, "note: " + n);
  if (width == 0) return out;
  // Fit the terminal (DESIGN section 6): each line escaped first (what the caller's
  // term_lines would do, and what the terminal shows), then cut, never wrapped.
  Lines fitted;
  size_t start = 0;
  while (start < out.size()) {
    size_t nl = out.find('\n', start);
    std::string line = term_text(std::string_view(out).substr(start, nl - start));
    fitted += start >= prose_from ? prof::wrap_prose(line, width) : shorten(line, width) + "\n";
    start = nl + 1;
  }
  return fitted;
}

}  // namespace cronrun::plan
