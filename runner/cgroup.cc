// The cgroup module's entry points: names of layouts, choosing the backend for a
// placement, and the live figures `cronprof ps` shows for a running job (found
// again from the run record's layout and path, in whatever process asks).
#include "runner/cgroup.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

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

Result<std::unique_ptr<JobCgroup>> create_job_cgroup(const Placement& placement, const std::string& job,
                                                     const std::string& run_id) {
  if (placement.layout == Layout::none) {
    return fail("creating cgroup for job '" + job + "': no usable cgroup here (" + placement.reason + ")");
  }
  // Job names are [A-Za-z0-9_.-]{1,64} and run ids hex with dashes; refuse anything
  // that could climb out of the parent or collide with a runner leaf.
  auto bad_name = [](const std::string& s) {
    return s.empty() || s == "." || s == ".." ||
           std::any_of(s.begin(), s.end(), [](char c) { return c == '/' || c == '@' || c == '\0'; });
  };
  if (bad_name(job)) return fail("creating cgroup: bad job name '" + job + "'");
  if (bad_name(run_id)) return fail("creating cgroup: bad run id '" + run_id + "'");
  auto parent = normalize_relative(placement.parent);
  if (!parent) return std::unexpected(std::move(parent.error()).context("creating cgroup for job '" + job + "'"));
  Placement p = placement;
  p.parent = *parent;

  auto made = p.layout == Layout::v2 ? create_v2_job(p, job, run_id) : create_v1_job(p, job, run_id);
  if (!made) return std::unexpected(std::move(made.error()).context("creating cgroup for job '" + job + "'"));
  return made;
}

Result<std::vector<LiveRun>> find_live_runs(const Placement& placement, const std::string& job) {
  std::vector<LiveRun> out;
  if (placement.layout == Layout::none) return out;
  auto parent = normalize_relative(placement.parent);
  if (!parent) return std::unexpected(parent.error());
  const std::string job_path = join_relative(*parent, job);
  // Membership is visible in the v2 hierarchy (v2, and the unified half of hybrid,
  // which every run creates), else in each v1 one (a run may lack some). Only those
  // are read; the other hierarchies are touched only to clear a kept run found empty.
  std::vector<std::string> counting, others;
  if (!placement.v2_mount.empty()) counting.push_back(placement.v2_mount);
  for (const auto& m : placement.v1_mounts) (placement.v2_mount.empty() ? counting : others).push_back(m.mount_point);
  std::map<std::string, LiveRun> found;
  std::set<std::string> finished_kept;  // kept runs whose processes are gone
  for (const auto& mount : counting) {
    const std::string dir_path = cgroup_fs_path(mount, job_path);
    auto job_dir = CgroupDir::open(dir_path);
    if (!job_dir) {
      if (job_dir.error().err() == ENOENT) continue;  // the job's first run here
      return std::unexpected(job_dir.error());
    }
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_path.c_str()), ::closedir);
    if (!dir) return fail_sys("opendir", dir_path);
    std::vector<std::string> names;
    std::set<std::string> kept;
    errno = 0;
    while (struct dirent* e = ::readdir(dir.get())) {
      std::string name = e->d_name;
      if (e->d_type != DT_DIR || name == "." || name == "..") continue;
      if (name.ends_with(kKeptSuffix))
        kept.insert(name.substr(0, name.size() - kKeptSuffix.size()));
      else
        names.push_back(std::move(name));
    }
    if (errno != 0) return fail_sys("readdir", dir_path);
    for (const auto& name : names) {
      if (kept.contains(name)) {
        // rmdir fails (EBUSY) while the kept processes live; then both stay.
        if (job_dir->remove_child(name, 0)) {
          (void)job_dir->remove_child(name + std::string(kKeptSuffix), 0);
          finished_kept.insert(name);
        }
        continue;
      }
      auto leaf = job_dir->open_child(name);
      if (!leaf) {
        if (leaf.error().err() == ENOENT) continue;  // removed meanwhile: its run ended
        return std::unexpected(leaf.error());
      }
      auto procs = leaf->procs();
      if (!procs) {
        if (procs.error().err() == ENOENT || procs.error().err() == ENODEV) continue;
        return std::unexpected(procs.error());
      }
      size_t n = procs->size();
      if (n == 0) {
        // v2: processes may sit in cgroups the job made below its leaf.
        auto events = leaf->read_keyed("cgroup.events");
        bool populated = events && *events && (*events)->contains("populated") && (*events)->at("populated") != 0;
        if (!populated) continue;
      }
      LiveRun& run = found[name];
      run.run_id = name;
      run.path = join_relative(job_path, name);
      run.processes = std::max(run.processes, n);
    }
  }
  // A finished kept run's v1 directories (hybrid): empty too, as tasks leave every
  // hierarchy at once; a failure leaves them for the next look.
  for (const auto& mount : others) {
    if (finished_kept.empty()) break;
    auto job_dir = CgroupDir::open(cgroup_fs_path(mount, job_path));
    if (!job_dir) continue;
    for (const auto& name : finished_kept)
      if (job_dir->remove_child(name, 0)) (void)job_dir->remove_child(name + std::string(kKeptSuffix), 0);
  }
  for (auto& [name, run] : found) out.push_back(std::move(run));
  return out;
}

