// Discovery: which cgroup layout this host has, and where this runner may put job
// cgroups. Reads /proc/self/mountinfo and /proc/self/cgroup and looks at (never
// writes) the candidate directories.
//
// Kernel rules this encodes:
//  * A cgroup path in /proc/self/cgroup is relative to our cgroup namespace; a mount
//    shows its own root in mountinfo, so the directory is mount_point + (path minus
//    mount root). A path outside the mount root is unreachable, and a mount whose
//    root is outside the namespace ("/..", inherited from before the namespace was
//    made) cannot be used at all: it does not show where the namespace's root is,
//    and the kernel refuses to move a process into a cgroup outside it.
//  * v2 delegation (cgroup-v2.rst, "Delegation Containment"): a non-root writer
//    needs write access to the cgroup directory, its cgroup.procs and
//    cgroup.subtree_control, and moving a process needs write access to cgroup.procs
//    of the common ancestor of source and destination. So a non-root runner can
//    only use the delegated cgroup it already lives in (or a delegated ancestor of
//    it), and must first leave it for a leaf of its own: a cgroup with processes
//    cannot enable controllers for its children (no-internal-processes rule).
//  * v1 has no delegation model: a non-root runner can use a parent an admin made
//    writable for it (cgconfig.conf perm blocks), nothing else.
//  * A read-only cgroupfs (typical in containers) cannot be used at all.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

namespace {

bool is_ours(std::string_view controller) { return is_used_v1_controller(controller); }

struct Creds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

Creds credentials(const DiscoverOptions& opts) {
  Creds c;
  c.uid = opts.euid.value_or(::geteuid());
  c.gid = opts.egid.value_or(::getegid());
  if (!opts.euid) {
    int n = ::getgroups(0, nullptr);
    if (n > 0) {
      c.groups.resize(static_cast<size_t>(n));
      n = ::getgroups(n, c.groups.data());
      c.groups.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
  }
  return c;
}

// Write permission by mode bits, as the kernel checks it for cgroupfs (no ACLs
// there). Root (uid 0) passes; a read-only mount is handled separately.
bool writable(const std::string& path, const Creds& c) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  if (c.uid == 0) return true;
  if (st.st_uid == c.uid) return (st.st_mode & S_IWUSR) != 0;
  if (st.st_gid == c.gid || std::find(c.groups.begin(), c.groups.end(), st.st_gid) != c.groups.end())
    return (st.st_mode & S_IWGRP) != 0;
  return (st.st_mode & S_IWOTH) != 0;
}

std::string owner_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return "owned by uid " + std::to_string(st.st_uid) + ", mode " + [&] {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", st.st_mode & 07777);
    return std::string(buf);
  }();
}

bool is_under_or_equal(std::string_view path, std::string_view ancestor) {
  return map_into_mount(ancestor, path).has_value();
}

// cgroup.controllers of the deepest existing directory on the way to `relative`:
// what the job cgroups can get once we enable it on the way down.
std::vector<std::string> available_v2_controllers(const std::string& mount_point, std::string relative) {
  for (;;) {
    auto text = read_file(cgroup_fs_path(mount_point, join_relative(relative, "cgroup.controllers")));
    if (text) return split_words(*text);
    if (relative == "/" || relative.empty()) return {};
    relative = relative.substr(0, relative.rfind('/'));
    if (relative.empty()) relative = "/";
  }
}

// On a systemd host with cgroup v2 cronrun asks the user's manager for a delegated
// scope itself (systemd_scope.h): wrapping it in `systemd-run --user --scope` adds
// nothing there and needs the same user manager; what is missing is that manager.
const char* kNoneAdvice =
    "on a systemd host with cgroup v2 cronrun gets a delegated scope from the user's systemd manager "
    "by itself once one runs (`loginctl enable-linger USER`, with dbus-user-session); otherwise an admin can "
    "delegate a cgroup to this user (a systemd unit with Delegate=yes, a chown'ed v2 subtree), on cgroup v1 make "
    "a parent writable with a cgconfig.conf perm block (see contrib/delegation.md and contrib/cgconfig.conf), "
    "or run cronrun as root; --cgroup off silences this";

const char* kReadOnlyAdvice =
    "this is usual inside a container: give the container a writable cgroup namespace (e.g. "
    "podman/systemd-nspawn with cgroup delegation, docker --cgroupns=private with a writable "
    "/sys/fs/cgroup) or run cronrun on the host; --cgroup off silences this";

