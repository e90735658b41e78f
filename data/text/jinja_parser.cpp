#include "data/text/jinja_parser.h"

#include <initializer_list>

#include "data/text/jinja_expression_parser.h"

namespace distillery::text::jinja {
namespace parser_detail {

// Tags jinja2 has that chat templates do not need and this interpreter does not run.
constexpr std::string_view kUnsupportedTags[] = {
    "block", "extends", "include", "import", "from", "call", "autoescape", "trans", "do"};

class StatementParser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  Template run() {
    Template t;
    t.body = subparse({});
    return t;
  }

 private:
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
      auto s = stmt(StmtKind::Generation, line);
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

  int loop_depth_ = 0;
};

}  // namespace parser_detail

Template parse_template(std::string_view source) {
  return parser_detail::StatementParser(tokenize(source)).run();
}

}  // namespace distillery::text::jinja
