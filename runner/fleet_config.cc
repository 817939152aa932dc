// fleet.json and the groups config (rules in fleet_config.h).
#include "runner/fleet_config.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "common/pg_history.h"
#include "common/safe_file.h"
#include "common/units.h"

namespace cronrun::fleet {

const char* to_string(Unavailable u) { return u == Unavailable::run ? "run" : "skip"; }

std::string default_config_path(const Invoker& who) {
  if (who.is_root()) return "/etc/cronrun/fleet.json";
  if (!who.xdg_config_home.empty()) return who.xdg_config_home + "/cronrun/fleet.json";
  return who.home + "/.config/cronrun/fleet.json";
}

namespace {

using nlohmann::json;

bool printable_ascii(std::string_view s) {
  return std::ranges::all_of(s, [](char c) { return c > 0x20 && c < 0x7f; });
}

bool control_char(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

// A value from the file or from etcd as an error shows it: a control character
// (JSON lets "\n" into any string) becomes '?', so that the error stays one line.
std::string shown(std::string_view v) {
  std::string out(v);
  std::ranges::replace_if(out, control_char, '?');
  return out;
}

// "http(s)://HOST:PORT" (one trailing '/' allowed and dropped). HOST is a name,
// an IPv4 address or a bracketed IPv6 address; no user, path, query or fragment:
// the etcd client appends its own /v3/... paths.
Result<std::string> parse_endpoint(std::string_view v) {
  // The value as an error may quote it: a user:password@ refused below is hidden.
  std::string masked(v);
  if (auto at = masked.find('@'), scheme = masked.find("://"); at != std::string::npos && scheme != std::string::npos &&
                                                               scheme + 3 < at)
    masked.replace(scheme + 3, at - scheme - 3, "***");
  auto bad = [&](std::string_view why) {
    return fail(fmt::format("expected an endpoint like http://10.0.0.5:2379 ({}), got '{}'", why, shown(masked)));
  };
  if (!printable_ascii(v)) return bad("no spaces or control characters");
  std::string_view rest = v;
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  else if (rest.starts_with("https://")) rest.remove_prefix(8);
  else return bad("the scheme must be http or https");
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) return bad("no user, path or query");
  std::string_view host, port;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      return bad("an IPv6 host is [ADDR]:PORT");
    host = rest.substr(0, close + 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("the port is required");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("an IPv6 host is [ADDR]:PORT");
  }
  if (host.empty() || host == "[]") return bad("no host");
  int n = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || n > 65535) return bad("the port must be 1-65535");
    n = n * 10 + (c - '0');
  }
  if (port.empty() || n < 1 || n > 65535) return bad("the port must be 1-65535");
  return std::string(v.substr(0, v.size() - (v.ends_with('/') ? 1 : 0)));
}

Result<std::string> parse_prefix(std::string_view v) {
  if (v.size() < 2 || v.front() != '/' || v.back() == '/' || !printable_ascii(v) || v.find("//") != std::string_view::npos)
    return fail(
        fmt::format("expected a key prefix like /cronrun (starts with /, no trailing /, no spaces), got '{}'", shown(v)));
  return std::string(v);
}

Result<std::chrono::seconds> parse_lease_ttl(const json& v) {
  std::string given = v.is_string() ? v.get<std::string>() : v.dump();
  auto bad = [&](std::string_view why) {
    return fail(fmt::format("expected a duration of whole seconds, at least {}s, like \"30s\" ({}), got {}",
                            kMinLeaseTtl.count(), why, v.is_string() ? "'" + shown(given) + "'" : given));
  };
  std::chrono::milliseconds ms{0};
  if (v.is_number_unsigned() || v.is_number_integer()) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 86400ull * 365) return bad("a number is seconds");
    ms = std::chrono::seconds(v.get<uint64_t>());
  } else if (v.is_string()) {
    auto d = units::parse_duration(given);
    if (!d) return bad("not a duration");
    ms = *d;
  } else {
    return bad("a string like \"30s\" or a number of seconds");
  }
  if (ms.count() % 1000 != 0) return bad("etcd leases are whole seconds");
  if (ms < kMinLeaseTtl) return bad("too short");
  return std::chrono::duration_cast<std::chrono::seconds>(ms);
}

Result<std::string> parse_history(std::string_view v) {
  if (!(v.starts_with("postgresql://") || v.starts_with("postgres://")) || !printable_ascii(v) || v.size() > 4096)
    return fail("expected a PostgreSQL URI like postgresql://cronrun@db.example.com/cronrun");
  return std::string(v);  // not echoed: it may carry a password
}

