// The week simulation and the stagger search.
//
// Every crontab entry is expanded into its starts in one concrete week (so day of
// month and month fields count as they will that week). Each start of a profiled
// job occupies, from its start minute, memory (peak p95) for every minute it
// touches and CPU (p95 cores) pro rata over the seconds it runs, for its wall p50
// (typical) or p95 (pessimistic) duration. Runs that reach past Sunday 23:59 wrap
// onto Monday: the week repeats, so the plan is the steady state, not a cold start.
//
// The lock: entries that share a lock (the same job name, or the same --lock
// PATH) cannot run at once. A start that finds the previous run still going is a
// lost run (cronrun records it as skipped). Sharing is simulated over two laps of
// the week so a run that spills over from Sunday can block Monday's first start.
//
// Stagger: a greedy search. Repeatedly take the minute of the highest pessimistic
// memory demand, try moving each of the (up to 8 largest) profiled entries running
// then to another minute and/or hour of the same day (shifting the whole minute
// and hour fields, so the proposal is still a plain crontab line and runs keep
// their spacing), and keep the move that lowers the peak most; a move that leaves
// the peak but removes one of several equally high minutes counts as progress.
// Each entry moves at most once; the search stops when nothing improves. Demand is
// kept in a segment tree (range add, max and count of max) so one candidate costs
// O(runs x log 10080) instead of a rescan of the week.
#include "profiler/plan.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include <fmt/format.h>

namespace cronrun::plan {

namespace {

constexpr int W = kMinutesPerWeek;
constexpr size_t kCandidatesPerStep = 8;

struct DayInfo {
  int dom;
  int month;
  int dow;  // 0 = Sunday
};

std::array<DayInfo, 7> week_days(const WeekStart& w) {
  using namespace std::chrono;
  sys_days d0 = year_month_day{year{w.year}, month{w.month}, day{w.day}};
  std::array<DayInfo, 7> out{};
  for (int i = 0; i < 7; ++i) {
    sys_days d = d0 + days{i};
    year_month_day ymd{d};
    out[static_cast<size_t>(i)] = {static_cast<int>(static_cast<unsigned>(ymd.day())),
                                   static_cast<int>(static_cast<unsigned>(ymd.month())),
                                   static_cast<int>(weekday{d}.c_encoding())};
  }
  return out;
}

std::vector<int> starts_of(const crontab::Schedule& s, const std::array<DayInfo, 7>& days) {
  std::vector<int> out;
  if (s.reboot) return out;
  for (int d = 0; d < 7; ++d) {
    const auto& di = days[static_cast<size_t>(d)];
    if (!s.matches_day(di.dom, di.month, di.dow)) continue;
    for (int h = 0; h < 24; ++h) {
      if (!s.hours[static_cast<size_t>(h)]) continue;
      for (int m = 0; m < 60; ++m)
        if (s.minutes[static_cast<size_t>(m)]) out.push_back(d * 1440 + h * 60 + m);
    }
  }
  return out;
}

std::string where_of(const crontab::Entry& e) { return fmt::format("{}:{}", e.file, e.line); }

// The schedule as written, blanks between fields collapsed ("09,39 *     * * *"
// reads "09,39 * * * *"); @words as they are.
std::string schedule_of(const crontab::Entry& e) {
  if (e.time_text.starts_with('@')) return e.time_text;
  std::string out;
  for (const auto& f : e.fields) out += fmt::format("{}{}", out.empty() ? "" : " ", f);
  return out;
}

int minutes_touched(double dur_s) {
  int n = static_cast<int>(std::ceil(std::max(dur_s, 0.0) / 60.0));
  return std::clamp(n, 1, W);
}

struct Run {
  int start;  // minute of the week
  double dur_s;
  uint32_t entry;
};

// Range add + (max, count of max) over the minutes of the week.
class DemandTree {
 public:
  explicit DemandTree(int n) : n_(n) {
    size_ = 1;
    while (size_ < n) size_ <<= 1;
    mx_.assign(2 * static_cast<size_t>(size_), 0);
    cnt_.assign(2 * static_cast<size_t>(size_), 0);
    lz_.assign(2 * static_cast<size_t>(size_), 0);
    build(1, 0, size_);
  }
  void add(int from, int to, int64_t v) {  // [from, to)
    if (from < to && v != 0) add(1, 0, size_, from, to, v);
  }
  std::pair<int64_t, int64_t> top() const { return {mx_[1], cnt_[1]}; }
  int argmax() const {  // first minute holding the max
    size_t node = 1;
    int64_t target = mx_[1];
    while (node < static_cast<size_t>(size_)) {
      target -= lz_[node];
      node = (mx_[2 * node] == target) ? 2 * node : 2 * node + 1;
    }
    return static_cast<int>(node) - size_;
  }

