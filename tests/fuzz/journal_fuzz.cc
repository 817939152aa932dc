// The run journal's reader (common/journal.h): the bytes of `<history>.journal`,
// which every run of every job appends to and which a crash, a full disk or a
// hostile writer can leave in any state. The reader must account for every byte
// (records, damage, an incomplete tail), never read past what it was given, never
// trust a length, and read the same records whether the file arrives whole or in
// two pieces.
#include <string>

#include "common/journal.h"
#include "tests/fuzz/fuzz.h"

int cronrun_fuzz_journal(const uint8_t* data, size_t size) {
  using namespace cronrun;
  std::string_view text = fuzz::as_text(data, size);
  const uint64_t base = journal::kHeaderBytes;
  journal::Parsed whole = journal::parse(text, base, /*at_eof=*/true);
  FUZZ_CHECK(whole.consumed <= size);
  // Everything is accounted for: entries and damage tile [0, consumed), the tail
  // (if any) runs from there to the end.
  uint64_t at = base;
  size_t e = 0, d = 0;
  while (e < whole.entries.size() || d < whole.damage.size()) {
    if (e < whole.entries.size() && whole.entries[e].offset == at) {
      FUZZ_CHECK(whole.entries[e].end > at);
      at = whole.entries[e++].end;
    } else {
      FUZZ_CHECK_MSG(d < whole.damage.size() && whole.damage[d].offset == at, "a gap between records");
      FUZZ_CHECK(whole.damage[d].length > 0);
      at += whole.damage[d++].length;
    }
  }
  FUZZ_CHECK(at == base + whole.consumed);
  if (whole.tail) {
    FUZZ_CHECK(whole.tail->offset == base + whole.consumed);
    FUZZ_CHECK(whole.tail->offset + whole.tail->length == base + size);
  } else {
    FUZZ_CHECK(whole.consumed == size);
  }
  // Read in two pieces (a reader racing an appender): the first read yields a
  // prefix of the records, and continuing from where it stopped yields the rest.
  size_t cut = size / 2;
  journal::Parsed first = journal::parse(text.substr(0, cut), base, /*at_eof=*/false);
  FUZZ_CHECK(first.consumed <= cut);
  journal::Parsed rest = journal::parse(text.substr(first.consumed), base + first.consumed, true);
  FUZZ_CHECK(first.entries.size() + rest.entries.size() >= whole.entries.size() ||
             !first.damage.empty());  // a cut inside garbage may hide a magic the whole read found
  for (size_t i = 0; i < first.entries.size(); ++i) {
    FUZZ_CHECK(i < whole.entries.size());
    FUZZ_CHECK(first.entries[i].offset == whole.entries[i].offset);
  }
  // What was read is written again and reads back the same.
  std::string again;
  for (const auto& entry : whole.entries) {
    auto bytes = journal::encode_record(entry.type, entry.record);
    FUZZ_CHECK(bytes.has_value());
    again += *bytes;
  }
  journal::Parsed back = journal::parse(again, 0, true);
  FUZZ_CHECK(back.entries.size() == whole.entries.size());
  FUZZ_CHECK(back.damage.empty() && !back.tail);
  return 0;
}
