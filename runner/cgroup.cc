// The cgroup module's entry points: choosing the backend for a placement, what a
// run needs of it (needed_controllers), and the runs a dead runner left behind.
#include "runner/cgroup.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

std::vector<std::string> needed_controllers(Layout layout, const Limits& l, const UnifiedLeafFeatures& unified) {
  const bool cpu_limit = l.cpu_quota_pct || l.cpu_weight;
  std::vector<std::string> out;
  switch (layout) {
    case Layout::none:
      return out;
    case Layout::v2:
      if (cpu_limit) out.emplace_back("cpu");
      out.emplace_back("io");
      out.emplace_back("memory");
      if (l.pids_max) out.emplace_back("pids");
      return out;
    case Layout::v1:
    case Layout::hybrid: {
      const bool hybrid = layout == Layout::hybrid;
      out.emplace_back("memory");
      if (cpu_limit) out.emplace_back("cpu");
      if (!hybrid || !unified.cpu_stat) out.emplace_back("cpuacct");
      if (l.pids_max) out.emplace_back("pids");
      if (l.io_weight) out.emplace_back("blkio");
      if (!hybrid || !unified.kill) out.emplace_back("freezer");
      return out;
    }
  }
  return out;
}

RunControllers run_controllers(const Placement& p, const Limits& limits) {
  auto offered = [&](const std::string& c) {
    return std::find(p.controllers.begin(), p.controllers.end(), c) != p.controllers.end();
  };
  UnifiedLeafFeatures unified;
  bool probed = p.layout != Layout::hybrid;
  if (!probed && !p.v2_mount.empty()) {
    std::string dir = p.v2_mount + p.parent;
    while (dir.size() > p.v2_mount.size() && ::access(dir.c_str(), F_OK) != 0) dir.resize(dir.rfind('/'));
    if (dir.size() > p.v2_mount.size()) {
      probed = true;
      unified.kill = ::access((dir + "/cgroup.kill").c_str(), F_OK) == 0;
      unified.cpu_stat = ::access((dir + "/cpu.stat").c_str(), F_OK) == 0;
    }
  }
  RunControllers out;
  if (!probed) unified = {.kill = true, .cpu_stat = true};
  for (auto& c : needed_controllers(p.layout, limits, unified))
    if (offered(c)) out.sure.push_back(std::move(c));
  if (!probed)
    for (auto& c : needed_controllers(p.layout, limits, {}))
      if (offered(c) && std::find(out.sure.begin(), out.sure.end(), c) == out.sure.end()) out.maybe.push_back(c);
  return out;
}

std::vector<std::string> not_measured_fields(const std::vector<std::string>& skipped, const Usage& u) {
  std::vector<std::string> out;
  auto has = [&](std::string_view c) { return std::find(skipped.begin(), skipped.end(), c) != skipped.end(); };
  auto add = [&](bool measured, const char* field) {
    if (!measured) out.emplace_back(field);
  };
  if (has("memory")) {
    add(u.memory_peak_bytes.has_value(), "memory_peak_bytes");
    add(u.oom_kills.has_value(), "oom_kills");
    add(u.memory_max_events.has_value(), "memory_max_events");
  }
  if (has("cpuacct")) {
    add(u.cpu_user_s.has_value(), "cpu_user_s");
    add(u.cpu_system_s.has_value(), "cpu_system_s");
  }
  if (has("cpu")) {
    add(u.cpu_throttled_s.has_value(), "cpu_throttled_s");
    add(u.cpu_nr_throttled.has_value(), "cpu_nr_throttled");
  }
  if (has("io")) {
    add(u.io_read_bytes.has_value(), "io_read_bytes");
    add(u.io_write_bytes.has_value(), "io_write_bytes");
  }
  if (has("pids")) {
    add(u.pids_peak.has_value(), "pids_peak");
    add(u.pids_max_events.has_value(), "pids_max_events");
  }
  // blkio and freezer measure nothing the record holds.
  return out;
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
  std::set<std::string> stale;          // unmarked leaves found empty: their runner is gone
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
        if (!populated) {
          // Under the lock and before this run's leaf exists, an empty leaf is a
          // runner's that died after its job ended: nothing will remove it but us.
          // rmdir cannot take a leaf that holds processes or cgroups of its own.
          if (job_dir->remove_child(name, 0)) stale.insert(name);
          continue;
        }
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
    if (finished_kept.empty() && stale.empty()) break;
    auto job_dir = CgroupDir::open(cgroup_fs_path(mount, job_path));
    if (!job_dir) continue;
    for (const auto& name : finished_kept)
      if (job_dir->remove_child(name, 0)) (void)job_dir->remove_child(name + std::string(kKeptSuffix), 0);
    for (const auto& name : stale) (void)job_dir->remove_child(name, 0);
  }
  for (auto& [name, run] : found) out.push_back(std::move(run));
  for (const auto& name : stale) out.push_back(LiveRun{name, join_relative(job_path, name), 0, true});
  return out;
}

}  // namespace cronrun::cgroup