 private:
  static constexpr int64_t kPad = std::numeric_limits<int64_t>::min() / 4;
  void build(size_t node, int l, int r) {
    if (r - l == 1) {
      mx_[node] = l < n_ ? 0 : kPad;
      cnt_[node] = 1;
      return;
    }
    int mid = (l + r) / 2;
    build(2 * node, l, mid);
    build(2 * node + 1, mid, r);
    pull(node);
  }
  void pull(size_t node) {
    int64_t a = mx_[2 * node], b = mx_[2 * node + 1];
    mx_[node] = std::max(a, b) + lz_[node];
    cnt_[node] = (a == b) ? cnt_[2 * node] + cnt_[2 * node + 1] : (a > b ? cnt_[2 * node] : cnt_[2 * node + 1]);
  }
  void add(size_t node, int l, int r, int from, int to, int64_t v) {
    if (to <= l || r <= from) return;
    if (from <= l && r <= to) {
      mx_[node] += v;
      lz_[node] += v;
      return;
    }
    int mid = (l + r) / 2;
    add(2 * node, l, mid, from, to, v);
    add(2 * node + 1, mid, r, from, to, v);
    pull(node);
  }
  int n_;
  int size_;
  std::vector<int64_t> mx_, cnt_, lz_;
};

// Everything make_plan() derives once from its inputs.
struct Model {
  const std::vector<PlannedEntry>* entries = nullptr;
  std::vector<EntryReport> reports;
  std::vector<const JobProfile*> profile;  // per entry; null unless profiled
  std::vector<uint64_t> memory_bytes;      // per entry
  std::vector<int64_t> cpu_millicores;     // per entry, while running
  std::vector<double> dur_typical_s, dur_pessimistic_s;
  std::vector<std::vector<int>> starts;    // per entry, sorted
  std::vector<std::vector<uint32_t>> groups;  // entries sharing a lock (or alone, without one)
  std::vector<bool> group_lock;
  std::vector<size_t> group_of;            // per entry; SIZE_MAX when not simulated
};

enum class Kind { typical, pessimistic };

const std::vector<double>& durations(const Model& m, Kind k) {
  return k == Kind::typical ? m.dur_typical_s : m.dur_pessimistic_s;
}

// One lock group over the week: accepted runs and lost starts per entry.
void simulate_group(const Model& m, size_t g, const std::vector<std::vector<int>>& starts, Kind k,
                    std::vector<Run>& runs, std::vector<size_t>* lost) {
  const auto& dur = durations(m, k);
  std::vector<std::pair<int, uint32_t>> all;
  for (uint32_t e : m.groups[g])
    for (int s : starts[e]) all.emplace_back(s, e);
  // One entry's starts are already in order (and stay so under a constant shift).
  if (m.groups[g].size() > 1) std::sort(all.begin(), all.end());
  if (!m.group_lock[g]) {
    for (auto [s, e] : all) runs.push_back({s, dur[e], e});
    return;
  }
  // Lap 0 only carries a run spilling over Sunday night into lap 1, which counts.
  double busy_until_s = -1;
  for (int lap = 0; lap < 2; ++lap) {
    for (auto [s, e] : all) {
      double t = (static_cast<double>(s) + lap * W) * 60.0;
      if (t < busy_until_s) {
        if (lap == 1 && lost) ++(*lost)[e];
        continue;
      }
      busy_until_s = t + std::min(dur[e], W * 60.0);
      if (lap == 1) runs.push_back({s, dur[e], e});
    }
  }
}

template <class AddRange>
void for_memory(const Model& m, const Run& r, AddRange&& add) {
  int n = minutes_touched(r.dur_s);
  int64_t v = static_cast<int64_t>(m.memory_bytes[r.entry]);
  int end = r.start + n;
  add(r.start, std::min(end, W), v);
  if (end > W) add(0, end - W, v);
}

// CPU: full minutes at the job's rate, the last partial minute pro rata.
template <class AddRange>
void for_cpu(const Model& m, const Run& r, AddRange&& add) {
  int64_t rate = m.cpu_millicores[r.entry];
  if (rate == 0) return;
  double dur = std::min(std::max(r.dur_s, 0.0), W * 60.0);
  int full = static_cast<int>(dur / 60.0);
  auto wrapped = [&](int from, int to, int64_t v) {
    add(from, std::min(to, W), v);
    if (to > W) add(std::max(from, W) - W, to - W, v);
  };
  wrapped(r.start, r.start + full, rate);
  double frac = (dur - full * 60.0) / 60.0;
  if (frac > 0 && full < W) {
    int minute = (r.start + full) % W;
    add(minute, minute + 1, static_cast<int64_t>(std::llround(static_cast<double>(rate) * frac)));
  }
}

bool covers(const Run& r, int minute) {
  int n = minutes_touched(r.dur_s);
  return ((minute - r.start) % W + W) % W < n;
}

double cpu_in_minute(const Model& m, const Run& r, int minute) {
  int offset = ((minute - r.start) % W + W) % W;
  double secs = std::clamp(r.dur_s - offset * 60.0, 0.0, 60.0);
  return static_cast<double>(m.cpu_millicores[r.entry]) / 1000.0 * secs / 60.0;
}

Peak peak_at(const Model& m, const std::vector<Run>& runs, int minute, uint64_t mem, double cpu) {
  Peak p{minute, mem, cpu, {}};
  for (const auto& r : runs) {
    if (!covers(r, minute)) continue;
    const auto& e = (*m.entries)[r.entry].entry;
    p.jobs.push_back({m.reports[r.entry].job, where_of(e), r.start, m.memory_bytes[r.entry], cpu_in_minute(m, r, minute)});
  }
  std::sort(p.jobs.begin(), p.jobs.end(), [](const Contributor& a, const Contributor& b) {
    return std::tie(b.memory_bytes, b.cpu_cores, a.job) < std::tie(a.memory_bytes, a.cpu_cores, b.job);
  });
  return p;
}

Scenario simulate(const Model& m, const std::vector<std::vector<int>>& starts, Kind k) {
  Scenario s;
  s.name = k == Kind::typical ? "typical" : "pessimistic";
  std::vector<Run> runs;
  std::vector<size_t> lost(starts.size(), 0);
  for (size_t g = 0; g < m.groups.size(); ++g) simulate_group(m, g, starts, k, runs, &lost);

  std::vector<int64_t> mem_diff(W + 1, 0), cpu_diff(W + 1, 0);
  for (const auto& r : runs) {
    for_memory(m, r, [&](int a, int b, int64_t v) {
      mem_diff[static_cast<size_t>(a)] += v;
      mem_diff[static_cast<size_t>(b)] -= v;
    });
    for_cpu(m, r, [&](int a, int b, int64_t v) {
      if (a >= b) return;
      cpu_diff[static_cast<size_t>(a)] += v;
      cpu_diff[static_cast<size_t>(b)] -= v;
    });
  }
  s.memory_bytes.resize(W);
  s.cpu_cores.resize(W);
  int64_t mem = 0, cpu = 0;
  int mem_peak = 0, cpu_peak = 0;
  std::vector<int64_t> cpu_mc(W);
  for (int i = 0; i < W; ++i) {
    mem += mem_diff[static_cast<size_t>(i)];
    cpu += cpu_diff[static_cast<size_t>(i)];
    s.memory_bytes[static_cast<size_t>(i)] = static_cast<uint64_t>(std::max<int64_t>(mem, 0));
    cpu_mc[static_cast<size_t>(i)] = cpu;
    s.cpu_cores[static_cast<size_t>(i)] = static_cast<double>(cpu) / 1000.0;
    if (s.memory_bytes[static_cast<size_t>(i)] > s.memory_bytes[static_cast<size_t>(mem_peak)]) mem_peak = i;
    if (cpu_mc[static_cast<size_t>(i)] > cpu_mc[static_cast<size_t>(cpu_peak)]) cpu_peak = i;
  }
  s.memory_peak = peak_at(m, runs, mem_peak, s.memory_bytes[static_cast<size_t>(mem_peak)],
                          s.cpu_cores[static_cast<size_t>(mem_peak)]);
  s.cpu_peak = peak_at(m, runs, cpu_peak, s.memory_bytes[static_cast<size_t>(cpu_peak)],
                       s.cpu_cores[static_cast<size_t>(cpu_peak)]);
  std::sort(s.cpu_peak.jobs.begin(), s.cpu_peak.jobs.end(),
            [](const Contributor& a, const Contributor& b) { return a.cpu_cores > b.cpu_cores; });
  for (size_t e = 0; e < starts.size(); ++e) {
    if (m.group_of[e] == SIZE_MAX) continue;
    auto& jr = s.runs[m.reports[e].job];
    jr.starts += starts[e].size();
    jr.lost += lost[e];
    s.lost_total += lost[e];
  }
  return s;
}

Model build_model(const std::vector<PlannedEntry>& entries, const std::vector<JobProfile>& profiles,
                  const Options& options, std::vector<std::string>& notes) {
  Model m;
  m.entries = &entries;
  const size_t n = entries.size();
  m.reports.resize(n);
  m.profile.assign(n, nullptr);
  m.memory_bytes.assign(n, 0);
  m.cpu_millicores.assign(n, 0);
  m.dur_typical_s.assign(n, 60);
  m.dur_pessimistic_s.assign(n, 60);
  m.starts.resize(n);
  m.group_of.assign(n, SIZE_MAX);
  std::map<std::string, const JobProfile*> by_job;
  for (const auto& p : profiles) by_job[p.job] = &p;
  const auto days = week_days(options.week);
  std::map<std::string, size_t> group_by_lock;
  std::set<std::string> tz_noted;

  for (size_t i = 0; i < n; ++i) {
    const auto& pe = entries[i];
    auto& rep = m.reports[i];
    rep.index = i;
    rep.where = where_of(pe.entry);
    rep.schedule = schedule_of(pe.entry);
    rep.command = pe.entry.command;
    m.starts[i] = starts_of(pe.entry.schedule, days);
    rep.starts_per_week = m.starts[i].size();
    if (pe.call) rep.job = pe.call->job;
    if (pe.entry.cron_tz && tz_noted.insert(*pe.entry.cron_tz).second)
      notes.push_back(fmt::format("CRON_TZ={} ({}): planned in local time; Debian's cron does not honour CRON_TZ "
                                  "(cronie does)",
                                  *pe.entry.cron_tz, rep.where));
    if (pe.entry.schedule.reboot) {
      rep.status = EntryStatus::reboot;
      continue;
    }
    if (pe.call_error) {
      rep.status = EntryStatus::bad_call;
      rep.note = *pe.call_error;
      continue;
    }
    if (!pe.call) {
      rep.status = EntryStatus::not_cronrun;
      continue;
    }
    auto it = by_job.find(pe.call->job);
    if (it == by_job.end() || it->second->runs == 0) {
      rep.status = EntryStatus::no_history;
      continue;
    }
    if (m.starts[i].empty()) {
      rep.status = EntryStatus::not_this_week;
      continue;
    }
    const JobProfile& p = *it->second;
    rep.status = EntryStatus::profiled;
    m.profile[i] = &p;
    m.memory_bytes[i] = p.memory_peak_p95_bytes.value_or(0);
    m.cpu_millicores[i] = static_cast<int64_t>(std::llround(p.cpu_per_wall.value_or(0) * 1000.0));
    std::vector<std::string> missing;
    if (!p.memory_peak_p95_bytes) missing.push_back("memory");
    if (!p.cpu_per_wall) missing.push_back("CPU");
    if (!p.wall_p50_s && !p.wall_p95_s) missing.push_back("wall time (1 minute assumed)");
    if (!missing.empty()) {
      rep.note = "no figures for ";
      for (size_t k = 0; k < missing.size(); ++k) rep.note += fmt::format("{}{}", k ? ", " : "", missing[k]);
    }
    if (p.memory_from_rss)
      rep.note += fmt::format("{}memory from max RSS (runs without cgroup accounting; low for multi-process jobs)",
                              rep.note.empty() ? "" : "; ");
    double p50 = p.wall_p50_s.value_or(p.wall_p95_s.value_or(60));
    m.dur_typical_s[i] = p50;
    m.dur_pessimistic_s[i] = std::max(p.wall_p95_s.value_or(p50), p50);

    std::string lock_key;
    if (pe.call->lock) lock_key = pe.call->lock_path ? "path:" + *pe.call->lock_path : "job:" + pe.call->job;
    size_t g;
    if (!lock_key.empty() && group_by_lock.contains(lock_key)) {
      g = group_by_lock[lock_key];
    } else {
      g = m.groups.size();
      m.groups.emplace_back();
      m.group_lock.push_back(!lock_key.empty());
      if (!lock_key.empty()) group_by_lock[lock_key] = g;
    }
    m.groups[g].push_back(static_cast<uint32_t>(i));
    m.group_of[i] = g;
  }
  return m;
}

std::vector<Outlasting> find_outlasting(const Model& m, const Scenario& typ, const Scenario& pes) {
  std::vector<Outlasting> out;
  for (size_t g = 0; g < m.groups.size(); ++g) {
    std::vector<int> all;
    Outlasting o;
    o.lock = m.group_lock[g];
    std::set<std::string> jobs;
    for (uint32_t e : m.groups[g]) {
      all.insert(all.end(), m.starts[e].begin(), m.starts[e].end());
      jobs.insert(m.reports[e].job);
      o.where.push_back(m.reports[e].where);
    }
    std::sort(all.begin(), all.end());
    if (all.empty()) continue;
    int gap = W;
    for (size_t k = 1; k < all.size(); ++k) gap = std::min(gap, all[k] - all[k - 1]);
    if (all.size() > 1) gap = std::min(gap, all.front() + W - all.back());
    o.interval_s = gap * 60.0;
    uint32_t first = m.groups[g].front();
    const JobProfile* p = m.profile[first];
    o.wall_p50_s = p->wall_p50_s;
    o.wall_p95_s = p->wall_p95_s;
    for (const auto& j : jobs) o.job += fmt::format("{}{}", o.job.empty() ? "" : ",", j);
    double worst = 0;
    for (uint32_t e : m.groups[g]) worst = std::max(worst, m.dur_pessimistic_s[e]);
    if (worst <= o.interval_s) continue;
    o.starts = all.size();
    for (const auto& j : jobs) {
      if (auto it = typ.runs.find(j); it != typ.runs.end()) o.lost_typical += it->second.lost;
      if (auto it = pes.runs.find(j); it != pes.runs.end()) o.lost_pessimistic += it->second.lost;
    }
    out.push_back(std::move(o));
  }
  std::sort(out.begin(), out.end(), [](const Outlasting& a, const Outlasting& b) {
    return std::tie(b.lost_pessimistic, a.job) < std::tie(a.lost_pessimistic, b.job);
  });
  return out;
}

// The shifts one entry may take: whole minute and hour fields moved together, every
// value staying inside its field (so no start changes day), closest first.
std::vector<std::pair<int, int>> shift_options(const crontab::Schedule& s) {
  int min_m = 59, max_m = 0, min_h = 23, max_h = 0;
  for (int i = 0; i < 60; ++i)
    if (s.minutes[static_cast<size_t>(i)]) min_m = std::min(min_m, i), max_m = std::max(max_m, i);
  for (int i = 0; i < 24; ++i)
    if (s.hours[static_cast<size_t>(i)]) min_h = std::min(min_h, i), max_h = std::max(max_h, i);
  std::vector<std::pair<int, int>> out;
  const int m_lo = -min_m, m_hi = 59 - max_m, h_lo = -min_h, h_hi = 23 - max_h;
  // Wide ranges are sampled every 5 minutes (":05, :10"): what people write, and 12x
  // fewer candidates.
  const int m_step = (m_hi - m_lo) >= 10 ? 5 : 1;
  for (int dh = h_lo; dh <= h_hi; ++dh) {
    for (int dm = m_lo; dm <= m_hi; ++dm) {
      if (dh == 0 && dm == 0) continue;
      if (m_step > 1 && (min_m + dm) % m_step != 0) continue;
      out.emplace_back(dh, dm);
    }
  }
  // Closest first; on a tie later before earlier ("02:40" rather than "01:20").
  std::stable_sort(out.begin(), out.end(), [](auto a, auto b) {
    int sa = a.first * 60 + a.second, sb = b.first * 60 + b.second;
    return std::pair(std::abs(sa), sa < 0) < std::pair(std::abs(sb), sb < 0);
  });
  return out;
}

crontab::Schedule shifted(const crontab::Schedule& s, int dh, int dm) {
  crontab::Schedule out = s;
  out.minutes.reset();
  out.hours.reset();
  for (int i = 0; i < 60; ++i)
    if (s.minutes[static_cast<size_t>(i)]) out.minutes.set(static_cast<size_t>(i + dm));
  for (int i = 0; i < 24; ++i)
    if (s.hours[static_cast<size_t>(i)]) out.hours.set(static_cast<size_t>(i + dh));
  return out;
}

Stagger stagger(Model& m, const Scenario& pes_before, const Options& options) {
  Stagger st;
  st.method =
      "greedy: at the minute of highest pessimistic memory demand, try moving each of the 8 largest entries "
      "running then (whole minute/hour fields, same day, 5-minute steps), keep the move that lowers the peak "
      "most; repeat, each entry moved at most once, until nothing improves";
  st.memory_peak_before_bytes = pes_before.memory_peak.memory_bytes;
  st.memory_peak_before_minute = pes_before.memory_peak.minute;
  st.cpu_peak_before_cores = pes_before.cpu_peak.cpu_cores;

  DemandTree tree(W);
  auto apply = [&](const std::vector<Run>& runs, int sign) {
    for (const auto& r : runs)
      for_memory(m, r, [&](int a, int b, int64_t v) { tree.add(a, b, sign * v); });
  };
  std::vector<std::vector<Run>> group_runs(m.groups.size());
  for (size_t g = 0; g < m.groups.size(); ++g) {
    simulate_group(m, g, m.starts, Kind::pessimistic, group_runs[g], nullptr);
    apply(group_runs[g], +1);
  }
  std::vector<crontab::Schedule> schedules;
  for (const auto& pe : *m.entries) schedules.push_back(pe.entry.schedule);
  std::vector<bool> moved(m.starts.size(), false);
  std::vector<std::pair<int, int>> shift_of(m.starts.size(), {0, 0});

  for (size_t step = 0; step < options.max_moves; ++step) {
    auto best = tree.top();
    if (best.first <= 0) break;
    const int peak = tree.argmax();
    std::vector<uint32_t> candidates;
    for (const auto& runs : group_runs)
      for (const auto& r : runs)
        if (!moved[r.entry] && covers(r, peak) && m.memory_bytes[r.entry] > 0) candidates.push_back(r.entry);
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](uint32_t a, uint32_t b) { return m.memory_bytes[a] > m.memory_bytes[b]; });
    if (candidates.size() > kCandidatesPerStep) candidates.resize(kCandidatesPerStep);