namespace {

Result<std::optional<uint64_t>> live_number(const std::string& mount_point, const std::string& relative,
                                            const std::string& file) {
  auto dir = CgroupDir::open(cgroup_fs_path(mount_point, relative));
  if (!dir) return std::unexpected(dir.error());
  return dir->read_u64(file);
}

Result<std::optional<double>> live_v2_cpu_s(const std::string& mount_point, const std::string& relative) {
  auto text = read_file(cgroup_fs_path(mount_point, join_relative(relative, "cpu.stat")));
  if (!text) return std::unexpected(text.error());
  auto kv = parse_flat_keyed(*text);
  if (!kv) return std::unexpected(kv.error());
  auto it = kv->find("usage_usec");
  if (it == kv->end()) return std::optional<double>();
  return std::optional(static_cast<double>(it->second) / 1e6);
}

const Hierarchy* v1_hierarchy(const HostView& view, std::string_view controller) {
  for (const auto& h : view.v1)
    if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end()) return &h;
  return nullptr;
}

}  // namespace

Result<LiveUsage> read_live(Layout layout, const std::string& relative_path) {
  auto rel = normalize_relative(relative_path);
  if (!rel) return std::unexpected(rel.error());
  auto view = read_host_view("/proc", "");
  if (!view) return std::unexpected(view.error());
  LiveUsage live;
  auto take = [](auto& field, auto result) -> Result<void> {
    if (!result) return std::unexpected(result.error());
    field = *result;
    return {};
  };
  if (layout == Layout::v2) {
    if (!view->unified) return fail("no cgroup2 filesystem mounted to read " + *rel + " from");
    const auto& m = view->unified->mount_point;
    if (auto r = take(live.memory_current_bytes, live_number(m, *rel, "memory.current")); !r)
      return std::unexpected(r.error());
    if (auto r = take(live.cpu_s, live_v2_cpu_s(m, *rel)); !r) return std::unexpected(r.error());
    if (auto r = take(live.pids_current, live_number(m, *rel, "pids.current")); !r) return std::unexpected(r.error());
    return live;
  }
  if (layout == Layout::none) return fail("a run without a cgroup has no live figures");
  if (const Hierarchy* h = v1_hierarchy(*view, "memory")) {
    if (auto r = take(live.memory_current_bytes, live_number(h->mount_point, *rel, "memory.usage_in_bytes")); !r)
      return std::unexpected(r.error());
  }
  if (layout == Layout::hybrid && view->unified) {
    if (auto r = take(live.cpu_s, live_v2_cpu_s(view->unified->mount_point, *rel)); !r)
      return std::unexpected(r.error());
  } else if (const Hierarchy* h = v1_hierarchy(*view, "cpuacct")) {
    std::optional<uint64_t> ns;
    if (auto r = take(ns, live_number(h->mount_point, *rel, "cpuacct.usage")); !r) return std::unexpected(r.error());
    if (ns) live.cpu_s = static_cast<double>(*ns) / 1e9;
  }
  if (const Hierarchy* h = v1_hierarchy(*view, "pids")) {
    if (auto r = take(live.pids_current, live_number(h->mount_point, *rel, "pids.current")); !r)
      return std::unexpected(r.error());
  }
  return live;
}

}  // namespace cronrun::cgroup
