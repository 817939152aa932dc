// Fleet mode's run-time half (DESIGN.md section 10, docs/fleet-design.md): the
// claim of a job's tick on etcd, the keepalive process that renews the claim's
// lease while the job runs, and the arithmetic the supervisor's lease deadline is
// made of.
//
// The claim is one lease and one transaction: the lock `<prefix>/locks/<job>`
// (attached to the lease) and the tick claim `<prefix>/runs/<job>/<tick>` (no
// lease: it outlives the run, so a tick runs at most once) are created together
// or not at all, and this job's claims older than a week are deleted in the same
// transaction. The lock's create_revision is the fencing token.
//
// The keepalive is a process of its own, so that a runner busy in its poll loop
// (or a slow etcd answer) never delays the other: it renews the lease every third
// of the TTL and reports, over a pipe, the instant each successful renewal was
// *sent* (the lease is at least that fresh on the server). The runner's deadline
// counts from that instant, on its own timer; a keepalive that stops (SIGSTOP, a
// partition) therefore stops the job before the lease can expire. When the runner
// dies, the keepalive kills the job's tree and lets the lease expire on its own: no
// host starts the job before the dead runner's job is gone.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/error.h"
#include "common/etcd.h"
#include "common/fd.h"
#include "runner/clock.h"
#include "runner/fleet_config.h"

namespace cronrun::fleet {

// Tick claims older than this are deleted by the claim transaction.
inline constexpr std::chrono::hours kClaimRetention{24 * 7};

// What one fleet run is, resolved before anything is claimed.
struct Params {
  std::string job;
  std::string host;                  // this host's name in the fleet (--host, config, FQDN)
  std::optional<std::string> group;  // --group; nullopt: no membership check
  std::string prefix = "/cronrun";
  std::vector<std::string> endpoints;
  etcd::Tls tls;                     // fleet.json's etcd_ca / etcd_cert / etcd_key, read
  std::chrono::seconds lease_ttl{15};
  std::chrono::milliseconds kill_after{std::chrono::seconds(10)};
  int64_t tick_s = 0;                // the scheduled time, Unix seconds (format_tick())
  std::string run_id;
  pid_t pid = 0;                     // the runner's
  std::string started_at;            // RFC 3339
};

// The keys (config_key, lock_key, runs_prefix, tick_key), the tick's format
// (format_tick, default_tick), kDeadlineMargin and the refusal of a grace that does
// not fit the lease (check_grace) are fleet_config.h's and job_options.h's.

// ---- the lease deadline ----
struct Deadlines {
  SteadyTime term_at;  // SIGTERM the job
  SteadyTime kill_at;  // SIGKILL what is left; the lease is still valid until `margin` later
};
// From the instant the last successful renewal (or the grant) was sent. Inline:
// the escalation machine uses it too, without the etcd client.
inline Deadlines deadlines(SteadyTime renewal_sent, std::chrono::seconds ttl, std::chrono::milliseconds kill_after,
                           std::chrono::milliseconds margin = kDeadlineMargin) {
  SteadyTime kill_at = renewal_sent + ttl - margin;
  return Deadlines{kill_at - kill_after, kill_at};
}
// How often the keepalive renews.
inline std::chrono::milliseconds renew_interval(std::chrono::seconds ttl) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ttl) / 3;
}

// ---- the claim transaction ----
struct ClaimTxn {
  std::vector<etcd::Compare> compare;
  std::vector<etcd::Op> success;
  std::vector<etcd::Op> failure;
};
// Compare: neither the lock nor the tick claim exists. Success: put the lock
// (attached to `lease_id`), put the tick claim, delete the job's claims older than
// kClaimRetention before the tick. Failure: range the lock, range the tick claim.
ClaimTxn claim_txn(const Params& p, int64_t lease_id);
// The values: the lock {"run_id","host","pid","tick","started_at"}, the claim {"run_id","host"}.
std::string lock_value(const Params& p);
std::string claim_value(const Params& p);