    std::optional<std::tuple<uint32_t, int, int>> best_move;
    for (uint32_t e : candidates) {
      const size_t g = m.group_of[e];
      apply(group_runs[g], -1);
      const std::vector<int> original = m.starts[e];
      for (auto [dh, dm] : shift_options(schedules[e])) {
        std::vector<int>& s = m.starts[e];
        for (size_t k = 0; k < s.size(); ++k) s[k] = original[k] + dh * 60 + dm;
        std::vector<Run> trial;
        simulate_group(m, g, m.starts, Kind::pessimistic, trial, nullptr);
        apply(trial, +1);
        auto v = tree.top();
        apply(trial, -1);
        if (v < best) {
          best = v;
          best_move = std::tuple(e, dh, dm);
        }
      }
      m.starts[e] = original;
      apply(group_runs[g], +1);
    }
    if (!best_move) break;
    auto [e, dh, dm] = *best_move;
    const size_t g = m.group_of[e];
    apply(group_runs[g], -1);
    for (int& s : m.starts[e]) s += dh * 60 + dm;
    group_runs[g].clear();
    simulate_group(m, g, m.starts, Kind::pessimistic, group_runs[g], nullptr);
    apply(group_runs[g], +1);
    schedules[e] = shifted(schedules[e], dh, dm);
    moved[e] = true;
    shift_of[e] = {dh, dm};
    st.moves.push_back({e, m.reports[e].job, m.reports[e].where, schedule_of((*m.entries)[e].entry), "", dh * 60 + dm});
  }

