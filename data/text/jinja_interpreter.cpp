#include "data/text/jinja_interpreter.h"

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_operators.h"

namespace distillery::text::jinja {
namespace interpreter_detail {

// Deep enough for any real template, shallow enough to fail cleanly before the C++ stack does.
constexpr int kMaxMacroDepth = 200;

[[noreturn]] void undefined_error(const Value& v) {
  throw TemplateError(v.undefined_message());
}

std::string target_names(const Target& t) {
  if (t.kind != Target::Kind::Tuple) return t.name;
  std::string out;
  for (const auto& item : t.items) out += (out.empty() ? "" : ", ") + target_names(item);
  return out;
}

// The `loop` variable of one iteration.
Value make_loop(const std::vector<Value>& items, size_t i, const std::shared_ptr<Value>& last_changed) {
  const auto n = static_cast<int64_t>(items.size());
  const auto idx = static_cast<int64_t>(i);
  std::vector<std::pair<std::string, Value>> e;
  e.reserve(13);
  e.emplace_back("index0", Value(idx));
  e.emplace_back("index", Value(idx + 1));
  e.emplace_back("revindex0", Value(n - idx - 1));
  e.emplace_back("revindex", Value(n - idx));
  e.emplace_back("first", Value(i == 0));
  e.emplace_back("last", Value(idx == n - 1));
  e.emplace_back("length", Value(n));
  e.emplace_back("depth", Value(1));
  e.emplace_back("depth0", Value(0));
  if (i > 0) e.emplace_back("previtem", items[i - 1]);
  if (idx + 1 < n) e.emplace_back("nextitem", items[i + 1]);
  e.emplace_back("cycle", Value::function("cycle", [idx](CallArgs& args) {
    if (!args.keyword.empty()) throw TemplateError("loop.cycle() takes no keyword arguments");
    if (args.positional.empty()) throw TemplateError("no items for cycling given");
    return args.positional[static_cast<size_t>(idx) % args.positional.size()];
  }));
  e.emplace_back("changed", Value::function("changed", [last_changed](CallArgs& args) {
    Value current = Value::list(args.positional);
    if (last_changed->is_list() && equals(*last_changed, current)) return Value(false);
    *last_changed = current;
    return Value(true);
  }));
  return Value::dict(std::move(e));
}

}  // namespace interpreter_detail

using namespace interpreter_detail;

Value* Scope::find(std::string_view name) {
  for (auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  if (Value* v = find(name)) *v = std::move(value);
  else vars.emplace_back(name, std::move(value));
}

Interpreter::Interpreter(Value context) : context_(std::move(context)) {}

std::string Interpreter::render(const Template& tmpl) {
  std::string out;
  root_out_ = &out;
  generation_spans_.clear();
  generation_nested_ = false;
  auto root = std::make_shared<Scope>();
  exec_body(tmpl.body, root, out);
  root_out_ = nullptr;
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& s : body) {
    Flow f = exec(*s, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
  try {
    switch (s.kind) {
      case StmtKind::Text: out += s.text; break;
      case StmtKind::Output: out += to_str(eval(*s.expr, scope)); break;
      case StmtKind::If:
        for (const auto& [cond, body] : s.branches)
          if (!cond || eval(*cond, scope).truthy()) return exec_body(body, scope, out);
        break;
      case StmtKind::For: return exec_for(s, scope, out);
      case StmtKind::Set: assign(s.target, eval(*s.expr, scope), scope); break;
      case StmtKind::SetBlock: {
        std::string text;
        auto inner = std::make_shared<Scope>(Scope{scope, {}});
        exec_body(s.body, inner, text);
        Value v(std::move(text));
        assign(s.target, s.expr ? apply_filters(*s.expr, std::move(v), scope) : std::move(v), scope);
        break;
      }
      case StmtKind::Macro: define_macro(s, scope); break;
      case StmtKind::With: {
        auto inner = std::make_shared<Scope>(Scope{scope, {}});
        for (const auto& [target, expr] : s.assignments) assign(target, eval(*expr, scope), inner);
        return exec_body(s.body, inner, out);
      }
      case StmtKind::FilterBlock: {
        std::string text;
        auto inner = std::make_shared<Scope>(Scope{scope, {}});
        exec_body(s.body, inner, text);
        out += to_str(apply_filters(*s.expr, Value(std::move(text)), scope));
        break;
      }
      case StmtKind::Generation: {
        auto inner = std::make_shared<Scope>(Scope{scope, {}});
        const size_t begin = out.size();
        const Flow f = exec_body(s.body, inner, out);
        if (&out == root_out_)
          generation_spans_.emplace_back(begin, out.size());
        else
          generation_nested_ = true;
        return f;
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
  } catch (TemplateError& e) {
    if (e.line == 0) e.line = s.line;
    throw;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
  Value iterable = eval(*s.expr, scope);
  std::vector<Value> items = iterate(iterable);
  if (s.condition) {
    // The filter sees the loop target but not `loop`, and loop indexes count what passed it.
    std::vector<Value> kept;
    for (auto& item : items) {
      auto probe = std::make_shared<Scope>(Scope{scope, {}});
      assign(s.target, item, probe);
      if (eval(*s.condition, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>(Scope{scope, {}});
    exec_body(s.else_body, inner, out);
    return Flow::Normal;
  }
  auto last_changed = std::make_shared<Value>();
  for (size_t i = 0; i < items.size(); ++i) {
    auto inner = std::make_shared<Scope>(Scope{scope, {}});
    assign(s.target, items[i], inner);
    inner->set("loop", make_loop(items, i, last_changed));
    if (exec_body(s.body, inner, out) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interpreter::define_macro(const Stmt& s, const ScopePtr& scope) {
  std::weak_ptr<Scope> defined_in = scope;
  const Stmt* stmt = &s;
  scope->set(s.name, Value::function(s.name, [this, stmt, defined_in](CallArgs& args) {
               return call_macro(*stmt, defined_in, args);
             }));
}

Value Interpreter::call_macro(const Stmt& s, const std::weak_ptr<Scope>& defined_in, CallArgs& args) {
  ScopePtr parent = defined_in.lock();
  if (!parent) throw TemplateError("macro '" + s.name + "' called after the scope that defined it ended");
  if (macro_depth_ >= kMaxMacroDepth) throw TemplateError("maximum macro recursion depth exceeded");
  auto scope = std::make_shared<Scope>(Scope{parent, {}});
  const size_t n = s.params.size();
  if (args.positional.size() > n && !s.uses_varargs)
    throw TemplateError("macro '" + s.name + "' takes not more than " + std::to_string(n) + " argument(s)");
  std::vector<bool> bound(n, false);
  for (size_t i = 0; i < n && i < args.positional.size(); ++i) {
    scope->set(s.params[i], args.positional[i]);
    bound[i] = true;
  }
  std::vector<std::pair<std::string, Value>> extra_kwargs;
  for (auto& [key, value] : args.keyword) {
    size_t i = 0;
    while (i < n && s.params[i] != key) ++i;
    if (i == n) {
      if (!s.uses_kwargs) throw TemplateError("macro '" + s.name + "' takes no keyword argument '" + key + "'");
      extra_kwargs.emplace_back(key, value);
      continue;
    }
    if (bound[i]) throw TemplateError("macro '" + s.name + "' got multiple values for argument '" + key + "'");
    scope->set(key, value);
    bound[i] = true;
  }
  for (size_t i = 0; i < n; ++i) {
    if (bound[i]) continue;
    scope->set(s.params[i], s.defaults[i] ? eval(*s.defaults[i], scope)
                                          : Value::undefined(s.params[i]));
  }
  std::vector<Value> varargs;
  for (size_t i = n; i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
  scope->set("varargs", Value::list(std::move(varargs), true));
  scope->set("kwargs", Value::dict(std::move(extra_kwargs)));
  std::string out;
  ++macro_depth_;
  try {
    exec_body(s.body, scope, out);
  } catch (...) {
    --macro_depth_;
    throw;
  }
  --macro_depth_;
  return Value(std::move(out));
}

Value Interpreter::lookup(const std::string& name, const ScopePtr& scope) {
  for (Scope* s = scope.get(); s; s = s->parent.get())
    if (Value* v = s->find(name)) return *v;
  if (const Value* v = context_.as_dict().find(name)) return *v;
  Value g = find_global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined(name);
}

void Interpreter::assign(const Target& target, Value value, const ScopePtr& scope) {
  switch (target.kind) {
    case Target::Kind::Name: scope->set(target.name, std::move(value)); return;
    case Target::Kind::NamespaceAttr: {
      Value ns = lookup(target.name, scope);
      if (!ns.is_namespace()) throw TemplateError("cannot assign attribute on non-namespace object '" + target.name + "'");
      ns.as_dict().set(target.attr, std::move(value));
      return;
    }
    case Target::Kind::Tuple: {
      if (value.is_undefined()) undefined_error(value);
      std::vector<Value> items = iterate(value);
      if (items.size() != target.items.size())
        throw TemplateError((items.size() < target.items.size() ? "not enough" : "too many") +
                            std::string(" values to unpack into (") + target_names(target) + ")");
      for (size_t i = 0; i < items.size(); ++i) assign(target.items[i], std::move(items[i]), scope);
      return;
    }
  }
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  try {
    return eval_node(e, scope);
  } catch (TemplateError& err) {
    if (err.line == 0) err.line = e.line;
    throw;
  }
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first_positional, const ScopePtr& scope) {
  CallArgs args;
  for (size_t i = first_positional; i < e.items.size(); ++i) args.positional.push_back(eval(*e.items[i], scope));
  for (const auto& [key, expr] : e.kwargs) args.keyword.emplace_back(key, eval(*expr, scope));
  return args;
}

Value Interpreter::apply_filters(const Expr& e, Value input, const ScopePtr& scope) {
  Value inner = e.items[0] ? apply_filters(*e.items[0], std::move(input), scope) : std::move(input);
  CallArgs args = eval_args(e, 1, scope);
  return e.filter(inner, args);
}

Value Interpreter::eval_node(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::Literal: return e.literal;
    case ExprKind::Name: return lookup(e.name, scope);
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& item : e.items) items.push_back(eval(*item, scope));
      return Value::list(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i], scope);
        if (!key.is_string()) throw TemplateError("unsupported dict key of type '" + key.type_name() + "' (only strings)");
        d->set(key.as_string(), eval(*e.items[i + 1], scope));
      }
      return Value(std::move(d));
    }
    case ExprKind::Getattr: return get_attr(eval(*e.items[0], scope), e.name);
    case ExprKind::Getitem: return get_item(eval(*e.items[0], scope), eval(*e.items[1], scope));
    case ExprKind::Slice: {
      Value obj = eval(*e.items[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.items[i + 1] ? eval(*e.items[i + 1], scope) : Value::none();
      return get_slice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::Call: {
      Value callee = eval(*e.items[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      if (callee.is_undefined()) undefined_error(callee);
      if (!callee.is_function()) throw TemplateError("'" + callee.type_name() + "' object is not callable");
      return callee.as_function().call(args);
    }
    case ExprKind::Filter: {
      Value input = eval(*e.items[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return e.filter(input, args);
    }
    case ExprKind::Test: {
      Value input = eval(*e.items[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return Value(e.test(input, args) != e.negated);
    }
    case ExprKind::Not: return Value(!eval(*e.items[0], scope).truthy());
    case ExprKind::Negate: return negate(eval(*e.items[0], scope));
    case ExprKind::Plus: return unary_plus(eval(*e.items[0], scope));
    case ExprKind::Binary: return eval_binary(e, scope);
    case ExprKind::Compare: return eval_compare(e, scope);
    case ExprKind::Condition:
      if (eval(*e.items[1], scope).truthy()) return eval(*e.items[0], scope);
      if (e.items[2]) return eval(*e.items[2], scope);
      return Value::undefined_because("the inline if has no else branch and its condition is false");
  }
  throw TemplateError("internal error: unknown expression kind");
}

Value Interpreter::eval_binary(const Expr& e, const ScopePtr& scope) {
  if (e.name == "and") {
    Value left = eval(*e.items[0], scope);
    return left.truthy() ? eval(*e.items[1], scope) : left;
  }
  if (e.name == "or") {
    Value left = eval(*e.items[0], scope);
    return left.truthy() ? left : eval(*e.items[1], scope);
  }
  Value left = eval(*e.items[0], scope);
  Value right = eval(*e.items[1], scope);
  if (e.name == "~") return Value(to_str(left) + to_str(right));
  return arithmetic(e.name, left, right);
}

Value Interpreter::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.items[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.items[i + 1], scope);
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = equals(left, right);
    else if (op == "!=") ok = !equals(left, right);
    else if (op == "<") ok = less_than(left, right);
    else if (op == ">") ok = less_than(right, left);
    else if (op == "<=") ok = !less_than(right, left) && (less_than(left, right) || equals(left, right));
    else if (op == ">=") ok = !less_than(left, right) && (less_than(right, left) || equals(left, right));
    else if (op == "in") ok = contains(right, left);
    else ok = !contains(right, left);
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace distillery::text::jinja
