// The "post_processor" of tokenizer.json: what encode(text, add_special_tokens=true) wraps
// around the ids (Llama 3's <|begin_of_text|>, BERT's [CLS] ... [SEP]). Supported:
// TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel (no id changes), Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "data/text/json_node.h"

namespace distillery::text {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;

  static std::unique_ptr<PostProcessor> parse(const JsonNode& node);

  // The template transformers builds from tokenizer_config.json's add_bos_token/add_eos_token:
  // [bos] $A [eos], each present when its id is given.
  static std::unique_ptr<PostProcessor> bos_eos(std::optional<int32_t> bos, std::optional<int32_t> eos);

  // Rewrites the ids of a single sequence; without add_special_tokens no processor changes ids.
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

}  // namespace distillery::text
