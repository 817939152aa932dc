// Escaping of untrusted history strings for terminals, CSV and Prometheus (see
// text_escape.h for why). The decoder follows the UTF-8 definition of RFC 3629:
// overlong forms, surrogates and code points above U+10FFFF are not UTF-8, so
// each of their bytes is shown as \xNN rather than passed to a terminal that
// might decode them differently.
#include "profiler/text_escape.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdint>

namespace cronrun::prof {

namespace {

// Length of the valid UTF-8 sequence at the front of `s` and its code point;
// 0 when the first byte does not start one.
size_t utf8_sequence(std::string_view s, char32_t& cp) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(0);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    cp = b0 & 0x0f;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    unsigned char b = byte(i);
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  return len;
}

bool is_control(char32_t cp) { return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f); }
// Bidirectional embeddings, overrides and isolates: they make a terminal show
// text in another order than it is ("Trojan Source").
bool is_bidi_control(char32_t cp) { return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069); }

}  // namespace

std::string term_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    char32_t cp = 0;
    size_t n = utf8_sequence(text, cp);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text.front()));
      text.remove_prefix(1);
      continue;
    }
    if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x80 && is_control(cp)) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
    } else if (is_control(cp) || is_bidi_control(cp)) {
      out += fmt::format("\\u{{{:04x}}}", static_cast<unsigned>(cp));
    } else {
      out.append(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

std::string term_lines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out += term_text(text.substr(start, end - start));
    if (end < text.size()) out += '\n';
    start = end + 1;
  }
  return out;
}

bool is_plain_text(std::string_view text) {
  while (!text.empty()) {
    char32_t cp = 0;
    size_t n = utf8_sequence(text, cp);
    if (n == 0 || is_control(cp) || is_bidi_control(cp)) return false;
    text.remove_prefix(n);
  }
  return true;
}

std::string json_text(const nlohmann::json& j, int indent) {
  // ensure_ascii: C1 controls and bidi overrides inside strings leave as \uXXXX
  // escapes, like the C0 controls nlohmann always escapes. DEL is the one control
  // it leaves raw; it can only occur inside a string, where \u007f means the same.
  std::string out = j.dump(indent, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  for (size_t pos = 0; (pos = out.find('\x7f', pos)) != std::string::npos;) out.replace(pos, 1, "\\u007f");
  return out;
}

}  // namespace cronrun::prof
