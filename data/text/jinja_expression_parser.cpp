#include "data/text/jinja_expression_parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "data/text/jinja_builtins.h"

namespace distillery::text::jinja {

std::string ExpressionParser::describe(const Token& t) const {
  switch (t.type) {
    case TokenType::End: return "end of template";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::VarEnd: return "end of print statement";
    case TokenType::Data: return "template data";
    default: return "'" + t.text + "'";
  }
}

void ExpressionParser::expect_op(const char* op) {
  if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  next();
}

std::string ExpressionParser::expect_name() {
  if (cur().type != TokenType::Name) fail("expected a name, got " + describe(cur()));
  std::string n = cur().text;
  next();
  return n;
}

void ExpressionParser::expect_block_end() {
  if (cur().type != TokenType::BlockEnd) fail("expected end of statement block, got " + describe(cur()));
  next();
}

ExprPtr ExpressionParser::node(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

bool ExpressionParser::tuple_end(std::initializer_list<const char*> end_names) const {
  if (cur().type == TokenType::VarEnd || cur().type == TokenType::BlockEnd || cur().type == TokenType::End) return true;
  if (is_op(")")) return true;
  for (const char* e : end_names)
    if (is_name(e)) return true;
  return false;
}

ExprPtr ExpressionParser::parse_tuple(bool explicit_parentheses, bool with_condexpr,
                                      std::initializer_list<const char*> end_names) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (tuple_end(end_names)) break;
    items.push_back(parse_expression(with_condexpr));
    if (is_op(",")) is_tuple = true;
    else break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parentheses) fail("expected an expression, got " + describe(cur()));
  }
  auto t = node(ExprKind::Tuple, line);
  t->items = std::move(items);
  return t;
}

ExprPtr ExpressionParser::parse_expression(bool with_condexpr) {
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr ExpressionParser::parse_condexpr() {
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    int line = cur().line;
    next();
    auto c = node(ExprKind::Condition, line);
    c->items.push_back(std::move(expr));
    c->items.push_back(parse_or());
    if (is_name("else")) {
      next();
      c->items.push_back(parse_condexpr());
    } else {
      c->items.push_back(nullptr);
    }
    expr = std::move(c);
  }
  return expr;
}

ExprPtr ExpressionParser::binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
  auto b = node(ExprKind::Binary, line);
  b->name = op;
  b->items.push_back(std::move(left));
  b->items.push_back(std::move(right));
  return b;
}

