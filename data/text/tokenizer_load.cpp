// Tokenizer::load: tokenizer.json components, added tokens and tokenizer_config.json's special
// tokens, resolved the way the reference (and transformers, for the config) resolves them.
#include <fstream>
#include <map>
#include <utility>

#include "data/text/json_node.h"
#include "data/text/tokenizer_impl.h"
#include "common/error.h"

namespace distillery::text {

namespace tokenizer_load_detail {

// The reference's AddedVocabulary::add_tokens on load: a token whose content the model already
// has keeps that id; the others get ids counting up from the model's vocabulary size. A file
// whose declared ids disagree would encode differently here and there, so it is rejected.
void load_added_tokens(const JsonNode& root, const BpeModel& model, AddedVocabulary& added) {
  const auto list = root.find("added_tokens");
  if (!list) return;
  list->require_array();
  std::map<std::string, int32_t> by_content;
  int32_t next_id = static_cast<int32_t>(model.vocab_entries());
  for (size_t i = 0; i < list->size(); ++i) {
    const JsonNode item = list->at(i);
    AddedToken token;
    token.content = item.get_string("content");
    token.single_word = item.get_bool("single_word", false);
    token.lstrip = item.get_bool("lstrip", false);
    token.rstrip = item.get_bool("rstrip", false);
    token.special = item.get_bool("special", false);
    token.normalized = item.get_bool("normalized", !token.special);
    if (token.content.empty()) continue;
    const auto seen = by_content.find(token.content);
    if (seen != by_content.end()) {
      token.id = seen->second;
    } else if (const int32_t vocab_id = model.token_to_id(token.content); vocab_id >= 0) {
      token.id = vocab_id;
    } else {
      token.id = next_id++;
    }
    if (const auto declared = item.find("id"); declared && declared->as_int() != token.id) {
      declared->fail("is " + std::to_string(declared->as_int()) + " but Hugging Face tokenizers assigns '" +
                     token.content + "' id " + std::to_string(token.id) +
                     " (a token in the model's vocabulary keeps its id; the others follow the vocabulary in order)");
    }
    by_content[token.content] = token.id;
    added.add(std::move(token));
  }
}

// Where tokenizer_config.json names a token that tokenizer.json does not list as added,
// transformers registers it as a special added token; a token missing altogether is an error.
int32_t resolve_special(const SpecialTokenSpec& spec, const TokenizerConfig& config, const BpeModel& model,
                        AddedVocabulary& added, std::map<std::string, int32_t>& registered) {
  if (const auto it = registered.find(spec.content); it != registered.end()) return it->second;
  const int32_t id = model.token_to_id(spec.content);
  if (id < 0) {
    DIST_FAIL(config.path, ": ", spec.key, " '", spec.content, "' is neither an added token nor in the vocabulary of ",
              "tokenizer.json");
  }
  AddedToken token;
  token.content = spec.content;
  token.id = id;
  token.special = true;
  token.single_word = spec.single_word;
  token.lstrip = spec.lstrip;
  token.rstrip = spec.rstrip;
  token.normalized = spec.normalized;
  added.add(token);
  registered[spec.content] = id;
  return id;
}

}  // namespace tokenizer_load_detail

std::shared_ptr<const Tokenizer::Impl> load_tokenizer_impl(const std::string& dir) {
  namespace d = tokenizer_load_detail;
  const std::string path = dir + "/tokenizer.json";
  {
    std::ifstream probe(path);
    DIST_CHECK(probe.good(), dir, ": no tokenizer.json (distillery reads Hugging Face fast tokenizers)");
  }
  const nlohmann::json doc = read_json_file(path);
  const JsonNode root(doc, path);
  root.require_object();
  if (const auto version = root.find("version"); version && version->as_string() != "1.0") {
    version->fail("'" + version->as_string() + "' is not a tokenizer.json version distillery reads (1.0)");
  }

  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->directory = dir;
  const JsonNode model = root.at("model");
  if (model.type() != "BPE") model.at("type").fail("'" + model.type() + "' is not supported (only BPE models are)");
  impl->model = BpeModel::parse(model);
  if (const auto n = root.find("normalizer")) impl->normalizer = Normalizer::parse(*n);
  if (const auto p = root.find("pre_tokenizer")) impl->pre_tokenizer = PreTokenizer::parse(*p);
  if (const auto p = root.find("post_processor")) impl->post_processor = PostProcessor::parse(*p);
  if (const auto dec = root.find("decoder")) impl->decoder = TokenDecoder::parse(*dec);
  // "truncation" and "padding" are batch-time settings that transformers overrides per call;
  // distillery truncates and pads in its data pipeline, so they are not applied here.
  d::load_added_tokens(root, *impl->model, impl->added);

  impl->config = TokenizerConfig::load(dir);
  const TokenizerConfig& config = impl->config;
  std::map<std::string, int32_t> registered;
  for (const auto& t : impl->added.tokens()) registered[t.content] = t.id;
  auto resolve = [&](const std::optional<SpecialTokenSpec>& spec, std::optional<int32_t>* id, std::string* token) {
    if (!spec) return;
    *id = d::resolve_special(*spec, config, *impl->model, impl->added, registered);
    *token = spec->content;
  };
  std::optional<int32_t> unk_id;
  std::string unk_token;
  resolve(config.bos_token, &impl->bos_id, &impl->bos_token);
  resolve(config.eos_token, &impl->eos_id, &impl->eos_token);
  resolve(config.pad_token, &impl->pad_id, &impl->pad_token);
  resolve(config.unk_token, &unk_id, &unk_token);
  for (const auto& spec : config.additional_special_tokens) d::resolve_special(spec, config, *impl->model, impl->added, registered);

  // transformers rebuilds the post-processor from add_bos_token / add_eos_token when the config
  // sets either (DeepSeek-V3's tokenizer.json has no BOS template, its config asks for BOS).
  if (config.add_bos_token || config.add_eos_token) {
    const bool bos = config.add_bos_token.value_or(false) && impl->bos_id.has_value();
    const bool eos = config.add_eos_token.value_or(false) && impl->eos_id.has_value();
    impl->post_processor = PostProcessor::bos_eos(bos ? impl->bos_id : std::nullopt, eos ? impl->eos_id : std::nullopt);
  }
  impl->added.build(impl->normalizer.get());
  return impl;
}

}  // namespace distillery::text
