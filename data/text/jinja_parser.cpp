#include "data/text/jinja_parser.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_lexer.h"

namespace distillery::text::jinja {
namespace parser_detail {

// Tags jinja2 has that chat templates do not need and this interpreter does not run.
constexpr std::string_view kUnsupportedTags[] = {
    "block", "extends", "include", "import", "from", "call", "autoescape", "trans", "do"};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Template run() {
    Template t;
    t.body = subparse({});
    return t;
  }

 private:
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::Operator && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::Name && cur().text == name; }

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, cur().line); }

  std::string describe(const Token& t) const {
    switch (t.type) {
      case TokenType::End: return "end of template";
      case TokenType::BlockEnd: return "end of statement block";
      case TokenType::VarEnd: return "end of print statement";
      case TokenType::Data: return "template data";
      default: return "'" + t.text + "'";
    }
  }

  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
    next();
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name) fail("expected a name, got " + describe(cur()));
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) fail("expected end of statement block, got " + describe(cur()));
    next();
  }

  // Statements until one of `end_tags` opens a block (left unconsumed, at the tag name).
  Body subparse(std::initializer_list<const char*> end_tags) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::End) {
        if (end_tags.size() != 0)
          fail(std::string("unexpected end of template, expected '") + *end_tags.begin() + "'");
        return body;
      }
      if (t.type == TokenType::Data) {
        auto s = stmt(StmtKind::Text, t.line);
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == TokenType::VarBegin) {
        next();
        auto s = stmt(StmtKind::Output, t.line);
        s->expr = parse_tuple(false, true, {});
        if (cur().type != TokenType::VarEnd) fail("expected end of print statement, got " + describe(cur()));
        next();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::BlockBegin) {
        next();
        if (cur().type != TokenType::Name) fail("expected a tag name, got " + describe(cur()));
        for (const char* e : end_tags)
          if (cur().text == e) return body;
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Stmt> stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  // Consumes `{% end... %}` whose name the caller expects at the current position.
  void end_tag(const char* name) {
    if (!is_name(name)) fail(std::string("expected '") + name + "', got " + describe(cur()));
    next();
    expect_block_end();
  }

  std::unique_ptr<Stmt> parse_statement() {
    const std::string tag = cur().text;
    const int line = cur().line;
    next();
    if (tag == "if") return parse_if(line);
    if (tag == "for") return parse_for(line);
    if (tag == "set") return parse_set(line);
    if (tag == "macro") return parse_macro(line);
    if (tag == "with") return parse_with(line);
    if (tag == "filter") return parse_filter_block(line);
    if (tag == "print") {
      auto s = stmt(StmtKind::Output, line);
      s->expr = parse_tuple(false, true, {});
      expect_block_end();
      return s;
    }
    if (tag == "generation") {
      auto s = stmt(StmtKind::Scope, line);
      expect_block_end();
      s->body = subparse({"endgeneration"});
      end_tag("endgeneration");
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) throw TemplateError("'" + tag + "' outside of a loop", line);
      expect_block_end();
      return stmt(tag == "break" ? StmtKind::Break : StmtKind::Continue, line);
    }
    for (auto u : kUnsupportedTags)
      if (tag == u) throw TemplateError("unsupported tag '" + tag + "'", line);
    throw TemplateError("unknown tag '" + tag + "'", line);
  }

  std::unique_ptr<Stmt> parse_if(int line) {
    auto s = stmt(StmtKind::If, line);
    ExprPtr cond = parse_tuple(false, false, {});
    expect_block_end();
    while (true) {
      Body body = subparse({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(cond), std::move(body));
      std::string tag = cur().text;
      next();
      if (tag == "elif") {
        cond = parse_tuple(false, false, {});
        expect_block_end();
      } else if (tag == "else") {
        expect_block_end();
        s->branches.emplace_back(nullptr, subparse({"endif"}));
        end_tag("endif");
        return s;
      } else {
        expect_block_end();
        return s;
      }
    }
  }

  std::unique_ptr<Stmt> parse_for(int line) {
    auto s = stmt(StmtKind::For, line);
    s->target = parse_target(false, {"in"});
    if (!is_name("in")) fail("expected 'in', got " + describe(cur()));
    next();
    s->expr = parse_tuple(false, false, {"recursive"});
    if (is_name("if")) {
      next();
      s->condition = parse_expression(true);
    }
    if (is_name("recursive")) fail("unsupported recursive for-loop");
    expect_block_end();
    ++loop_depth_;
    s->body = subparse({"endfor", "else"});
    --loop_depth_;
    if (is_name("else")) {
      next();
      expect_block_end();
      s->else_body = subparse({"endfor"});
    }
    end_tag("endfor");
    return s;
  }

  std::unique_ptr<Stmt> parse_set(int line) {
    auto s = stmt(StmtKind::Set, line);
    s->target = parse_target(true, {});
    if (is_op("=")) {
      next();
      s->expr = parse_tuple(false, true, {});
      expect_block_end();
      return s;
    }
    s->kind = StmtKind::SetBlock;
    if (s->target.kind != Target::Kind::Name) fail("a block set assigns one name");
    if (is_op("|")) s->expr = parse_filters(nullptr, false);
    expect_block_end();
    s->body = subparse({"endset"});
    end_tag("endset");
    return s;
  }

  std::unique_ptr<Stmt> parse_macro(int line) {
    auto s = stmt(StmtKind::Macro, line);
    s->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      s->params.push_back(expect_name());
      if (is_op("=")) {
        next();
        s->defaults.push_back(parse_expression(true));
      } else {
        if (!s->defaults.empty() && s->defaults.back()) fail("non-default argument follows default argument");
        s->defaults.push_back(nullptr);
      }
    }
    next();
    expect_block_end();
    macro_usage_.emplace_back();
    int saved_depth = loop_depth_;
    loop_depth_ = 0;
    s->body = subparse({"endmacro"});
    loop_depth_ = saved_depth;
    s->uses_varargs = macro_usage_.back().first;
    s->uses_kwargs = macro_usage_.back().second;
    macro_usage_.pop_back();
    end_tag("endmacro");
    return s;
  }

  std::unique_ptr<Stmt> parse_with(int line) {
    auto s = stmt(StmtKind::With, line);
    while (cur().type != TokenType::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target t = parse_target(false, {});
      expect_op("=");
      s->assignments.emplace_back(std::move(t), parse_expression(true));
    }
    next();
    s->body = subparse({"endwith"});
    end_tag("endwith");
    return s;
  }

  std::unique_ptr<Stmt> parse_filter_block(int line) {
    auto s = stmt(StmtKind::FilterBlock, line);
    s->expr = parse_filters(nullptr, true);
    expect_block_end();
    s->body = subparse({"endfilter"});
    end_tag("endfilter");
    return s;
  }

  // Assignment targets: `name`, `a, b`, `(a, b)`, and with `allow_namespace` `ns.attr`.
  Target parse_target(bool allow_namespace, std::initializer_list<const char*> end_names) {
    if (allow_namespace && cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == ".") {
      Target t;
      t.kind = Target::Kind::NamespaceAttr;
      t.name = expect_name();
      next();
      t.attr = expect_name();
      return t;
    }
    std::vector<Target> items;
    bool tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!is_op(",")) break;
        next();
        tuple = true;
        bool at_end = cur().type == TokenType::BlockEnd || is_op("=") || is_op(")");
        for (const char* e : end_names) at_end = at_end || is_name(e);
        if (at_end) break;
      }
      items.push_back(parse_target_item());
    }
    if (!tuple) return std::move(items[0]);
    Target t;
    t.kind = Target::Kind::Tuple;
    t.items = std::move(items);
    return t;
  }

  Target parse_target_item() {
    if (is_op("(")) {
      next();
      Target t = parse_target(false, {});
      expect_op(")");
      return t;
    }
    Target t;
    t.name = expect_name();
    if (t.name == "true" || t.name == "false" || t.name == "none" || t.name == "True" ||
        t.name == "False" || t.name == "None")
      fail("cannot assign to '" + t.name + "'");
    return t;
  }

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  bool tuple_end(std::initializer_list<const char*> end_names) const {
    if (cur().type == TokenType::VarEnd || cur().type == TokenType::BlockEnd || cur().type == TokenType::End) return true;
    if (is_op(")")) return true;
    for (const char* e : end_names)
      if (is_name(e)) return true;
    return false;
  }

  ExprPtr parse_tuple(bool explicit_parentheses, bool with_condexpr,
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

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
    auto b = node(ExprKind::Binary, line);
    b->name = op;
    b->items.push_back(std::move(left));
    b->items.push_back(std::move(right));
    return b;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      int line = cur().line;
      next();
      left = binary("or", std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      int line = cur().line;
      next();
      left = binary("and", std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto n = node(ExprKind::Not, cur().line);
      next();
      n->items.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      int line = cur().line;
      next();
      left = binary("~", std::move(left), parse_math2(), line);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      int line = cur().line;
      next();
      left = binary("**", std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr literal(Value v, int line) {
    auto n = node(ExprKind::Literal, line);
    n->literal = std::move(v);
    return n;
  }

  ExprPtr parse_primary() {
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

  ExprPtr parse_list() {
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

  ExprPtr parse_dict() {
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

  ExprPtr parse_postfix(ExprPtr n) {
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

  ExprPtr parse_subscript(ExprPtr object) {
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
  ExprPtr parse_subscribed() {
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
  void parse_call_args(Expr& n) {
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

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprKind::Call, cur().line);
    c->items.push_back(std::move(callee));
    parse_call_args(*c);
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr n) {
    while (true) {
      if (is_op("|")) n = parse_filters(std::move(n), false);
      else if (is_name("is")) n = parse_test(std::move(n));
      else if (is_op("(")) n = parse_call(std::move(n));
      else return n;
    }
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    return name;
  }

  // `| f(args) | g ...`; with `start_inline` the first filter has no leading pipe.
  ExprPtr parse_filters(ExprPtr input, bool start_inline) {
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

  ExprPtr parse_test(ExprPtr input) {
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

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  std::vector<std::pair<bool, bool>> macro_usage_;  // per open macro: uses varargs, uses kwargs
};

}  // namespace parser_detail

Template parse_template(std::string_view source) {
  return parser_detail::Parser(tokenize(source)).run();
}

}  // namespace distillery::text::jinja
