// The run journal's format, reader and appender (see journal.h).
#include "common/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/job_paths.h"
#include "common/safe_file.h"

namespace cronrun::journal {

namespace {

constexpr char kHeaderMagic[8] = {'\xff', 'C', 'R', 'J', 'N', 'L', '\0', '\1'};
constexpr std::string_view kRecordMagic("\xff" "CRJ", 4);
// Bytes read per pread.
constexpr size_t kReadChunk = 256u << 10;
// A rotation racing an appender: the record is written again into the new journal;
// more than a few rotations during one append would mean the folds run in a loop.
constexpr int kMaxRewrites = 8;

void put_le32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t get_le32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

const char* to_string(RecordType t) { return t == RecordType::start ? "start" : "finish"; }

// The name is the job model's (common/job_paths.h), decided once there.
std::string journal_path(const std::string& history_path) { return cronrun::journal_path(history_path); }
std::string retired_path(const std::string& history_path) { return history_path + ".journal.retired"; }

uint32_t crc32(std::string_view data, uint32_t crc) {
  // Built at compile time: a run checksums two records and nothing else.
  static constexpr std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (unsigned char c : data) crc = table[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Generation new_generation() {
  unsigned char raw[16] = {};
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof raw) {
    // getrandom cannot fail on Linux >= 3.17 with a valid buffer; the run id's
    // randomness comes from the same source. Fall back to pid and time so the
    // generation still differs from the last one.
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t a = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
    uint64_t b = static_cast<uint64_t>(::getpid());
    std::memcpy(raw, &a, 8);
    std::memcpy(raw + 8, &b, 8);
  }
  return hex(raw, sizeof raw);
}

std::string encode_header(const Generation& gen) {
  std::string h(kHeaderBytes, '\0');
  std::memcpy(h.data(), kHeaderMagic, 8);
  for (size_t i = 0; i < 16 && 2 * i + 1 < gen.size(); ++i)
    h[8 + i] = static_cast<char>(std::strtoul(gen.substr(2 * i, 2).c_str(), nullptr, 16));
  put_le32(h.data() + 24, crc32(std::string_view(h.data(), 24)));
  return h;
}

Result<Generation> decode_header(std::string_view header) {
  if (header.size() < kHeaderBytes) return fail("journal header is truncated (" + std::to_string(header.size()) + " bytes)");
  if (std::memcmp(header.data(), kHeaderMagic, 6) != 0) return fail("not a cronrun run journal (bad magic)");
  if (header[6] != '\0' || header[7] != '\1')
    return fail("run journal format version " + std::to_string(static_cast<unsigned char>(header[7])) +
                " is not one this build reads");
  if (get_le32(header.data() + 24) != crc32(header.substr(0, 24))) return fail("run journal header fails its checksum");
  return hex(reinterpret_cast<const unsigned char*>(header.data() + 8), 16);
}

Result<std::string> record_payload(const RunRecord& r) {
  // Written straight as text (no JSON DOM): the same bytes as the DOM's dump.
  auto dump = [](const RunRecord& rec) { return to_json_text(rec, /*runner_fields=*/true); };
  std::string text = dump(r);
  if (text.size() <= kMaxRecordBytes) return text;
  // Only the command line can make a record this large; keep its program name.
  RunRecord cut = r;
  size_t args = cut.command.size();
  if (cut.command.size() > 1) cut.command.resize(1);
  if (!cut.command.empty() && cut.command[0].size() > 4096) cut.command[0].resize(4096);
  std::string why = "command line (" + std::to_string(args) + " arguments) cut from the journal record: the record exceeded " +
                    std::to_string(kMaxRecordBytes) + " bytes";
  cut.isolation.note = cut.isolation.note ? *cut.isolation.note + "; " + why : why;
  text = dump(cut);
  if (text.size() <= kMaxRecordBytes) return text;
  return fail("run record " + r.run_id + " is " + std::to_string(text.size()) + " bytes even without its command line, above the journal's limit of " +
              std::to_string(kMaxRecordBytes));
}

Result<std::string> encode_record(RecordType type, const RunRecord& r) {
  auto payload = record_payload(r);
  if (!payload) return std::unexpected(payload.error());
  std::string out(kFrameBytes, '\0');
  std::memcpy(out.data(), kRecordMagic.data(), 4);
  out[4] = static_cast<char>(type);
  put_le32(out.data() + 8, static_cast<uint32_t>(payload->size()));
  uint32_t crc = crc32(std::string_view(out.data() + 4, 8));
  crc = crc32(*payload, crc);
  put_le32(out.data() + 12, crc);
  out += *payload;
  return out;
}

namespace {
// The record through a DOM: the reader that says what is wrong with a payload the
// fast reader would not take.
Result<RunRecord> decode_payload_dom(std::string_view payload) {
  auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail("payload is not a JSON object");
  auto r = run_record_from_json(j);
  if (!r) return r;
  if (auto it = j.find("runner_pid"); it != j.end() && it->is_number_integer()) r->runner_pid = it->get<int64_t>();
  if (auto it = j.find("runner_start"); it != j.end() && it->is_number_unsigned()) r->runner_start = it->get<uint64_t>();
  if (auto it = j.find("boot_id"); it != j.end() && it->is_string()) r->boot_id = it->get<std::string>();
  return r;
}
}  // namespace

Result<RunRecord> decode_payload(std::string_view payload) {
  Result<RunRecord> r = [&]() -> Result<RunRecord> {
    if (auto fast = run_record_from_text_fast(payload, /*runner_fields=*/true)) return std::move(*fast);
    return decode_payload_dom(payload);
  }();
  if (!r) return r;
  if (r->run_id.empty()) return fail("record has no run_id");
  if (r->job.empty()) return fail("record " + r->run_id + " has no job");
  if (auto s = parse_rfc3339(r->started_at); !s) return fail("record " + r->run_id + " has no valid started_at");
  return r;
}

std::string describe(const Damage& d) {
  return "offset " + std::to_string(d.offset) + ", " + std::to_string(d.length) + " bytes: " + d.why;
}

// ---- parsing ----

namespace {

enum class FrameState { ok, incomplete, bad };
struct Frame {
  FrameState state = FrameState::bad;
  std::string why;
  Entry entry;
};

Frame try_frame(std::string_view data, size_t pos, uint64_t base) {
  Frame f;
  std::string_view rest = data.substr(pos);
  if (rest.size() < kRecordMagic.size()) {
    f.state = kRecordMagic.starts_with(rest) ? FrameState::incomplete : FrameState::bad;
    f.why = f.state == FrameState::bad ? "no record magic" : "incomplete record frame";
    return f;
  }
  if (!rest.starts_with(kRecordMagic)) {
    f.why = "no record magic";
    return f;
  }
  if (rest.size() < kFrameBytes) {
    f.state = FrameState::incomplete;
    f.why = "incomplete record frame (" + std::to_string(rest.size()) + " bytes)";
    return f;
  }
  char type = rest[4];
  if ((type != 'S' && type != 'F') || rest[5] != 0 || rest[6] != 0 || rest[7] != 0) {
    f.why = "unknown record type";
    return f;
  }
  uint32_t len = get_le32(rest.data() + 8);
  if (len > kMaxRecordBytes) {
    f.why = "record length " + std::to_string(len) + " above the limit of " + std::to_string(kMaxRecordBytes);
    return f;
  }
  if (rest.size() < kFrameBytes + len) {
    f.state = FrameState::incomplete;
    f.why = "incomplete record (" + std::to_string(rest.size()) + " of " + std::to_string(kFrameBytes + len) + " bytes)";
    return f;
  }
  std::string_view payload = rest.substr(kFrameBytes, len);
  uint32_t crc = crc32(payload, crc32(rest.substr(4, 8)));
  if (crc != get_le32(rest.data() + 12)) {
    f.why = "record fails its checksum";
    return f;
  }
  auto rec = decode_payload(payload);
  if (!rec) {
    f.why = "record payload: " + rec.error().message();
    return f;
  }
  f.state = FrameState::ok;
  f.entry.type = static_cast<RecordType>(type);
  f.entry.offset = base + pos;
  f.entry.end = base + pos + kFrameBytes + len;
  f.entry.record = std::move(*rec);
  return f;
}

}  // namespace

Parsed parse(std::string_view data, uint64_t base, bool at_eof) {
  Parsed out;
  size_t pos = 0;
  const size_t n = data.size();
  while (pos < n) {
    Frame f = try_frame(data, pos, base);
    if (f.state == FrameState::ok) {
      pos = static_cast<size_t>(f.entry.end - base);
      out.entries.push_back(std::move(f.entry));
      continue;
    }
    if (f.state == FrameState::incomplete && !at_eof) break;  // more is coming
    // Bad, or incomplete at the end of the file: where does the next record start?
    // A magic that begins a valid record, or one incomplete at the end; a trailing
    // partial magic counts as the latter.
    std::optional<size_t> next;
    FrameState next_state = FrameState::bad;
    for (size_t q = pos + 1; q < n;) {
      size_t hit = data.find(kRecordMagic, q);
      size_t partial = n;
      if (hit == std::string_view::npos) {
        // A prefix of the magic at the very end.
        for (size_t p = std::max(q, n >= 3 ? n - 3 : 0); p < n; ++p)
          if (kRecordMagic.starts_with(data.substr(p))) {
            partial = p;
            break;
          }
        if (partial == n) break;
        hit = partial;
      }
      Frame g = try_frame(data, hit, base);
      if (g.state != FrameState::bad) {
        next = hit;
        next_state = g.state;
        break;
      }
      q = hit + 1;
    }
    if (f.state == FrameState::incomplete && (!next || next_state == FrameState::incomplete)) {
      // The last record is incomplete: torn, or being written now. Not consumed.
      out.tail = Damage{base + pos, n - pos, f.why};
      break;
    }
    if (!next) {
      if (!at_eof) {
        // Garbage up to the end of what was read; keep the last bytes, which may
        // be the start of a magic that the next read completes.
        size_t keep = std::min<size_t>(n - pos, kRecordMagic.size() - 1);
        if (n - pos > keep) out.damage.push_back(Damage{base + pos, n - pos - keep, f.why});
        pos = n - keep;
        break;
      }
      out.damage.push_back(Damage{base + pos, n - pos, f.why});
      pos = n;
      break;
    }
    out.damage.push_back(Damage{base + pos, *next - pos, f.why});
    pos = *next;
  }
  out.consumed = pos;
  return out;
}

// ---- files ----

Result<std::optional<Segment>> open_segment(int dirfd, const std::string& name, const std::string& path,
                                            std::optional<uid_t> owner, int flags) {
  int fd = ::openat(dirfd, name.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Segment>();
    return fail_sys("open", path);
  }
  Segment seg;
  seg.fd.reset(fd);
  seg.path = path;
  if (::fstat(fd, &seg.st) != 0) return fail_sys("fstat", path);
  if (!S_ISREG(seg.st.st_mode)) return fail(path + " is not a regular file");
  if (owner && seg.st.st_uid != *owner)
    return fail(path + " is owned by uid " + std::to_string(seg.st.st_uid) + ", the history by uid " +
                std::to_string(*owner) + ": not reading a journal another user may have planted");
  char head[kHeaderBytes];
  ssize_t got;
  do got = ::pread(fd, head, sizeof head, 0);
  while (got < 0 && errno == EINTR);
  if (got < 0) return fail_sys("read", path);
  const std::string_view header(head, static_cast<size_t>(got));
  auto gen = decode_header(header);
  if (gen) {
    seg.generation = *gen;
    return std::optional<Segment>(std::move(seg));
  }
  // A journal of another format version is left to the build that reads it.
  if (header.size() >= 8 && std::memcmp(header.data(), kHeaderMagic, 6) == 0 && (header[6] != '\0' || header[7] != '\1'))
    return std::unexpected(std::move(gen.error()).context(path));
  seg.header_damage = gen.error().message();
  seg.generation = "damaged-" + std::to_string(seg.st.st_dev) + "-" + std::to_string(seg.st.st_ino);
  seg.body_from = 0;
  return std::optional<Segment>(std::move(seg));
}

Result<Batch> read_batch(const Segment& seg, uint64_t from, size_t max_bytes) {
  struct stat st {};
  if (::fstat(seg.fd.get(), &st) != 0) return fail_sys("fstat", seg.path);
  const uint64_t end = static_cast<uint64_t>(st.st_size);
  Batch b;
  from = read_start(seg, from);
  b.next = from;
  if (from >= end) {
    b.at_end = true;
    return b;
  }
  std::string buf;
  size_t want = std::max<size_t>(max_bytes, kReadChunk);
  for (;;) {
    while (buf.size() < want && from + buf.size() < end) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(kReadChunk, end - from - buf.size()));
      size_t old = buf.size();
      buf.resize(old + chunk);
      ssize_t n = ::pread(seg.fd.get(), buf.data() + old, chunk, static_cast<off_t>(from + old));
      if (n < 0 && errno == EINTR) {
        buf.resize(old);
        continue;
      }
      if (n < 0) return fail_sys("read", seg.path);
      buf.resize(old + static_cast<size_t>(n));
      if (n == 0) break;  // shrank under us: what is there is the end
    }
    bool at_eof = from + buf.size() >= end || buf.size() < want;
    Parsed p = parse(buf, from, at_eof);
    if (p.consumed > 0 || at_eof || !p.damage.empty()) {
      b.entries = std::move(p.entries);
      b.damage = std::move(p.damage);
      b.tail = std::move(p.tail);
      b.next = from + p.consumed;
      b.at_end = at_eof && (b.tail || p.consumed == buf.size());
      return b;
    }
    // A record longer than what was read: read up to one more whole record.
    want = buf.size() + kFrameBytes + kMaxRecordBytes;
  }
}

Result<UniqueFd> create_new(int dirfd, const std::string& name, const std::string& path, mode_t mode,
                            Generation* gen) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return fail_sys("create", path);
  Generation g = new_generation();
  if (auto w = write_all(fd.get(), encode_header(g), path); !w) {
    ::unlinkat(dirfd, name.c_str(), 0);
    return std::unexpected(w.error());
  }
  if (gen) *gen = g;
  return fd;
}

