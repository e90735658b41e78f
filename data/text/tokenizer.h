// A Hugging Face "fast" tokenizer (tokenizer.json + tokenizer_config.json) that encodes and
// decodes exactly as the `tokenizers` library does, for the byte-level BPE families (Qwen2/2.5/3,
// Llama 3.x, DeepSeek-V3/R1 and others built from the same components).
//
//   auto tok = distillery::text::Tokenizer::load("/models/Qwen3-0.6B");
//   std::vector<int32_t> ids = tok.encode("Hello world");   // no special tokens by default
//   std::string text = tok.decode(ids);                       // == "Hello world"
//
// Pipeline, as in the reference: added tokens are cut out of the raw text; the rest is normalized,
// searched again for normalized added tokens, pre-tokenized into words and each word is BPE
// encoded; with add_special_tokens the post-processor adds BOS/EOS. See docs/tokenizers.md for
// what is supported and how parity with the reference is checked.
//
// A Tokenizer is immutable once loaded: copies share it, and every const method may be called
// from many threads at once (encode caches words per thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distillery::text {

class Tokenizer {
 public:
  // Loads <dir>/tokenizer.json and, when present, <dir>/tokenizer_config.json and
  // <dir>/chat_template.jinja. Unsupported components and malformed files are UserErrors naming
  // the file and JSON path.
  static Tokenizer load(const std::string& dir);

  // Token ids of `text` (valid UTF-8, else UserError). With add_special_tokens the
  // post-processor adds what the model expects around a sequence (e.g. Llama 3's BOS).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // As encode(), appending to `ids`.
  void encode_into(std::string_view text, std::vector<int32_t>& ids, bool add_special_tokens = false) const;

  // Text of `ids`; ids the vocabulary does not have are skipped, as the reference does.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  // Largest token id (model vocabulary or added tokens) + 1.
  int vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string of `id`; UserError when no token has that id.
  std::string id_to_token(int32_t id) const;
  // The bytes of the input text that token `id` stands for (added tokens: their content; BPE
  // tokens: the byte-level characters mapped back to bytes). Concatenated over encode(x), they
  // give x back exactly, so they locate every token in the text (used for loss masks).
  std::string token_bytes(int32_t id) const;
  // Whether `id` is an added token marked special (skipped by decode(..., true)).
  bool is_special(int32_t id) const;
  // The contents of every added token marked special (tokenizer.json "added_tokens", special: true),
  // in id order.
  std::vector<std::string> special_token_texts() const;

  // Special tokens named by tokenizer_config.json (empty / nullopt when it names none).
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& pad_token() const;

  // The chat template source (empty when the model has none) and where it was read from.
  const std::string& chat_template() const;
  const std::string& chat_template_origin() const;
  // tokenizer_config.json's model_max_length; nullopt when absent or "unlimited".
  std::optional<int64_t> model_max_length() const;

  // The directory the tokenizer was loaded from.
  const std::string& directory() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace distillery::text
