// What a chat template can reach besides its context: jinja2's filters and tests, Python's
// str/dict/list methods (through attribute access, as the sandbox allows them), the globals
// transformers provides (raise_exception, strftime_now) plus jinja2's range, namespace and
// dict, and Python's %-formatting.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "data/text/jinja_ast.h"
#include "data/text/jinja_value.h"

namespace distillery::text::jinja {

// raise_exception('...') from the template: the message is the template author's, shown as is.
class RaisedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// The filter / test called `name`, or nullptr for a name this interpreter does not have (the
// caller reports it with the template line; see is_unsupported_jinja_*).
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// True for names jinja2 knows but this interpreter does not implement, so the error can say
// "unsupported" rather than "unknown".
bool is_unsupported_jinja_filter(std::string_view name);
bool is_unsupported_jinja_test(std::string_view name);

// `obj.name` as jinja2's sandbox resolves it: Python attribute (bound method) first, then
// item. Undefined input throws (jinja2's default Undefined), a missing attribute is Undefined.
Value get_attr(const Value& obj, const std::string& name);
// `obj[key]`: item first, then attribute when key is a string.
Value get_item(const Value& obj, const Value& key);
// `obj[start:stop:step]`.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// A global function by name (range, namespace, dict, raise_exception, strftime_now), or
// Undefined. jinja2's cycler, joiner and lipsum, which no model's chat template uses, are a
// TemplateError naming them rather than Undefined.
Value find_global(std::string_view name);

// Python's `format % args` for str (the `%` operator and the `format` filter).
std::string percent_format(const std::string& format, const Value& args);

}  // namespace distillery::text::jinja
