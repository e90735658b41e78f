// Expression half of the chat-template parser: a cursor over the tokens and jinja2's
// expression grammar, from conditional expressions down to literals, with jinja2's operator
// precedence (filters and tests bind tighter than arithmetic, `**` is left-associative, ...).
// The statement parser (jinja_parser.cpp) extends it.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "data/text/jinja_ast.h"
#include "data/text/jinja_lexer.h"

namespace distillery::text::jinja {

class ExpressionParser {
 public:
  explicit ExpressionParser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

 protected:
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::Operator && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::Name && cur().text == name; }
  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, cur().line); }
  std::string describe(const Token& t) const;
  void expect_op(const char* op);
  std::string expect_name();
  void expect_block_end();

  // Comma-separated expressions, a tuple when there is a comma. Ends at a tag end, `)` or
  // one of `end_names`.
  ExprPtr parse_tuple(bool explicit_parentheses, bool with_condexpr, std::initializer_list<const char*> end_names);
  ExprPtr parse_expression(bool with_condexpr);
  // `| f(args) | g ...`; with `start_inline` the first filter has no leading pipe. `input` is
  // null for {% filter %} blocks and {% set x | f %}.
  ExprPtr parse_filters(ExprPtr input, bool start_inline);

  // Per open {% macro %}: whether its body reads `varargs` / `kwargs`.
  std::vector<std::pair<bool, bool>> macro_usage_;

 private:
  ExprPtr node(ExprKind kind, int line);
  ExprPtr literal(Value v, int line);
  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line);
  bool tuple_end(std::initializer_list<const char*> end_names) const;
  ExprPtr parse_condexpr();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr n);
  ExprPtr parse_subscript(ExprPtr object);
  ExprPtr parse_subscribed();
  void parse_call_args(Expr& n);
  ExprPtr parse_call(ExprPtr callee);
  ExprPtr parse_filter_expr(ExprPtr n);
  ExprPtr parse_test(ExprPtr input);
  std::string dotted_name();

  std::vector<Token> toks_;
  size_t pos_ = 0;
};

}  // namespace distillery::text::jinja
