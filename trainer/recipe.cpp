#include "trainer/recipe.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace distillery {
namespace {

// Sets node[a][b][c] = value for the override text "a.b.c=value".
void apply_override(YAML::Node root, const std::string& text, std::map<std::string, std::string>& applied,
                    std::vector<std::string>& errors) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    errors.push_back("override '" + text + "': expected key.path=value");
    return;
  }
  const std::string path = text.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    errors.push_back("override '" + text + "': value is not valid YAML (" + e.msg + ")");
    return;
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  // yaml-cpp nodes are handles: walk with fresh handles, never by assignment (which would alias).
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (!next || next.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    }
    if (!next.IsMap()) {
      errors.push_back("override '" + text + "': '" + parts[i] + "' is not a section");
      return;
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
  applied[path] = text;
}

// One UserError with every problem found, one per line.
void throw_if_any(const std::vector<std::string>& errors) {
  if (errors.empty()) return;
  std::string all;
  for (size_t i = 0; i < errors.size(); ++i) all += (i ? "\n" : "") + errors[i];
  throw UserError(all);
}

// yaml-cpp keeps both entries of a repeated key and reads the first; a recipe names each key once.
void find_duplicate_keys(const YAML::Node& node, const std::string& origin, const std::string& path,
                         std::vector<std::string>& errors) {
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      find_duplicate_keys(node[i], origin, path + "[" + std::to_string(i) + "]", errors);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, int> first_line;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : YAML::Dump(kv.first);
    const std::string full = path.empty() ? key : path + "." + key;
    const int line = kv.first.Mark().line + 1;
    const auto [it, fresh] = first_line.emplace(key, line);
    if (!fresh)
      errors.push_back(origin + ":" + std::to_string(line) + ": duplicate key '" + full + "' (first at line " +
                       std::to_string(it->second) + ")");
    find_duplicate_keys(kv.second, origin, full, errors);
  }
}

RecipeConfig read(YAML::Node root, const std::string& origin, const std::vector<std::string>& overrides) {
  std::vector<std::string> errors;
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) DIST_FAIL(origin, ": expected a mapping of sections at the top level");
  find_duplicate_keys(root, origin, "", errors);
  throw_if_any(errors);  // the checks below would read only the first of each pair
  std::map<std::string, std::string> applied;
  for (const auto& o : overrides) apply_override(root, o, applied, errors);
  RecipeConfig cfg;
  config::YamlReader reader(origin, &errors, &applied);
  reader.read(root, cfg, "");
  if (cfg.trainer.eval_every > 0 && cfg.data.eval.empty())
    errors.push_back(origin + ": trainer.eval_every=" + std::to_string(cfg.trainer.eval_every) +
                     " asks for evaluation but data.eval is not set");
  if (const AlgorithmSpec* spec = AlgorithmRegistry::instance().find(cfg.algorithm); spec && spec->validate)
    spec->validate(cfg, origin, errors);
  if (cfg.trainer.max_steps > 0 && cfg.optim.warmup_steps > cfg.trainer.max_steps)
    errors.push_back(origin + ": optim.warmup_steps=" + std::to_string(cfg.optim.warmup_steps) +
                     " exceeds trainer.max_steps=" + std::to_string(cfg.trainer.max_steps));
  throw_if_any(errors);
  return cfg;
}

}  // namespace

RecipeConfig parse_recipe(const std::string& yaml_text, const std::string& origin,
                          const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    DIST_FAIL(origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": malformed YAML: ", e.msg);
  }
  return read(root, origin, overrides);
}

RecipeConfig load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  DIST_CHECK(in, path, ": cannot open recipe");
  std::stringstream text;
  text << in.rdbuf();
  return parse_recipe(text.str(), path, overrides);
}

std::string dump_recipe(RecipeConfig cfg, bool with_docs) {
  YAML::Emitter out;
  config::YamlWriter writer(out, with_docs);
  writer.write(cfg);
  return std::string(out.c_str()) + "\n";
}

std::string recipe_reference() {
  RecipeConfig cfg;
  config::KeyLister lister;
  lister.list(cfg, "");
  std::ostringstream s;
  for (const auto& r : lister.rows) {
    s << r[0] << "  (default " << r[1] << (r[2].empty() ? "" : "; " + r[2]) << ")\n    " << r[3] << "\n";
  }
  return s.str();
}

}  // namespace distillery
