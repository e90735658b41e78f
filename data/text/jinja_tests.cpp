// jinja2's tests (`x is defined`, `x is string`, ...) and the global functions a chat
// template can call: jinja2's range/namespace/dict and transformers' raise_exception and
// strftime_now.
#include <cmath>
#include <ctime>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_text.h"

namespace distillery::text::jinja {
namespace tests_detail {

const Value& other(const CallArgs& args, const char* test) {
  const Value* v = args.get(0, "other");
  if (!v) throw TemplateError(std::string(test) + " test: missing argument");
  return *v;
}

bool t_boolean(const Value& v, CallArgs&) { return v.is_bool(); }
bool t_callable(const Value& v, CallArgs&) { return v.is_function(); }
bool t_defined(const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(const Value& v, CallArgs&) { return v.is_none(); }
bool t_true(const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_string(const Value& v, CallArgs&) { return v.is_string(); }
bool t_number(const Value& v, CallArgs&) { return v.is_number(); }
bool t_integer(const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(const Value& v, CallArgs&) { return v.is_float(); }
bool t_mapping(const Value& v, CallArgs&) { return v.is_dict(); }
bool t_escaped(const Value&, CallArgs&) { return false; }  // no Markup values: autoescape is off

// len(x) and x.__getitem__ both exist: str, list, tuple, dict, and jinja2's Undefined.
bool t_sequence(const Value& v, CallArgs&) {
  return v.is_string() || v.is_dict() || v.is_undefined() || (v.is_list() && !v.as_list().is_iterator);
}

bool t_iterable(const Value& v, CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }

int64_t modulo(const Value& v, int64_t d, const char* test) {
  if (!v.is_int() && !v.is_bool()) {
    if (v.is_float()) return static_cast<int64_t>(std::fmod(v.as_double(), static_cast<double>(d)) != 0);
    throw TemplateError(std::string(test) + " test needs a number, got " + v.type_name());
  }
  if (d == 0) throw TemplateError("integer division or modulo by zero");
  return v.as_int() % d;
}

bool t_even(const Value& v, CallArgs&) { return modulo(v, 2, "even") == 0; }
bool t_odd(const Value& v, CallArgs&) { return modulo(v, 2, "odd") != 0; }

bool t_divisibleby(const Value& v, CallArgs& args) {
  const Value& d = other(args, "divisibleby");
  if (!d.is_int()) throw TemplateError("divisibleby test needs an integer divisor");
  return modulo(v, d.as_int(), "divisibleby") == 0;
}

bool t_eq(const Value& v, CallArgs& a) { return equals(v, other(a, "eq")); }
bool t_ne(const Value& v, CallArgs& a) { return !equals(v, other(a, "ne")); }
bool t_lt(const Value& v, CallArgs& a) { return less_than(v, other(a, "lt")); }
bool t_gt(const Value& v, CallArgs& a) { return less_than(other(a, "gt"), v); }
bool t_le(const Value& v, CallArgs& a) { return !less_than(other(a, "le"), v); }
bool t_ge(const Value& v, CallArgs& a) { return !less_than(v, other(a, "ge")); }

bool t_in(const Value& v, CallArgs& args) {
  const Value* seq = args.get(0, "seq");
  if (!seq) throw TemplateError("in test: missing argument");
  return contains(*seq, v);
}

// Python's `is`: singletons and CPython's cached small ints compare by value, everything
// else by identity.
bool t_sameas(const Value& v, CallArgs& args) {
  const Value& o = other(args, "sameas");
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::None:
    case Value::Kind::Undefined: return v.is_none();
    case Value::Kind::Bool: return v.as_bool() == o.as_bool();
    case Value::Kind::Int: return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    case Value::Kind::String: return v.string_ptr() == o.string_ptr();
    case Value::Kind::List: return &v.as_list() == &o.as_list();
    case Value::Kind::Dict: return &v.as_dict() == &o.as_dict();
    case Value::Kind::Function: return &v.as_function() == &o.as_function();
    default: return false;
  }
}

bool t_lower(const Value& v, CallArgs&) {
  CallArgs none;
  return get_attr(Value(to_str(v)), "islower").as_function().call(none).truthy();
}

bool t_upper(const Value& v, CallArgs&) {
  CallArgs none;
  return get_attr(Value(to_str(v)), "isupper").as_function().call(none).truthy();
}

bool t_filter(const Value& v, CallArgs&) { return v.is_string() && find_filter(v.as_string()) != nullptr; }
bool t_test(const Value& v, CallArgs&) { return v.is_string() && find_test(v.as_string()) != nullptr; }

struct NamedTest {
  std::string_view name;
  TestFn fn;
};

constexpr NamedTest kTests[] = {
    {"!=", t_ne},           {"<", t_lt},           {"<=", t_le},
    {"==", t_eq},           {">", t_gt},           {">=", t_ge},
    {"boolean", t_boolean}, {"callable", t_callable}, {"defined", t_defined},
    {"divisibleby", t_divisibleby}, {"eq", t_eq},  {"equalto", t_eq},
    {"escaped", t_escaped}, {"even", t_even},      {"false", t_false},
    {"filter", t_filter},   {"float", t_float},    {"ge", t_ge},
    {"greaterthan", t_gt},  {"gt", t_gt},          {"in", t_in},
    {"integer", t_integer}, {"iterable", t_iterable}, {"le", t_le},
    {"lessthan", t_lt},     {"lower", t_lower},    {"lt", t_lt},
    {"mapping", t_mapping}, {"ne", t_ne},          {"none", t_none},
    {"number", t_number},   {"odd", t_odd},        {"sameas", t_sameas},
    {"sequence", t_sequence}, {"string", t_string}, {"test", t_test},
    {"true", t_true},       {"undefined", t_undefined}, {"upper", t_upper},
};

// dict(mapping_or_pairs, **kwargs), as Python builds it.
std::vector<std::pair<std::string, Value>> dict_entries(CallArgs& args, const char* function) {
  Dict d;
  if (args.positional.size() > 1)
    throw TemplateError(std::string(function) + " expected at most 1 positional argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict() || src.is_namespace()) {
      d.entries = src.as_dict().entries;
    } else {
      for (const Value& pair : iterate(src)) {
        if (!pair.is_list() || pair.as_list().items.size() != 2 || !pair.as_list().items[0].is_string())
          throw TemplateError(std::string(function) + ": expected (str, value) pairs");
        d.set(pair.as_list().items[0].as_string(), pair.as_list().items[1]);
      }
    }
  }
  for (auto& [k, v] : args.keyword) d.set(k, v);
  return std::move(d.entries);
}

Value g_range(CallArgs& args) {
  args.expect("range", 3, {});
  if (args.positional.empty()) throw TemplateError("range expected at least 1 argument, got 0");
  for (const Value& a : args.positional)
    if (!a.is_int() && !a.is_bool()) throw TemplateError("'" + a.type_name() + "' object cannot be interpreted as an integer");
  int64_t start = 0, stop, step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].as_int();
  } else {
    start = args.positional[0].as_int();
    stop = args.positional[1].as_int();
    if (args.positional.size() == 3) step = args.positional[2].as_int();
  }
  if (step == 0) throw TemplateError("range() arg 3 must not be zero");
  int64_t n = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                       : (start > stop ? (start - stop - step - 1) / -step : 0);
  if (n > 100000) throw TemplateError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.emplace_back(start + i * step);
  return Value::list(std::move(out));
}

Value g_namespace(CallArgs& args) {
  auto d = std::make_shared<Dict>();
  d->entries = dict_entries(args, "namespace");
  d->is_namespace = true;
  return Value(std::move(d));
}

Value g_dict(CallArgs& args) { return Value::dict(dict_entries(args, "dict")); }

Value g_raise_exception(CallArgs& args) {
  const Value* message = args.get(0, "message");
  throw RaisedError(message ? to_str(*message) : "");
}

// datetime.now().strftime(format): local time.
Value g_strftime_now(CallArgs& args) {
  const Value* format = args.get(0, "format");
  if (!format || !format->is_string()) throw TemplateError("strftime_now() argument must be str");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::string out(256 + format->as_string().size() * 8, '\0');
  size_t n = std::strftime(out.data(), out.size(), format->as_string().c_str(), &local);
  out.resize(n);
  return Value(std::move(out));
}

}  // namespace tests_detail

TestFn find_test(std::string_view name) {
  for (const auto& t : tests_detail::kTests)
    if (t.name == name) return t.fn;
  return nullptr;
}

bool is_unsupported_jinja_test(std::string_view) { return false; }  // every jinja2 test is here

Value find_global(std::string_view name) {
  using namespace tests_detail;
  if (name == "range") return Value::function("range", g_range);
  if (name == "namespace") return Value::function("namespace", g_namespace);
  if (name == "dict") return Value::function("dict", g_dict);
  if (name == "raise_exception") return Value::function("raise_exception", g_raise_exception);
  if (name == "strftime_now") return Value::function("strftime_now", g_strftime_now);
  if (name == "cycler" || name == "joiner" || name == "lipsum")
    throw TemplateError("unsupported global '" + std::string(name) + "'");
  return Value();
}

}  // namespace distillery::text::jinja
