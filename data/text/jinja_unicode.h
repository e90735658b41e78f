// Unicode for the chat-template interpreter: UTF-8 coding and the per-character properties and
// case mappings Python's str methods use (isspace, isalpha, upper, lower, title, ...).
// Python applies Unicode's full case mappings (ß -> SS, final sigma); the simple ones come from
// glibc's built-in C.UTF-8 locale and the multi-character ones are listed here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace distillery::text::jinja {

std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);
int64_t count_code_points(std::string_view s);
bool is_ascii(std::string_view s);

// str.isspace() for one code point (Unicode White_Space plus the ASCII separators Python adds).
bool py_isspace(char32_t cp);

// str.isprintable() for one code point; repr() escapes the others.
bool py_is_printable(char32_t cp);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_swapcase(std::string_view s);
bool py_is_alpha(char32_t cp);
bool py_is_digit(char32_t cp);
bool py_is_upper(char32_t cp);
bool py_is_lower(char32_t cp);

}  // namespace distillery::text::jinja