ExprPtr ExpressionParser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    int line = cur().line;
    next();
    left = binary("or", std::move(left), parse_and(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    int line = cur().line;
    next();
    left = binary("and", std::move(left), parse_not(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_not() {
  if (is_name("not")) {
    auto n = node(ExprKind::Not, cur().line);
    next();
    n->items.push_back(parse_not());
    return n;
  }
  return parse_compare();
}

ExprPtr ExpressionParser::parse_compare() {
  int line = cur().line;
  ExprPtr expr = parse_math1();
  ExprPtr cmp;
  while (true) {
    std::string op;
    if (cur().type == TokenType::Operator &&
        (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
         cur().text == ">" || cur().text == ">=")) {
      op = cur().text;
      next();
    } else if (is_name("in")) {
      op = "in";
      next();
    } else if (is_name("not") && peek().type == TokenType::Name && peek().text == "in") {
      op = "not in";
      next();
      next();
    } else {
      break;
    }
    if (!cmp) {
      cmp = node(ExprKind::Compare, line);
      cmp->items.push_back(std::move(expr));
    }
    cmp->ops.push_back(op);
    cmp->items.push_back(parse_math1());
  }
  return cmp ? std::move(cmp) : std::move(expr);
}

ExprPtr ExpressionParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    std::string op = cur().text;
    int line = cur().line;
    next();
    left = binary(op, std::move(left), parse_concat(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    int line = cur().line;
    next();
    left = binary("~", std::move(left), parse_math2(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    std::string op = cur().text;
    int line = cur().line;
    next();
    left = binary(op, std::move(left), parse_pow(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    int line = cur().line;
    next();
    left = binary("**", std::move(left), parse_unary(true), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_unary(bool with_filter) {
  ExprPtr n;
  if (is_op("-") || is_op("+")) {
    n = node(is_op("-") ? ExprKind::Negate : ExprKind::Plus, cur().line);
    next();
    n->items.push_back(parse_unary(false));
  } else {
    n = parse_primary();
  }
  n = parse_postfix(std::move(n));
  if (with_filter) n = parse_filter_expr(std::move(n));
  return n;
}

ExprPtr ExpressionParser::literal(Value v, int line) {
  auto n = node(ExprKind::Literal, line);
  n->literal = std::move(v);
  return n;
}

ExprPtr ExpressionParser::parse_primary() {
  const Token& t = cur();
  int line = t.line;
  switch (t.type) {
    case TokenType::Name: {
      std::string name = t.text;
      next();
      if (name == "true" || name == "True") return literal(Value(true), line);
      if (name == "false" || name == "False") return literal(Value(false), line);
      if (name == "none" || name == "None") return literal(Value::none(), line);
      if (name == "varargs" || name == "kwargs")
        for (auto& usage : macro_usage_) (name == "varargs" ? usage.first : usage.second) = true;
      auto n = node(ExprKind::Name, line);
      n->name = std::move(name);
      return n;
    }
    case TokenType::String: {
      std::string s;
      while (cur().type == TokenType::String) {
        s += cur().text;
        next();
      }
      return literal(Value(std::move(s)), line);
    }
    case TokenType::Integer: {
      errno = 0;
      long long v = std::strtoll(t.text.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("integer literal out of range: " + t.text);
      next();
      return literal(Value(static_cast<int64_t>(v)), line);
    }
    case TokenType::Float: {
      double v = std::strtod(t.text.c_str(), nullptr);
      next();
      return literal(Value(v), line);
    }
    case TokenType::Operator:
      if (t.text == "(") {
        next();
        ExprPtr e = parse_tuple(true, true, {});
        expect_op(")");
        return e;
      }
      if (t.text == "[") return parse_list();
      if (t.text == "{") return parse_dict();
      break;
    default: break;
  }
  fail("unexpected " + describe(t));
}

ExprPtr ExpressionParser::parse_list() {
  auto n = node(ExprKind::List, cur().line);
  expect_op("[");
  while (!is_op("]")) {
    if (!n->items.empty()) expect_op(",");
    if (is_op("]")) break;
    n->items.push_back(parse_expression(true));
  }
  next();
  return n;
}

ExprPtr ExpressionParser::parse_dict() {
  auto n = node(ExprKind::Dict, cur().line);
  expect_op("{");
  while (!is_op("}")) {
    if (!n->items.empty()) expect_op(",");
    if (is_op("}")) break;
    n->items.push_back(parse_expression(true));
    expect_op(":");
    n->items.push_back(parse_expression(true));
  }
  next();
  return n;
}

ExprPtr ExpressionParser::parse_postfix(ExprPtr n) {
  while (true) {
    if (is_op(".")) {
      int line = cur().line;
      next();
      if (cur().type == TokenType::Name) {
        auto g = node(ExprKind::Getattr, line);
        g->name = cur().text;
        g->items.push_back(std::move(n));
        n = std::move(g);
      } else if (cur().type == TokenType::Integer) {
        auto g = node(ExprKind::Getitem, line);
        g->items.push_back(std::move(n));
        g->items.push_back(literal(Value(static_cast<int64_t>(std::strtoll(cur().text.c_str(), nullptr, 10))), line));
        n = std::move(g);
      } else {
        fail("expected a name after '.', got " + describe(cur()));
      }
      next();
    } else if (is_op("[")) {
      n = parse_subscript(std::move(n));
    } else if (is_op("(")) {
      n = parse_call(std::move(n));
    } else {
      return n;
    }
  }
}

ExprPtr ExpressionParser::parse_subscript(ExprPtr object) {
  int line = cur().line;
  next();
  std::vector<ExprPtr> parts;  // one per comma-separated subscript
  while (!is_op("]")) {
    if (!parts.empty()) expect_op(",");
    parts.push_back(parse_subscribed());
  }
  next();
  if (parts.empty()) throw TemplateError("expected a subscript", line);
  if (parts.size() == 1 && parts[0]->kind == ExprKind::Slice) {
    parts[0]->items[0] = std::move(object);
    return std::move(parts[0]);
  }
  for (const auto& p : parts)
    if (p->kind == ExprKind::Slice) throw TemplateError("unsupported multi-dimensional slice", line);
  auto g = node(ExprKind::Getitem, line);
  g->items.push_back(std::move(object));
  if (parts.size() == 1) {
    g->items.push_back(std::move(parts[0]));
  } else {
    auto t = node(ExprKind::Tuple, line);
    t->items = std::move(parts);
    g->items.push_back(std::move(t));
  }
  return g;
}

// One subscript: an expression, or a slice whose items[0] the caller fills with the object.
ExprPtr ExpressionParser::parse_subscribed() {
  int line = cur().line;
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression(true);
    if (!is_op(":")) return start;
  }
  next();
  auto s = node(ExprKind::Slice, line);
  s->items.push_back(nullptr);
  s->items.push_back(std::move(start));
  s->items.push_back(is_op(":") || is_op("]") || is_op(",") ? nullptr : parse_expression(true));
  if (is_op(":")) {
    next();
    s->items.push_back(is_op("]") || is_op(",") ? nullptr : parse_expression(true));
  } else {
    s->items.push_back(nullptr);
  }
  return s;
}

// `(args)`: positional into n->items (after the callee or filter input), keywords into kwargs.
void ExpressionParser::parse_call_args(Expr& n) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) fail("unsupported *args/**kwargs in a call");
    if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == "=") {
      std::string key = cur().text;
      next();
      next();
      n.kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!n.kwargs.empty()) fail("positional argument follows keyword argument");
      n.items.push_back(parse_expression(true));
    }
  }
  next();
}

ExprPtr ExpressionParser::parse_call(ExprPtr callee) {
  auto c = node(ExprKind::Call, cur().line);
  c->items.push_back(std::move(callee));
  parse_call_args(*c);
  return c;
}

ExprPtr ExpressionParser::parse_filter_expr(ExprPtr n) {
  while (true) {
    if (is_op("|")) n = parse_filters(std::move(n), false);
    else if (is_name("is")) n = parse_test(std::move(n));
    else if (is_op("(")) n = parse_call(std::move(n));
    else return n;
  }
}

std::string ExpressionParser::dotted_name() {
  std::string name = expect_name();
  while (is_op(".")) {
    next();
    name += "." + expect_name();
  }
  return name;
}

// `| f(args) | g ...`; with `start_inline` the first filter has no leading pipe.
ExprPtr ExpressionParser::parse_filters(ExprPtr input, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    start_inline = false;
    auto f = node(ExprKind::Filter, cur().line);
    f->name = dotted_name();
    f->filter = find_filter(f->name);
    if (!f->filter) {
      if (is_unsupported_jinja_filter(f->name)) throw TemplateError("unsupported filter '" + f->name + "'", f->line);
      throw TemplateError("unknown filter '" + f->name + "'", f->line);
    }
    f->items.push_back(std::move(input));
    if (is_op("(")) parse_call_args(*f);
    input = std::move(f);
  }
  return input;
}

ExprPtr ExpressionParser::parse_test(ExprPtr input) {
  auto t = node(ExprKind::Test, cur().line);
  next();
  if (is_name("not")) {
    t->negated = true;
    next();
  }
  t->name = dotted_name();
  t->test = find_test(t->name);
  if (!t->test) {
    if (is_unsupported_jinja_test(t->name)) throw TemplateError("unsupported test '" + t->name + "'", t->line);
    throw TemplateError("unknown test '" + t->name + "'", t->line);
  }
  t->items.push_back(std::move(input));
  if (is_op("(")) {
    parse_call_args(*t);
  } else {
    const Token& c = cur();
    bool starts_arg = c.type == TokenType::Name || c.type == TokenType::String || c.type == TokenType::Integer ||
                      c.type == TokenType::Float || is_op("(") || is_op("[") || is_op("{");
    if (starts_arg && !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with is");
      t->items.push_back(parse_postfix(parse_primary()));
    }
  }
  return t;
}

}  // namespace distillery::text::jinja
