// What transformers reads from tokenizer_config.json (and chat_template.jinja) on top of
// tokenizer.json: the named special tokens, whether to add BOS/EOS, the chat template and the
// model's maximum length.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace distillery::text {

// A special token as tokenizer_config.json names it: a plain string or an AddedToken dict.
struct SpecialTokenSpec {
  std::string content;
  std::string key;  // where it was named, e.g. "eos_token" or "additional_special_tokens[2]"
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

struct TokenizerConfig {
  std::string path;  // <dir>/tokenizer_config.json (may not exist)
  std::optional<SpecialTokenSpec> bos_token, eos_token, pad_token, unk_token;
  std::vector<SpecialTokenSpec> additional_special_tokens;
  std::optional<bool> add_bos_token, add_eos_token;  // unset when the file does not say
  std::string chat_template;                         // empty when there is none
  std::string chat_template_origin;                  // file (and key) it came from
  std::optional<int64_t> model_max_length;           // unset when absent or "unlimited"

  // Reads <dir>/tokenizer_config.json when present (everything unset otherwise) and
  // <dir>/chat_template.jinja, which takes precedence for the chat template as in transformers.
  static TokenizerConfig load(const std::string& dir);
};

}  // namespace distillery::text
