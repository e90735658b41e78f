#include "data/text/jinja_value.h"

#include <cmath>

#include "data/text/jinja_text.h"

namespace distillery::text::jinja {

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
  const Value* by_keyword = nullptr;
  for (const auto& [k, v] : keyword)
    if (k == name) by_keyword = &v;
  if (index < positional.size()) {
    if (by_keyword) throw TemplateError("got multiple values for argument '" + std::string(name) + "'");
    return &positional[index];
  }
  return by_keyword;
}

void CallArgs::expect(std::string_view function, size_t max_positional,
                      std::initializer_list<std::string_view> allowed) const {
  if (positional.size() > max_positional)
    throw TemplateError(std::string(function) + "() takes at most " + std::to_string(max_positional) +
                        " positional arguments (" + std::to_string(positional.size()) + " given)");
  for (const auto& kw : keyword) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == kw.first;
    if (!ok)
      throw TemplateError(std::string(function) + "() got an unexpected keyword argument '" + kw.first + "'");
  }
}

Value Value::undefined(const std::string& name) { return undefined_because("'" + name + "' is undefined"); }

Value Value::undefined_because(std::string message) {
  return Value(UndefinedTag{std::make_shared<const std::string>(std::move(message))});
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  l->is_tuple = is_tuple;
  return Value(std::shared_ptr<const List>(std::move(l)));
}

Value Value::iterator(std::vector<Value> items) {
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  l->is_iterator = true;
  return Value(std::shared_ptr<const List>(std::move(l)));
}

Value Value::dict(std::vector<std::pair<std::string, Value>> entries) {
  auto d = std::make_shared<Dict>();
  d->entries = std::move(entries);
  return Value(std::move(d));
}

Value Value::function(std::string name, std::function<Value(CallArgs&)> call) {
  return Value(std::make_shared<const Function>(Function{std::move(name), std::move(call)}));
}

int64_t Value::as_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  return std::get<int64_t>(data_);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(data_);
  return static_cast<double>(as_int());
}

const std::string& Value::undefined_message() const {
  static const std::string unnamed = "value is undefined";
  const auto& message = std::get<UndefinedTag>(data_).message;
  return message ? *message : unnamed;
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return as_bool();
    case Kind::Int: return as_int() != 0;
    case Kind::Float: return as_double() != 0.0;
    case Kind::String: return !as_string().empty();
    case Kind::List: return as_list().is_iterator || !as_list().items.empty();
    case Kind::Dict: return is_namespace() || !as_dict().entries.empty();
    case Kind::Function: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return as_list().is_iterator ? "generator" : as_list().is_tuple ? "tuple" : "list";
    case Kind::Dict: return is_namespace() ? "Namespace" : "dict";
    case Kind::Function: return "function";
  }
  return "object";
}

namespace value_detail {

std::string container_repr(const Value& v) {
  std::string out;
  if (v.is_list()) {
    const List& l = v.as_list();
    if (l.is_iterator) return "<generator object>";
    out += l.is_tuple ? '(' : '[';
    for (size_t i = 0; i < l.items.size(); ++i) {
      if (i) out += ", ";
      out += to_repr(l.items[i]);
    }
    if (l.is_tuple && l.items.size() == 1) out += ',';
    out += l.is_tuple ? ')' : ']';
    return out;
  }
  const Dict& d = v.as_dict();
  out += d.is_namespace ? "<Namespace {" : "{";
  bool first = true;
  for (const auto& [k, item] : d.entries) {
    if (!first) out += ", ";
    first = false;
    out += py_repr_string(k) + ": " + to_repr(item);
  }
  out += d.is_namespace ? "}>" : "}";
  return out;
}

}  // namespace value_detail

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "";
    case Value::Kind::String: return v.as_string();
    default: return to_repr(v);
  }
}

std::string to_repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "Undefined";
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return v.as_bool() ? "True" : "False";
    case Value::Kind::Int: return std::to_string(v.as_int());
    case Value::Kind::Float: return py_float_repr(v.as_double());
    case Value::Kind::String: return py_repr_string(v.as_string());
    case Value::Kind::List:
    case Value::Kind::Dict: return value_detail::container_repr(v);
    case Value::Kind::Function: return "<function " + v.as_function().name + ">";
  }
  return "";
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return true;
    case Value::Kind::String: return a.as_string() == b.as_string();
    case Value::Kind::List: {
      const List& x = a.as_list();
      const List& y = b.as_list();
      if (x.is_iterator || y.is_iterator) return &x == &y;
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i])) return false;
      return true;
    }
    case Value::Kind::Dict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.is_namespace || y.is_namespace) return &x == &y;
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, item] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !equals(item, *other)) return false;
      }
      return true;
    }
    case Value::Kind::Function: return &a.as_function() == &b.as_function();
    default: return false;
  }
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined())
    throw TemplateError((a.is_undefined() ? a : b).undefined_message());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 byte order == code point order
  if (a.is_list() && b.is_list() && a.type_name() == b.type_name() && !a.as_list().is_iterator) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw TemplateError("'<' not supported between instances of '" + a.type_name() + "' and '" +
                      b.type_name() + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;
    case Value::Kind::String:
      if (!item.is_string())
        throw TemplateError("'in <string>' requires string as left operand, not " + item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& x : container.as_list().items)
        if (equals(x, item)) return true;
      return false;
    case Value::Kind::Dict:
      if (container.is_namespace()) break;
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default: break;
  }
  throw TemplateError("argument of type '" + container.type_name() + "' is not iterable");
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return v.as_list().items;
    case Value::Kind::String: {
      std::vector<Value> out;
      for (char32_t c : decode_utf8(v.as_string())) {
        std::string s;
        append_utf8(s, c);
        out.emplace_back(std::move(s));
      }
      return out;
    }
    case Value::Kind::Dict:
      if (!v.is_namespace()) {
        std::vector<Value> out;
        for (const auto& [k, item] : v.as_dict().entries) out.emplace_back(k);
        return out;
      }
      break;
    default: break;
  }
  throw TemplateError("'" + v.type_name() + "' object is not iterable");
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::String: return count_code_points(v.as_string());
    case Value::Kind::List:
      if (v.as_list().is_iterator) break;
      return static_cast<int64_t>(v.as_list().items.size());
    case Value::Kind::Dict:
      if (!v.is_namespace()) return static_cast<int64_t>(v.as_dict().entries.size());
      break;
    default: break;
  }
  throw TemplateError("object of type '" + v.type_name() + "' has no len()");
}

}  // namespace distillery::text::jinja
