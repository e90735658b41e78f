// Python's str operations over UTF-8 std::string: what `content.strip()`, `split`, slicing and
// repr do in the Python that transformers renders chat templates with. Python strings index by
// code point, so every position here is a code point, never a byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/text/jinja_unicode.h"

namespace distillery::text::jinja {

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

// repr() of a str: single quotes unless the text has ' and no ", escapes as Python prints them.
std::string py_repr_string(std::string_view s);
// repr() of a float: the shortest text that reads back the same double.
std::string py_float_repr(double d);

// Python slice semantics: the indices a[start:stop:step] visits in a sequence of `length`.
// Throws TemplateError for step 0.
std::vector<int64_t> slice_indices(int64_t length, std::optional<int64_t> start,
                                   std::optional<int64_t> stop, std::optional<int64_t> step);

}  // namespace distillery::text::jinja
