// Fleet mode's configuration (runner/fleet_config.h): fleet.json (parse_config)
// and the groups document (Groups::parse), which lives in etcd at PREFIX/config
// where anyone with etcd access writes it and every runner and `cronprof fleet`
// of the fleet reads it. The whole input goes to both parsers (both are JSON with
// comments); the groups it yields are expanded through every query the runner
// and cronprof use (hosts, contains, check_cycles), nesting and cycles included.
// Errors are one printable line; the expansion never names a group as a host,
// lists each host once and sorted, and agrees with check_cycles.
#include <algorithm>
#include <string>

#include "runner/fleet_config.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool one_printable_line(std::string_view s) {
  return std::ranges::none_of(s, [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void check_error(const cronrun::Error& e) {
  const std::string m = e.message();
  FUZZ_CHECK_MSG(!m.empty() && one_printable_line(m), m);
}

}  // namespace

int cronrun_fuzz_fleet_config(const uint8_t* data, size_t size) {
  using namespace cronrun;
  namespace fleet = cronrun::fleet;
  std::string_view text = fuzz::as_text(data, size);

  auto c = fleet::parse_config(text, "/etc/cronrun/fleet.json");
  if (!c) {
    check_error(c.error());
  } else {
    FUZZ_CHECK(!c->etcd.empty());
    for (const auto& e : c->etcd) {
      FUZZ_CHECK_MSG(e.starts_with("http://") || e.starts_with("https://"), e);
      FUZZ_CHECK_MSG(!e.ends_with('/') && one_printable_line(e), e);
    }
    FUZZ_CHECK_MSG(c->prefix.size() >= 2 && c->prefix.front() == '/' && c->prefix.back() != '/', c->prefix);
    FUZZ_CHECK(c->lease_ttl >= fleet::kMinLeaseTtl);
    if (c->host_in_file) FUZZ_CHECK_MSG(valid_host_name(*c->host_in_file), *c->host_in_file);
    FUZZ_CHECK(c->host.empty());  // resolved by load_config, not here
    // The keys built from the prefix stay under it.
    FUZZ_CHECK(fleet::lock_key(c->prefix, "job").starts_with(c->prefix + "/"));
    for (auto kill_after : {std::chrono::milliseconds(0), std::chrono::milliseconds(10000)}) {
      auto g = fleet::check_grace(kill_after, c->lease_ttl, c->path);
      FUZZ_CHECK(g.has_value() == fleet::grace_fits(kill_after, c->lease_ttl));
      if (!g) check_error(g.error());
    }
  }

  auto groups = fleet::Groups::parse(text, "etcd /cronrun/config");
  if (!groups) {
    check_error(groups.error());
    return 0;
  }
  auto cycles = groups->check_cycles();
  if (!cycles) {
    check_error(cycles.error());
    FUZZ_CHECK(cycles.error().message().find("cycle") != std::string::npos);
  }
  bool any_cycle = false;
  size_t queried = 0;
  for (const auto& [name, members] : groups->members()) {
    FUZZ_CHECK(!name.empty());
    // Each query expands the group afresh: bounded so that a document of many
    // groups stays a fast input (the expansion itself is what is fuzzed).
    if (++queried > 64) break;
    auto hosts = groups->hosts(name);
    if (!hosts) {
      check_error(hosts.error());
      FUZZ_CHECK(hosts.error().message().find("cycle") != std::string::npos);
      any_cycle = true;
      continue;
    }
    FUZZ_CHECK(std::ranges::is_sorted(*hosts));
    FUZZ_CHECK(std::ranges::adjacent_find(*hosts) == hosts->end());
    for (const auto& h : *hosts) {
      FUZZ_CHECK_MSG(!groups->has(h), h);
      FUZZ_CHECK(!h.empty());
    }
    // Every direct member that is a host is in the expansion.
    for (const auto& m : members)
      if (!groups->has(m)) FUZZ_CHECK_MSG(std::ranges::binary_search(*hosts, m), m);
    if (!hosts->empty()) {
      auto in = groups->contains(name, hosts->front());
      FUZZ_CHECK(in.has_value() && *in);
    }
    auto not_in = groups->contains(name, "no-such-host.invalid");
    FUZZ_CHECK(not_in.has_value());
  }
  if (any_cycle) FUZZ_CHECK(!cycles.has_value());
  if (queried <= 64 && !any_cycle) FUZZ_CHECK(cycles.has_value());
  auto missing = groups->hosts("\x01no such group");
  FUZZ_CHECK(!missing.has_value());
  return 0;
}
