// The read-only half of the cgroup module (library cronrun_cgroup_read, no
// libcgroup): the host's hierarchies as /proc/self/mountinfo and /proc/self/cgroup
// show them, the counters of a job's leaf as the run record wants them, and the
// live figures `cronprof ps` shows for a run found again from its record.
//
// Kernel rules this encodes:
//  * A cgroup path in /proc/self/cgroup is relative to our cgroup namespace; a mount
//    shows its own root in mountinfo (see cgroup_detect.cc for what that allows).
//  * A v2 leaf has cpu.stat (usage, user, system) and the pressure files without
//    any controller; memory.*, io.stat, pids.* and cpu.stat's throttling keys only
//    with their controller enabled in the parent's subtree_control. A missing file
//    is "not measured here", never 0.
//  * v1 counters live in the hierarchy of their controller, each with its own
//    directory for the same run; a hierarchy the run made no leaf in has none.
#include <algorithm>
#include <cerrno>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

const char* to_string(Layout l) {
  switch (l) {
    case Layout::v2: return "v2";
    case Layout::v1: return "v1";
    case Layout::hybrid: return "hybrid";
    case Layout::none: return "none";
  }
  return "none";
}

Result<Layout> parse_layout(std::string_view text) {
  for (Layout l : {Layout::v2, Layout::v1, Layout::hybrid, Layout::none})
    if (text == to_string(l)) return l;
  return fail("expected a cgroup layout (v2, v1, hybrid or none), got '" + std::string(text) + "'");
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join_words(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

namespace {

bool is_ours(std::string_view controller) { return is_used_v1_controller(controller); }

template <class T>
std::optional<T> get(const std::map<std::string, uint64_t>& kv, const std::string& key) {
  auto it = kv.find(key);
  if (it == kv.end()) return std::nullopt;
  return static_cast<T>(it->second);
}

std::optional<double> usec_to_s(std::optional<uint64_t> usec) {
  if (!usec) return std::nullopt;
  return static_cast<double>(*usec) / 1e6;
}

// Picks, among mounts of one hierarchy, the one that shows our cgroup (shortest
// root wins: it shows the most of the tree).
Hierarchy pick_mount(const std::vector<const MountEntry*>& candidates, const std::string& own,
                     std::string_view prefix, bool v2) {
  const MountEntry* best = nullptr;
  std::optional<std::string> best_own;
  for (const MountEntry* m : candidates) {
    auto mapped = map_into_mount(m->root, own);
    if (mapped && (!best_own || m->root.size() < best->root.size())) {
      best = m;
      best_own = mapped;
    }
  }
  if (!best) best = candidates.front();
  Hierarchy h;
  h.v2 = v2;
  h.mount_point = std::string(prefix) + best->mount_point;
  h.read_only = contains(best->mount_options, "ro");
  h.outside_namespace = best->root == "/.." || best->root.starts_with("/../");
  h.own_path = best_own;
  return h;
}

}  // namespace

HostView build_host_view(const std::vector<MountEntry>& mounts, const std::vector<ProcCgroupLine>& self,
                         std::string_view mount_prefix) {
  HostView view;
  for (const auto& line : self) {
    std::vector<const MountEntry*> candidates;
    bool v2 = line.hierarchy_id == 0 && line.controllers.empty();
    if (v2) {
      for (const auto& m : mounts)
        if (m.fs_type == "cgroup2") candidates.push_back(&m);
      if (candidates.empty()) continue;
      view.unified = pick_mount(candidates, line.path, mount_prefix, true);
      continue;
    }
    if (std::none_of(line.controllers.begin(), line.controllers.end(), is_ours)) continue;
    for (const auto& m : mounts) {
      if (m.fs_type != "cgroup") continue;
      bool all = std::all_of(line.controllers.begin(), line.controllers.end(),
                             [&](const std::string& c) { return contains(m.super_options, c); });
      if (all) candidates.push_back(&m);
    }
    if (candidates.empty()) {
      view.notes.push_back("v1 hierarchy " + join_words(line.controllers, ",") + " is not mounted here");
      continue;
    }
    Hierarchy h = pick_mount(candidates, line.path, mount_prefix, false);
    h.controllers = line.controllers;
    view.v1.push_back(std::move(h));
  }
  return view;
}

Result<HostView> read_host_view(const std::string& proc_root, const std::string& mount_prefix) {
  auto mountinfo_text = read_file(proc_root + "/self/mountinfo");
  if (!mountinfo_text) return std::unexpected(mountinfo_text.error());
  auto cgroup_text = read_file(proc_root + "/self/cgroup");
  if (!cgroup_text) return std::unexpected(cgroup_text.error());
  auto mounts = parse_mountinfo(*mountinfo_text, /*cgroup_only=*/true);
  if (!mounts) return std::unexpected(std::move(mounts.error()).context("reading " + proc_root + "/self/mountinfo"));
  auto self = parse_proc_cgroup(*cgroup_text);
  if (!self) return std::unexpected(std::move(self.error()).context("reading " + proc_root + "/self/cgroup"));
  return build_host_view(*mounts, *self, mount_prefix);
}

Result<void> read_v2_usage(const CgroupDir& dir, Usage& u) {
  auto peak = dir.read_u64("memory.peak");
  if (!peak) return std::unexpected(peak.error());
  if (*peak) u.memory_peak_bytes = **peak;

  auto events = dir.read_keyed("memory.events");
  if (!events) return std::unexpected(events.error());
  if (*events) {
    u.oom_kills = get<uint64_t>(**events, "oom_kill");
    u.memory_max_events = get<uint64_t>(**events, "max");
    u.memory_high_events = get<uint64_t>(**events, "high");
  }

  auto cpu = dir.read_keyed("cpu.stat");
  if (!cpu) return std::unexpected(cpu.error());
  if (*cpu) {
    u.cpu_user_s = usec_to_s(get<uint64_t>(**cpu, "user_usec"));
    u.cpu_system_s = usec_to_s(get<uint64_t>(**cpu, "system_usec"));
    // Present only with the cpu controller enabled for this cgroup.
    u.cpu_nr_throttled = get<uint64_t>(**cpu, "nr_throttled");
    u.cpu_throttled_s = usec_to_s(get<uint64_t>(**cpu, "throttled_usec"));
  }

  auto io = dir.read_optional("io.stat");
  if (!io) return std::unexpected(io.error());
  if (*io) {
    auto bytes = parse_io_stat(**io);
    if (!bytes) return std::unexpected(std::move(bytes.error()).context("parsing " + dir.file_path("io.stat")));
    u.io_read_bytes = bytes->read_bytes;
    u.io_write_bytes = bytes->write_bytes;
    u.io_source = "cgroup";
  }

  auto pids_peak = dir.read_u64("pids.peak");
  if (!pids_peak) return std::unexpected(pids_peak.error());
  if (*pids_peak) u.pids_peak = **pids_peak;
  // Hierarchical: "max" counts refusals here and below (pids.events.local, 6.14+,
  // would count only this leaf's; the leaf has no children of ours).
  auto pids_events = dir.read_keyed("pids.events");
  if (!pids_events) return std::unexpected(pids_events.error());
  if (*pids_events) u.pids_max_events = get<uint64_t>(**pids_events, "max");
  return {};
}

Result<void> read_pressure(const CgroupDir& dir, Pressure& pressure) {
  struct Item {
    const char* file;
    std::optional<double>* out;
  } items[] = {{"cpu.pressure", &pressure.cpu}, {"memory.pressure", &pressure.memory}, {"io.pressure", &pressure.io}};
  for (auto& item : items) {
    auto text = dir.read_optional(item.file);
    if (!text) return std::unexpected(text.error());
    if (!*text) continue;
    auto totals = parse_pressure(**text);
    if (!totals) return std::unexpected(std::move(totals.error()).context("parsing " + dir.file_path(item.file)));
    *item.out = usec_to_s(totals->some_total_usec);
  }
  return {};
}

// ---------------------------------------------------------------------------
// Live figures.

Result<LiveReader> LiveReader::open(const std::string& proc_root, const std::string& mount_prefix) {
  auto view = read_host_view(proc_root, mount_prefix);
  if (!view) return std::unexpected(view.error());
  LiveReader r;
  if (view->unified) r.unified_ = view->unified->mount_point;
  for (const auto& h : view->v1)
    for (const auto& c : h.controllers) r.v1_by_controller_.emplace(c, h.mount_point);
  return r;
}

namespace {

// The leaf of `relative` in the hierarchy at `mount_point`, or nullopt when the run
// has no directory there (a v1 hierarchy it needed no leaf in).
Result<std::optional<CgroupDir>> open_leaf(const std::string& mount_point, const std::string& relative) {
  auto dir = CgroupDir::open(cgroup_fs_path(mount_point, relative));
  if (dir) return std::optional<CgroupDir>(std::move(*dir));
  if (dir.error().err() == ENOENT) return std::optional<CgroupDir>();
  return std::unexpected(dir.error());
}

}  // namespace

Result<LiveUsage> LiveReader::read(Layout layout, const std::string& relative_path) const {
  auto rel = normalize_relative(relative_path);
  if (!rel) return std::unexpected(rel.error());
  if (layout == Layout::none) return fail("a run without a cgroup has no live figures");
  LiveUsage live;
  auto take = [](auto& field, auto result) -> Result<void> {
    if (!result) return std::unexpected(result.error());
    field = *result;
    return {};
  };
#define CRONRUN_TAKE(field, expr) \
  if (auto r_ = take(field, expr); !r_) return std::unexpected(r_.error())

  // The unified leaf (v2, and the unified half of hybrid): CPU time and pressure
  // without any controller; memory, pids and IO when their controllers are on.
  if (layout == Layout::v2 || layout == Layout::hybrid) {
    if (!unified_) return fail("no cgroup2 filesystem mounted to read " + *rel + " from");
    auto leaf = CgroupDir::open(cgroup_fs_path(*unified_, *rel));
    if (!leaf) return std::unexpected(leaf.error());
    Usage u;
    if (auto r = read_v2_usage(*leaf, u); !r) return std::unexpected(r.error());
    if (auto r = read_pressure(*leaf, live.pressure_some_s); !r) return std::unexpected(r.error());
    if (u.cpu_user_s && u.cpu_system_s) live.cpu_s = *u.cpu_user_s + *u.cpu_system_s;
    live.memory_peak_bytes = u.memory_peak_bytes;
    live.io_read_bytes = u.io_read_bytes;
    live.io_write_bytes = u.io_write_bytes;
    CRONRUN_TAKE(live.memory_current_bytes, leaf->read_u64("memory.current"));
    CRONRUN_TAKE(live.pids_current, leaf->read_u64("pids.current"));
    if (layout == Layout::v2) return live;
  }
  // v1 hierarchies: each only if the run has a leaf there.
  auto v1_leaf = [&](const char* controller) -> Result<std::optional<CgroupDir>> {
    auto it = v1_by_controller_.find(controller);
    if (it == v1_by_controller_.end()) return std::optional<CgroupDir>();
    return open_leaf(it->second, *rel);
  };
  auto memory = v1_leaf("memory");
  if (!memory) return std::unexpected(memory.error());
  if (*memory) {
    CRONRUN_TAKE(live.memory_current_bytes, (*memory)->read_u64("memory.usage_in_bytes"));
    CRONRUN_TAKE(live.memory_peak_bytes, (*memory)->read_u64("memory.max_usage_in_bytes"));
  }
  if (!live.cpu_s) {
    auto cpuacct = v1_leaf("cpuacct");
    if (!cpuacct) return std::unexpected(cpuacct.error());
    if (*cpuacct) {
      std::optional<uint64_t> ns;
      CRONRUN_TAKE(ns, (*cpuacct)->read_u64("cpuacct.usage"));
      if (ns) live.cpu_s = static_cast<double>(*ns) / 1e9;
    }
  }
  auto pids = v1_leaf("pids");
  if (!pids) return std::unexpected(pids.error());
  if (*pids) CRONRUN_TAKE(live.pids_current, (*pids)->read_u64("pids.current"));
#undef CRONRUN_TAKE
  return live;
}

Result<LiveUsage> read_live(Layout layout, const std::string& relative_path) {
  auto reader = LiveReader::open();
  if (!reader) return std::unexpected(reader.error());
  return reader->read(layout, relative_path);
}

}  // namespace cronrun::cgroup