  for (auto& mv : st.moves) {
    const auto& fields = (*m.entries)[mv.index].entry.fields;
    mv.after = fmt::format("{} {} {} {} {}", crontab::format_minutes(schedules[mv.index].minutes),
                           crontab::format_hours(schedules[mv.index].hours), fields.at(2), fields.at(3), fields.at(4));
  }
  std::sort(st.moves.begin(), st.moves.end(), [](const Move& a, const Move& b) { return a.index < b.index; });
  Scenario pes_after = simulate(m, m.starts, Kind::pessimistic);
  Scenario typ_after = simulate(m, m.starts, Kind::typical);
  st.memory_peak_after_bytes = pes_after.memory_peak.memory_bytes;
  st.memory_peak_after_minute = pes_after.memory_peak.minute;
  st.cpu_peak_after_cores = pes_after.cpu_peak.cpu_cores;
  st.typical_memory_peak_after_bytes = typ_after.memory_peak.memory_bytes;
  return st;
}

}  // namespace

WeekStart week_containing(int y, unsigned mo, unsigned d) {
  using namespace std::chrono;
  sys_days day_point = year_month_day{year{y}, month{mo}, day{d}};
  // c_encoding: 0 = Sunday; step back to Monday.
  unsigned back = (weekday{day_point}.c_encoding() + 6) % 7;
  year_month_day monday{day_point - days{back}};
  return {static_cast<int>(monday.year()), static_cast<unsigned>(monday.month()), static_cast<unsigned>(monday.day())};
}