// nlohmann's message without its "[json.exception...] " tag. It quotes the bytes
// last read, escaping most control characters but not DEL: shown() makes sure.
std::string json_error_text(const std::exception& e) {
  std::string what = e.what();
  auto bracket = what.find("] ");
  return shown(bracket == std::string::npos ? what : what.substr(bracket + 2));
}

// A parse error of the fleet config without the token nlohmann last read: that
// token may be the history URI with its password (or a password cut short), and
// the line and column already say where.
std::string without_last_read(std::string m) {
  auto lr = m.find("; last read: '");
  if (lr == std::string::npos) return m;
  auto expected = m.rfind("'; expected ");
  std::string tail = expected != std::string::npos && expected > lr ? m.substr(expected + 1) : "";
  return m.substr(0, lr) + tail;
}

}  // namespace

Result<Config> parse_config(std::string_view text, const std::string& path) {
  auto key_error = [&](std::string_view key, std::string_view what) {
    return fail(fmt::format("fleet config {}: key '{}': {}", path, key, what));
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    size_t line = 1 + static_cast<size_t>(std::count(
                          text.begin(), text.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(e.byte, text.size())), '\n'));
    return fail(fmt::format("fleet config {}: line {}: invalid JSON ({})", path, line,
                            without_last_read(json_error_text(e))));
  } catch (const json::exception& e) {
    return fail(fmt::format("fleet config {}: {}", path, without_last_read(json_error_text(e))));
  }
  if (!doc.is_object())
    return fail(fmt::format("fleet config {}: expected a JSON object with \"etcd\", \"prefix\", \"lease_ttl\", ...", path));
  Config c;
  c.path = path;
  bool have_etcd = false;
  for (const auto& [key, v] : doc.items()) {
    auto string_value = [&]() -> Result<std::string> {
      if (!v.is_string()) return key_error(key, fmt::format("expected a string, got {}", v.type_name()));
      return v.get<std::string>();
    };
    if (key == "etcd") {
      if (!v.is_array() || v.empty())
        return key_error(key, "expected a non-empty list of endpoints like [\"http://10.0.0.5:2379\"]");
      for (const auto& e : v) {
        if (!e.is_string()) return key_error(key, fmt::format("expected endpoint strings, got {}", e.type_name()));
        auto ep = parse_endpoint(e.get<std::string>());
        if (!ep) return key_error(key, ep.error().message());
        c.etcd.push_back(std::move(*ep));
      }
      have_etcd = true;
    } else if (key == "prefix") {
      auto s = string_value();
      if (!s) return std::unexpected(s.error());
      auto p = parse_prefix(*s);
      if (!p) return key_error(key, p.error().message());
      c.prefix = std::move(*p);
    } else if (key == "lease_ttl") {
      auto ttl = parse_lease_ttl(v);
      if (!ttl) return key_error(key, ttl.error().message());
      c.lease_ttl = *ttl;
    } else if (key == "history") {
      auto s = string_value();
      if (!s) return std::unexpected(s.error());
      auto h = parse_history(*s);
      if (!h) return key_error(key, h.error().message());
      c.history = std::move(*h);
    } else if (key == "host") {
      auto s = string_value();
      if (!s) return std::unexpected(s.error());
      if (!valid_host_name(*s))
        return key_error(key, fmt::format("expected a host name of 1-253 characters from [A-Za-z0-9.-], not "
                                          "starting with . or -, got '{}'",
                                          shown(*s)));
      c.host_in_file = *s;
    } else if (key == "etcd_ca" || key == "etcd_cert" || key == "etcd_key") {
      auto s = string_value();
      if (!s) return std::unexpected(s.error());
      if (!s->starts_with('/') || !printable_ascii(*s) || s->size() > 4096)
        return key_error(key, fmt::format("expected an absolute path to a PEM file, got '{}'", shown(*s)));
      (key == "etcd_ca" ? c.etcd_ca : key == "etcd_cert" ? c.etcd_cert : c.etcd_key) = *s;
    } else if (key == "unavailable") {
      auto s = string_value();
      if (!s) return std::unexpected(s.error());
      if (*s == "skip") c.unavailable = Unavailable::skip;
      else if (*s == "run") c.unavailable = Unavailable::run;
      else return key_error(key, fmt::format("expected skip|run, got '{}'", shown(*s)));
    } else {
      return fail(fmt::format("fleet config {}: unknown key '{}' (keys: etcd, prefix, lease_ttl, history, host, "
                              "unavailable, etcd_ca, etcd_cert, etcd_key)",
                              path, shown(key)));
    }
  }
  if (!have_etcd)
    return key_error("etcd", "required: a list of endpoints like [\"http://10.0.0.5:2379\"]");
  if (c.etcd_cert.has_value() != c.etcd_key.has_value())
    return key_error(c.etcd_cert ? "etcd_cert" : "etcd_key", "etcd_cert and etcd_key go together (the client "
                                                             "certificate and its private key)");
  const char* tls_key = c.etcd_ca ? "etcd_ca" : c.etcd_cert ? "etcd_cert" : nullptr;
  if (tls_key)
    for (const auto& ep : c.etcd)
      if (!ep.starts_with("https://"))
        return key_error(tls_key, fmt::format("TLS files are for https:// endpoints, and '{}' is not one", ep));
  return c;
}

