// Every supported tokenizer.json component against Hugging Face tokenizers: the variants of
// tests/assets/tokenizer_variants.json patch a small byte-level BPE (normalizers, Split
// behaviors, regex constructs, ByteLevel options, Digits, added-token flags, post-processors,
// decoders, unk/byte-fallback/prefix models) and tests/parity/tokenizer_variants_reference.js
// recorded what the reference makes of each.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "tests/unit/data/text/text_test_util.h"

namespace distillery::text::testing {
namespace tokenizer_variants_test {

namespace fs = std::filesystem;

const nlohmann::json& variant_spec() {
  static const nlohmann::json spec = [] {
    std::ifstream in(source_path("tests/assets/tokenizer_variants.json"));
    return nlohmann::json::parse(in);
  }();
  return spec;
}

std::vector<std::string> variant_names() {
  std::vector<std::string> names;
  for (const auto& v : variant_spec()["variants"]) names.push_back(v["name"].get<std::string>());
  return names;
}

const nlohmann::json& variant(const std::string& name) {
  for (const auto& v : variant_spec()["variants"])
    if (v["name"] == name) return v;
  throw std::runtime_error("no variant " + name);
}

std::vector<std::string> variant_texts() {
  std::vector<std::string> texts = variant_spec()["texts"].get<std::vector<std::string>>();
  const auto corpus = read_jsonl(source_path("tests/assets/tokenizer_corpus.jsonl"));
  const size_t every = variant_spec()["corpus_every"].get<size_t>();
  for (size_t i = 0; i < corpus.size(); i += every) texts.push_back(corpus[i]["text"].get<std::string>());
  return texts;
}

// The variant's tokenizer.json, built exactly as the reference script builds it.
nlohmann::json variant_tokenizer_json(const nlohmann::json& v) {
  std::ifstream in(source_path(variant_spec()["base"].get<std::string>()));
  nlohmann::json json = nlohmann::json::parse(in);
  if (v.contains("replace"))
    for (const auto& [key, value] : v["replace"].items()) json[key] = value;
  if (v.contains("patch")) json.merge_patch(v["patch"]);
  if (v.contains("add_tokens")) {
    int64_t next = static_cast<int64_t>(json["model"]["vocab"].size()) - 1;
    for (const auto& t : json["added_tokens"]) next = std::max(next, t["id"].get<int64_t>());
    for (const auto& t : v["add_tokens"]) {
      json["added_tokens"].push_back({{"id", ++next}, {"content", t["content"]},
                                      {"single_word", t.value("single_word", false)}, {"lstrip", t.value("lstrip", false)},
                                      {"rstrip", t.value("rstrip", false)}, {"normalized", t.value("normalized", false)},
                                      {"special", t.value("special", false)}});
    }
  }
  return json;
}

class ComponentVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(ComponentVariant, MatchesHuggingFaceOnEveryText) {
  const nlohmann::json& v = variant(GetParam());
  const fs::path dir = fs::temp_directory_path() / ("distillery_variant_" + GetParam() + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << variant_tokenizer_json(v).dump();
  if (v.contains("config")) std::ofstream(dir / "tokenizer_config.json") << v["config"].dump();
  const Tokenizer tok = Tokenizer::load(dir.string());
  fs::remove_all(dir);

  const std::vector<std::string> texts = variant_texts();
  size_t checked = 0, failures = 0;
  for (const auto& row : read_jsonl(source_path("tests/assets/tokenizer_variants_expected.jsonl"))) {
    if (row["variant"] != GetParam()) continue;
    const std::string& text = texts.at(row["text"].get<size_t>());
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    const auto ids_special = row.value("ids_with_special_tokens", ids);
    const std::string decoded = row.value("decoded", text);
    const std::string decoded_skip = row.value("decoded_skip_special", decoded);
    const auto report = [&](const char* what, const std::string& expected, const std::string& actual) {
      if (++failures <= 4) ADD_FAILURE() << what << " of text " << nlohmann::json(text).dump() << "\n  expected " << expected
                                         << "\n  actual   " << actual;
    };
    if (tok.encode(text) != ids) report("ids", ids_to_string(ids), ids_to_string(tok.encode(text)));
    if (tok.encode(text, true) != ids_special)
      report("ids with special tokens", ids_to_string(ids_special), ids_to_string(tok.encode(text, true)));
    if (tok.decode(ids) != decoded) report("decode", nlohmann::json(decoded).dump(), nlohmann::json(tok.decode(ids)).dump());
    if (tok.decode(ids_special, true) != decoded_skip)
      report("decode skipping special tokens", nlohmann::json(decoded_skip).dump(), nlohmann::json(tok.decode(ids_special, true)).dump());
    ++checked;
  }
  EXPECT_EQ(checked, texts.size()) << "regenerate tests/assets/tokenizer_variants_expected.jsonl (docs/tokenizers.md)";
  EXPECT_EQ(failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Variants, ComponentVariant, ::testing::ValuesIn(variant_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace tokenizer_variants_test
}  // namespace distillery::text::testing
