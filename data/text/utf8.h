// UTF-8 helpers shared by the tokenizer stages. Text inside the tokenizer is always valid UTF-8
// (checked once on entry), so the decoders here do not re-validate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace distillery::text::utf8 {

// Length of the sequence that starts with lead byte `b` (1 for bytes that cannot lead one).
inline int sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xF0) return 4;
  if (b >= 0xE0) return 3;
  if (b >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at s[i] (valid UTF-8 assumed) and advances i past it.
inline uint32_t next(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const int n = sequence_length(b0);
  uint32_t cp = n == 2 ? (b0 & 0x1Fu) : n == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  i += n;
  return cp;
}

// Decodes the code point that ends just before s[i] and moves i back to its first byte.
inline uint32_t prev(std::string_view s, size_t& i) {
  size_t j = i - 1;
  while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
  size_t k = j;
  const uint32_t cp = next(s, k);
  i = j;
  return cp;
}

inline void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

inline size_t encoded_length(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

// Byte offset of the first byte that does not belong to a well-formed UTF-8 sequence
// (overlongs, surrogates and code points past U+10FFFF are ill-formed), or npos.
size_t find_invalid(std::string_view s);

// Length of the maximal prefix of s[i..] that is a valid code point, or 0 when s[i] starts an
// ill-formed sequence; *bad_length then receives how many bytes make up its maximal subpart
// (what one U+FFFD replaces, as Rust's String::from_utf8_lossy and the Unicode standard do).
size_t valid_sequence_at(std::string_view s, size_t i, size_t* bad_length);

// Decodes bytes to a string, replacing each maximal ill-formed subpart with U+FFFD.
std::string decode_lossy(std::string_view bytes);

}  // namespace distillery::text::utf8
