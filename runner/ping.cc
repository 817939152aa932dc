// Healthchecks pings over libcurl's easy interface, one handle per attempt.
//
// libcurl rules this file keeps: curl_global_init runs on the main thread before
// the start ping's thread exists; CURLOPT_NOSIGNAL, because the supervisor takes
// its signals through a signalfd and a ping must not take SIGALRM or SIGPIPE
// from it; a write callback that drops the answer (the default would print it on
// cronrun's stdout, which cron mails); redirects are not followed (a ping URL
// that redirects is wrong, and a POST turned into a GET would lose the body).
// The progress callback is how a cancelled start ping lets go of a connection
// that hangs: it is called at least once a second while a transfer waits.
#include "runner/ping.h"

#include "common/libcurl.h"

#include <algorithm>
#include <fmt/format.h>
#include <memory>
#include <type_traits>

namespace cronrun::ping {
namespace {

// libcurl, opened when a run first pings (common/libcurl.h): only runs that ping
// map it. The table is loaded by ensure_curl() on the main thread before any ping
// thread exists; api() is called only after it succeeded.
const libcurl::Api& api() { return **libcurl::load(); }

using Steady = std::chrono::steady_clock;

struct UrlDeleter {
  void operator()(CURLU* u) const { api().url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct EasyDeleter {
  void operator()(CURL* c) const { api().easy_cleanup(c); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { api().slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// A part of a parsed URL; empty when it has none.
std::string url_part(CURLU* u, CURLUPart part) {
  char* out = nullptr;
  if (api().url_get(u, part, &out, 0) != CURLUE_OK || out == nullptr) return {};
  std::string s(out);
  api().free(out);
  return s;
}

size_t drop_answer(char*, size_t size, size_t n, void*) { return size * n; }

int on_progress(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* flag = static_cast<const std::atomic<bool>*>(cancel);
  return flag && flag->load() ? 1 : 0;
}

bool cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(); }

double seconds_since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

// The answer of one attempt: a status, or a transport error.
struct Attempt {
  std::optional<int> http_status;
  std::optional<std::string> error;
  bool retry = false;
};

Attempt attempt_once(const Target& target, const std::string& url, std::string_view body,
                     std::chrono::milliseconds timeout, std::chrono::milliseconds connect_timeout,
                     const std::atomic<bool>* cancel) {
  Attempt a;
  EasyHandle h(api().easy_init());
  if (!h) {
    a.error = "curl_easy_init failed";
    return a;
  }
  char errbuf[CURL_ERROR_SIZE] = {};
  Slist headers(api().slist_append(nullptr, "Content-Type: text/plain; charset=utf-8"));
  CURL* c = h.get();
  api().easy_setopt(c, CURLOPT_URL, url.c_str());
  api().easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  api().easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  api().easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  api().easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(connect_timeout, timeout).count()));
  api().easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  api().easy_setopt(c, CURLOPT_USERAGENT, "cronrun/" CRONRUN_VERSION);
  api().easy_setopt(c, CURLOPT_POST, 1L);
  api().easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  api().easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  if (headers) api().easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  api().easy_setopt(c, CURLOPT_WRITEFUNCTION, drop_answer);
  api().easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  api().easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  api().easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  api().easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
  CURLcode rc = api().easy_perform(c);
  if (rc != CURLE_OK) {
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      a.error = "cancelled: the job ended first";
      return a;
    }
    std::string detail = errbuf[0] != '\0' ? errbuf : api().easy_strerror(rc);
    a.error = target.scrub(detail);
    a.retry = rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL;
    return a;
  }
  long status = 0;
  api().easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  a.http_status = static_cast<int>(status);
  if (status >= 200 && status < 300) return a;
  a.error = status >= 300 && status < 400 ? fmt::format("HTTP {} (redirects are not followed)", status)
                                          : fmt::format("HTTP {}", status);
  a.retry = status == 408 || status == 429 || status >= 500;
  return a;
}

// Waits `d`, waking early on cancel.
void backoff(std::chrono::milliseconds d, const std::atomic<bool>* cancel) {
  auto until = Steady::now() + d;
  while (Steady::now() < until && !cancelled(cancel))
    std::this_thread::sleep_for(std::min<Steady::duration>(until - Steady::now(), std::chrono::milliseconds(50)));
}

// Bytes at the front of `s` that continue a UTF-8 sequence cut off before it.
size_t cut_continuation(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && i < 3 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  return i;
}

// `s` cut to at most `max` bytes from its end, at a character boundary.
std::string keep_end(std::string s, size_t max) {
  if (s.size() <= max) return s;
  std::string_view tail = std::string_view(s).substr(s.size() - max);
  tail.remove_prefix(cut_continuation(tail));
  return std::string(tail);
}

// The record of `signal` before its first attempt.
PingRecord unsent(const Signal& signal) {
  PingRecord r;
  r.kind = signal.kind;
  r.endpoint = signal.endpoint;
  return r;
}

}  // namespace

Signal start_signal() { return {"start", "/start"}; }

Signal end_signal(bool skipped, int exit_code) {
  if (skipped && exit_code == 0) return {"log", "/log"};
  if (exit_code == 0) return {"success", ""};
  return {"failure", fmt::format("/{}", exit_code)};
}

std::string finish_body(std::string_view finish_line, std::string_view output_tail) {
  std::string head = keep_end(valid_utf8(finish_line), kBodyMax);
  if (output_tail.empty() || head.size() + 1 >= kBodyMax) return head;
  // Replacing invalid bytes can grow the text: cut the raw tail first (a split
  // sequence at its front is dropped), then the valid text again.
  size_t room = kBodyMax - head.size() - 1;
  std::string_view raw = output_tail.substr(output_tail.size() - std::min(output_tail.size(), room));
  raw.remove_prefix(cut_continuation(raw));
  return head + "\n" + keep_end(valid_utf8(raw), room);
}

std::string host_of(std::string_view url) {
  auto scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  return std::string(rest);
}

Result<Target> Target::parse(std::string_view url) {
  if (auto loaded = libcurl::load(); !loaded) return std::unexpected(loaded.error());
  UrlHandle u(api().url());
  if (!u) return fail("curl_url failed");
  std::string text(url);
  if (CURLUcode rc = api().url_set(u.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK)
    return fail(fmt::format("the URL does not parse: {}", api().url_strerror(rc)));
  std::string scheme = url_part(u.get(), CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") return fail("the scheme must be http or https");
  Target t;
  t.url_ = std::move(text);
  t.host_ = url_part(u.get(), CURLUPART_HOST);
  if (t.host_.empty()) return fail("the URL has no host");
  if (std::string port = url_part(u.get(), CURLUPART_PORT); !port.empty()) t.host_ += ":" + port;
  t.secrets_[0] = url_part(u.get(), CURLUPART_PATH);
  if (t.secrets_[0] == "/") t.secrets_[0].clear();
  t.secrets_[1] = url_part(u.get(), CURLUPART_QUERY);
  t.secrets_[2] = url_part(u.get(), CURLUPART_USER);
  return t;
}

Result<std::string> Target::url(const Signal& signal, std::string_view rid) const {
  UrlHandle u(api().url());
  if (!u || api().url_set(u.get(), CURLUPART_URL, url_.c_str(), 0) != CURLUE_OK) return fail("the URL does not parse");
  std::string path = url_part(u.get(), CURLUPART_PATH);
  while (!path.empty() && path.back() == '/') path.pop_back();
  path += signal.endpoint;
  if (path.empty()) path = "/";
  if (api().url_set(u.get(), CURLUPART_PATH, path.c_str(), 0) != CURLUE_OK) return fail("setting the URL's path");
  if (!rid.empty()) {
    std::string q = "rid=" + std::string(rid);
    if (api().url_set(u.get(), CURLUPART_QUERY, q.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
      return fail("setting the URL's query");
  }
  std::string out = url_part(u.get(), CURLUPART_URL);
  if (out.empty()) return fail("building the URL");
  return out;
}

std::string Target::scrub(std::string text) const {
  for (const std::string& secret : secrets_) {
    if (secret.size() < 2) continue;
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
      text.replace(at, secret.size(), "...");
  }
  return text;
}

PingRecord send(const Target& target, const Signal& signal, std::string_view rid, std::string_view body,
                const Policy& policy, const std::atomic<bool>* cancel) {
  PingRecord r = unsent(signal);
  auto begin = Steady::now();
  auto url = target.url(signal, rid);
  if (!url) {
    r.error = url.error().message();
    return r;
  }
  auto deadline = begin + policy.total;
  auto wait = policy.first_backoff;
  for (;;) {
    // At least a millisecond: a timeout of 0 means none to libcurl.
    auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()),
                         std::chrono::milliseconds(1));
    ++r.attempts;
    Attempt a = attempt_once(target, *url, body, std::min(policy.attempt_timeout, left), policy.connect_timeout,
                             cancel);
    if (a.http_status) r.http_status = a.http_status;
    r.error = a.error;
    if (!a.error) {
      r.delivered = true;
      break;
    }
    if (!a.retry || r.attempts >= policy.max_attempts || cancelled(cancel)) break;
    // Another attempt is worth making only with time for it after the wait.
    left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
    if (left <= wait + std::chrono::milliseconds(100)) break;
    backoff(wait, cancel);
    if (cancelled(cancel)) {
      r.error = "cancelled: the job ended first (after " + *r.error + ")";
      break;
    }
    wait *= 2;
  }
  if (!r.delivered && r.attempts > 1) *r.error += fmt::format(" (after {} attempts)", r.attempts);
  r.elapsed_s = seconds_since(begin);
  return r;
}

Pinger::Pinger(std::string url, std::string run_id, Policy policy)
    : url_(std::move(url)), run_id_(std::move(run_id)), policy_(policy) {}

Pinger::~Pinger() {
  stop_start_ping();
}

// On the calling (main) thread, before any ping thread exists; for a run that
// starts its job, after the spawn, so that loading libcurl does not delay it.
bool Pinger::ensure_curl() {
  if (curl_ready_ || target_error_) return target_.has_value();
  if (auto loaded = libcurl::load(); !loaded) {
    target_error_ = loaded.error().message();
    return false;
  }
  curl_ready_ = true;
  auto t = Target::parse(url_);
  if (t)
    target_ = std::move(*t);
  else
    target_error_ = t.error().message();
  return target_.has_value();
}

void Pinger::start() {
  start_record_ = unsent(start_signal());
  start_sent_ = true;
  if (!ensure_curl()) {
    start_record_.error = target_error_;
    return;
  }
  start_thread_ = std::thread([this] {
    PingRecord r = send(*target_, start_signal(), run_id_, "", policy_, &cancel_start_);
    std::lock_guard lock(start_mutex_);
    start_record_ = std::move(r);
    start_done_ = true;
    start_done_cv_.notify_all();
  });
}

void Pinger::stop_start_ping() {
  if (!start_thread_.joinable()) return;
  {
    std::unique_lock lock(start_mutex_);
    if (!start_done_cv_.wait_for(lock, policy_.start_grace, [this] { return start_done_; })) cancel_start_ = true;
  }
  start_thread_.join();
}

void Pinger::finish(const Signal& signal, std::string_view body) {
  stop_start_ping();
  if (!ensure_curl()) {
    PingRecord r = unsent(signal);
    r.error = target_error_;
    ended_.push_back(std::move(r));
    return;
  }
  ended_.push_back(send(*target_, signal, run_id_, body, policy_));
}

PingsRecord Pinger::record() const {
  PingsRecord out;
  out.url_host = target_ ? target_->host() : host_of(url_);
  auto add = [&](const PingRecord& r) {
    out.pings.push_back(r);
    ++(r.delivered ? out.sent : out.failed);
  };
  if (start_sent_ && !start_thread_.joinable()) add(start_record_);
  for (const auto& r : ended_) add(r);
  return out;
}

std::optional<std::string> Pinger::failure_line() const {
  PingsRecord rec = record();
  bool ended_delivered = !ended_.empty() && ended_.back().delivered;
  std::vector<std::string> failed;
  for (const auto& p : rec.pings) {
    bool cancelled_start = p.kind == "start" && p.error && p.error->starts_with("cancelled");
    if (!p.delivered && !(cancelled_start && ended_delivered))
      failed.push_back(fmt::format("{} ({})", p.kind, p.error.value_or("?")));
  }
  if (failed.empty()) return std::nullopt;
  return fmt::format("--ping {}: not delivered: {}; the job's exit status is unchanged",
                     rec.url_host.empty() ? "URL" : rec.url_host, fmt::join(failed, "; "));
}

}  // namespace cronrun::ping