Result<HostName> fqdn() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return fail_sys("gethostname", "");
  std::string name = buf;
  if (!valid_host_name(name))
    return fail(fmt::format("this host's name '{}' (gethostname) is not a valid fleet host name; give --host or "
                            "\"host\" in the fleet config",
                            name));
  if (name.find('.') != std::string::npos) return HostName{name, std::nullopt};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  std::string canon = rc == 0 && res && res->ai_canonname ? res->ai_canonname : "";
  if (res) ::freeaddrinfo(res);
  if (canon.find('.') != std::string::npos && valid_host_name(canon)) return HostName{canon, std::nullopt};
  std::string why = rc != 0 ? fmt::format("getaddrinfo: {}", ::gai_strerror(rc))
                            : fmt::format("its canonical name is '{}'", canon);
  return HostName{name, fmt::format("no FQDN for host '{}' ({}): the short name is this host's fleet name; set "
                                    "\"host\" in the fleet config or --host",
                                    name, why)};
}

namespace {

// One of fleet.json's PEM files, read as the config itself is (a checked directory
// fd, O_NOFOLLOW, a regular file, bounded), owned by root or the caller and not
// writable by group or others; a private key not readable by others either.
Result<std::string> read_pem(const std::string& path, const char* key, const std::string& config_path) {
  auto where = [&](Error e) {
    return std::unexpected(std::move(e).context(fmt::format("fleet config {}: key '{}'", config_path, key)));
  };
  auto [dir_path, name] = split_path(path);
  auto dir = CheckedDir::open(dir_path);
  if (!dir) return where(std::move(dir.error()));
  auto fd = dir->open_regular(name, O_RDONLY);
  if (!fd) return where(std::move(fd.error()));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  const bool is_key = std::string_view(key) == "etcd_key";
  auto bad = [&](std::string_view why) {
    return fail(fmt::format("fleet config {}: key '{}': {} {} (mode {:04o}, uid {})", config_path, key, path, why,
                            st.st_mode & 07777, st.st_uid));
  };
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) return bad("is owned by another user; expected root or yours");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return bad("is writable by group or others; chmod go-w it");
  if (is_key && (st.st_mode & S_IROTH)) return bad("is a private key readable by others; chmod o-r it");
  auto text = read_bounded(fd->get(), kMaxPemBytes, path);
  if (!text) return where(std::move(text.error()));
  if (text->truncated) return bad(fmt::format("is larger than the {}-byte cap", kMaxPemBytes));
  if (text->data.find("-----BEGIN ") == std::string::npos) return bad("holds no PEM block (-----BEGIN ...)");
  return std::move(text->data);
}

}  // namespace

