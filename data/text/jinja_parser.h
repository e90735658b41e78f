// Parser of the chat-template interpreter: tokens to the syntax tree, following jinja2's
// grammar and operator precedence. Filters and tests are resolved here, so a template that
// uses one this interpreter lacks fails when it is loaded, not halfway through a dataset.
#pragma once

#include <string_view>

#include "data/text/jinja_ast.h"

namespace distillery::text::jinja {

// Throws TemplateError with the line of the offending construct.
Template parse_template(std::string_view source);

}  // namespace distillery::text::jinja
