// Python's str semantics over UTF-8 std::string: what `content.strip()`, `split`, `upper`,
// slicing and repr do in the Python that transformers renders chat templates with. Python
// strings index by code point, so every position here is a code point, never a byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distillery::text::jinja {

std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);
int64_t count_code_points(std::string_view s);
bool is_ascii(std::string_view s);

// str.isspace() for one code point (Unicode White_Space plus the ASCII separators Python adds).
bool py_isspace(char32_t cp);

// str.strip/lstrip/rstrip; `chars` null means whitespace.
std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split / str.rsplit; `sep` null means runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
// str.replace; count < 0: all.
std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement,
                       int64_t count);
// str.find / str.rfind / str.count, returning code-point positions.
int64_t py_find(std::string_view s, std::string_view sub, bool from_right);
int64_t py_count(std::string_view s, std::string_view sub);

// Case mapping with Python's full mappings where they differ from the simple ones
// (ß -> SS, final sigma, ...).
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_swapcase(std::string_view s);
bool py_is_alpha(char32_t cp);
bool py_is_digit(char32_t cp);
bool py_is_upper(char32_t cp);
bool py_is_lower(char32_t cp);

// repr() of a str: single quotes unless the text has ' and no ", escapes as Python prints them.
std::string py_repr_string(std::string_view s);
// repr() of a float: the shortest text that reads back the same double.
std::string py_float_repr(double d);

// Python slice semantics: the indices a[start:stop:step] visits in a sequence of `length`.
// Throws TemplateError for step 0.
std::vector<int64_t> slice_indices(int64_t length, std::optional<int64_t> start,
                                   std::optional<int64_t> stop, std::optional<int64_t> step);

}  // namespace distillery::text::jinja