Result<Config> load_config(const std::optional<std::string>& explicit_path,
                           const std::optional<std::string>& host_override, const Invoker& who) {
  std::string path = explicit_path.value_or(default_config_path(who));
  auto [dir_path, name] = split_path(path);
  auto where = [&](Error e) { return std::unexpected(std::move(e).context(fmt::format("fleet config {}", path))); };
  // not_found: cronprof fleet tells "no fleet config" (3) from one that is bad (2).
  auto missing = [&]() {
    return fail(explicit_path ? fmt::format("fleet config {}: not found", path)
                              : fmt::format("fleet config {}: not found (fleet mode needs one: write it, or give "
                                            "--fleet-config FILE)",
                                            path),
                ErrorKind::not_found);
  };
  auto dir = CheckedDir::open(dir_path);
  if (!dir) return dir.error().err() == ENOENT ? missing() : where(std::move(dir.error()));
  auto fd = dir->open_regular(name, O_RDONLY);
  if (!fd) return fd.error().err() == ENOENT ? missing() : where(std::move(fd.error()));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_sys("fstat", path);
  // Root's runs obey this file (which cluster holds their locks, where their
  // records go): nobody but root may be able to change it.
  if (::geteuid() == 0) {
    if (st.st_uid != 0)
      return fail(fmt::format("fleet config {}: owned by uid {}, expected root (root's runs obey it)", path, st.st_uid));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
      return fail(fmt::format("fleet config {}: writable by group or others (mode {:04o}); root's runs obey it, "
                              "so chmod go-w it",
                              path, st.st_mode & 07777));
  }
  auto text = read_bounded(fd->get(), kMaxConfigBytes, path);
  if (!text) return where(std::move(text.error()));
  if (text->truncated)
    return fail(fmt::format("fleet config {}: larger than the {}-byte cap", path, kMaxConfigBytes));
  auto c = parse_config(text->data, path);
  if (!c) return c;
  // A password in the history URI is a secret: in a file others can read it is
  // every local user's (the documented place is the job user's ~/.pgpass).
  if (c->history && pg::redact_uri(*c->history) != *c->history && (st.st_mode & (S_IRGRP | S_IROTH)))
    return fail(fmt::format("fleet config {}: key 'history': the URI carries a password and the file is readable "
                            "by group or others (mode {:04o}); put the password in ~/.pgpass of the user the jobs "
                            "run as, or chmod go-r the file",
                            path, st.st_mode & 07777));
  for (auto [file, key, pem] : {std::tuple{&c->etcd_ca, "etcd_ca", &c->tls.ca_pem},
                                 std::tuple{&c->etcd_cert, "etcd_cert", &c->tls.cert_pem},
                                 std::tuple{&c->etcd_key, "etcd_key", &c->tls.key_pem}}) {
    if (!*file) continue;
    auto pem_text = read_pem(**file, key, path);
    if (!pem_text) return std::unexpected(pem_text.error());
    *pem = std::move(*pem_text);
  }
  if (host_override) {
    c->host = *host_override;
    c->host_from = "--host";
  } else if (c->host_in_file) {
    c->host = *c->host_in_file;
    c->host_from = "fleet config";
  } else {
    auto h = fqdn();
    if (!h) return std::unexpected(std::move(h.error()).context("--host"));
    c->host = h->name;
    c->host_from = h->note ? "hostname" : "FQDN";
    c->note = h->note;
  }
  return c;
}

bool grace_fits(std::chrono::milliseconds kill_after, std::chrono::seconds lease_ttl) {
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(lease_ttl);
  return kill_after + kDeadlineMargin + ttl / 3 < ttl;
}

Result<void> check_grace(std::chrono::milliseconds kill_after, std::chrono::seconds lease_ttl,
                         const std::string& config_path) {
  if (grace_fits(kill_after, lease_ttl)) return {};
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(lease_ttl);
  auto room = ttl - kDeadlineMargin - ttl / 3;
  // As a user writes it: "10s", "8.999s".
  auto secs = [](std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? fmt::format("{}s", d.count() / 1000) : fmt::format("{}s", static_cast<double>(d.count()) / 1000.0);
  };
  return fail(fmt::format("--kill-after {} does not fit lease_ttl {} of fleet config {}: the job must be killed "
                          "before the lease can expire, so --kill-after + {} margin + lease_ttl/3 must stay under "
                          "lease_ttl (--kill-after below {} here); lower --kill-after or raise lease_ttl",
                          secs(kill_after), secs(ttl), config_path, secs(kDeadlineMargin),
                          room.count() > 0 ? secs(room) : std::string("0s, none fits")));
}

std::string config_key(std::string_view prefix) { return fmt::format("{}/config", prefix); }
std::string lock_key(std::string_view prefix, std::string_view job) { return fmt::format("{}/locks/{}", prefix, job); }
std::string runs_prefix(std::string_view prefix, std::string_view job) { return fmt::format("{}/runs/{}/", prefix, job); }
std::string tick_key(std::string_view prefix, std::string_view job, std::string_view tick) {
  return fmt::format("{}/runs/{}/{}", prefix, job, tick);
}

// ---- groups ----

