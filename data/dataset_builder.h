// JSONL in any of the recipe's data formats -> tokenized examples with loss labels.
#pragma once

#include <memory>
#include <string>

#include "data/data_config.h"
#include "data/example_store.h"
#include "data/text/chat_template.h"
#include "data/text/tokenizer.h"

namespace distillery {

// The tokenizer and chat template a recipe's data needs (none for format tokenized).
struct TextPipeline {
  std::shared_ptr<text::Tokenizer> tokenizer;
  std::shared_ptr<text::ChatTemplate> chat_template;
};

// Loads data.tokenizer (default: model_dir) and, for format messages, its chat template.
TextPipeline load_text_pipeline(const DataConfig& cfg, const std::string& model_dir);

// Reads `path` as cfg.format. Every record is checked: a malformed line, a missing or mistyped
// field or a bad role ends with "path:LINE: ..."; ids are checked against the model's vocab. A
// file where no example has a target token throws a UserError naming it.
ExampleStore build_examples(const DataConfig& cfg, const std::string& path, const TextPipeline& text,
                            int64_t vocab_size);

}  // namespace distillery
