// Python's arithmetic operators on template values: `+` concatenates strings and lists,
// `/` always gives a float, `//` and `%` floor like Python, `str % args` formats, and an
// Undefined operand raises as jinja2's default Undefined does.
#pragma once

#include <string_view>

#include "data/text/jinja_value.h"

namespace distillery::text::jinja {

// op is one of + - * / // % **.
Value arithmetic(std::string_view op, const Value& a, const Value& b);
Value negate(const Value& v);
Value unary_plus(const Value& v);

}  // namespace distillery::text::jinja
