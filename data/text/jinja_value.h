// The value model of the chat-template interpreter: Python's objects as jinja2 sees them.
//
// Chat templates are written against Python semantics (str methods, dict order, None vs
// Undefined, True printing as "True"), so a Value is a small tagged union that mirrors the few
// Python types a template can meet: jinja2's Undefined, None, bool, int, float, str, list/tuple,
// dict (insertion-ordered, like Python's), jinja2's Namespace and callables. Containers are
// shared and immutable once built (transformers renders in an ImmutableSandboxedEnvironment);
// only a namespace's attributes change, through `{% set ns.x = ... %}`.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace distillery::text::jinja {

// A failure while parsing or rendering. `line` is the template line (1-based), filled in by the
// innermost node that knows it; ChatTemplate turns it into a UserError naming the origin.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message, int line = 0)
      : std::runtime_error(message), line(line) {}
  int line;
};

class Value;

struct List {
  std::vector<Value> items;
  bool is_tuple = false;  // prints as (1, 2) instead of [1, 2]
  // What jinja2's map/select/unique/... filters return: a Python generator, which is truthy
  // even when empty and has no len().
  bool is_iterator = false;
};

// Insertion-ordered string-keyed map, as Python dicts iterate. Also the storage of a
// Namespace, whose attributes are the only mutable state a template owns.
struct Dict {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Python-style parameter binding: the argument named `name` at position `index`, or nullptr
  // when absent. Throws when given both ways.
  const Value* get(size_t index, std::string_view name) const;
  // Throws TemplateError when more than `max_positional` positional arguments or a keyword not
  // in `allowed` was passed: the TypeError Python would raise.
  void expect(std::string_view function, size_t max_positional,
              std::initializer_list<std::string_view> allowed) const;
};

struct Function {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

struct UndefinedTag {
  std::shared_ptr<const std::string> message;  // why it is undefined, raised when it is misused
};
struct NoneTag {};

class Value {
 public:
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() : data_(UndefinedTag{}) {}
  // Undefined whose misuse raises "'name' is undefined".
  static Value undefined(const std::string& name);
  static Value undefined_because(std::string message);
  static Value none() { return Value(NoneTag{}); }
  Value(bool b) : data_(b) {}
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(const char* s) : data_(std::make_shared<const std::string>(s)) {}
  Value(std::string s) : data_(std::make_shared<const std::string>(std::move(s))) {}
  Value(std::shared_ptr<const std::string> s) : data_(std::move(s)) {}
  Value(std::shared_ptr<const List> l) : data_(std::move(l)) {}
  Value(std::shared_ptr<Dict> d) : data_(std::move(d)) {}
  Value(std::shared_ptr<const Function> f) : data_(std::move(f)) {}
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value iterator(std::vector<Value> items);
  static Value dict(std::vector<std::pair<std::string, Value>> entries);
  static Value function(std::string name, std::function<Value(CallArgs&)> call);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::String; }
  bool is_list() const { return kind() == Kind::List; }
  bool is_dict() const { return kind() == Kind::Dict && !std::get<std::shared_ptr<Dict>>(data_)->is_namespace; }
  bool is_namespace() const { return kind() == Kind::Dict && std::get<std::shared_ptr<Dict>>(data_)->is_namespace; }
  bool is_function() const { return kind() == Kind::Function; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;    // int or bool
  double as_double() const;  // int, bool or float
  const std::string& as_string() const { return *std::get<std::shared_ptr<const std::string>>(data_); }
  const std::shared_ptr<const std::string>& string_ptr() const { return std::get<std::shared_ptr<const std::string>>(data_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(data_); }
  Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(data_); }
  const std::string& undefined_message() const;

  // Python's bool(x); Undefined is falsy.
  bool truthy() const;
  // Python's type name, for error messages ("str", "int", "NoneType", ...).
  std::string type_name() const;

 private:
  Value(NoneTag t) : data_(t) {}
  Value(UndefinedTag t) : data_(std::move(t)) {}

  std::variant<UndefinedTag, NoneTag, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const List>, std::shared_ptr<Dict>, std::shared_ptr<const Function>>
      data_;
};

// str(x) as jinja2 prints it: Undefined -> "", None -> "None", True -> "True", floats in
// Python's shortest repr, containers in Python's repr.
std::string to_str(const Value& v);
// repr(x): strings quoted and escaped the way Python does.
std::string to_repr(const Value& v);

// Python's ==, with jinja2's Undefined == Undefined. Numbers compare by value across
// int/float/bool.
bool equals(const Value& a, const Value& b);
// Python's <; throws TemplateError for unorderable types (TypeError in Python).
bool less_than(const Value& a, const Value& b);
// Python's `item in container` for str (substring), list/tuple, dict (keys) and Undefined.
bool contains(const Value& container, const Value& item);
// The items a for-loop visits: list elements, dict keys, string characters, nothing for
// Undefined. Throws for non-iterables.
std::vector<Value> iterate(const Value& v);
// len(x): code points for strings, 0 for Undefined.
int64_t length(const Value& v);

}  // namespace distillery::text::jinja
