// Syntax tree of a parsed chat template. Built once by the parser, then only read while
// rendering, so one tree serves any number of concurrent renders.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/text/jinja_value.h"

namespace distillery::text::jinja {

struct CallArgs;
using FilterFn = Value (*)(const Value& input, CallArgs& args);
using TestFn = bool (*)(const Value& input, CallArgs& args);

enum class ExprKind {
  Literal,   // literal
  Name,      // name
  List,      // [items...]
  Tuple,     // (items...)
  Dict,      // {items[0]: items[1], items[2]: items[3], ...}
  Getattr,   // items[0].name
  Getitem,   // items[0][items[1]]
  Slice,     // items[0][items[1]:items[2]:items[3]], absent parts null
  Call,      // items[0](items[1..], kwargs)
  Filter,    // items[0] | name(items[1..], kwargs); items[0] null inside {% filter %}
  Test,      // items[0] is [not] name(items[1..], kwargs)
  Not,       // not items[0]
  Negate,    // -items[0]
  Plus,      // +items[0]
  Binary,    // items[0] name items[1] for name in + - * / // % ** ~ and or
  Compare,   // items[0] ops[0] items[1] ops[1] items[2] ... (chained like Python)
  Condition, // items[0] if items[1] else items[2]; items[2] null: Undefined when false
};

struct Expr {
  ExprKind kind;
  int line = 0;
  std::string name;
  Value literal;
  std::vector<std::unique_ptr<Expr>> items;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
  FilterFn filter = nullptr;  // resolved at parse time, so an unknown filter fails early
  TestFn test = nullptr;
};
using ExprPtr = std::unique_ptr<Expr>;

// Left-hand side of set/for/with: a name, a tuple of targets, or `namespace.attribute`.
struct Target {
  enum class Kind { Name, Tuple, NamespaceAttr } kind = Kind::Name;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

enum class StmtKind {
  Text,         // text
  Output,       // {{ expr }}
  If,           // branches: (condition, body), condition null for else
  For,          // for target in expr [if condition] body [else else_body]
  Set,          // set target = expr
  SetBlock,     // set target [| filters in expr] body endset
  Macro,        // macro name(params=defaults) body
  With,         // with assignments body
  FilterBlock,  // filter expr(chain with null innermost input) body
  Generation,   // {% generation %} body {% endgeneration %}: rendered in place, its span recorded
  Break,
  Continue,
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  Body body;
  Body else_body;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::pair<Target, ExprPtr>> assignments;
  // Macro
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null when required
  bool uses_varargs = false;
  bool uses_kwargs = false;
};

struct Template {
  Body body;
};

}  // namespace distillery::text::jinja
