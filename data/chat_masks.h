// Conversations -> the exact token ids Hugging Face's apply_chat_template produces, plus the loss
// mask: assistant turns (their content, reasoning and end-of-turn token) are trained, the template
// text around them is not. Spans are found on the rendered text and mapped onto tokens through
// each token's bytes, so the ids are those of tokenizing the whole rendered text at once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/chat_template.h"
#include "data/text/tokenizer.h"

namespace distillery {

struct ChatRendering {
  std::string text;                                     // the rendered conversation
  std::vector<std::pair<size_t, size_t>> assistant;     // [begin, end) byte spans of trained text
};

struct ChatOptions {
  std::string enable_thinking = "default";  // default | true | false
};

// `where` (file:line) names the record in errors.
ChatRendering render_chat(const text::ChatTemplate& tmpl, const text::Tokenizer& tok,
                          const nlohmann::ordered_json& messages, const ChatOptions& opts, const std::string& where);

// Tokenizes `text` whole (no added special tokens, as apply_chat_template does) and labels the
// tokens that start inside a span (all tokens when train_all).
void tokenize_with_spans(const text::Tokenizer& tok, const std::string& text,
                         const std::vector<std::pair<size_t, size_t>>& spans, bool train_all,
                         std::vector<int32_t>* ids, std::vector<int32_t>* labels);

// The template context transformers builds: messages, bos/eos tokens, add_generation_prompt.
nlohmann::ordered_json chat_context(const text::Tokenizer& tok, const nlohmann::ordered_json& messages,
                                    bool add_generation_prompt, const ChatOptions& opts);

}  // namespace distillery
