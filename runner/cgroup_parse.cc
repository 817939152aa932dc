// Pure parsers for the kernel files the cgroup module reads, and the formatting of
// limit values. No I/O here: every function takes the text of one file, so the unit
// tests feed them fixtures captured from v1, v2 and hybrid hosts.
//
// The parsers are strict about what they use (a number that does not parse is an
// error naming the key) and lenient about what they do not (unknown keys, extra
// fields and blank lines are skipped), because newer kernels add keys to these
// files without notice.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "runner/cgroup_internal.h"

namespace cronrun::cgroup {

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The next line of `text` from `pos` (blank lines skipped, a trailing '\r'
// dropped), moving `pos` past it; false at the end.
bool next_line(std::string_view text, size_t& pos, std::string_view& line) {
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) return true;
  }
  return false;
}

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  out.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  size_t pos = 0;
  for (std::string_view line; next_line(text, pos, line);) out.push_back(line);
  return out;
}

// Into `out`, reused line after line (no allocation per line). Fields are
// separated by runs of spaces and tabs; the kernel writes single spaces, so a
// line without a tab is cut with memchr rather than looked at byte by byte.
void fields_into(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  const char* p = line.data();
  const char* const end = p + line.size();
  if (line.find('\t') == std::string_view::npos) {
    while (p < end) {
      if (*p == ' ') {
        ++p;
        continue;
      }
      const void* space = std::memchr(p, ' ', static_cast<size_t>(end - p));
      const char* stop = space ? static_cast<const char*>(space) : end;
      out.emplace_back(p, static_cast<size_t>(stop - p));
      p = stop;
    }
    return;
  }
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    const char* start = p;
    while (p < end && *p != ' ' && *p != '\t') ++p;
    if (p > start) out.emplace_back(start, static_cast<size_t>(p - start));
  }
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  fields_into(line, out);
  return out;
}

