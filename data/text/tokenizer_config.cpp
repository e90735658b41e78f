#include "data/text/tokenizer_config.h"

#include <fstream>
#include <utility>
#include <sstream>

#include "data/text/json_node.h"

namespace distillery::text {

namespace tokenizer_config_detail {

bool file_exists(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

SpecialTokenSpec parse_special_node(const JsonNode& node) {
  SpecialTokenSpec spec;
  spec.key = node.path();
  if (node.is_string()) {
    spec.content = node.as_string();
    return spec;
  }
  if (!node.is_object()) node.fail("must be a string, an AddedToken object or null");
  spec.content = node.get_string("content");
  spec.single_word = node.get_bool("single_word", false);
  spec.lstrip = node.get_bool("lstrip", false);
  spec.rstrip = node.get_bool("rstrip", false);
  spec.normalized = node.get_bool("normalized", false);
  return spec;
}

std::optional<SpecialTokenSpec> parse_special(const JsonNode& root, const char* key) {
  const auto node = root.find(key);
  if (!node) return std::nullopt;
  return parse_special_node(*node);
}

}  // namespace tokenizer_config_detail

TokenizerConfig TokenizerConfig::load(const std::string& dir) {
  namespace d = tokenizer_config_detail;
  TokenizerConfig config;
  config.path = dir + "/tokenizer_config.json";
  if (d::file_exists(config.path)) {
    const nlohmann::json doc = read_json_file(config.path);
    const JsonNode root(doc, config.path);
    root.require_object();
    config.bos_token = d::parse_special(root, "bos_token");
    config.eos_token = d::parse_special(root, "eos_token");
    config.pad_token = d::parse_special(root, "pad_token");
    config.unk_token = d::parse_special(root, "unk_token");
    if (const auto extra = root.find("additional_special_tokens")) {
      extra->require_array();
      for (size_t i = 0; i < extra->size(); ++i) {
        config.additional_special_tokens.push_back(d::parse_special_node(extra->at(i)));
      }
    }
    // Present but null still counts as set for transformers (then with a false value).
    for (const auto& [key, slot] : {std::pair{"add_bos_token", &config.add_bos_token},
                                    std::pair{"add_eos_token", &config.add_eos_token}}) {
      if (!doc.contains(key)) continue;
      const auto node = root.find(key);
      *slot = node ? node->as_bool() : false;
    }
    if (const auto t = root.find("chat_template")) {
      if (t->is_string()) {
        config.chat_template = t->as_string();
        config.chat_template_origin = config.path + ": chat_template";
      } else if (t->is_array()) {
        // Several named templates: transformers uses the one named "default".
        for (size_t i = 0; i < t->size(); ++i) {
          const JsonNode entry = t->at(i);
          if (entry.get_string("name") == "default") {
            config.chat_template = entry.get_string("template");
            config.chat_template_origin = config.path + ": " + entry.path() + ".template";
          }
        }
      } else {
        t->fail("must be a string or a list of {name, template}");
      }
    }
    if (const auto m = root.find("model_max_length")) {
      // transformers writes int(1e30) for "no limit"; it does not fit an integer.
      if (m->value().is_number_integer()) {
        config.model_max_length = m->as_int();
      } else if (m->value().is_number()) {
        const double v = m->value().get<double>();
        if (v < 1e18) config.model_max_length = static_cast<int64_t>(v);
      } else {
        m->fail("must be a number");
      }
    }
  }
  const std::string jinja = dir + "/chat_template.jinja";
  if (d::file_exists(jinja)) {
    std::ifstream in(jinja, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    config.chat_template = text.str();
    config.chat_template_origin = jinja;
  }
  return config;
}

}  // namespace distillery::text
