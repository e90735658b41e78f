#include "data/text/jinja_unicode.h"

#include <algorithm>
#include <locale.h>
#include <wctype.h>

namespace distillery::text::jinja {
namespace unicode_detail {

// glibc's C.UTF-8 locale carries Unicode's simple case mappings and letter classes; it is
// built into glibc >= 2.35, so it needs no installed locale data.
locale_t unicode_locale() {
  static const locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (l == static_cast<locale_t>(nullptr))
      l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(nullptr));
    return l;
  }();
  return loc;
}

char32_t simple_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  locale_t l = unicode_locale();
  return l ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), l)) : c;
}

char32_t simple_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  locale_t l = unicode_locale();
  return l ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), l)) : c;
}

bool is_cased(char32_t c) { return simple_upper(c) != c || simple_lower(c) != c || py_is_upper(c) || py_is_lower(c); }

// Unconditional multi-character upper-case mappings from Unicode's SpecialCasing.txt that
// Python applies (the ones a chat message can plausibly contain).
const char* special_upper(char32_t c) {
  switch (c) {
    case 0xDF: return "SS";
    case 0x149: return "\xCA\xBCN";
    case 0x1F0: return "J\xCC\x8C";
    case 0x587: return "\xD4\xB5\xD5\x92";
    case 0xFB00: return "FF";
    case 0xFB01: return "FI";
    case 0xFB02: return "FL";
    case 0xFB03: return "FFI";
    case 0xFB04: return "FFL";
    case 0xFB05: return "ST";
    case 0xFB06: return "ST";
    default: return nullptr;
  }
}

// Title-case forms that differ from upper case for the first letter of a word.
const char* special_title(char32_t c) {
  switch (c) {
    case 0xDF: return "Ss";
    case 0xFB00: return "Ff";
    case 0xFB01: return "Fi";
    case 0xFB02: return "Fl";
    case 0xFB03: return "Ffi";
    case 0xFB04: return "Ffl";
    case 0xFB05: return "St";
    case 0xFB06: return "St";
    case 0x1C4: case 0x1C5: case 0x1C6: return "\xC7\x85";
    case 0x1C7: case 0x1C8: case 0x1C9: return "\xC7\x88";
    case 0x1CA: case 0x1CB: case 0x1CC: return "\xC7\x8B";
    case 0x1F1: case 0x1F2: case 0x1F3: return "\xC7\xB2";
    default: return nullptr;
  }
}

void append_upper(std::string& out, char32_t c) {
  if (const char* s = special_upper(c)) out += s;
  else append_utf8(out, simple_upper(c));
}

void append_title(std::string& out, char32_t c) {
  if (const char* s = special_title(c)) out += s;
  else append_utf8(out, simple_upper(c));
}

// Python lowers capital sigma to final sigma at the end of a word (Final_Sigma condition).
void append_lower(std::string& out, const std::u32string& s, size_t i) {
  char32_t c = s[i];
  if (c == 0x130) {  // İ lowers to i + combining dot above
    out += "i\xCC\x87";
    return;
  }
  if (c == 0x3A3) {
    bool cased_before = i > 0 && is_cased(s[i - 1]);
    bool cased_after = i + 1 < s.size() && is_cased(s[i + 1]);
    append_utf8(out, cased_before && !cased_after ? 0x3C2 : 0x3C3);
    return;
  }
  append_utf8(out, simple_lower(c));
}

}  // namespace unicode_detail

using namespace unicode_detail;

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (c >= 0x80 && c < 0xC0) extra = 0;  // stray continuation byte: keep it as one unit
    char32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
    size_t j = 1;
    for (; j <= static_cast<size_t>(extra) && i + j < s.size(); ++j)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3F);
    out += cp;
    i += j;
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

int64_t count_code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool py_is_printable(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F)) return false;
  if ((c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF) return false;
  if (c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E || (c >= 0xFFF9 && c <= 0xFFFB)) return false;
  if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000 || (c >= 0xE0000 && c <= 0xE0FFF)) return false;
  return true;
}

std::string py_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decode_utf8(s)) append_upper(out, c);
  return out;
}

std::string py_lower(std::string_view s) {
  std::u32string u = decode_utf8(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < u.size(); ++i) append_lower(out, u, i);
  return out;
}

std::string py_title(std::string_view s) {
  std::u32string u = decode_utf8(s);
  std::string out;
  bool previous_cased = false;
  for (size_t i = 0; i < u.size(); ++i) {
    char32_t c = u[i];
    if (previous_cased) append_lower(out, u, i);
    else append_title(out, c);
    previous_cased = is_cased(c);
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::u32string u = decode_utf8(s);
  std::string out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 0) append_title(out, u[0]);
    else append_lower(out, u, i);
  }
  return out;
}

std::string py_swapcase(std::string_view s) {
  std::u32string u = decode_utf8(s);
  std::string out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (py_is_upper(u[i])) append_lower(out, u, i);
    else if (py_is_lower(u[i])) append_upper(out, u[i]);
    else append_utf8(out, u[i]);
  }
  return out;
}

bool py_is_alpha(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t l = unicode_locale();
  return l && iswalpha_l(static_cast<wint_t>(c), l);
}

bool py_is_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  locale_t l = unicode_locale();
  return l && iswdigit_l(static_cast<wint_t>(c), l);
}

bool py_is_upper(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z';
  locale_t l = unicode_locale();
  return l && iswupper_l(static_cast<wint_t>(c), l);
}

bool py_is_lower(char32_t c) {
  if (c < 0x80) return c >= 'a' && c <= 'z';
  locale_t l = unicode_locale();
  return l && iswlower_l(static_cast<wint_t>(c), l);
}

}  // namespace distillery::text::jinja
