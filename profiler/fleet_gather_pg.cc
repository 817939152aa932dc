// The central history's half of `cronprof fleet` (fleet.h): running rows, dead
// letters and when each host was last heard from, read through
// common/pg_history.h. Reads only.
#include <algorithm>

#include "common/pg_history.h"
#include "common/run_record.h"
#include "profiler/fleet.h"

namespace cronrun::prof::fleet {

void gather_history(const Source& source, FleetView& v) {
  if (source.history_uri.empty()) return;
  v.history = pg::redact_uri(source.history_uri);
  auto db = pg::PgHistory::open(source.history_uri);
  if (!db) {
    v.history_error = db.error().message();
    return;
  }
  auto fail = [&](const Error& e) { v.history_error = e.message(); };
  if (auto current = db->require_current(); !current) return fail(current.error());
  auto running = db->running_rows();
  if (!running) return fail(running.error());
  for (const pg::RunningRow& r : *running)
    v.running.push_back(InProgress{.run_id = r.run_id, .job = r.job, .host = r.host, .tick = r.tick,
                                   .fence = r.fence, .started_at_s = r.started_at_s});
  // Runs the forwarder marked lost that started within the last kRecentLostS:
  // shown (and alerted on) with the others; older ones are
  // `cronprof runs --status lost`'s.
  pg::RunFilter lost;
  lost.status = RunStatus::lost;
  lost.since_unix_s = v.now_s - kRecentLostS;
  auto marked = db->each_run(lost, [&](const RunRecord& r) {
    InProgress p{.run_id = r.run_id, .job = r.job, .host = r.host, .lost = true,
                 .lost_why = "marked lost by the forwarder (its lock was gone)"};
    if (auto s = parse_rfc3339(r.started_at)) p.started_at_s = *s;
    v.running.push_back(std::move(p));
  }, [](const std::string&, const Error&) {});
  if (!marked) return fail(marked.error());
  auto count = db->dead_letter_count();
  if (!count) return fail(count.error());
  v.dead_letters_total = *count;
  auto dead = db->dead_letters(kNewestDeadLetters);
  if (!dead) return fail(dead.error());
  for (const pg::DeadLetter& d : *dead)
    v.dead_letters.push_back(DeadLetter{.id = d.id, .host = d.host, .run_id = d.run_id.value_or(""),
                                        .reason = d.reason, .received_at_s = d.received_at_s});
  auto hosts = db->hosts_last_seen();
  if (!hosts) return fail(hosts.error());
  for (const pg::HostSeen& h : *hosts) v.hosts.push_back(HostSeen{.host = h.host, .last_seen_s = h.last_seen_s});
  std::sort(v.hosts.begin(), v.hosts.end(), [](const HostSeen& a, const HostSeen& b) { return a.host < b.host; });
}

}  // namespace cronrun::prof::fleet
