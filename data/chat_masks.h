// Conversations -> the exact token ids Hugging Face's apply_chat_template produces, plus the loss
// mask: exactly the text the template emits for each assistant turn (its content, its reasoning
// where the template keeps it, its tool calls and its end-of-turn token) is trained, nothing else.
// Spans come from the template's own structure, never from searching for message text:
//   * a template with {% generation %} blocks marks them itself (transformers'
//     return_assistant_tokens_mask);
//   * otherwise assistant turn i is what rendering messages[:i+1] adds to messages[:i] with the
//     generation prompt, trailing whitespace dropped;
//   * where a template rewrites a turn once later messages follow (Qwen3 drops the reasoning of
//     turns before the last user message), the turn is trained as the final conversation renders
//     it: from its start through its end-of-turn special token.
// Anything else throws a UserError naming the record. docs/chat_templates.md states the rule.
// Spans are mapped onto tokens through each token's bytes, so the ids are those of tokenizing the
// whole rendered text at once.
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

// Renders `messages` (no generation prompt) and the byte spans of its assistant turns, as above.
// `where` (file:line) names the record in errors: a bad message list, a template error, or a
// conversation whose assistant spans cannot be determined.
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
