#include "data/text/chat_context.h"

namespace distillery::text {

nlohmann::ordered_json chat_template_context(const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                             bool add_generation_prompt, std::optional<bool> enable_thinking) {
  nlohmann::ordered_json ctx;
  ctx["messages"] = messages;
  // transformers' special_tokens_map leaves unset tokens out: Undefined to the template, not "".
  if (!tok.bos_token().empty()) ctx["bos_token"] = tok.bos_token();
  if (!tok.eos_token().empty()) ctx["eos_token"] = tok.eos_token();
  if (!tok.pad_token().empty()) ctx["pad_token"] = tok.pad_token();
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (enable_thinking) ctx["enable_thinking"] = *enable_thinking;
  return ctx;
}

}  // namespace distillery::text