Result<Groups> Groups::parse(std::string_view text, std::string_view where) {
  auto bad = [&](std::string_view what) { return fail(fmt::format("groups config ({}): {}", where, what)); };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    return bad(fmt::format("invalid JSON ({})", json_error_text(e)));
  }
  if (!doc.is_object() || !doc.contains("groups") || !doc["groups"].is_object())
    return bad("expected {\"groups\": {\"NAME\": \"HOST\" | [\"HOST-OR-GROUP\", ...]}}");
  Groups g;
  g.where_ = std::string(where);
  for (const auto& [name, v] : doc["groups"].items()) {
    if (name.empty()) return bad("a group with an empty name");
    // No host name holds one, and errors show names on one line.
    if (std::ranges::any_of(name, control_char))
      return bad(fmt::format("group '{}': a name with a control character", shown(name)));
    auto& members = g.members_[name];
    auto add = [&](const json& m) -> Result<void> {
      if (!m.is_string() || m.get<std::string>().empty())
        return bad(fmt::format("group '{}': expected host or group names (non-empty strings), got {}", name,
                               m.is_string() ? "\"\"" : m.type_name()));
      const auto& member = m.get_ref<const std::string&>();
      if (std::ranges::any_of(member, control_char))
        return bad(fmt::format("group '{}': member '{}' has a control character", name, shown(member)));
      members.push_back(member);
      return {};
    };
    if (v.is_array()) {
      for (const auto& m : v)
        if (auto r = add(m); !r) return std::unexpected(r.error());
    } else if (auto r = add(v); !r) {
      return std::unexpected(r.error());
    }
  }
  return g;
}

namespace {

using Members = std::map<std::string, std::vector<std::string>, std::less<>>;

// Depth-first expansion of one group, with a stack of its own rather than
// recursion: the document comes from etcd, and a chain of nested groups as deep as
// a value there can hold would overflow the call stack. `path` is the chain of
// groups being expanded, with `on_path` to look a group up in it (a group met again
// on it is a cycle); `done` the groups already expanded (met again through another
// branch is fine: not a cycle).
Result<void> expand(const Members& members, const std::string& group, std::set<std::string>& done,
                    std::set<std::string>& hosts, std::string_view where) {
  struct Frame {
    Members::const_iterator group;
    size_t next = 0;  // the member to look at next
  };
  std::vector<Frame> path;
  std::set<std::string_view> on_path;
  auto enter = [&](const std::string& name) -> Result<void> {
    if (on_path.contains(name)) {
      // The chain as one line of a readable length: a long one keeps its ends.
      constexpr ptrdiff_t kHead = 4, kTail = 3;
      auto at = std::ranges::find_if(path, [&](const Frame& f) { return f.group->first == name; });
      const ptrdiff_t n = path.end() - at;
      std::string chain;
      for (ptrdiff_t i = 0; i < n; ++i) {
        if (n > kHead + kTail + 1 && i == kHead) {
          chain += fmt::format("... ({} more) -> ", n - kHead - kTail);
          i = n - kTail - 1;
          continue;
        }
        chain += at[i].group->first + " -> ";
      }
      return fail(fmt::format("groups form a cycle: {}{} ({})", chain, shown(name), where));
    }
    if (done.contains(name)) return {};
    auto it = members.find(name);
    path.push_back(Frame{it, 0});
    on_path.insert(it->first);
    return {};
  };
  if (auto r = enter(group); !r) return r;
  while (!path.empty()) {
    Frame& f = path.back();
    const std::vector<std::string>& list = f.group->second;
    if (f.next == list.size()) {
      on_path.erase(f.group->first);
      done.insert(f.group->first);
      path.pop_back();
      continue;
    }
    const std::string& m = list[f.next++];
    if (members.contains(m)) {
      if (auto r = enter(m); !r) return r;
    } else {
      hosts.insert(m);
    }
  }
  return {};
}

}  // namespace

Result<std::vector<std::string>> Groups::hosts(std::string_view group) const {
  if (!has(group)) return fail(fmt::format("group {} not in the fleet config ({})", group, where_));
  std::set<std::string> done, hosts;
  if (auto r = expand(members_, std::string(group), done, hosts, where_); !r) return std::unexpected(r.error());
  return std::vector<std::string>(hosts.begin(), hosts.end());
}

Result<bool> Groups::contains(std::string_view group, std::string_view host) const {
  auto hosts = this->hosts(group);
  if (!hosts) return std::unexpected(hosts.error());
  // Host names are case-insensitive (RFC 4343): "Box1" in the config is box1.
  auto same = [&](const std::string& h) {
    return std::ranges::equal(h, host, [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                                   std::tolower(static_cast<unsigned char>(b)); });
  };
  return std::ranges::any_of(*hosts, same);
}

Result<void> Groups::check_cycles() const {
  std::set<std::string> done, hosts;
  for (const auto& [name, _] : members_)
    if (auto r = expand(members_, name, done, hosts, where_); !r) return r;
  return {};
}

}  // namespace cronrun::fleet