const char* kOutsideNamespaceAdvice =
    "mount the cgroup filesystem inside the namespace (in a container: `umount /sys/fs/cgroup && mount -t "
    "cgroup2 none /sys/fs/cgroup`, or start it with its own cgroup mount, e.g. docker --cgroupns=private "
    "without bind-mounting the host's /sys/fs/cgroup) or run cronrun outside the namespace; "
    "--cgroup off silences this";

std::string outside_namespace_reason(const Hierarchy& h) {
  return "the cgroup filesystem at " + h.mount_point +
         " was mounted outside this process's cgroup namespace (its root reads as \"/..\" in mountinfo), so "
         "its directories are not this namespace's cgroups";
}

// Whether the cgroup at `dir` holds a process other than this one.
bool others_in(const std::string& dir) {
  auto text = read_file(cgroup_fs_path(dir, "cgroup.procs"));
  if (!text) return false;
  pid_t self = ::getpid();
  for (const auto& w : split_words(*text))
    if (w != std::to_string(self)) return true;
  return false;
}

Placement none(std::string reason) {
  Placement p;
  p.layout = Layout::none;
  p.reason = std::move(reason);
  return p;
}

// The v2 part of the decision (pure v2, or the unified half of hybrid). Fills
// parent/runner_leaf/controllers, or returns why it cannot be used.
Result<void> place_v2(const Hierarchy& h, const DiscoverOptions& opts, const Creds& creds,
                      const std::optional<std::string>& override_parent, bool want_controllers,
                      Placement& p) {
  if (h.read_only) return fail("the cgroup2 filesystem at " + h.mount_point + " is mounted read-only");
  if (h.outside_namespace) return fail(outside_namespace_reason(h));
  if (opts.is_root) {
    p.parent = override_parent.value_or("/cronrun");
  } else {
    if (!h.own_path) {
      return fail("this process's cgroup is not visible under the cgroup2 mount at " + h.mount_point);
    }
    std::string own = *h.own_path;
    auto delegated = [&](const std::string& cg) {
      std::string d = cgroup_fs_path(h.mount_point, cg);
      return writable(d, creds) && writable(cgroup_fs_path(d, "cgroup.procs"), creds) &&
             writable(cgroup_fs_path(d, "cgroup.subtree_control"), creds);
    };
    // A login shell (or anything else) sharing our cgroup keeps it from getting
    // controllers (no internal processes). If its parent is delegated too, jobs go
    // under the parent, beside our cgroup, and the runner stays where it is.
    bool shared = !override_parent && own != "/" && others_in(cgroup_fs_path(h.mount_point, own));
    std::string own_parent = own.substr(0, own.rfind('/'));
    if (own_parent.empty()) own_parent = "/";
    bool use_parent = shared && own_parent != "/" && delegated(own_parent);
    std::string parent = override_parent.value_or(use_parent ? own_parent : own);
    std::string dir = cgroup_fs_path(h.mount_point, parent);
    bool ok = delegated(parent);
    if (!ok) {
      return fail("cgroup " + parent + " (" + dir + ", " + owner_of(dir) + ") is not delegated to uid " +
                  std::to_string(creds.uid));
    }
    if (!is_under_or_equal(own, parent)) {
      // Moving our child from `own` into parent/... needs write access to the
      // common ancestor's cgroup.procs, which a delegated subtree never grants.
      return fail("cgroup " + parent + " is writable but this process lives outside it (in " + own +
                  "), and the kernel only lets it move children within a delegated subtree it is in");
    }
    p.parent = parent;
    if (own == parent) p.runner_leaf = join_relative(parent, runner_leaf_name(::getpid()));
  }
  if (want_controllers) {
    auto avail = available_v2_controllers(h.mount_point, p.parent);
    for (const char* c : kV2Controllers)
      if (contains(avail, c)) p.controllers.emplace_back(c);
  }
  return {};
}

}  // namespace

