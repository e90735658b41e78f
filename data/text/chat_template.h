// A model's own chat template (the Jinja `chat_template` of its tokenizer_config.json),
// rendered exactly as Hugging Face transformers' apply_chat_template renders it with jinja2:
// the same whitespace control (trim_blocks, lstrip_blocks), Undefined semantics, Python
// str/dict methods, filters and tests, and transformers' tojson, raise_exception and
// strftime_now. docs/chat_templates.md lists the supported Jinja subset and how parity with
// jinja2 is checked.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace distillery::text {

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Parses `source` once. `origin` names where it came from, e.g.
  // "models/qwen3/tokenizer_config.json: chat_template"; every error message starts with it.
  // Throws distillery::UserError for a syntax error or a construct this interpreter does not
  // support, naming the template line.
  ChatTemplate(std::string source, std::string origin);

  // Renders with `context` as the template's variables. Build it as transformers does:
  // `messages`, `add_generation_prompt`, `tools` and `documents` (null when not given), the
  // tokenizer's special tokens (`bos_token`, `eos_token`, ... as strings, absent when unset),
  // plus any extra keyword such as `enable_thinking`. A key left out is Undefined to the
  // template, a null is None. Pass an ordered_json to keep Python's dict order (what `tojson`
  // and `items()` show); nlohmann::json sorts object keys. Throws distillery::UserError naming
  // the template line for a render error, including the template's own raise_exception().
  // Thread-safe: concurrent renders share only the immutable parse tree.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  // A render plus the [begin, end) byte spans of the text each {% generation %} ...
  // {% endgeneration %} block emitted, in output order: the markers transformers reads for
  // apply_chat_template(return_assistant_tokens_mask=True). Same context and errors as render();
  // a generation block rendered inside a macro, set block or filter block throws UserError (its
  // place in the output cannot be known).
  struct Tracked {
    std::string text;
    std::vector<std::pair<size_t, size_t>> generation;
  };
  Tracked render_tracked(const nlohmann::ordered_json& context) const;

  // Whether the template holds any {% generation %} block.
  bool has_generation_blocks() const { return has_generation_; }

  const std::string& source() const { return source_; }
  const std::string& origin() const { return origin_; }

 private:
  template <typename Json>
  Tracked render_json(const Json& context) const;

  std::string source_;
  std::string origin_;
  bool has_generation_ = false;
  std::shared_ptr<const jinja::Template> tree_;
};

// The chat template of a Hugging Face model directory, found where transformers looks:
// chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or a list of
// {"name", "template"} from which `name` is picked, "default" when empty). Throws
// distillery::UserError when the directory has none.
ChatTemplate load_chat_template(const std::string& model_dir, const std::string& name = "");

}  // namespace distillery::text
