// --dry-run shows what a run would do, resolved the way run_job() resolves it:
// every JobSpec field with its default filled in (lock and history paths, the
// kill grace, the log file name), the cgroup placement discovery would choose and
// its reason, which limits that placement cannot enforce, and what the fallback
// would be. It only reads: discovery looks at /proc and the cgroup mounts, the
// drain file is stat'ed, nothing is created, locked or recorded.
//
// The description is built once as a JSON document; the text form is printed from
// that document, so the two can never disagree.
#include "runner/dry_run.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <iostream>

#include "common/fd.h"
#include "common/safe_file.h"
#include "common/units.h"
#include "runner/db_counter.h"
#include "runner/ping.h"
#include "runner/summary.h"
#include "runner/systemd_scope.h"

namespace cronrun {
namespace {

using Json = nlohmann::ordered_json;

template <class T>
Json opt(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

const char* ionice_class_name(int io_class) {
  switch (io_class) {
    case 1: return "realtime";
    case 2: return "best-effort";
    case 3: return "idle";
  }
  return "?";
}

// The controller each limit needs, by the names discovery reports; the limit is
// named by its option (common/job_options.h).
struct LimitNeed {
  job_options::Id option;
  bool set;
  std::vector<const char*> controllers;  // any one of them will do
  std::string flag() const { return job_options::get(option).flag(); }
};

std::vector<LimitNeed> limit_needs(const cgroup::Limits& l) {
  using job_options::Id;
  return {{Id::memory, l.memory_max_bytes.has_value(), {"memory"}},
          {Id::memory_high, l.memory_high_bytes.has_value(), {"memory"}},
          {Id::swap, l.swap_max_bytes.has_value(), {"memory"}},
          {Id::cpu, l.cpu_quota_pct.has_value(), {"cpu"}},
          {Id::cpu_weight, l.cpu_weight.has_value(), {"cpu"}},
          {Id::pids, l.pids_max.has_value(), {"pids"}},
          {Id::io_weight, l.io_weight.has_value(), {"io", "blkio"}}};
}

// What a run without a cgroup keeps of the limits (as Run::degrade() applies them).
Json fallback(const JobSpec& spec) {
  Json rlimits = Json::array();
  if (spec.limits.memory_max_bytes)
    rlimits.push_back(fmt::format("RLIMIT_DATA={} per process", units::format_size(*spec.limits.memory_max_bytes)));
  if (spec.timeout) rlimits.push_back("RLIMIT_CPU from --timeout and --cpu");
  Json lost = Json::array();
  for (const auto& n : limit_needs(spec.limits))
    if (n.set && n.option != job_options::Id::memory) lost.push_back(n.flag());
  return {{"accounting", "rusage"}, {"kill", "process group"}, {"rlimits", rlimits}, {"not_enforced", lost}};
}

Json describe_cgroup(const JobSpec& spec, const DryRunFacts& facts) {
  Json c;
  c["mode"] = to_string(spec.cgroup_mode);
  c["parent_override"] = opt(spec.cgroup_parent);
  if (!facts.placement) {
    c["layout"] = nullptr;
    c["why"] = "cgroups disabled by --cgroup off";
    c["fallback"] = fallback(spec);
    return c;
  }
  const cgroup::Placement& p = *facts.placement;
  c["layout"] = cgroup::to_string(p.layout);
  if (p.layout != cgroup::Layout::none) {
    c["job_cgroup"] = facts.scope_job_cgroup.value_or(fmt::format("{}/{}/<run-id>", p.parent, spec.name));
    c["runner_leaf"] = p.runner_leaf.empty() ? Json(nullptr) : Json(p.runner_leaf);
    c["controllers"] = p.controllers;
    auto run = cgroup::run_controllers(p, spec.limits);
    c["run_controllers"] = run.sure;
    c["run_controllers_maybe"] = run.maybe;
    Json missing = Json::array();
    for (const auto& n : limit_needs(spec.limits)) {
      if (!n.set) continue;
      bool have = std::ranges::any_of(n.controllers, [&](const char* want) {
        return std::ranges::find(p.controllers, want) != p.controllers.end();
      });
      if (!have) missing.push_back(fmt::format("{} (needs {})", n.flag(), n.controllers.front()));
    }
    c["limits_without_controller"] = missing;
  } else if (spec.cgroup_mode == CgroupMode::required) {
    c["fallback"] = nullptr;
    c["would_exit"] = 125;
  } else {
    c["fallback"] = fallback(spec);
  }
  c["why"] = p.reason;
  return c;
}

// A PostgreSQL URI without its password ("postgresql://user:pw@db/x" →
// "postgresql://user@db/x"): the rest says which database, the password is a secret.
std::string without_password(const std::string& uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  auto at = uri.find('@', scheme + 3);
  auto slash = uri.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return uri;
  auto colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon) + uri.substr(at);
}

// Fleet mode as far as it is known without contacting etcd: the fleet config
// parse_args read, the names and keys a run would use, and the deadline the lease
// gives the job. Group membership and the lock are etcd's to say at run time.
Json describe_fleet(const JobSpec& spec) {
  if (!fleet_mode(spec)) return nullptr;
  Json f;
  f["group"] = opt(spec.group);
  f["tick"] = spec.tick ? Json(*spec.tick) : Json(nullptr);
  f["tick_default"] = "the start time truncated to the minute";
  f["on_revoke"] = to_string(spec.on_revoke);
  if (!spec.fleet) {  // not resolved (a spec built by hand): what the settings say
    f["config"] = opt(spec.fleet_config_path);
    f["host"] = opt(spec.fleet_host);
    return f;
  }
  const fleet::Config& c = *spec.fleet;
  f["config"] = c.path;
  f["etcd"] = c.etcd;
  f["prefix"] = c.prefix;
  f["tls"] = {{"ca", opt(c.etcd_ca)}, {"cert", opt(c.etcd_cert)}, {"key", opt(c.etcd_key)}};
  f["lease_ttl_s"] = c.lease_ttl.count();
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(c.lease_ttl);
  f["deadline"] = {{"term_s_after_renewal", seconds(ttl - spec.kill_after - fleet::kDeadlineMargin)},
                   {"kill_s_after_renewal", seconds(ttl - fleet::kDeadlineMargin)},
                   {"renew_every_s", seconds(ttl / 3)}};
  f["history"] = c.history ? Json(without_password(*c.history)) : Json(nullptr);
  f["host"] = c.host;
  f["host_from"] = c.host_from;
  f["unavailable"] = fleet::to_string(c.unavailable);
  f["note"] = opt(c.note);
  f["keys"] = {{"config", fleet::config_key(c.prefix)},
               {"lock", fleet::lock_key(c.prefix, spec.name)},
               {"tick", fleet::tick_key(c.prefix, spec.name, spec.tick.value_or("<tick>"))}};
  f["membership"] = spec.group ? Json(fmt::format("read from etcd {} at run time", fleet::config_key(c.prefix)))
                               : Json(nullptr);
  return f;
}

std::string join(const Json& array, std::string_view sep) {
  std::string out;
  for (const auto& v : array) {
    if (!out.empty()) out += sep;
    out += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

std::string size_or(const Json& v, std::string_view unset) {
  return v.is_null() ? std::string(unset) : units::format_size(v.get<uint64_t>());
}

std::string duration_or(const Json& v, std::string_view unset) {
  return v.is_null() ? std::string(unset) : units::format_duration_s(v.get<double>());
}

std::string str_or(const Json& v, std::string_view unset) {
  if (v.is_null()) return std::string(unset);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string yes_no(const Json& v) { return v.get<bool>() ? "yes" : "no"; }

}  // namespace

DryRunFacts gather_dry_run_facts(const JobSpec& spec) {
  DryRunFacts f;
  struct stat st;
  f.draining = ::stat(spec.paths.drain.c_str(), &st) == 0;
  if (spec.count_db_queries) {
    if (auto lib = dbcount::library_path()) f.db_library = *lib;
    else f.db_library_error = lib.error().message();
    if (!f.db_library_error.empty()) f.would_refuse.push_back("--count-db-queries: " + f.db_library_error);
  }
  f.host_cpus = host_cpu_count();
  // The paths a run checks before its lock, looked at the same way (not made).
  if (spec.summary_path)
    if (auto ok = check_summary_target(*spec.summary_path); !ok)
      f.would_refuse.push_back("--summary: " + ok.error().message());
  if (spec.log_dir)
    if (auto dir = CheckedDir::open(*spec.log_dir); !dir)
      f.would_refuse.push_back("--log-dir: " + dir.error().message() +
                               (dir.error().err() == ENOENT ? " (the directory must exist; it is not created)" : ""));
  // An explicit --lock or --history must sit in an existing directory (only the
  // defaults' directories are created).
  if (spec.lock && spec.lock_path)
    if (auto dir = CheckedDir::open(split_path(spec.paths.lock).first); !dir)
      f.would_refuse.push_back(fmt::format("--lock {}: the lock directory: {}", spec.paths.lock, dir.error().message()));
  if (spec.history && spec.history_path)
    if (auto dir = CheckedDir::open(split_path(spec.paths.history).first); !dir)
      f.would_refuse.push_back(fmt::format("--history {}: its directory must exist: {}", spec.paths.history,
                                           dir.error().message()));
  if (spec.cgroup_mode != CgroupMode::off) {
    cgroup::DiscoverOptions opts;
    opts.parent_override = spec.cgroup_parent;
    opts.is_root = spec.is_root;
    // The placement a run would take: a systemd scope first on systemd hosts.
    systemd::SystemdCgroups backend;
    f.placement = backend.discover(opts);
    f.scope_job_cgroup = backend.planned_job_cgroup(spec.name);
  }
  return f;
}

Json describe_dry_run(const JobSpec& spec, const DryRunFacts& facts) {
  Json j;
  j["schema"] = "cronrun.dry-run/1";
  j["job"] = spec.name;
  j["is_root"] = spec.is_root;
  j["command"] = spec.command;
  j["config"] = {{"path", opt(spec.config_path)},
                 {"looked_for", spec.config_path ? Json(nullptr) : Json(spec.paths.config)}};
  j["limits"] = {{"memory_max_bytes", opt(spec.limits.memory_max_bytes)},
                 {"memory_high_bytes", opt(spec.limits.memory_high_bytes)},
                 {"swap_max_bytes", opt(spec.limits.swap_max_bytes)},
                 {"cpu_quota_pct", opt(spec.limits.cpu_quota_pct)},
                 {"cpu_weight", opt(spec.limits.cpu_weight)},
                 {"pids_max", opt(spec.limits.pids_max)},
                 {"io_weight", opt(spec.limits.io_weight)}};
  j["host_cpus"] = facts.host_cpus;
  j["timeout_s"] = spec.timeout ? Json(seconds(*spec.timeout)) : Json(nullptr);
  j["kill_after_s"] = seconds(spec.kill_after);
  j["nice"] = opt(spec.nice);
  j["ionice"] = spec.ionice ? Json{{"class", ionice_class_name(spec.ionice->io_class)},
                                   {"level", spec.ionice->io_class == 3 ? Json(nullptr) : Json(spec.ionice->level)}}
                            : Json(nullptr);
  j["env"] = spec.env;
  j["lock"] = {{"enabled", spec.lock},
               {"path", spec.lock ? Json(spec.paths.lock) : Json(nullptr)},
               {"default_path", !spec.lock_path.has_value()},
               {"wait_s", seconds(spec.lock_wait)},
               {"on_locked", to_string(spec.on_locked)}};
  j["history"] = {{"enabled", spec.history},
                  {"path", spec.history ? Json(spec.paths.history) : Json(nullptr)},
                  {"journal", spec.history ? Json(spec.paths.journal) : Json(nullptr)}};
  j["summary"] = opt(spec.summary_path);
  j["output"] = to_string(spec.output);
  j["log"] = {{"dir", opt(spec.log_dir)},
              {"file", spec.log_dir ? Json(fmt::format("{}/{}/<run-id>.log", *spec.log_dir, spec.name)) : Json(nullptr)},
              {"max_bytes", spec.log_max_bytes}};
  j["report"] = spec.report;
  j["count_db_queries"] = {
      {"enabled", spec.count_db_queries},
      {"library", facts.db_library.empty() ? Json(nullptr) : Json(facts.db_library)},
      {"error", facts.db_library_error.empty() ? Json(nullptr) : Json(facts.db_library_error)}};
  j["keep_orphans"] = spec.keep_orphans;
  j["seccomp"] = spec.seccomp_profile ? spec.seccomp_profile->name : std::string("off");
  j["ping"] = spec.ping_url ? Json(ping::host_of(*spec.ping_url)) : Json(nullptr);  // the path is the secret
  j["verbosity"] = spec.verbosity;
  j["drain"] = {{"file", spec.paths.drain}, {"draining", facts.draining}};
  j["fleet"] = describe_fleet(spec);
  j["cgroup"] = describe_cgroup(spec, facts);
  j["would_refuse"] = facts.would_refuse;
  return j;
}

std::string format_dry_run_text(const Json& j) {
  std::string o;
  auto line = [&](std::string_view key, const std::string& value) { o += fmt::format("{:<17} {}\n", key, value); };
  line("job:", j["job"].get<std::string>());
  line("command:", join(j["command"], " "));
  const Json& cfg = j["config"];
  line("config:", cfg["path"].is_null() ? fmt::format("none ({} not found)", cfg["looked_for"].get<std::string>())
                                         : cfg["path"].get<std::string>());
  const Json& l = j["limits"];
  line("memory:", size_or(l["memory_max_bytes"], "no limit"));
  line("memory-high:", size_or(l["memory_high_bytes"], "no limit"));
  line("swap:", size_or(l["swap_max_bytes"], "no limit"));
  line("cpu:", l["cpu_quota_pct"].is_null()
                   ? fmt::format("no quota (host has {} CPUs)", j["host_cpus"].get<unsigned>())
                   : fmt::format("{}% of one CPU (host has {} CPUs)", l["cpu_quota_pct"].get<double>(),
                                 j["host_cpus"].get<unsigned>()));
  line("cpu-weight:", str_or(l["cpu_weight"], "default"));
  line("pids:", str_or(l["pids_max"], "no limit"));
  line("io-weight:", str_or(l["io_weight"], "default"));
  line("timeout:", j["timeout_s"].is_null() ? "none"
                                             : fmt::format("{}, then SIGTERM", duration_or(j["timeout_s"], "")));
  line("kill-after:", duration_or(j["kill_after_s"], ""));
  line("nice:", str_or(j["nice"], "inherited"));
  const Json& io = j["ionice"];
  line("ionice:", io.is_null() ? "inherited"
                               : io["level"].is_null() ? io["class"].get<std::string>()
                                                       : fmt::format("{}:{}", io["class"].get<std::string>(),
                                                                     io["level"].get<int>()));
  line("env:", j["env"].empty() ? "inherited, plus CRONRUN_RUN_ID CRONRUN_JOB CRONRUN_COUNTERS"
                                : join(j["env"], " ") + " (plus CRONRUN_RUN_ID CRONRUN_JOB CRONRUN_COUNTERS)");
  const Json& lock = j["lock"];
  line("lock:", lock["enabled"].get<bool>()
                    ? fmt::format("{}{}", lock["path"].get<std::string>(), lock["default_path"].get<bool>() ? " (default)" : "")
                    : "off");
  if (lock["enabled"].get<bool>()) {
    line("lock-wait:", lock["wait_s"].get<double>() == 0 ? "0 (do not wait)" : duration_or(lock["wait_s"], ""));
    line("on-locked:", lock["on_locked"].get<std::string>());
  }
  const Json& h = j["history"];
  line("history:", h["enabled"].get<bool>() ? h["path"].get<std::string>() : "off");
  line("summary:", str_or(j["summary"], "none"));
  line("output:", j["output"].get<std::string>());
  const Json& log = j["log"];
  line("log-dir:", log["dir"].is_null() ? "none (output is not kept)"
                                        : fmt::format("{} (capped at {})", log["file"].get<std::string>(),
                                                      size_or(log["max_bytes"], "")));
  line("report:", yes_no(j["report"]));
  const Json& db = j["count_db_queries"];
  std::string db_text = yes_no(db["enabled"]);
  if (!db["library"].is_null()) db_text += fmt::format(" (preload {})", db["library"].get<std::string>());
  if (!db["error"].is_null()) db_text += fmt::format(" (preload library: {})", db["error"].get<std::string>());
  line("count-db-queries:", db_text);
  line("keep-orphans:", j["keep_orphans"].get<bool>() ? "yes" : "no (processes left behind are killed)");
  line("seccomp:", j["seccomp"].get<std::string>());
  line("ping:", j["ping"].is_null() ? "none" : fmt::format("{} (the URL's path is not shown)", j["ping"].get<std::string>()));
  int verbosity = j["verbosity"].get<int>();
  line("messages:", verbosity < 0 ? "quiet (errors only)" : verbosity == 0 ? "normal" : fmt::format("verbose ({})", verbosity));
  const Json& drain = j["drain"];
  line("drain:", drain["draining"].get<bool>()
                     ? fmt::format("{} exists: the run would be skipped", drain["file"].get<std::string>())
                     : fmt::format("no ({} absent)", drain["file"].get<std::string>()));

  const Json& fl = j["fleet"];
  if (fl.is_null()) {
    line("fleet:", "off (no --group or --fleet-config)");
  } else {
    line("fleet:", fl["group"].is_null() ? std::string("on, no group (any host may take a tick)")
                                        : fmt::format("group {} ({})", fl["group"].get<std::string>(),
                                                      fl.contains("membership") ? fl["membership"].get<std::string>()
                                                                               : std::string("checked at run time")));
    line("fleet-config:", str_or(fl["config"], "default"));
    if (fl.contains("etcd")) {
      line("etcd:", join(fl["etcd"], " "));
      if (const Json& t = fl["tls"]; !t["ca"].is_null() || !t["cert"].is_null())
        line("etcd tls:", fmt::format("CA {}; client certificate {}", str_or(t["ca"], "the system's"),
                                      t["cert"].is_null() ? std::string("none")
                                                          : fmt::format("{} (key {})", t["cert"].get<std::string>(),
                                                                        t["key"].get<std::string>())));
      line("prefix:", fmt::format("{} (lock {}, tick {})", fl["prefix"].get<std::string>(),
                                  fl["keys"]["lock"].get<std::string>(), fl["keys"]["tick"].get<std::string>()));
      const Json& d = fl["deadline"];
      line("lease-ttl:", fmt::format("{} (renewed every {}; cut off from etcd: SIGTERM {}, kill {} after the last "
                                     "renewal)",
                                     duration_or(fl["lease_ttl_s"], ""), duration_or(d["renew_every_s"], ""),
                                     duration_or(d["term_s_after_renewal"], ""),
                                     duration_or(d["kill_s_after_renewal"], "")));
      line("host:", fmt::format("{} (from {})", fl["host"].get<std::string>(), fl["host_from"].get<std::string>()));
      if (!fl["note"].is_null()) line("", fl["note"].get<std::string>());
      line("unavailable:", fl["unavailable"].get<std::string>() == "run"
                               ? "run (etcd away: the run goes ahead on the local lock alone)"
                               : "skip (etcd away: the run is skipped and recorded, exit 75)");
      line("fleet history:", str_or(fl["history"], "none (records stay in the local history)"));
    } else {
      line("host:", str_or(fl["host"], "default"));
    }
    line("tick:", fl["tick"].is_null() ? fl["tick_default"].get<std::string>() : fl["tick"].get<std::string>());
    line("on-revoke:", fl["on_revoke"].get<std::string>());
  }

  // The cgroup section is a heading and its details, unpadded ("cgroup: v2",
  // "  why: ..."), as scripts and the integration tests read it.
  auto sub = [&](std::string_view key, const std::string& value) { o += fmt::format("{} {}\n", key, value); };
  const Json& c = j["cgroup"];
  std::string layout = c["layout"].is_null() ? "off" : c["layout"].get<std::string>();
  sub("cgroup:", fmt::format("{} (--cgroup {}{})", layout, c["mode"].get<std::string>(),
                           c["parent_override"].is_null()
                               ? ""
                               : ", --cgroup-parent " + c["parent_override"].get<std::string>()));
  if (c.contains("job_cgroup")) {
    sub("  job cgroup:", c["job_cgroup"].get<std::string>());
    if (!c["runner_leaf"].is_null()) sub("  runner moves to:", c["runner_leaf"].get<std::string>());
    std::string maybe;
    if (!c["run_controllers_maybe"].empty())
      maybe = fmt::format(", and {} if the unified leaf lacks cgroup.kill or cpu.stat",
                          join(c["run_controllers_maybe"], " "));
    sub("  controllers:", fmt::format("{}{} (this run's; the host offers {})", join(c["run_controllers"], " "), maybe,
                                      join(c["controllers"], " ")));
    if (!c["limits_without_controller"].empty())
      sub("  not enforceable:", join(c["limits_without_controller"], ", "));
  }
  if (c.contains("would_exit")) sub("  fallback:", "none: --cgroup required, the run would exit 125");
  if (c.contains("fallback") && !c["fallback"].is_null()) {
    const Json& f = c["fallback"];
    std::string text = "rusage accounting, process-group kill";
    if (!f["rlimits"].empty()) text += "; " + join(f["rlimits"], ", ");
    if (!f["not_enforced"].empty()) text += "; not enforced: " + join(f["not_enforced"], " ");
    sub("  fallback:", text);
  }
  sub("  why:", c["why"].get<std::string>());
  // Last, where it is seen: what would stop the run before the job starts.
  for (const auto& why : j["would_refuse"]) line("would refuse:", why.get<std::string>() + " (exit 125)");
  return o;
}

int dry_run(const JobSpec& spec, bool json) {
  Json doc = describe_dry_run(spec, gather_dry_run_facts(spec));
  // Names, commands and paths may hold any bytes; replace what is not UTF-8
  // rather than throw.
  std::string text = json ? doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"
                          : format_dry_run_text(doc);
  if (auto r = write_all(STDOUT_FILENO, text, "stdout"); !r) {
    std::cerr << "cronrun: --dry-run: " << r.error().message() << "\n";
    return 125;
  }
  return 0;
}

}  // namespace cronrun
