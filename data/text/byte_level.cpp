#include "data/text/byte_level.h"

#include "data/text/utf8.h"

namespace distillery::text::byte_level {

namespace byte_level_detail {

struct Tables {
  std::array<uint32_t, 256> to_char{};
  std::array<int16_t, 0x144> to_byte{};  // every character of the alphabet is below U+0144
  std::array<std::string, 256> utf8{};   // to_char[b] encoded
};

const Tables& tables() {
  static const Tables t = [] {
    Tables tb;
    tb.to_byte.fill(-1);
    auto keeps_itself = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      tb.to_char[b] = keeps_itself(b) ? static_cast<uint32_t>(b) : next++;
      tb.to_byte[tb.to_char[b]] = static_cast<int16_t>(b);
      utf8::append(tb.utf8[b], tb.to_char[b]);
    }
    return tb;
  }();
  return t;
}

}  // namespace byte_level_detail

uint32_t char_of_byte(uint8_t b) { return byte_level_detail::tables().to_char[b]; }

int byte_of_char(uint32_t cp) {
  const auto& t = byte_level_detail::tables();
  return cp < t.to_byte.size() ? t.to_byte[cp] : -1;
}

void map_bytes(std::string_view raw, std::string& out) {
  const auto& t = byte_level_detail::tables();
  for (char c : raw) out += t.utf8[static_cast<uint8_t>(c)];
}

bool unmap_chars(std::string_view mapped, std::string& out) {
  size_t i = 0;
  while (i < mapped.size()) {
    const int b = byte_of_char(utf8::next(mapped, i));
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace distillery::text::byte_level