template <class Int>
std::optional<Int> to_int(std::string_view text) {
  Int v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string quoted(std::string_view text) {
  std::string out = "'";
  out += text.substr(0, 80);
  out += "'";
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view text) {
  if (text.find('\\') == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      auto digits = text.substr(i + 1, 3);
      bool octal = digits.size() == 3;
      for (char c : digits) octal = octal && c >= '0' && c <= '7';
      if (octal) {
        out += static_cast<char>((digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), ',')) + 1);
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<std::vector<MountEntry>> parse_mountinfo(std::string_view text, bool cgroup_only) {
  // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
  // Optional fields (master:1 ...) run until the lone "-".
  std::vector<MountEntry> out;
  out.reserve(16);  // a hybrid host mounts about a dozen hierarchies
  int line_no = 0;
  std::vector<std::string_view> f;
  f.reserve(16);
  // Line by line, without building their list first.
  size_t pos = 0;
  for (std::string_view line; next_line(text, pos, line);) {
    ++line_no;
    fields_into(line, f);
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 6 || dash + 3 > f.size()) {
      return fail("mountinfo line " + std::to_string(line_no) + ": expected 'ID PARENT MAJ:MIN ROOT "
                  "MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS', got " + quoted(line));
    }
    auto id = to_int<int>(f[0]);
    auto parent = to_int<int>(f[1]);
    if (!id || !parent) return fail("mountinfo line " + std::to_string(line_no) + ": bad mount id in " + quoted(line));
    if (cgroup_only && f[dash + 1] != "cgroup" && f[dash + 1] != "cgroup2") continue;
    MountEntry m;
    m.mount_id = *id;
    m.parent_id = *parent;
    m.root = unescape_octal(f[3]);
    m.mount_point = unescape_octal(f[4]);
    m.mount_options = split_commas(f[5]);
    m.fs_type = std::string(f[dash + 1]);
    m.source = unescape_octal(f[dash + 2]);
    if (dash + 3 < f.size()) m.super_options = split_commas(f[dash + 3]);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<ProcCgroupLine>> parse_proc_cgroup(std::string_view text) {
  std::vector<ProcCgroupLine> out;
  for (auto line : lines(text)) {
    // The path may itself contain ':' — split on the first two only.
    size_t a = line.find(':');
    size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos)
      return fail("/proc/self/cgroup: expected 'ID:CONTROLLERS:PATH', got " + quoted(line));
    auto id = to_int<int>(line.substr(0, a));
    if (!id) return fail("/proc/self/cgroup: bad hierarchy id in " + quoted(line));
    ProcCgroupLine l;
    l.hierarchy_id = *id;
    l.controllers = split_commas(line.substr(a + 1, b - a - 1));
    l.path = std::string(line.substr(b + 1));
    if (l.path.empty() || l.path[0] != '/') {
      // "/.." style paths start with '/', anything else is not a path we can use.
      return fail("/proc/self/cgroup: expected an absolute path in " + quoted(line));
    }
    out.push_back(std::move(l));
  }
  return out;
}

Result<std::map<std::string, uint64_t>> parse_flat_keyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  for (auto line : lines(text)) {
    auto f = fields(line);
    if (f.empty()) continue;
    if (f.size() < 2) return fail("expected 'KEY VALUE', got " + quoted(line));
    auto v = to_int<uint64_t>(f[1]);
    if (!v) return fail("bad number for '" + std::string(f[0]) + "': " + quoted(f[1]));
    out[std::string(f[0])] = *v;
  }
  return out;
}

Result<uint64_t> parse_u64(std::string_view text) {
  auto f = fields(text.substr(0, text.find('\n')));
  if (f.size() != 1) return fail("expected one number, got " + quoted(text));
  auto v = to_int<uint64_t>(f[0]);
  if (!v) return fail("expected one number, got " + quoted(text));
  return *v;
}

Result<IoBytes> parse_io_stat(std::string_view text) {
  IoBytes out;
  for (auto line : lines(text)) {
    auto f = fields(line);
    for (size_t i = 1; i < f.size(); ++i) {
      auto eq = f[i].find('=');
      if (eq == std::string_view::npos) continue;
      auto key = f[i].substr(0, eq);
      if (key != "rbytes" && key != "wbytes") continue;
      auto v = to_int<uint64_t>(f[i].substr(eq + 1));
      if (!v) return fail("io.stat: bad number in " + quoted(line));
      (key == "rbytes" ? out.read_bytes : out.write_bytes) += *v;
    }
  }
  return out;
}

Result<IoBytes> parse_blkio_service_bytes(std::string_view text) {
  // Per device "MAJ:MIN Op N" for Read, Write, Sync, Async, Discard, Total; then a
  // grand "Total N" line that we skip (it double counts Sync/Async with Read/Write).
  IoBytes out;
  for (auto line : lines(text)) {
    auto f = fields(line);
    if (f.size() != 3) continue;
    if (f[1] != "Read" && f[1] != "Write") continue;
    auto v = to_int<uint64_t>(f[2]);
    if (!v) return fail("blkio service bytes: bad number in " + quoted(line));
    (f[1] == "Read" ? out.read_bytes : out.write_bytes) += *v;
  }
  return out;
}

Result<PressureTotals> parse_pressure(std::string_view text) {
  PressureTotals out;
  for (auto line : lines(text)) {
    auto f = fields(line);
    if (f.empty() || (f[0] != "some" && f[0] != "full")) continue;
    for (size_t i = 1; i < f.size(); ++i) {
      if (!f[i].starts_with("total=")) continue;
      auto v = to_int<uint64_t>(f[i].substr(6));
      if (!v) return fail("pressure: bad total in " + quoted(line));
      (f[0] == "some" ? out.some_total_usec : out.full_total_usec) = *v;
    }
  }
  if (!out.some_total_usec) return fail("pressure: no 'some ... total=' line in " + quoted(text));
  return out;
}

Result<std::vector<pid_t>> parse_pid_list(std::string_view text) {
  std::vector<pid_t> out;
  for (auto line : lines(text)) {
    auto v = to_int<pid_t>(line);
    if (!v || *v <= 0) return fail("expected one pid per line, got " + quoted(line));
    out.push_back(*v);
  }
  return out;
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  for (auto line : lines(text))
    for (auto w : fields(line)) out.emplace_back(w);
  return out;
}

// ---------------------------------------------------------------------------

uint64_t cpu_quota_usec(double pct) {
  double q = pct * static_cast<double>(kCpuPeriodUsec) / 100.0;
  if (!(q >= static_cast<double>(kCpuMinQuotaUsec))) return kCpuMinQuotaUsec;
  return static_cast<uint64_t>(std::llround(q));
}

std::string format_cpu_max(double pct) {
  return std::to_string(cpu_quota_usec(pct)) + " " + std::to_string(kCpuPeriodUsec);
}

uint64_t weight_to_cpu_shares(uint64_t weight) {
  uint64_t shares = weight * 1024 / 100;
  if (shares < 2) return 2;
  if (shares > 262144) return 262144;
  return shares;
}

uint64_t weight_to_blkio_weight(uint64_t weight) {
  uint64_t w = weight * 500 / 100;
  if (w < 10) return 10;
  if (w > 1000) return 1000;
  return w;
}

uint64_t weight_to_bfq_weight(uint64_t weight) {
  if (weight < 1) return 1;
  if (weight <= 100) return weight;
  if (weight >= 10000) return 1000;
  return 100 + (weight - 100) * 900 / 9900;
}

Result<void> validate_limits(const Limits& l) {
  if (l.memory_max_bytes && *l.memory_max_bytes == 0) return fail("memory limit must be more than 0 bytes");
  if (l.cpu_quota_pct && !(*l.cpu_quota_pct > 0.0 && std::isfinite(*l.cpu_quota_pct)))
    return fail("CPU quota must be a positive percentage");
  if (l.cpu_weight && (*l.cpu_weight < 1 || *l.cpu_weight > 10000))
    return fail("CPU weight must be 1..10000, got " + std::to_string(*l.cpu_weight));
  if (l.io_weight && (*l.io_weight < 1 || *l.io_weight > 10000))
    return fail("IO weight must be 1..10000, got " + std::to_string(*l.io_weight));
  if (l.pids_max && *l.pids_max == 0) return fail("pids limit must be at least 1");
  return {};
}

std::string limit_option(std::string_view what) {
  static constexpr std::pair<std::string_view, std::string_view> kOptions[] = {
      {"memory limit", "--memory"}, {"memory-high limit", "--memory-high"}, {"swap limit", "--swap"},
      {"CPU quota", "--cpu"},       {"CPU weight", "--cpu-weight"},         {"pids limit", "--pids"},
      {"IO weight", "--io-weight"}};
  for (const auto& [w, option] : kOptions)
    if (w == what) return std::string(option);
  return std::string(what);
}

Result<std::vector<LimitWrite>> v2_limit_writes(const Limits& l, HasFile has, const void* ctx) {
  if (auto v = validate_limits(l); !v) return std::unexpected(v.error());
  std::vector<LimitWrite> out;
  if (l.memory_max_bytes) out.push_back({"memory", "memory limit", "memory.max", std::to_string(*l.memory_max_bytes)});
  if (l.memory_high_bytes)
    out.push_back({"memory", "memory-high limit", "memory.high", std::to_string(*l.memory_high_bytes)});
  if (l.swap_max_bytes) out.push_back({"memory", "swap limit", "memory.swap.max", std::to_string(*l.swap_max_bytes)});
  if (l.cpu_quota_pct) out.push_back({"cpu", "CPU quota", "cpu.max", format_cpu_max(*l.cpu_quota_pct)});
  if (l.cpu_weight) out.push_back({"cpu", "CPU weight", "cpu.weight", std::to_string(*l.cpu_weight)});
  if (l.pids_max) out.push_back({"pids", "pids limit", "pids.max", std::to_string(*l.pids_max)});
  if (l.io_weight) {
    // io.weight comes with blk-iocost; with BFQ as the scheduler and no iocost the
    // weight is io.bfq.weight (1..1000) instead.
    if (!has(ctx, "io.weight") && has(ctx, "io.bfq.weight")) {
      auto bfq = "default " + std::to_string(weight_to_bfq_weight(*l.io_weight));
      out.push_back({"io", "IO weight", "io.bfq.weight", bfq});
    } else {
      out.push_back({"io", "IO weight", "io.weight", "default " + std::to_string(*l.io_weight)});
    }
  }
  return out;
}

Result<std::vector<LimitWrite>> v1_limit_writes(const Limits& l, HasFile has, const void* ctx) {
  if (auto v = validate_limits(l); !v) return std::unexpected(v.error());
  std::vector<LimitWrite> out;
  if (l.memory_max_bytes)
    out.push_back({"memory", "memory limit", "memory.limit_in_bytes", std::to_string(*l.memory_max_bytes)});
  if (l.memory_high_bytes)
    out.push_back({"memory", "memory-high limit", "memory.soft_limit_in_bytes", std::to_string(*l.memory_high_bytes)});
  if (l.swap_max_bytes) {
    // v1 limits memory + swap together; without a memory limit there is no sum.
    if (!l.memory_max_bytes)
      return fail("swap limit on cgroup v1 needs a memory limit too (memory.memsw.limit_in_bytes is memory + swap)");
    out.push_back({"memory", "swap limit", "memory.memsw.limit_in_bytes",
                   std::to_string(*l.memory_max_bytes + *l.swap_max_bytes)});
  }
  if (l.cpu_quota_pct) {
    out.push_back({"cpu", "CPU quota", "cpu.cfs_period_us", std::to_string(kCpuPeriodUsec)});
    out.push_back({"cpu", "CPU quota", "cpu.cfs_quota_us", std::to_string(cpu_quota_usec(*l.cpu_quota_pct))});
  }
  if (l.cpu_weight)
    out.push_back({"cpu", "CPU weight", "cpu.shares", std::to_string(weight_to_cpu_shares(*l.cpu_weight))});
  if (l.pids_max) out.push_back({"pids", "pids limit", "pids.max", std::to_string(*l.pids_max)});
  if (l.io_weight) {
    // CFQ's blkio.weight (10..1000) is gone since 5.0; BFQ offers blkio.bfq.weight.
    if (!has(ctx, "blkio.weight") && has(ctx, "blkio.bfq.weight")) {
      out.push_back({"blkio", "IO weight", "blkio.bfq.weight", std::to_string(weight_to_bfq_weight(*l.io_weight))});
    } else {
      out.push_back({"blkio", "IO weight", "blkio.weight", std::to_string(weight_to_blkio_weight(*l.io_weight))});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------

Result<std::string> normalize_relative(std::string_view path) {
  if (path.empty()) return fail("empty cgroup path");
  std::string out;
  for (auto part : split(path, '/')) {
    if (part.empty()) continue;
    if (part == "." || part == "..") return fail("cgroup path must not contain '.' or '..': " + quoted(path));
    out += '/';
    out += part;
  }
  if (out.empty()) out = "/";
  return out;
}

std::string join_relative(std::string_view parent, std::string_view child) {
  std::string out(parent);
  while (!out.empty() && out.back() == '/') out.pop_back();
  out += '/';
  while (!child.empty() && child.front() == '/') child.remove_prefix(1);
  out += child;
  return out;
}

std::string cgroup_fs_path(std::string_view mount_point, std::string_view relative) {
  std::string out(mount_point);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  while (!relative.empty() && relative.back() == '/') relative.remove_suffix(1);
  if (!relative.empty()) {
    if (out != "/") out += '/';
    out += relative;
  }
  return out;
}

std::optional<std::string> map_into_mount(std::string_view mount_root, std::string_view cgroup_path) {
  if (mount_root == "/") return std::string(cgroup_path);
  while (mount_root.size() > 1 && mount_root.back() == '/') mount_root.remove_suffix(1);
  if (cgroup_path == mount_root) return std::string("/");
  if (cgroup_path.starts_with(mount_root) && cgroup_path.size() > mount_root.size() &&
      cgroup_path[mount_root.size()] == '/') {
    return std::string(cgroup_path.substr(mount_root.size()));
  }
  return std::nullopt;
}

std::string runner_leaf_name(pid_t pid) { return "runner@" + std::to_string(pid); }

std::optional<pid_t> parse_runner_leaf_name(std::string_view name) {
  if (!name.starts_with("runner@")) return std::nullopt;
  auto pid = to_int<pid_t>(name.substr(7));
  if (!pid || *pid <= 0) return std::nullopt;
  return pid;
}

}  // namespace cronrun::cgroup
