// Crossing between JSON and template values: the render context comes in as JSON, and the
// `tojson` filter goes out exactly as transformers' override of it does (Python's json.dumps
// with ensure_ascii=False, so non-ASCII text stays as is and only control characters, quotes
// and backslashes are escaped).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "data/text/jinja_value.h"

namespace distillery::text::jinja {

// Objects keep their key order (ordered_json) or the sorted order nlohmann::json stores.
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

struct JsonDumpOptions {
  bool has_indent = false;   // indent=None when false: one line, ", " and ": " separators
  std::string indent;        // the text one level of nesting adds, when has_indent
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;
  bool custom_separators = false;
  bool sort_keys = false;
  bool ensure_ascii = false;  // escape everything outside printable ASCII as \uXXXX
};

// json.dumps(value, ensure_ascii=False, ...). Throws TemplateError for values JSON cannot
// hold (Undefined, a namespace, a function), as Python's TypeError.
std::string to_json(const Value& v, const JsonDumpOptions& options);

}  // namespace distillery::text::jinja