// ---- appending ----

Result<Writer> Writer::open(UniqueFd dirfd, const std::string& history_path, mode_t create_mode, bool* created) {
  Writer w(std::move(dirfd), UniqueFd(), journal_path(history_path), create_mode);
  if (created) *created = false;
  const std::string name = base_name(w.path_);
  for (int attempt = 0;; ++attempt) {
    int fd = ::openat(w.dirfd_.get(), name.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
      w.fd_.reset(fd);
      break;
    }
    if (errno == ELOOP || errno == ENXIO) {
      // O_NOFOLLOW met a symlink; O_WRONLY|O_NONBLOCK a FIFO no one reads: say which.
      int err = errno;
      struct stat st {};
      if (::fstatat(w.dirfd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
        return fail(w.path_ + " is a " + file_type_name(st.st_mode) +
                    ", expected the run journal (a regular file); not following or writing it");
      return fail_sys("open", w.path_, err);
    }
    if (errno != ENOENT || attempt >= 3) return fail_sys("open", w.path_);
    // Missing: made complete under a temporary name, then published without
    // replacing one another runner published first.
    std::string tmp = name + ".new-" + std::to_string(::getpid()) + "-" + new_generation().substr(0, 8);
    auto made = create_new(w.dirfd_.get(), tmp, w.path_ + " (temporary)", create_mode, nullptr);
    if (!made) return std::unexpected(made.error());
    if (::renameat2(w.dirfd_.get(), tmp.c_str(), w.dirfd_.get(), name.c_str(), RENAME_NOREPLACE) == 0) {
      if (created) *created = true;
      continue;
    }
    int err = errno;
    ::unlinkat(w.dirfd_.get(), tmp.c_str(), 0);
    if (err != EEXIST) return fail_sys("rename", w.path_, err);
  }
  struct stat st {};
  if (::fstat(w.fd_.get(), &st) != 0) return fail_sys("fstat", w.path_);
  if (!S_ISREG(st.st_mode)) return fail(w.path_ + " is not a regular file");
  if (st.st_uid != ::geteuid())
    return fail(w.path_ + " is owned by uid " + std::to_string(st.st_uid) +
                ", not this runner's: not appending to a journal another user may have planted");
  if (st.st_nlink != 1) return fail(w.path_ + " has " + std::to_string(st.st_nlink) + " links; a journal has one");
  // A journal shorter than its header (truncated by hand) is still appended to:
  // readers resynchronise on the records, and the next fold replaces it.
  if (st.st_mode & S_ISVTX) {
    // Rotated away between our open and now: take the new one.
    if (auto r = w.reopen(); !r) return std::unexpected(r.error());
  }
  return w;
}

Result<void> Writer::reopen() {
  const std::string name = base_name(path_);
  int fd = ::openat(dirfd_.get(), name.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail_sys("open", path_);
  fd_.reset(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_sys("fstat", path_);
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1)
    return fail(path_ + " changed into something that is not this runner's journal");
  return {};
}

Result<uint64_t> Writer::append(RecordType type, const RunRecord& r) {
  auto bytes = encode_record(type, r);
  if (!bytes) return std::unexpected(bytes.error());
  for (int round = 0;; ++round) {
    // One write(2): O_APPEND places the whole record at the end atomically with
    // respect to other appenders. A short write is a torn record (full disk, or a
    // fatal signal); it is not continued with a second write, which another
    // runner's record could precede. Readers skip the torn part.
    ssize_t n;
    do n = ::write(fd_.get(), bytes->data(), bytes->size());
    while (n < 0 && errno == EINTR);
    if (n < 0) return fail_sys("write", path_);
    if (static_cast<size_t>(n) != bytes->size())
      return fail("write " + path_ + ": short write (" + std::to_string(n) + " of " + std::to_string(bytes->size()) +
                  " bytes; the file system may be full): the " + to_string(type) + " record of run " + r.run_id +
                  " is torn");
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return fail_sys("fstat", path_);
    if (!(st.st_mode & S_ISVTX)) return static_cast<uint64_t>(st.st_size);
    // A fold rotated this journal away; whether it read our record is unknown, so
    // it goes into the new journal too (the run id makes the copy harmless).
    if (round >= kMaxRewrites) return fail(path_ + " was rotated away " + std::to_string(round) + " times during one append");
    if (auto re = reopen(); !re) return std::unexpected(re.error());
  }
}

void test_pause(std::string_view phase) {
  static const char* at = ::secure_getenv("CRONRUN_TEST_PAUSE_AT");
  if (at && phase == at) ::raise(SIGSTOP);
}

}  // namespace cronrun::journal
