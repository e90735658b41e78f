#include "common/config_fields.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace distillery::config {

std::string Rule::describe() const {
  std::ostringstream s;
  if (!choices.empty()) {
    s << "one of ";
    for (size_t i = 0; i < choices.size(); ++i) s << (i ? "|" : "") << choices[i];
  } else if (min && max) {
    s << "in [" << *min << ", " << *max << "]";
  } else if (min) {
    s << (min_exclusive ? "> " : ">= ") << *min;
  } else if (max) {
    s << "<= " << *max;
  }
  if (required) s << (s.tellp() > 0 ? ", " : "") << "required";
  return s.str();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

YAML::Node YamlReader::take(const char* key) {
  seen_.insert(key);
  if (!node_ || !node_.IsMap()) return YAML::Node();
  return node_[key];
}

void YamlReader::error(const YAML::Node& at, const std::string& path, const std::string& msg) {
  std::string where = origin_;
  if (overrides_ && overrides_->count(path))
    where = "override '" + overrides_->at(path) + "'";
  else if (at && at.Mark().line >= 0)
    where += ":" + std::to_string(at.Mark().line + 1);
  errors_->push_back(where + ": " + msg);
}

std::string YamlReader::scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "null";
}

void YamlReader::check_required(const char* key, const Rule& rule) {
  if (rule.required) errors_->push_back(origin_ + ": missing required key '" + join(key) + "'");
}

void YamlReader::check_rule(const YAML::Node& at, const std::string& path, double v, const Rule& rule) {
  bool ok = true;
  if (rule.min) ok &= rule.min_exclusive ? v > *rule.min : v >= *rule.min;
  if (rule.max) ok &= v <= *rule.max;
  if (!ok) {
    std::ostringstream s;
    s << path << "=" << scalar_text(at) << " is out of range (must be " << rule.describe() << ")";
    error(at, path, s.str());
  }
}

void YamlReader::operator()(const char* key, bool& f, const char* doc, Rule rule) {
  YAML::Node n = take(key);
  if (!n || n.IsNull()) return check_required(key, rule);
  bool v;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
    return error(n, join(key), join(key) + ": expected true or false, got '" + scalar_text(n) + "'");
  f = v;
}

void YamlReader::operator()(const char* key, int64_t& f, const char* doc, Rule rule) {
  YAML::Node n = take(key);
  if (!n || n.IsNull()) return check_required(key, rule);
  int64_t v;
  if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) {
    // Accept integral floats written as 1e3.
    double d;
    if (n.IsScalar() && YAML::convert<double>::decode(n, d) && std::isfinite(d) && d == std::floor(d) &&
        std::fabs(d) < 9e18) {
      v = static_cast<int64_t>(d);
    } else {
      return error(n, join(key), join(key) + ": expected an integer, got '" + scalar_text(n) + "'");
    }
  }
  check_rule(n, join(key), static_cast<double>(v), rule);
  f = v;
}

void YamlReader::operator()(const char* key, double& f, const char* doc, Rule rule) {
  YAML::Node n = take(key);
  if (!n || n.IsNull()) return check_required(key, rule);
  double v;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v))
    return error(n, join(key), join(key) + ": expected a number, got '" + scalar_text(n) + "'");
  check_rule(n, join(key), v, rule);
  f = v;
}

void YamlReader::operator()(const char* key, std::string& f, const char* doc, Rule rule) {
  YAML::Node n = take(key);
  if (!n || n.IsNull() || (n.IsScalar() && n.Scalar().empty() && rule.required))
    return check_required(key, rule);
  if (!n.IsScalar()) return error(n, join(key), join(key) + ": expected a string, got " + scalar_text(n));
  const std::string v = n.Scalar();
  if (!rule.choices.empty() && std::find(rule.choices.begin(), rule.choices.end(), v) == rule.choices.end()) {
    std::string msg = join(key) + ": '" + v + "' is not " + rule.describe();
    if (auto c = closest(v, rule.choices)) msg += " (did you mean '" + *c + "'?)";
    return error(n, join(key), msg);
  }
  f = v;
}

void YamlReader::operator()(const char* key, std::vector<std::string>& f, const char* doc, Rule rule) {
  YAML::Node n = take(key);
  if (!n || n.IsNull()) return check_required(key, rule);
  if (n.IsScalar()) {  // a single string is a one-element list
    f = {n.Scalar()};
    return;
  }
  if (!n.IsSequence()) return error(n, join(key), join(key) + ": expected a list of strings, got " + scalar_text(n));
  std::vector<std::string> v;
  for (const auto& e : n) {
    if (!e.IsScalar()) return error(e, join(key), join(key) + ": expected a list of strings, found " + scalar_text(e));
    v.push_back(e.Scalar());
  }
  f = v;
}

void YamlReader::operator()(const char* key, std::vector<int64_t>& f, const char* doc, Rule rule) {
  YAML::Node n = take(key);
  if (!n || n.IsNull()) return check_required(key, rule);
  if (!n.IsSequence()) return error(n, join(key), join(key) + ": expected a list of integers, got " + scalar_text(n));
  std::vector<int64_t> v;
  for (const auto& e : n) {
    int64_t x;
    if (!e.IsScalar() || !YAML::convert<int64_t>::decode(e, x))
      return error(e, join(key), join(key) + ": expected a list of integers, found '" + scalar_text(e) + "'");
    check_rule(e, join(key), static_cast<double>(x), rule);
    v.push_back(x);
  }
  f = v;
}

void YamlReader::report_unknown(const std::vector<std::string>& known_paths) {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (seen_.count(key)) continue;
    const std::string path = join(key.c_str());
    std::string msg = "unknown key '" + path + "'";
    if (auto c = closest(path, known_paths)) msg += " (did you mean '" + *c + "'?)";
    error(kv.first, path, msg);
  }
}

void YamlWriter::emit(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  std::string t = s.str();
  // Keep floats recognisable as floats when read back.
  if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
  out_ << t;
}

std::string KeyLister::render(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace distillery::config
