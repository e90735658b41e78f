// jinja2's filters on single values (strings, numbers), transformers' tojson, and the
// registry of all filters. The filters over sequences live in jinja_sequence_filters.cpp.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_json.h"
#include "data/text/jinja_text.h"

namespace distillery::text::jinja {

FilterFn find_sequence_filter(std::string_view name);  // jinja_sequence_filters.cpp

namespace filters_detail {

const Value& required(const CallArgs& args, size_t i, const char* name, const char* filter) {
  const Value* v = args.get(i, name);
  if (!v) throw TemplateError(std::string(filter) + " filter: missing argument '" + name + "'");
  return *v;
}

int64_t int_or(const CallArgs& args, size_t i, const char* name, int64_t dflt) {
  const Value* v = args.get(i, name);
  if (!v) return dflt;
  if (!v->is_int() && !v->is_bool()) throw TemplateError(std::string("argument '") + name + "' must be an integer, not " + v->type_name());
  return v->as_int();
}

bool flag(const CallArgs& args, size_t i, const char* name) {
  const Value* v = args.get(i, name);
  return v && v->truthy();
}

// Python's float(str): surrounding whitespace, '_' between digits, inf/nan spellings.
bool parse_python_float(const std::string& text, double& out) {
  std::string s = py_strip(text, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      bool ok = i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!ok) return false;
      continue;
    }
    clean += s[i];
  }
  if (clean.empty() || clean.find_first_of("xXpP") != std::string::npos) return false;
  char* end = nullptr;
  out = std::strtod(clean.c_str(), &end);
  return end == clean.c_str() + clean.size();
}

// Python's int(str, 10).
bool parse_python_int(const std::string& text, int64_t& out) {
  std::string s = py_strip(text, nullptr, true, true);
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == s.size()) return false;
  std::string clean = s.substr(0, i);
  for (; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && std::isdigit(static_cast<unsigned char>(s[i - 1])) && i + 1 < s.size()) continue;
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    clean += s[i];
  }
  errno = 0;
  out = std::strtoll(clean.c_str(), nullptr, 10);
  return errno != ERANGE;
}

Value f_abs(const Value& v, CallArgs& args) {
  args.expect("abs", 0, {});
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) return Value(static_cast<int64_t>(std::llabs(v.as_int())));
  throw TemplateError("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_attr(const Value& v, CallArgs& args) {
  args.expect("attr", 1, {});
  const Value& name = required(args, 0, "name", "attr");
  std::string n = to_str(name);
  if (v.is_dict()) {  // Python getattr: a dict's keys are not its attributes
    if (n == "items" || n == "keys" || n == "values" || n == "get" || n == "copy") return get_attr(v, n);
    return Value::undefined_because("'dict object' has no attribute '" + n + "'");
  }
  return get_attr(v, n);
}

Value f_capitalize(const Value& v, CallArgs& args) {
  args.expect("capitalize", 0, {});
  return Value(py_capitalize(to_str(v)));
}

Value f_center(const Value& v, CallArgs& args) {
  args.expect("center", 1, {"width"});
  CallArgs pass;
  pass.positional.emplace_back(int_or(args, 0, "width", 80));
  return get_attr(Value(to_str(v)), "center").as_function().call(pass);
}

Value f_default(const Value& v, CallArgs& args) {
  args.expect("default", 2, {"default_value", "boolean"});
  const Value* dflt = args.get(0, "default_value");
  if (v.is_undefined() || (flag(args, 1, "boolean") && !v.truthy())) return dflt ? *dflt : Value("");
  return v;
}