// ---- skips ----
struct Holder {
  std::string host;       // "unknown" when the value does not say
  int64_t revision = 0;   // the key's create_revision
};
struct Skip {
  // no_such_group: the config does not define the run's group at all (a typo in
  // the crontab or a group removed): skipped as not_in_group, but said aloud.
  enum class Why { lock_held, tick_claimed, not_in_group, no_such_group, unavailable };
  Why why = Why::unavailable;
  std::string reason;              // the record's skip_reason
  std::optional<Holder> holder;    // lock_held / tick_claimed
};
std::string lock_held_reason(std::string_view job, const Holder& h);
std::string tick_claimed_reason(int64_t tick_s, std::string_view job, const Holder& h);
std::string not_in_group_reason(std::string_view host, std::string_view group);
// `config_key`: where the groups are (nullopt config: the key does not exist).
std::string no_such_group_reason(std::string_view group, std::string_view config_key, bool config_exists);
std::string unavailable_reason(std::string_view what);
// The skip a failed claim transaction means (its failure branch's two ranges).
Skip skip_of_failed_claim(const Params& p, const etcd::TxnResult& r);
// A claim whose first attempt was applied but not answered (the client retried it
// on another endpoint) fails its compares on this run's own lock: the lock names
// this run_id and carries `lease_id`. Then the claim is this run's: its fence.
std::optional<int64_t> own_lock_fence(const Params& p, const etcd::TxnResult& r, int64_t lease_id);

// Whether this host is in the group, given `<prefix>/config`'s value (nullopt: the
// key does not exist). An error: the config cannot be read as groups.
enum class Membership { member, not_member, no_such_group };
using MemberCheck = std::function<Result<Membership>(const std::optional<std::string>& config)>;

// ---- the claim ----
// A claimed run: the lease holding the lock, the fence, and the instant the lease
// grant was sent (the first deadline counts from it).
struct Claim {
  int64_t lease_id = 0;
  int64_t fence = 0;
  SteadyTime granted_sent{};
};
using ClaimOutcome = std::variant<Claim, Skip>;

class Claimer {
 public:
  // Loads libcurl; does not contact etcd. Errors: the client cannot be made.
  static Result<Claimer> open(const Params& p);

  // Membership (when a group is set), lease grant, the transaction. A lost race or
  // an etcd that no endpoint answers is a Skip; an error is cronrun's own failure
  // (a request etcd rejected, a group config that does not parse).
  Result<ClaimOutcome> claim(const MemberCheck& is_member);
  // Revokes the lease: the lock goes at once. An error is said by the caller;
  // the lease then expires on its own after the TTL.
  Result<void> release(const Claim& c);

 private:
  Claimer(const Params* p, etcd::Client c) : params_(p), client_(std::move(c)) {}
  const Params* params_;  // the caller's, outliving this
  etcd::Client client_;
};

// ---- the keepalive's messages (one line each, written whole to a pipe) ----
struct Message {
  enum class Kind {
    renewed,  // `sent`: the instant the successful renewal was sent
    revoked,  // `text`: this host left the group
    lost,     // `text`: the lease is gone on the server
    failed,   // `text`: a renewal or config read failed (the keepalive retries)
  };
  Kind kind = Kind::renewed;
  SteadyTime sent{};
  std::string text;

  bool operator==(const Message&) const = default;
};
std::string encode(const Message& m);

// Splits what the pipe gave into messages; a partial line waits for its rest. A
// line that is not a message comes back as `failed` naming it.
class MessageReader {
 public:
  std::vector<Message> feed(std::string_view bytes);

 private:
  std::string partial_;
};

// ---- the keepalive process ----
// Kills the job's whole tree from the keepalive when the runner is gone. `pgid`:
// the job's process group, once the runner has said it (Keepalive::tell_job).
using KillJob = std::function<void(std::optional<pid_t> pgid)>;

class Keepalive {
 public:
  // Forks the keepalive (double fork: it is neither the runner's child, so a run
  // without a cgroup does not take it for one of the job's processes, nor reaped
  // by the runner's subreaper loop). Call before the job starts and before the
  // runner becomes a subreaper.
  static Result<Keepalive> start(const Params& p, const Claim& c, MemberCheck is_member, KillJob kill_job);
  Keepalive(Keepalive&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)),
        pidfd_(std::move(o.pidfd_)),
        control_(std::move(o.control_)),
        report_(std::move(o.report_)) {}
  Keepalive& operator=(Keepalive&&) = delete;
  // Stops it (as stop()) if the caller did not.
  ~Keepalive();

  pid_t pid() const { return pid_; }
  // The runner's end of the message pipe (non-blocking).
  int report_fd() const { return report_.get(); }
  // Tells the keepalive the job's process group (to kill if the runner dies).
  Result<void> tell_job(pid_t pgid);
  // The normal end: asks it to exit, waits up to `bound`, then SIGKILLs it. It
  // does not revoke: the runner does, after this.
  Result<void> stop(std::chrono::milliseconds bound);

 private:
  Keepalive() = default;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd control_;  // write end: "job <pid>", "stop"; its EOF without "stop" = the runner died
  UniqueFd report_;   // read end of the messages
};

}  // namespace cronrun::fleet
