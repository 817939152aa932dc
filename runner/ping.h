// --ping URL: Healthchecks' ping protocol (DESIGN §12), spoken with libcurl.
//
// A run sends URL/start?rid=RUN_ID once the job is running, then one signal when
// it ends, with the same rid: URL on exit 0, URL/CODE for any other exit status
// (Healthchecks reads a non-zero code as a failure and shows it), URL/log for a
// run skipped with exit 0 (lock busy, draining), which the check stores without
// changing its state. The finish signal carries the run's FINISH line and the
// tail of the job's output as its body.
//
// A ping never changes the job's exit status and never holds the job back: the
// start ping runs on a thread of its own, started after the job is spawned
// (nothing may run beside the child between clone and exec), and every ping is
// bounded in time (Policy). A start ping still in flight when the job ends is
// cancelled before the finish signal goes out: a start that reached the check
// after the finish would read as a new run that never ends. It gets a short grace
// first, so that a short job does not cancel a start ping that is going well. What happened to
// each ping is recorded in the run record's `pings`; a ping that failed is one
// warning line.
//
// The URL's path and query are the check's secret (a UUID, or a ping key and
// slug): only its host reaches logs and records, and error texts are scrubbed
// of the rest. libcurl honours http_proxy, https_proxy and no_proxy from
// cronrun's own environment (the crontab's, for cron), never from the job's
// --env.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/run_record.h"

namespace cronrun::ping {

// How long one ping (all its attempts and the waits between them) may take.
struct Policy {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(3)};
  std::chrono::milliseconds attempt_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds total{std::chrono::seconds(10)};
  uint32_t max_attempts = 3;
  std::chrono::milliseconds first_backoff{std::chrono::seconds(1)};  // doubled after each attempt
  // At the job's end, how long a start ping still in flight may go on before it
  // is cancelled (a short job ends while a healthy start ping is under way).
  std::chrono::milliseconds start_grace{std::chrono::seconds(3)};
};

// The most a finish signal's body carries: what a self-hosted Healthchecks keeps
// by default, so the tail sent is the tail stored.
inline constexpr size_t kBodyMax = 10000;

// One signal: what the record calls it and what is appended to the URL's path.
struct Signal {
  std::string kind;      // "start", "success", "failure", "log"
  std::string endpoint;  // "/start", "", "/CODE", "/log"
};

Signal start_signal();
// The signal for a run that ended with cronrun's exit status `exit_code`; a run
// that never started its job and exited 0 (`skipped`) is only logged.
Signal end_signal(bool skipped, int exit_code);

// The body of a finish signal: `finish_line`, a newline and the end of
// `output_tail`, valid UTF-8 (invalid bytes replaced), at most kBodyMax bytes.
std::string finish_body(std::string_view finish_line, std::string_view output_tail);

// The host (and port) of a ping URL the option parser accepted, read without
// libcurl: what --dry-run shows, and the record when libcurl is missing.
std::string host_of(std::string_view url);

// The ping URL split so that its secret part stays here.
class Target {
 public:
  // Parsed with libcurl's URL parser; http and https only.
  static Result<Target> parse(std::string_view url);
  // host, or host:port when the URL names a port: what logs and records show.
  const std::string& host() const { return host_; }
  // The URL of `signal` with `rid` as the rid query parameter (empty: none).
  Result<std::string> url(const Signal& signal, std::string_view rid) const;
  // `text` with every occurrence of the URL's secret parts replaced.
  std::string scrub(std::string text) const;

 private:
  std::string url_;
  std::string host_;
  std::string secrets_[3];  // path, query, user info
};

// Sends `signal` (POST, `body`) and retries under `policy`: transport errors,
// 408, 429 and 5xx are retried; any other answer ends it. Stops early, recorded
// as cancelled, once `cancel` is set. Never throws; the outcome is the record.
PingRecord send(const Target& target, const Signal& signal, std::string_view rid, std::string_view body,
                const Policy& policy, const std::atomic<bool>* cancel = nullptr);

// The pings of one run.
class Pinger {
 public:
  // `url` passed the option parser's check; one libcurl still refuses makes
  // every ping a recorded failure, never an error of the run.
  Pinger(std::string url, std::string run_id, Policy policy = {});
  ~Pinger();  // cancels and joins a start ping still running
  Pinger(const Pinger&) = delete;
  Pinger& operator=(const Pinger&) = delete;

  // Sends the start signal from a thread of its own and returns at once. Call
  // after the job has been spawned.
  void start();
  // Waits up to the policy's start_grace for a start ping still in flight and
  // cancels it after that, then sends `signal` with `body`; returns when it was
  // delivered or given up (bounded by the policy).
  void finish(const Signal& signal, std::string_view body);

  // The pings so far (not a start ping still running).
  PingsRecord record() const;
  // One short line naming the pings that were not delivered; nullopt if none. A
  // start ping cancelled at the job's end is named only when the end signal
  // was not delivered either (the check then knows nothing of the run).
  std::optional<std::string> failure_line() const;

 private:
  void stop_start_ping();
  bool ensure_curl();

  std::string url_;
  std::string run_id_;
  Policy policy_;
  std::optional<Target> target_;
  std::optional<std::string> target_error_;
  bool curl_ready_ = false;
  std::thread start_thread_;
  std::atomic<bool> cancel_start_{false};
  std::mutex start_mutex_;
  std::condition_variable start_done_cv_;
  bool start_done_ = false;  // under start_mutex_
  PingRecord start_record_;  // written by the start thread, read after join
  bool start_sent_ = false;
  std::vector<PingRecord> ended_;
};

}  // namespace cronrun::ping
