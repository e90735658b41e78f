// The variables transformers' apply_chat_template gives a chat template: the conversation, the
// tokenizer's special tokens, add_generation_prompt and optional template switches.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "data/text/tokenizer.h"

namespace distillery::text {

nlohmann::ordered_json chat_template_context(const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                             bool add_generation_prompt,
                                             std::optional<bool> enable_thinking = std::nullopt);

}  // namespace distillery::text
