// Renders a parsed chat template against one context. One Interpreter per render call: it
// owns the call's mutable state (scopes, namespaces, macro recursion depth), while the syntax
// tree it walks is shared and read-only.
//
// Scoping follows jinja2: each for-loop iteration, macro call and with/filter/set block gets a
// fresh scope whose assignments vanish when it ends (hence namespace() in templates that
// carry state out of a loop); `if` blocks share their enclosing scope; names resolve through
// the scopes, then the context, then the globals.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/text/jinja_ast.h"
#include "data/text/jinja_value.h"

namespace distillery::text::jinja {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  Value* find(std::string_view name);
  void set(const std::string& name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  // `context` must be a dict Value (the render variables).
  explicit Interpreter(Value context);

  std::string render(const Template& tmpl);

  // [begin, end) byte offsets, in the string the last render() returned, of each
  // {% generation %} block rendered directly into the output (transformers'
  // return_assistant_tokens_mask). Blocks rendered inside a macro call, a set block or a filter
  // block have no place in the output yet: they set generation_nested() instead.
  const std::vector<std::pair<size_t, size_t>>& generation_spans() const { return generation_spans_; }
  bool generation_nested() const { return generation_nested_; }

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
  void define_macro(const Stmt& s, const ScopePtr& scope);
  Value call_macro(const Stmt& s, const std::weak_ptr<Scope>& defined_in, CallArgs& args);

  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_node(const Expr& e, const ScopePtr& scope);
  Value eval_binary(const Expr& e, const ScopePtr& scope);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  CallArgs eval_args(const Expr& e, size_t first_positional, const ScopePtr& scope);
  // A filter chain whose innermost input is `input` ({% filter %} and {% set x | f %}).
  Value apply_filters(const Expr& e, Value input, const ScopePtr& scope);

  Value lookup(const std::string& name, const ScopePtr& scope);
  void assign(const Target& target, Value value, const ScopePtr& scope);

  Value context_;
  int macro_depth_ = 0;
  const std::string* root_out_ = nullptr;
  std::vector<std::pair<size_t, size_t>> generation_spans_;
  bool generation_nested_ = false;
};

}  // namespace distillery::text::jinja
