// The run journal (DESIGN.md section 5): the append-only file beside the history,
// `<history path>.journal`, that every run appends its two records to instead of
// opening SQLite. Folded into the SQLite history off the per-run path (history.h);
// later forwarded to the fleet history (section 10), so it is ordered, replayable
// and read by consumers that each keep their own cursor.
//
// File layout (all integers little-endian):
//   header, kHeaderBytes: "\xffCRJNL\0\1" (magic + version), a 16-byte random
//     generation id, CRC32 of the preceding 24 bytes, 4 zero bytes. A new file (first
//     run, or rotation) gets a new generation, so a journal that was truncated or
//     replaced and grew again is never read from a stale cursor offset.
//   records, each written with ONE write(2) on an O_APPEND fd:
//     "\xffCRJ" | type ('S' start, 'F' finish) | 3 zero bytes | payload length (u32)
//     | CRC32 over type..length and the payload | payload.
//   The payload is the record JSON (to_json) plus the runner's pid, start time and
//   boot id, which the history keeps in columns. 0xff never occurs in UTF-8 JSON,
//   so a reader that meets damage resyncs on the next magic.
//
// Concurrency: on Linux a write(2) to a regular local file holds the inode lock for
// the whole call, so O_APPEND records of concurrent runners never interleave. A
// runner killed during the write (a fatal signal ends a long write at a page
// boundary) or a full disk can leave a torn record: its CRC fails, readers skip and
// report it, and resync. Not on NFS (O_APPEND is not atomic there).
//
// Rotation (history.cc, under the fold lock): a fully consumed journal is swapped
// with a fresh one (renameat2 RENAME_EXCHANGE) and the old one, now under
// `<journal>.retired`, gets the sticky bit. An appender that finds the sticky bit on
// its fd after writing (fstat) writes the record again into the new journal; a
// record may then be read twice, once per file, which the fold absorbs (the run id
// is the key) — consumers must be idempotent per (run id, type).
//
// Durability: no fsync. A runner killed at any instant leaves its records in the
// page cache, which survives the process; only a power cut or kernel crash can lose
// the last records (the history promised no more under synchronous=NORMAL).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/run_record.h"

