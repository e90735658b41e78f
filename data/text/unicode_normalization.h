// Unicode normalization forms (NFC, NFD, NFKC, NFKD) as Hugging Face tokenizers applies them.
//
// utf8proc does the work. The reference's tables are older than utf8proc's, and it treats code
// points assigned since as unassigned; we do the same for the few code points where that changes
// the result (unicode_normalization_inert.inc, made by tests/parity/gen_unicode_normalization.cpp).
// Text that is already normalized - all ASCII, or only code points that can neither change nor
// combine - is recognized without calling utf8proc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace distillery::text {

enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };

// Normalizes `in` (valid UTF-8). Returns false, leaving `out` alone, when `in` is already in the
// form; otherwise writes the normalized text to `out` and returns true.
bool unicode_normalize(UnicodeForm form, std::string_view in, std::string& out);

// Rust's char::is_whitespace (the Unicode White_Space property).
inline bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

}  // namespace distillery::text
