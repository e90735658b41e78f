// The parts of a loaded Tokenizer (internal to data/text; include tokenizer.h instead).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "data/text/added_vocabulary.h"
#include "data/text/bpe_model.h"
#include "data/text/normalizer.h"
#include "data/text/post_processor.h"
#include "data/text/pre_tokenizer.h"
#include "data/text/token_decoder.h"
#include "data/text/tokenizer.h"
#include "data/text/tokenizer_config.h"

namespace distillery::text {

struct Tokenizer::Impl {
  std::string directory;
  std::unique_ptr<Normalizer> normalizer;        // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;   // may be null
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor;  // may be null
  std::unique_ptr<TokenDecoder> decoder;          // may be null
  AddedVocabulary added;
  TokenizerConfig config;
  std::optional<int32_t> bos_id, eos_id, pad_id;
  std::string bos_token, eos_token, pad_token;

  void encode(std::string_view text, bool add_special_tokens, std::vector<int32_t>& ids) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
};

// Builds the parts from <dir>/tokenizer.json and tokenizer_config.json (tokenizer_load.cpp).
std::shared_ptr<const Tokenizer::Impl> load_tokenizer_impl(const std::string& dir);

}  // namespace distillery::text