namespace cronrun::journal {

inline constexpr size_t kHeaderBytes = 32;
inline constexpr size_t kFrameBytes = 16;
// Largest payload written or read. A record is ~1.5 KiB; a command line of many
// arguments can make it larger. A longer one is written with its command cut
// (record_payload says so in isolation.note); a length field above this is damage.
inline constexpr size_t kMaxRecordBytes = 1u << 20;
// A run folds the journal when, after its finish record, the file is at least this
// large (about a hundred runs): readers that may not write merge at most about
// this much in memory.
inline constexpr uint64_t kFoldThresholdBytes = 256u << 10;

enum class RecordType : uint8_t { start = 'S', finish = 'F' };
const char* to_string(RecordType t);

// `<history>.journal` and `<history>.journal.retired`.
std::string journal_path(const std::string& history_path);
std::string retired_path(const std::string& history_path);

uint32_t crc32(std::string_view data, uint32_t crc = 0);

// 32 lower-case hex digits.
using Generation = std::string;
Generation new_generation();
std::string encode_header(const Generation& gen);
// The generation of a header, or an error saying what is wrong with it.
Result<Generation> decode_header(std::string_view header);

// The payload JSON of `r` (runner pid/start/boot id included).
Result<std::string> record_payload(const RunRecord& r);
// A framed record: frame + payload.
Result<std::string> encode_record(RecordType type, const RunRecord& r);
Result<RunRecord> decode_payload(std::string_view payload);

struct Entry {
  RecordType type = RecordType::start;
  uint64_t offset = 0;  // of the frame, in the file
  uint64_t end = 0;     // just past the payload
  RunRecord record;
};
// A stretch of the file that is not a valid record (garbled, torn, bad JSON).
struct Damage {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string why;
};
std::string describe(const Damage& d);

// Parses `data`, which starts at file offset `base`. Stops before a record that is
// incomplete when more may still come (`at_eof` false: the caller reads more), or,
// at the end of the file, reports it in `tail` (a torn last record, or one being
// written right now) and stops before it, so a cursor never moves past a record
// that may yet complete. A length field is trusted only up to kMaxRecordBytes and
// to the data present; a frame that does not check out is skipped from its magic
// to the next magic that starts a valid (or incomplete-at-end) record.
struct Parsed {
  std::vector<Entry> entries;
  std::vector<Damage> damage;
  uint64_t consumed = 0;        // bytes of `data` fully accounted for
  std::optional<Damage> tail;   // incomplete last record (at_eof only)
};
Parsed parse(std::string_view data, uint64_t base, bool at_eof);

// One journal file open for reading.
struct Segment {
  UniqueFd fd;
  Generation generation;
  std::string path;
  struct stat st {};
  // Where its records start: after the header, or at 0 when the header is
  // damaged (the records after it are framed and checksummed on their own; the
  // reader resynchronises on them and reports the rest as damage).
  uint64_t body_from = kHeaderBytes;
  std::string header_damage;  // "" when the header is sound
};
// Opens `name` in `dirfd` for reading: O_NOFOLLOW|O_NONBLOCK, regular files only,
// and (when `owner` is given) owned by that uid — a journal planted by another user
// is not read into the history. nullopt when it does not exist. A header of a
// format version this build does not read is an error naming the file; a
// damaged one (torn, bad magic, bad checksum) is not: the segment then has
// header_damage set, a generation made of its device and inode (stable while the
// file lives), and its records are read from offset 0. The fold replaces such a
// journal with a fresh one once it has read it to the end.

Result<std::optional<Segment>> open_segment(int dirfd, const std::string& name, const std::string& path,
                                            std::optional<uid_t> owner, int flags = O_RDONLY);
// Where reading `seg` from `from` starts: kHeaderBytes (the callers' "from the
// start") is the segment's body_from, and nothing before body_from is read.
inline uint64_t read_start(const Segment& seg, uint64_t from) {
  if (seg.body_from < kHeaderBytes && from == kHeaderBytes) return seg.body_from;
  return from < seg.body_from ? seg.body_from : from;
}

// Reads `seg` from `from` to its size at the time of the call, in bounded reads,
// at most about `max_bytes` of records per call. `next` is where the next call
// starts (the cursor to commit once the entries are stored).
struct Batch {
  std::vector<Entry> entries;
  std::vector<Damage> damage;
  std::optional<Damage> tail;
  uint64_t next = 0;
  bool at_end = false;  // nothing complete left after `next`
};
Result<Batch> read_batch(const Segment& seg, uint64_t from, size_t max_bytes);

// The appending side: one fd to the journal, opened relative to the history's
// directory fd, kept for both records of a run.
class Writer {
 public:
  // Opens the journal, creating it (with its header, published atomically by
  // renameat2 RENAME_NOREPLACE so two first runs cannot both create it) with
  // `create_mode` when missing. `created` (if given) says it did.
  static Result<Writer> open(UniqueFd dirfd, const std::string& history_path, mode_t create_mode,
                             bool* created = nullptr);
  // Appends one record with one write(2); returns the journal's size afterwards
  // (fstat). A journal rotated away meanwhile (sticky bit) is reopened and the
  // record written again there.
  Result<uint64_t> append(RecordType type, const RunRecord& r);
  int fd() const { return fd_.get(); }
  int dirfd() const { return dirfd_.get(); }
  const std::string& path() const { return path_; }

 private:
  Writer(UniqueFd dirfd, UniqueFd fd, std::string path, mode_t mode)
      : dirfd_(std::move(dirfd)), fd_(std::move(fd)), path_(std::move(path)), mode_(mode) {}
  Result<void> reopen();
  UniqueFd dirfd_;
  UniqueFd fd_;
  std::string path_;
  mode_t mode_ = 0644;
};

// Creates `name` in `dirfd` as a new journal (O_EXCL) with a fresh header; the fd
// is open read-write.
Result<UniqueFd> create_new(int dirfd, const std::string& name, const std::string& path, mode_t mode,
                            Generation* gen);

// Test-only: when CRONRUN_TEST_PAUSE_AT names `phase`, the process stops itself
// (SIGSTOP) there so a test can SIGKILL it at exactly that point.
void test_pause(std::string_view phase);

}  // namespace cronrun::journal