Value f_escape(const Value& v, CallArgs& args) {
  args.expect("escape", 0, {});
  std::string out;
  for (char c : to_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}

Value f_float(const Value& v, CallArgs& args) {
  args.expect("float", 1, {"default"});
  const Value* dflt = args.get(0, "default");
  Value fallback = dflt ? *dflt : Value(0.0);
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value(v.as_double());
  double d;
  if (v.is_string() && parse_python_float(v.as_string(), d)) return Value(d);
  return fallback;
}

Value f_int(const Value& v, CallArgs& args) {
  args.expect("int", 2, {"default", "base"});
  const Value* dflt = args.get(0, "default");
  Value fallback = dflt ? *dflt : Value(0);
  if (int_or(args, 1, "base", 10) != 10) throw TemplateError("int filter: only base 10 is supported");
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double())) throw TemplateError("cannot convert float infinity or NaN to integer");
    return Value(static_cast<int64_t>(std::trunc(v.as_double())));
  }
  if (v.is_string()) {
    int64_t i;
    if (parse_python_int(v.as_string(), i)) return Value(i);
    double d;
    if (parse_python_float(v.as_string(), d) && std::isfinite(d)) return Value(static_cast<int64_t>(std::trunc(d)));
  }
  return fallback;
}

Value f_format(const Value& v, CallArgs& args) {
  if (!args.keyword.empty() && !args.positional.empty())
    throw TemplateError("format filter: can't handle positional and keyword arguments at the same time");
  Value values = args.keyword.empty() ? Value::list(args.positional, true) : Value::dict(args.keyword);
  return Value(percent_format(to_str(v), values));
}

Value f_indent(const Value& v, CallArgs& args) {
  args.expect("indent", 3, {"width", "first", "blank"});
  const Value* w = args.get(0, "width");
  std::string indention = (w && w->is_string()) ? w->as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, int_or(args, 0, "width", 4))), ' ');
  std::vector<std::string> lines = py_splitlines(to_str(v) + "\n", false);
  std::string rv;
  if (flag(args, 2, "blank")) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (flag(args, 1, "first")) rv = indention + rv;
  return Value(std::move(rv));
}

Value f_lower(const Value& v, CallArgs& args) {
  args.expect("lower", 0, {});
  return Value(py_lower(to_str(v)));
}

Value f_upper(const Value& v, CallArgs& args) {
  args.expect("upper", 0, {});
  return Value(py_upper(to_str(v)));
}

Value f_replace(const Value& v, CallArgs& args) {
  args.expect("replace", 3, {"old", "new", "count"});
  const Value* count = args.get(2, "count");
  int64_t n = (!count || count->is_none()) ? -1 : int_or(args, 2, "count", -1);
  return Value(py_replace(to_str(v), to_str(required(args, 0, "old", "replace")),
                          to_str(required(args, 1, "new", "replace")), n));
}

Value f_round(const Value& v, CallArgs& args) {
  args.expect("round", 2, {"precision", "method"});
  int64_t precision = int_or(args, 0, "precision", 0);
  const Value* m = args.get(1, "method");
  std::string method = m ? to_str(*m) : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    throw TemplateError("method must be common, ceil or floor");
  if (!v.is_number()) throw TemplateError("type " + v.type_name() + " doesn't define __round__ method");
  double x = v.as_double();
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "ceil") return Value(std::ceil(x * scale) / scale);
  if (method == "floor") return Value(std::floor(x * scale) / scale);
  if (!v.is_float()) {  // round(int, n) stays an int, half to even at negative precision
    int64_t x = v.as_int();
    if (precision >= 0) return Value(x);
    if (precision < -18) return Value(0);
    int64_t m = 1;
    for (int64_t i = 0; i < -precision; ++i) m *= 10;
    int64_t q = x / m - ((x % m != 0 && x < 0) ? 1 : 0), r = x - q * m;
    if (2 * r > m || (2 * r == m && (q & 1))) ++q;
    return Value(q * m);
  }
  if (precision >= 0 && precision < 300) {
    // printf rounds the exact binary value half-to-even, which is what Python's round does.
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), x);
    return Value(std::strtod(buf, nullptr));
  }
  return Value(std::nearbyint(x * scale) / scale);
}

Value f_safe(const Value& v, CallArgs& args) {
  args.expect("safe", 0, {});
  return Value(to_str(v));
}

