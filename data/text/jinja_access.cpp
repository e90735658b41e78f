// Attribute and item access, and the Python methods templates call on str, dict and list
// (`content.split('</think>')[-1].lstrip('\n')`, `message.get('x')`), with the immutable
// sandbox's rules: no private attributes, no mutating methods.
#include <algorithm>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_text.h"

namespace distillery::text::jinja {
namespace access_detail {

constexpr std::string_view kStrMethods[] = {
    "capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum",
    "isalpha", "isascii", "isdigit", "islower", "isspace", "isupper", "join", "ljust", "lower",
    "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust",
    "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
    "title", "upper", "zfill"};
constexpr std::string_view kStrUnsupported[] = {
    "encode", "expandtabs", "format", "format_map", "isdecimal", "isidentifier", "isnumeric",
    "isprintable", "istitle", "maketrans", "translate"};
constexpr std::string_view kDictMethods[] = {"copy", "get", "items", "keys", "values"};
constexpr std::string_view kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update", "fromkeys"};
constexpr std::string_view kListMethods[] = {"copy", "count", "index"};
constexpr std::string_view kListMutators[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};

template <size_t N>
bool listed(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

const std::string* optional_string(const Value* v, const char* what) {
  if (!v || v->is_none()) return nullptr;
  if (!v->is_string()) throw TemplateError(std::string(what) + " must be str or None, not " + v->type_name());
  return &v->as_string();
}

int64_t int_arg(const Value* v, int64_t dflt, const char* what) {
  if (!v || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool()) throw TemplateError(std::string(what) + " must be an integer, not " + v->type_name());
  return v->as_int();
}

const std::string& str_arg(const CallArgs& args, size_t i, const char* name, const std::string& method) {
  const Value* v = args.get(i, name);
  if (!v) throw TemplateError(method + "() missing required argument '" + name + "'");
  if (!v->is_string()) throw TemplateError(method + "() argument must be str, not " + v->type_name());
  return v->as_string();
}

// The code points s[start:end] (Python's optional start/end arguments of find, startswith...).
std::string substring(const std::string& s, const CallArgs& args, size_t start_index) {
  const Value* start = args.get(start_index, "start");
  const Value* end = args.get(start_index + 1, "end");
  if ((!start || start->is_none()) && (!end || end->is_none())) return s;
  std::u32string u = decode_utf8(s);
  auto idx = slice_indices(static_cast<int64_t>(u.size()),
                           start && !start->is_none() ? std::optional<int64_t>(int_arg(start, 0, "start")) : std::nullopt,
                           end && !end->is_none() ? std::optional<int64_t>(int_arg(end, 0, "end")) : std::nullopt, 1);
  std::u32string out;
  for (int64_t i : idx) out += u[static_cast<size_t>(i)];
  return encode_utf8(out);
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

template <typename Pred>
Value all_chars(const std::string& s, Pred pred) {
  std::u32string u = decode_utf8(s);
  if (u.empty()) return Value(false);
  return Value(std::all_of(u.begin(), u.end(), pred));
}

std::string pad(const std::string& s, int64_t width, char32_t fill, int where /* -1 left, 0 center, 1 right */) {
  int64_t len = count_code_points(s);
  if (width <= len) return s;
  int64_t total = width - len;
  // Python's str.center puts the extra fill character on the right unless both are odd.
  int64_t left = where == 1 ? total : where == -1 ? 0 : total / 2 + (total & width & 1);
  std::string f;
  append_utf8(f, fill);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += f;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += f;
  return out;
}

char32_t fill_arg(const CallArgs& args) {
  const Value* f = args.get(1, "fillchar");
  if (!f) return ' ';
  if (!f->is_string() || count_code_points(f->as_string()) != 1)
    throw TemplateError("The fill character must be exactly one character long");
  return decode_utf8(f->as_string())[0];
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) throw TemplateError(std::string(prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " + a.type_name());
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list() && affix.as_list().is_tuple) {
    for (const Value& a : affix.as_list().items)
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

Value call_str_method(const std::string& s, const std::string& m, CallArgs& args) {
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    args.expect(m, 1, {});
    return Value(py_strip(s, optional_string(args.get(0, "chars"), "strip arg"), m != "rstrip", m != "lstrip"));
  }
  if (m == "split" || m == "rsplit") {
    args.expect(m, 2, {"sep", "maxsplit"});
    const std::string* sep = optional_string(args.get(0, "sep"), "sep");
    int64_t maxsplit = int_arg(args.get(1, "maxsplit"), -1, "maxsplit");
    return string_list(m == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
  }
  if (m == "splitlines") {
    args.expect(m, 1, {"keepends"});
    const Value* keep = args.get(0, "keepends");
    return string_list(py_splitlines(s, keep && keep->truthy()));
  }
  if (m == "startswith" || m == "endswith") {
    args.expect(m, 3, {});
    const Value* affix = args.get(0, "prefix");
    if (!affix) throw TemplateError(m + "() takes at least 1 argument (0 given)");
    return Value(affix_match(substring(s, args, 1), *affix, m == "startswith"));
  }
  if (m == "replace") {
    args.expect(m, 3, {"count"});
    return Value(py_replace(s, str_arg(args, 0, "old", m), str_arg(args, 1, "new", m),
                            int_arg(args.get(2, "count"), -1, "count")));
  }
  if (m == "upper") return Value(py_upper(s));
  if (m == "lower") return Value(py_lower(s));
  if (m == "casefold") return Value(py_replace(py_lower(s), "\xC3\x9F", "ss", -1));
  if (m == "title") return Value(py_title(s));
  if (m == "capitalize") return Value(py_capitalize(s));
  if (m == "swapcase") return Value(py_swapcase(s));
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex") {
    args.expect(m, 3, {});
    const std::string& sub = str_arg(args, 0, "sub", m);
    const Value* start = args.get(1, "start");
    int64_t offset = 0;
    if (start && !start->is_none()) {
      int64_t n = count_code_points(s), st = int_arg(start, 0, "start");
      offset = st < 0 ? std::max<int64_t>(0, st + n) : std::min(st, n);
    }
    int64_t pos = py_find(substring(s, args, 1), sub, m[0] == 'r');
    if (pos < 0 && (m == "index" || m == "rindex")) throw TemplateError("substring not found");
    return Value(pos < 0 ? pos : pos + offset);
  }
  if (m == "count") {
    args.expect(m, 3, {});
    return Value(py_count(substring(s, args, 1), str_arg(args, 0, "sub", m)));
  }
  if (m == "join") {
    args.expect(m, 1, {});
    const Value* seq = args.get(0, "iterable");
    if (!seq) throw TemplateError("join() takes exactly one argument (0 given)");
    std::string out;
    size_t i = 0;
    for (const Value& item : iterate(*seq)) {
      if (!item.is_string())
        throw TemplateError("sequence item " + std::to_string(i) + ": expected str instance, " + item.type_name() + " found");
      if (i++) out += s;
      out += item.as_string();
    }
    return Value(std::move(out));
  }
  if (m == "center" || m == "ljust" || m == "rjust") {
    args.expect(m, 2, {});
    int64_t width = int_arg(args.get(0, "width"), 0, "width");
    return Value(pad(s, width, fill_arg(args), m == "center" ? 0 : m == "ljust" ? -1 : 1));
  }
  if (m == "zfill") {
    int64_t width = int_arg(args.get(0, "width"), 0, "width");
    int64_t len = count_code_points(s);
    if (width <= len) return Value(s);
    size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') + s.substr(sign));
  }
  if (m == "partition" || m == "rpartition") {
    const std::string& sep = str_arg(args, 0, "sep", m);
    if (sep.empty()) throw TemplateError("empty separator");
    size_t hit = m == "partition" ? s.find(sep) : s.rfind(sep);
    if (hit == std::string::npos)
      return m == "partition" ? Value::list({Value(s), Value(""), Value("")}, true)
                              : Value::list({Value(""), Value(""), Value(s)}, true);
    return Value::list({Value(s.substr(0, hit)), Value(sep), Value(s.substr(hit + sep.size()))}, true);
  }
  if (m == "removeprefix" || m == "removesuffix") {
    const std::string& a = str_arg(args, 0, m == "removeprefix" ? "prefix" : "suffix", m);
    bool pre = m == "removeprefix";
    if (affix_match(s, Value(a), pre)) return Value(pre ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
    return Value(s);
  }
  if (m == "isalpha") return all_chars(s, py_is_alpha);
  if (m == "isdigit") return all_chars(s, py_is_digit);
  if (m == "isalnum") return all_chars(s, [](char32_t c) { return py_is_alpha(c) || py_is_digit(c); });
  if (m == "isspace") return all_chars(s, py_isspace);
  if (m == "isascii") return Value(is_ascii(s));
  if (m == "isupper" || m == "islower") {
    bool upper = m == "isupper", any_cased = false;
    for (char32_t c : decode_utf8(s)) {
      if ((upper && py_is_lower(c)) || (!upper && py_is_upper(c))) return Value(false);
      any_cased = any_cased || py_is_lower(c) || py_is_upper(c);
    }
    return Value(any_cased);
  }
  throw TemplateError("unsupported str method '" + m + "'");
}

Value call_dict_method(const Value& d, const std::string& m, CallArgs& args) {
  const Dict& dict = d.as_dict();
  if (m == "get") {
    args.expect(m, 2, {});
    const Value* key = args.get(0, "key");
    if (!key) throw TemplateError("get expected at least 1 argument, got 0");
    const Value* dflt = args.get(1, "default");
    const Value* found = key->is_string() ? dict.find(key->as_string()) : nullptr;
    return found ? *found : dflt ? *dflt : Value::none();
  }
  args.expect(m, 0, {});
  if (m == "copy") return Value::dict(dict.entries);
  std::vector<Value> out;
  for (const auto& [k, v] : dict.entries) {
    if (m == "keys") out.emplace_back(k);
    else if (m == "values") out.push_back(v);
    else out.push_back(Value::list({Value(k), v}, true));
  }
  return Value::list(std::move(out));
}

Value call_list_method(const Value& l, const std::string& m, CallArgs& args) {
  const auto& items = l.as_list().items;
  if (m == "copy") return Value::list(items, l.as_list().is_tuple);
  const Value* x = args.get(0, "value");
  if (!x) throw TemplateError(m + "() takes exactly one argument (0 given)");
  int64_t count = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!equals(items[i], *x)) continue;
    if (m == "index") return Value(static_cast<int64_t>(i));
    ++count;
  }
  if (m == "index") throw TemplateError(to_repr(*x) + " is not in list");
  return Value(count);
}

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined_because("access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe");
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined_because("'" + obj.type_name() + " object' has no attribute '" + name + "'");
}

}  // namespace access_detail

using namespace access_detail;

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_message());
  if (!name.empty() && name[0] == '_') return unsafe(obj, name);
  switch (obj.kind()) {
    case Value::Kind::String:
      if (listed(kStrMethods, name)) {
        auto s = obj.string_ptr();
        return Value::function(name, [s, name](CallArgs& args) { return call_str_method(*s, name, args); });
      }
      if (listed(kStrUnsupported, name)) throw TemplateError("unsupported str method '" + name + "'");
      return no_attribute(obj, name);
    case Value::Kind::Dict:
      if (obj.is_namespace()) {
        const Value* v = obj.as_dict().find(name);
        return v ? *v : no_attribute(obj, name);
      }
      if (listed(kDictMethods, name))
        return Value::function(name, [obj, name](CallArgs& args) { return call_dict_method(obj, name, args); });
      if (listed(kDictMutators, name)) return unsafe(obj, name);
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return no_attribute(obj, name);
    case Value::Kind::List:
      if (obj.as_list().is_iterator) return no_attribute(obj, name);
      if (listed(kListMethods, name))
        return Value::function(name, [obj, name](CallArgs& args) { return call_list_method(obj, name, args); });
      if (listed(kListMutators, name)) return unsafe(obj, name);
      return no_attribute(obj, name);
    default: return no_attribute(obj, name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_message());
  const bool int_key = key.is_int() || key.is_bool();
  if (obj.is_list() && !obj.as_list().is_iterator && int_key) {
    const auto& items = obj.as_list().items;
    int64_t i = key.as_int(), n = static_cast<int64_t>(items.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined_because(obj.type_name() + " index out of range");
    return items[static_cast<size_t>(i)];
  }
  if (obj.is_string() && int_key) {
    int64_t i = key.as_int();
    const std::string& s = obj.as_string();
    if (is_ascii(s)) {
      int64_t n = static_cast<int64_t>(s.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined_because("string index out of range");
      return Value(std::string(1, s[static_cast<size_t>(i)]));
    }
    std::u32string u = decode_utf8(s);
    int64_t n = static_cast<int64_t>(u.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined_because("string index out of range");
    std::string out;
    append_utf8(out, u[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined_because("'" + obj.type_name() + " object' has no element " + to_repr(key));
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_message());
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) throw TemplateError("slice indices must be integers or None");
    return v.as_int();
  };
  if (obj.is_list() && !obj.as_list().is_iterator) {
    const auto& items = obj.as_list().items;
    std::vector<Value> out;
    for (int64_t i : slice_indices(static_cast<int64_t>(items.size()), bound(start), bound(stop), bound(step)))
      out.push_back(items[static_cast<size_t>(i)]);
    return Value::list(std::move(out), obj.as_list().is_tuple);
  }
  if (obj.is_string()) {
    std::u32string u = decode_utf8(obj.as_string());
    std::u32string out;
    for (int64_t i : slice_indices(static_cast<int64_t>(u.size()), bound(start), bound(stop), bound(step)))
      out += u[static_cast<size_t>(i)];
    return Value(encode_utf8(out));
  }
  return Value::undefined_because("'" + obj.type_name() + "' object is not subscriptable");
}

}  // namespace distillery::text::jinja
