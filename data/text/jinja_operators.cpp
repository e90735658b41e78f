#include "data/text/jinja_operators.h"

#include <cmath>
#include <string>

#include "data/text/jinja_builtins.h"

namespace distillery::text::jinja {
namespace operators_detail {

[[noreturn]] void undefined_operand(const Value& v) {
  throw TemplateError(v.undefined_message());
}

[[noreturn]] void overflow() {
  throw TemplateError("integer overflow: template integers are 64-bit (Python's are unbounded)");
}

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
  throw TemplateError("unsupported operand type(s) for " + std::string(op) + ": '" + a.type_name() +
                      "' and '" + b.type_name() + "'");
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value repeat(const Value& seq, int64_t times) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value(std::move(out));
  }
  std::vector<Value> items;
  for (int64_t i = 0; i < times; ++i)
    items.insert(items.end(), seq.as_list().items.begin(), seq.as_list().items.end());
  return Value::list(std::move(items), seq.as_list().is_tuple);
}

bool is_sequence(const Value& v) { return v.is_string() || (v.is_list() && !v.as_list().is_iterator); }

}  // namespace operators_detail

using namespace operators_detail;

Value arithmetic(std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_operand(a);
  if (b.is_undefined()) undefined_operand(b);
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = numbers && (a.is_float() || b.is_float());
  if (op == "+") {
    if (numbers) {
      if (floats) return Value(a.as_double() + b.as_double());
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value(r);
    }
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.type_name() == b.type_name() && !a.as_list().is_iterator) {
      std::vector<Value> items = a.as_list().items;
      items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
      return Value::list(std::move(items), a.as_list().is_tuple);
    }
    if (a.is_string())
      throw TemplateError("can only concatenate str (not \"" + b.type_name() + "\") to str");
    if (a.is_list())
      throw TemplateError("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name());
    unsupported(op, a, b);
  }
  if (op == "-") {
    if (numbers) {
      if (floats) return Value(a.as_double() - b.as_double());
      int64_t r;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value(r);
    }
    unsupported(op, a, b);
  }
  if (op == "*") {
    if (numbers) {
      if (floats) return Value(a.as_double() * b.as_double());
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value(r);
    }
    if (is_sequence(a) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if (is_sequence(b) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
    unsupported(op, a, b);
  }
  if (op == "/") {
    if (!numbers) unsupported(op, a, b);
    if (b.as_double() == 0) throw TemplateError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!numbers) unsupported(op, a, b);
    if (b.as_double() == 0) throw TemplateError("integer division or modulo by zero");
    if (!floats) return Value(floor_div(a.as_int(), b.as_int()));
    return Value(std::floor(a.as_double() / b.as_double()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(percent_format(a.as_string(), b));
    if (!numbers) unsupported(op, a, b);
    if (b.as_double() == 0) throw TemplateError("integer division or modulo by zero");
    if (!floats) return Value(floor_mod(a.as_int(), b.as_int()));
    double r = std::fmod(a.as_double(), b.as_double());
    if (r != 0 && ((r < 0) != (b.as_double() < 0))) r += b.as_double();
    return Value(r);
  }
  if (op == "**") {
    if (!numbers) unsupported(op, a, b);
    if (!floats && b.as_int() >= 0) {
      int64_t result = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(result, base, &result)) overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value(result);
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  throw TemplateError("unknown operator '" + std::string(op) + "'");
}

Value negate(const Value& v) {
  if (v.is_undefined()) undefined_operand(v);
  if (v.is_float()) return Value(-v.as_double());
  if (v.is_int() || v.is_bool()) return Value(-v.as_int());
  throw TemplateError("bad operand type for unary -: '" + v.type_name() + "'");
}

Value unary_plus(const Value& v) {
  if (v.is_undefined()) undefined_operand(v);
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  throw TemplateError("bad operand type for unary +: '" + v.type_name() + "'");
}

}  // namespace distillery::text::jinja