Placement discover(const DiscoverOptions& opts) {
  auto view = read_host_view(opts.proc_root, opts.mount_prefix);
  if (!view) return none("cannot tell the cgroup layout: " + view.error().message());

  std::optional<std::string> override_parent;
  if (opts.parent_override) {
    auto norm = normalize_relative(*opts.parent_override);
    if (!norm) return none("--cgroup-parent: " + norm.error().message());
    override_parent = *norm;
  }
  Creds creds = credentials(opts);
  std::string who = opts.is_root ? "running as root" : "running as uid " + std::to_string(creds.uid);

  // Pure v2: nothing usable on v1.
  if (view->v1.empty()) {
    if (!view->unified)
      return none("no cgroup filesystem is mounted (looked in " + opts.proc_root + "/self/mountinfo)");
    Placement p;
    p.layout = Layout::v2;
    p.v2_mount = view->unified->mount_point;
    auto placed = place_v2(*view->unified, opts, creds, override_parent, true, p);
    if (!placed) {
      const char* advice = view->unified->read_only           ? kReadOnlyAdvice
                           : view->unified->outside_namespace ? kOutsideNamespaceAdvice
                                                              : kNoneAdvice;
      return none("cgroup v2 at " + view->unified->mount_point + ", " + who + ": " + placed.error().message() +
                  "; " + advice);
    }
    p.reason = "cgroup v2 at " + p.v2_mount + ", " + who + ": job cgroups under " + p.parent;
    if (!p.runner_leaf.empty()) p.reason += " (the runner first moves itself into " + p.runner_leaf + ")";
    p.reason += "; controllers: " + (p.controllers.empty() ? std::string("none") : join_words(p.controllers));
    return p;
  }

  // v1 (and hybrid): per hierarchy, is the parent usable?
  std::string parent = override_parent.value_or("/cronrun");
  Placement p;
  std::vector<std::string> skipped;
  for (const auto& h : view->v1) {
    std::string name = join_words(h.controllers, ",");
    if (h.read_only) {
      skipped.push_back(name + " (read-only mount)");
      continue;
    }
    if (h.outside_namespace) {
      skipped.push_back(name + " (mounted outside this cgroup namespace)");
      continue;
    }
    if (!opts.is_root) {
      std::string dir = cgroup_fs_path(h.mount_point, parent);
      if (!writable(dir, creds)) {
        skipped.push_back(name + " (" + dir + " " + owner_of(dir) + ")");
        continue;
      }
    }
    p.v1_mounts.push_back({h.controllers, h.mount_point});
    for (const auto& c : h.controllers)
      if (is_ours(c)) p.controllers.push_back(c);
  }
  if (p.v1_mounts.empty()) {
    bool all_ro = std::all_of(view->v1.begin(), view->v1.end(), [](const Hierarchy& h) { return h.read_only; });
    bool all_outside =
        std::all_of(view->v1.begin(), view->v1.end(), [](const Hierarchy& h) { return h.outside_namespace; });
    const char* advice = all_ro ? kReadOnlyAdvice : all_outside ? kOutsideNamespaceAdvice : kNoneAdvice;
    return none("cgroup v1, " + who + ": no hierarchy usable for " + parent + ": " + join_words(skipped, "; ") +
                "; " + advice);
  }
  p.layout = Layout::v1;
  p.parent = parent;
  std::string v1_part = "job cgroups under " + parent + " in " + std::to_string(p.v1_mounts.size()) +
                        " v1 hierarchies (controllers: " + join_words(p.controllers) + ")";
  if (!skipped.empty()) v1_part += "; not used: " + join_words(skipped, "; ");
  p.reason = "cgroup v1, " + who + ": " + v1_part;

  // Hybrid: the controller-less unified hierarchy adds tracking, cgroup.kill,
  // cpu.stat and pressure. It must sit at the same parent; otherwise stay v1.
  if (view->unified) {
    Placement u;
    auto placed = place_v2(*view->unified, opts, creds, parent, false, u);
    if (placed && u.runner_leaf.empty()) {
      p.layout = Layout::hybrid;
      p.v2_mount = view->unified->mount_point;
      p.reason = "hybrid cgroups, " + who + ": " + v1_part + ", and in the unified hierarchy at " + p.v2_mount +
                 " for tracking, cgroup.kill, CPU time and pressure (freezer and cpuacct are then used only if "
                 "the unified leaf lacks cgroup.kill or cpu.stat)";
    } else {
      p.reason += "; unified hierarchy at " + view->unified->mount_point + " not used: " +
                  (placed ? std::string("the runner lives in ") + parent : placed.error().message());
    }
  }
  return p;
}

}  // namespace cronrun::cgroup