Value f_string(const Value& v, CallArgs& args) {
  args.expect("string", 0, {});
  return Value(to_str(v));
}

// jinja2's title filter, not str.title(): words start after '-', whitespace or an opening bracket.
Value f_title(const Value& v, CallArgs& args) {
  args.expect("title", 0, {});
  std::u32string u = decode_utf8(to_str(v));
  auto is_sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c); };
  std::string out;
  for (size_t i = 0; i < u.size();) {
    size_t j = i;
    bool sep = is_sep(u[i]);
    while (j < u.size() && is_sep(u[j]) == sep) ++j;
    std::u32string_view item(u.data() + i, j - i);
    std::string first;
    append_utf8(first, item[0]);
    out += py_upper(first) + py_lower(encode_utf8(item.substr(1)));
    i = j;
  }
  return Value(std::move(out));
}

// transformers replaces jinja2's tojson (which HTML-escapes) with json.dumps(x,
// ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(const Value& v, CallArgs& args) {
  args.expect("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions opts;
  opts.ensure_ascii = flag(args, 0, "ensure_ascii");
  const Value* indent = args.get(1, "indent");
  if (indent && !indent->is_none()) {
    opts.has_indent = true;
    if (indent->is_string()) opts.indent = indent->as_string();
    else opts.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, int_or(args, 1, "indent", 0))), ' ');
  }
  const Value* seps = args.get(2, "separators");
  if (seps && !seps->is_none()) {
    if (!seps->is_list() || seps->as_list().items.size() != 2 || !seps->as_list().items[0].is_string() ||
        !seps->as_list().items[1].is_string())
      throw TemplateError("tojson: separators must be a pair of strings");
    opts.custom_separators = true;
    opts.item_separator = seps->as_list().items[0].as_string();
    opts.key_separator = seps->as_list().items[1].as_string();
  }
  opts.sort_keys = flag(args, 3, "sort_keys");
  return Value(to_json(v, opts));
}

Value f_trim(const Value& v, CallArgs& args) {
  args.expect("trim", 1, {"chars"});
  const Value* chars = args.get(0, "chars");
  std::string set = chars && !chars->is_none() ? to_str(*chars) : std::string();
  return Value(py_strip(to_str(v), chars && !chars->is_none() ? &set : nullptr, true, true));
}

Value f_wordcount(const Value& v, CallArgs& args) {
  args.expect("wordcount", 0, {});
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : decode_utf8(to_str(v))) {
    bool w = c == '_' || py_is_alpha(c) || py_is_digit(c);
    if (w && !in_word) ++words;
    in_word = w;
  }
  return Value(words);
}

struct NamedFilter {
  std::string_view name;
  FilterFn fn;
};

constexpr NamedFilter kFilters[] = {
    {"abs", f_abs},         {"attr", f_attr},       {"capitalize", f_capitalize},
    {"center", f_center},   {"d", f_default},       {"default", f_default},
    {"e", f_escape},        {"escape", f_escape},   {"forceescape", f_escape},
    {"float", f_float},     {"format", f_format},   {"indent", f_indent},
    {"int", f_int},         {"lower", f_lower},     {"replace", f_replace},
    {"round", f_round},     {"safe", f_safe},       {"string", f_string},
    {"title", f_title},     {"tojson", f_tojson},   {"trim", f_trim},
    {"upper", f_upper},     {"wordcount", f_wordcount},
};

constexpr std::string_view kUnsupportedFilters[] = {
    "filesizeformat", "groupby", "pprint", "random", "striptags", "truncate",
    "urlencode", "urlize", "wordwrap", "xmlattr"};

}  // namespace filters_detail

FilterFn find_filter(std::string_view name) {
  for (const auto& f : filters_detail::kFilters)
    if (f.name == name) return f.fn;
  return find_sequence_filter(name);
}

bool is_unsupported_jinja_filter(std::string_view name) {
  for (auto n : filters_detail::kUnsupportedFilters)
    if (n == name) return true;
  return false;
}

}  // namespace distillery::text::jinja
