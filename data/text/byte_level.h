// GPT-2's byte-level alphabet: every byte is shown as a printable character (printable ASCII
// and Latin-1 map to themselves, the other 68 bytes to U+0100..U+0143), so a byte-level BPE
// vocabulary is made of ordinary strings: " hello" is stored as "Ġhello".
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace distillery::text::byte_level {

// The character byte b is shown as.
uint32_t char_of_byte(uint8_t b);

// The byte that character cp stands for, or -1 when cp is not in the alphabet.
int byte_of_char(uint32_t cp);

// Appends the byte-level form of `raw` (any bytes) to `out`.
void map_bytes(std::string_view raw, std::string& out);

// Appends the bytes that `mapped` stands for to `out`; false (out unspecified) when a character
// of `mapped` is outside the alphabet.
bool unmap_chars(std::string_view mapped, std::string& out);

}  // namespace distillery::text::byte_level