std::string weekday_hhmm(int minute_of_week) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  int m = ((minute_of_week % W) + W) % W;
  return fmt::format("{} {:02}:{:02}", kDays[m / 1440], (m % 1440) / 60, m % 60);
}

const char* to_string(EntryStatus s) {
  switch (s) {
    case EntryStatus::profiled: return "profiled";
    case EntryStatus::no_history: return "no_history";
    case EntryStatus::not_cronrun: return "not_cronrun";
    case EntryStatus::bad_call: return "bad_call";
    case EntryStatus::reboot: return "reboot";
    case EntryStatus::not_this_week: return "not_this_week";
  }
  return "?";
}

std::vector<PlannedEntry> plan_entries(const std::vector<crontab::Entry>& entries) {
  std::vector<PlannedEntry> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    PlannedEntry pe{e, std::nullopt, std::nullopt};
    auto call = crontab::find_cronrun(e.command);
    if (!call) {
      pe.call_error = call.error().message();
    } else {
      pe.call = std::move(*call);
    }
    out.push_back(std::move(pe));
  }
  return out;
}

PlanResult make_plan(const std::vector<PlannedEntry>& entries, const std::vector<JobProfile>& profiles,
                     const Host& host, const Options& options) {
  PlanResult out;
  out.week = options.week;
  out.host = host;
  Model m = build_model(entries, profiles, options, out.notes);
  out.typical = simulate(m, m.starts, Kind::typical);
  out.pessimistic = simulate(m, m.starts, Kind::pessimistic);
  out.outlasting = find_outlasting(m, out.typical, out.pessimistic);
  out.entries = m.reports;
  out.stagger = stagger(m, out.pessimistic, options);
  return out;
}

std::array<std::array<uint64_t, 24>, 7> hourly_memory_max(const Scenario& s) {
  std::array<std::array<uint64_t, 24>, 7> out{};
  for (size_t i = 0; i < s.memory_bytes.size() && i < static_cast<size_t>(W); ++i) {
    auto& cell = out[i / 1440][(i % 1440) / 60];
    cell = std::max(cell, s.memory_bytes[i]);
  }
  return out;
}

Result<Host> read_host() {
  Host h;
  std::ifstream in("/proc/meminfo");
  if (!in) return fail_sys("open", "/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemTotal:") {
      h.memory_bytes = kb * 1024;
      break;
    }
  }
  if (h.memory_bytes == 0) return fail("/proc/meminfo: no MemTotal line");
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    h.cpus = CPU_COUNT(&set);
  } else {
    h.cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  }
  h.source = "/proc/meminfo, nproc";
  return h;
}

}  // namespace cronrun::plan
