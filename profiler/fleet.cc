// The pure half of `cronprof fleet` (fleet.h): lost marking, alerts, the human
// tables and the JSON. The data come from fleet_gather.cc.
#include "profiler/fleet.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "common/units.h"
#include "profiler/cli_support.h"
#include "profiler/text_escape.h"

namespace cronrun::prof::fleet {

namespace {

using nlohmann::json;

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string ago(double now_s, double then_s) {
  double d = now_s - then_s;
  if (!(d >= 0)) return "-";
  return units::format_duration_s(std::round(d));
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

void mark_lost(FleetView& v) {
  if (v.etcd_error) return;  // no locks read: nothing can be told
  std::map<std::string, const Holder*> lock_of;
  for (const Holder& h : v.holders) lock_of[h.job] = &h;
  for (InProgress& r : v.running) {
    if (r.lost || !r.fence) continue;  // an unfenced run (etcd was away, "unavailable": "run") has no lock to check
    auto it = lock_of.find(r.job);
    if (it == lock_of.end()) {
      r.lost = true;
      r.lost_why = fmt::format("no lock of {} in etcd (its fence {} is gone)", r.job, *r.fence);
    } else if (it->second->fence != *r.fence) {
      r.lost = true;
      r.lost_why = fmt::format("the lock of {} now has fence {} (host {}), not this run's {}", r.job,
                               it->second->fence, it->second->host, *r.fence);
    }
  }
}

std::vector<HostSeen> quiet_hosts(const FleetView& v) {
  std::vector<HostSeen> out;
  for (const HostSeen& h : v.hosts)
    if (v.now_s - h.last_seen_s > v.quiet_after_s) out.push_back(h);
  std::sort(out.begin(), out.end(), [](const HostSeen& a, const HostSeen& b) { return a.last_seen_s < b.last_seen_s; });
  return out;
}

bool alerts(const FleetView& v) {
  if (!quiet_hosts(v).empty()) return true;
  return std::any_of(v.running.begin(), v.running.end(), [](const InProgress& r) { return r.lost; });
}

json to_json(const FleetView& v) {
  json groups = json::array();
  for (const Group& g : v.groups)
    groups.push_back({{"name", g.name}, {"members", g.members}, {"hosts", g.hosts}, {"error", opt(g.error)}});
  json holders = json::array();
  for (const Holder& h : v.holders)
    holders.push_back({{"job", h.job},
                       {"host", h.host},
                       {"run_id", h.run_id},
                       {"tick", h.tick},
                       {"started_at", opt(h.started_at)},
                       {"pid", opt(h.pid)},
                       {"fence", h.fence},
                       {"ttl_left_s", opt(h.ttl_left_s)},
                       {"problem", opt(h.problem)}});
  json running = json::array();
  for (const InProgress& r : v.running)
    running.push_back({{"run_id", r.run_id},
                       {"job", r.job},
                       {"host", r.host},
                       {"tick", opt(r.tick)},
                       {"fence", opt(r.fence)},
                       {"started_at", json_time(r.started_at_s)},
                       {"elapsed_s", std::max(0.0, v.now_s - r.started_at_s)},
                       {"status", r.lost ? "lost" : "running"},
                       {"lost_why", r.lost ? json(r.lost_why) : json(nullptr)}});
  json dead = json::array();
  for (const DeadLetter& d : v.dead_letters)
    dead.push_back({{"id", d.id},
                    {"host", d.host},
                    {"run_id", d.run_id.empty() ? json(nullptr) : json(d.run_id)},
                    {"reason", d.reason},
                    {"received_at", json_time(d.received_at_s)}});
  std::set<std::string> quiet;
  for (const HostSeen& h : quiet_hosts(v)) quiet.insert(h.host);
  json hosts = json::array();
  for (const HostSeen& h : v.hosts)
    hosts.push_back({{"host", h.host}, {"last_seen", json_time(h.last_seen_s)}, {"quiet", quiet.count(h.host) > 0}});
  return {{"schema", kSchema},
          {"generated_at", json_time(v.now_s)},
          {"config", v.config_path.empty() ? json(nullptr) : json(v.config_path)},
          {"prefix", v.prefix},
          {"etcd", {{"endpoints", v.endpoints}, {"error", opt(v.etcd_error)}}},
          {"history", {{"uri", v.history.empty() ? json(nullptr) : json(v.history)}, {"error", opt(v.history_error)}}},
          {"groups_configured", v.groups_configured},
          {"groups_error", opt(v.groups_error)},
          {"groups", std::move(groups)},
          {"locks", std::move(holders)},
          {"running", std::move(running)},
          {"dead_letters", {{"total", v.dead_letters_total}, {"newest", std::move(dead)}}},
          {"quiet_after_s", v.quiet_after_s},
          {"hosts", std::move(hosts)},
          {"alert", alerts(v)}};
}

std::string render(const FleetView& v, size_t width) {
  std::string out;
  auto prose = [&](const std::string& s) { out += wrap_prose(term_text(s), width); };
  auto section = [&](const std::string& title) { out += "\n" + title + "\n"; };

  std::string head = "fleet " + v.prefix;
  if (!v.endpoints.empty())
    head += "  etcd " + v.endpoints.front() +
            (v.endpoints.size() > 1 ? fmt::format(" (+{})", v.endpoints.size() - 1) : "");
  if (!v.history.empty()) head += "  history " + v.history;
  prose(head);

  section("GROUPS");
  if (v.etcd_error) {
    prose("  unknown: etcd: " + *v.etcd_error);
  } else if (v.groups_error) {
    prose("  unreadable: " + *v.groups_error);
  } else if (!v.groups_configured) {
    prose("  none (no " + v.prefix + "/config in etcd)");
  } else if (v.groups.empty()) {
    prose("  none (" + v.prefix + "/config has no groups)");
  } else {
    Table t({{.header = "GROUP", .min_width = 10}, {.header = "HOSTS", .min_width = 12}, {.header = "MEMBERS", .min_width = 10, .drop = 1}});
    for (const Group& g : v.groups) t.add({g.name, g.error ? "error: " + *g.error : joined(g.hosts), joined(g.members)});
    t.fit(width);
    out += t.render();
  }

  section(fmt::format("LOCKS ({})", v.etcd_error ? std::string("?") : std::to_string(v.holders.size())));
  if (v.etcd_error) {
    prose("  unknown: etcd: " + *v.etcd_error);
  } else if (v.holders.empty()) {
    out += "  no job holds a lock\n";
  } else {
    Table t({{.header = "JOB", .min_width = 12},
             {.header = "HOST", .min_width = 10},
             {.header = "TICK", .drop = 2},
             {.header = "FENCE", .right = true},
             {.header = "TTL LEFT", .right = true, .drop = 1},
             {.header = "RUN ID", .min_width = 14, .drop = 3}});
    for (const Holder& h : v.holders) {
      t.add({h.job, h.problem ? "? " + *h.problem : h.host, h.tick, std::to_string(h.fence),
             h.ttl_left_s ? (*h.ttl_left_s > 0 ? fmt::format("{}s", *h.ttl_left_s) : std::string("expired")) : "-",
             h.run_id});
    }
    t.fit(width);
    out += t.render();
  }

  size_t lost = static_cast<size_t>(std::count_if(v.running.begin(), v.running.end(), [](const InProgress& r) { return r.lost; }));
  section(v.history_error ? std::string("RUNS IN PROGRESS (?)")
                          : fmt::format("RUNS IN PROGRESS ({}{})", v.running.size(),
                                        lost ? fmt::format(", {} lost", lost) : std::string()));
  if (v.history.empty() && !v.history_error) {
    out += "  unknown: no central history (fleet.json \"history\" or --history postgresql://...)\n";
  } else if (v.history_error) {
    prose("  unknown: central history: " + *v.history_error);
  } else if (v.running.empty()) {
    out += "  none\n";
  } else {
    Table t({{.header = "JOB", .min_width = 12},
             {.header = "HOST", .min_width = 10},
             {.header = "STATE"},
             {.header = "STARTED", .drop = 3},
             {.header = "ELAPSED", .right = true, .drop = 1},
             {.header = "FENCE", .right = true, .drop = 2},
             {.header = "RUN ID", .min_width = 14}});
    for (const InProgress& r : v.running)
      t.add({r.job, r.host, r.lost ? "lost" : "running", format_utc(r.started_at_s), ago(v.now_s, r.started_at_s),
             r.fence ? std::to_string(*r.fence) : "-", r.run_id});
    t.fit(width);
    out += t.render();
    for (const InProgress& r : v.running)
      if (r.lost && !r.lost_why.empty()) prose("  " + r.run_id + " lost: " + r.lost_why);
  }

  if (!v.history_error && !v.history.empty()) {
    section(fmt::format("DEAD LETTERS ({})", v.dead_letters_total));
    if (v.dead_letters_total == 0) {
      out += "  none\n";
    } else {
      Table t({{.header = "RECEIVED", .drop = 1},
               {.header = "HOST", .min_width = 10},
               {.header = "RUN ID", .min_width = 14, .drop = 2},
               {.header = "REASON", .min_width = 16}});
      for (const DeadLetter& d : v.dead_letters)
        t.add({format_utc(d.received_at_s), d.host, d.run_id.empty() ? "-" : d.run_id, d.reason});
      t.fit(width);
      out += t.render();
      if (v.dead_letters_total > v.dead_letters.size())
        out += fmt::format("  (the newest {} of {})\n", v.dead_letters.size(), v.dead_letters_total);
    }

    auto quiet = quiet_hosts(v);
    section(fmt::format("HOSTS ({}, {} not heard from for {})", v.hosts.size(), quiet.size(),
                        units::format_duration_s(v.quiet_after_s)));
    if (v.hosts.empty()) {
      out += "  none has forwarded a record yet\n";
    } else {
      std::set<std::string> quiet_names;
      for (const HostSeen& h : quiet) quiet_names.insert(h.host);
      Table t({{.header = "HOST", .min_width = 10}, {.header = "LAST SEEN", .drop = 1}, {.header = "AGO", .right = true}, {.header = "STATE"}});
      for (const HostSeen& h : v.hosts)
        t.add({h.host, format_utc(h.last_seen_s), ago(v.now_s, h.last_seen_s), quiet_names.count(h.host) ? "quiet" : "ok"});
      t.fit(width);
      out += t.render();
    }
  }
  return out;
}

void parse_groups(const std::string& config_json, FleetView& v) {
  v.groups.clear();
  json j = json::parse(config_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    v.groups_error = v.prefix + "/config is not a JSON object";
    return;
  }
  auto it = j.find("groups");
  if (it == j.end()) return;
  if (!it->is_object()) {
    v.groups_error = v.prefix + "/config: \"groups\" is not an object";
    return;
  }
  std::map<std::string, std::vector<std::string>> members;
  for (const auto& [name, m] : it->items()) {
    std::vector<std::string>& list = members[name];
    if (m.is_string()) {
      list.push_back(m.get<std::string>());
    } else if (m.is_array()) {
      for (const auto& e : m) {
        if (e.is_string()) list.push_back(e.get<std::string>());
      }
    }
  }
  for (const auto& [name, m] : it->items()) {
    Group g;
    g.name = name;
    g.members = members[name];
    if (!m.is_string() && !m.is_array()) g.error = "neither a host name nor a list";
    for (const auto& e : m.is_array() ? m : json::array())
      if (!e.is_string()) g.error = "a member that is not a string";
    // Depth-first expansion; a group met again on its own path is a cycle.
    std::set<std::string> hosts;
    std::vector<std::string> path;
    std::function<void(const std::string&)> expand = [&](const std::string& group) {
      if (std::find(path.begin(), path.end(), group) != path.end()) {
        std::string cycle;
        for (const auto& p : path) cycle += p + " -> ";
        if (!g.error) g.error = "cycle " + cycle + group;
        return;
      }
      path.push_back(group);
      for (const std::string& member : members[group]) {
        if (members.count(member))
          expand(member);
        else
          hosts.insert(member);
      }
      path.pop_back();
    };
    expand(name);
    g.hosts.assign(hosts.begin(), hosts.end());
    v.groups.push_back(std::move(g));
  }
}

}  // namespace cronrun::prof::fleet
