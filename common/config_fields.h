// Declare-once config machinery. A config struct lists its fields in one `visit` method:
//
//   struct OptimConfig {
//     double lr = 1e-4;
//     template <class V> void visit(V& v) { v("lr", lr, "peak learning rate", gt(0)); }
//   };
//
// The default lives on the member; the name, doc and rule live in `visit`. That one list drives
// YAML parsing (unknown keys, types, ranges, required keys), `a.b=c` overrides, --dump-config and
// the recipe reference (`distillery recipe-keys`).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace distillery::config {

// What a value must satisfy. Built with the helpers below; combine with `&`.
struct Rule {
  std::optional<double> min, max;
  bool min_exclusive = false;
  std::vector<std::string> choices;
  bool required = false;
  Rule operator&(const Rule& o) const {
    Rule r = *this;
    if (o.min) r.min = o.min, r.min_exclusive = o.min_exclusive;
    if (o.max) r.max = o.max;
    if (!o.choices.empty()) r.choices = o.choices;
    r.required = required || o.required;
    return r;
  }
  std::string describe() const;
};
inline Rule gt(double v) { Rule r; r.min = v; r.min_exclusive = true; return r; }
inline Rule ge(double v) { Rule r; r.min = v; return r; }
inline Rule le(double v) { Rule r; r.max = v; return r; }
inline Rule between(double lo, double hi) { Rule r; r.min = lo; r.max = hi; return r; }
inline Rule one_of(std::vector<std::string> c) { Rule r; r.choices = std::move(c); return r; }
inline Rule required() { Rule r; r.required = true; return r; }

template <class T, class = void>
struct is_section : std::false_type {};
struct NullVisitor;

// Reads a YAML mapping into a config struct. Collects every problem (does not stop at the first),
// so a user sees them all at once.
class YamlReader {
 public:
  // `overrides` maps a dotted key path to the `a.b=c` text that set it, so errors name the override.
  YamlReader(std::string origin, std::vector<std::string>* errors,
             const std::map<std::string, std::string>* overrides = nullptr)
      : origin_(std::move(origin)), errors_(errors), overrides_(overrides) {}

  template <class S>
  void read(const YAML::Node& node, S& section, const std::string& path);

  void operator()(const char* key, bool& f, const char* doc, Rule rule = {});
  void operator()(const char* key, int64_t& f, const char* doc, Rule rule = {});
  void operator()(const char* key, double& f, const char* doc, Rule rule = {});
  void operator()(const char* key, std::string& f, const char* doc, Rule rule = {});
  void operator()(const char* key, std::vector<std::string>& f, const char* doc, Rule rule = {});
  void operator()(const char* key, std::vector<int64_t>& f, const char* doc, Rule rule = {});
  template <class S>
  void section(const char* key, S& s, const char* doc) {
    const YAML::Node child = take(key);
    std::string path = join(key);
    if (child && !child.IsNull() && !child.IsMap()) {
      error(child, path, path + ": expected a mapping of keys, got '" + scalar_text(child) + "'");
      return;
    }
    YamlReader inner(origin_, errors_, overrides_);
    inner.read(child ? child : YAML::Node(YAML::NodeType::Map), s, path);
  }

  // Full dotted paths of every key this struct (and its sections) declares; for "did you mean".
  template <class S>
  static std::vector<std::string> key_paths(S& section);

 private:
  YAML::Node take(const char* key);
  std::string join(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  void error(const YAML::Node& at, const std::string& path, const std::string& msg);
  void check_rule(const YAML::Node& at, const std::string& path, double v, const Rule& rule);
  void check_required(const char* key, const Rule& rule);
  static std::string scalar_text(const YAML::Node& n);
  void report_unknown(const std::vector<std::string>& known_paths);

  std::string origin_;
  std::vector<std::string>* errors_;
  const std::map<std::string, std::string>* overrides_;
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

// Emits a config struct as YAML, each key preceded by its doc as a comment.
class YamlWriter {
 public:
  explicit YamlWriter(YAML::Emitter& out, bool with_docs) : out_(out), docs_(with_docs) {}
  template <class S>
  void write(S& s) {
    out_ << YAML::BeginMap;
    s.visit(*this);
    out_ << YAML::EndMap;
  }
  template <class T>
  void operator()(const char* key, T& f, const char* doc, Rule = {}) {
    if (docs_) out_ << YAML::Comment(doc);
    out_ << YAML::Key << key << YAML::Value;
    emit(f);
  }
  template <class S>
  void section(const char* key, S& s, const char* doc) {
    if (docs_) out_ << YAML::Newline << YAML::Comment(doc);
    out_ << YAML::Key << key << YAML::Value;
    write(s);
  }

 private:
  void emit(bool v) { out_ << v; }
  void emit(int64_t v) { out_ << v; }
  void emit(double v);
  void emit(const std::string& v) { out_ << YAML::DoubleQuoted << v; }
  template <class T>
  void emit(const std::vector<T>& v) {
    out_ << YAML::Flow << YAML::BeginSeq;
    for (const auto& x : v) emit(x);
    out_ << YAML::EndSeq;
  }
  YAML::Emitter& out_;
  bool docs_;
};

// Lists `path  type  default  rule  doc` lines: the recipe reference.
class KeyLister {
 public:
  std::vector<std::vector<std::string>> rows;  // path, default, rule, doc
  template <class S>
  void list(S& s, const std::string& prefix) {
    std::string saved = prefix_;
    prefix_ = prefix;
    s.visit(*this);
    prefix_ = saved;
  }
  template <class T>
  void operator()(const char* key, T& f, const char* doc, Rule rule = {}) {
    rows.push_back({join(key), render(f), rule.describe(), doc});
  }
  template <class S>
  void section(const char* key, S& s, const char* doc) { list(s, join(key)); }

 private:
  std::string join(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }
  static std::string render(bool v) { return v ? "true" : "false"; }
  static std::string render(int64_t v) { return std::to_string(v); }
  static std::string render(double v);
  static std::string render(const std::string& v) { return v.empty() ? "\"\"" : v; }
  template <class T>
  static std::string render(const std::vector<T>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + render(v[i]);
    return s + "]";
  }
  std::string prefix_;
};

// Collects dotted key paths only.
class PathCollector {
 public:
  std::vector<std::string> paths;
  std::string prefix;
  template <class T>
  void operator()(const char* key, T&, const char*, Rule = {}) { paths.push_back(join(key)); }
  template <class S>
  void section(const char* key, S& s, const char*) {
    std::string saved = prefix;
    prefix = join(key);
    paths.push_back(prefix);
    s.visit(*this);
    prefix = saved;
  }

 private:
  std::string join(const char* key) const { return prefix.empty() ? key : prefix + "." + key; }
};

template <class S>
std::vector<std::string> YamlReader::key_paths(S& section) {
  PathCollector c;
  section.visit(c);
  return c.paths;
}

template <class S>
void YamlReader::read(const YAML::Node& node, S& section, const std::string& path) {
  node_ = node;
  path_ = path;
  seen_.clear();
  section.visit(*this);
  PathCollector c;
  c.prefix = path;
  section.visit(c);
  report_unknown(c.paths);
}

// Edit distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b);
std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace distillery::config
