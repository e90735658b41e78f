#include "data/text/tokenizer.h"

#include "data/text/byte_level.h"

#include "data/text/tokenizer_impl.h"
#include "data/text/utf8.h"
#include "data/text/word_cache.h"
#include "common/error.h"

namespace distillery::text {

namespace tokenizer_detail {

// Per-thread buffers for encode(), reused across calls and tokenizers.
struct EncodeScratch {
  std::vector<TextSegment> raw_segments;
  std::vector<TextSegment> normalized_segments;
  std::string normalized;
  PreTokenizeScratch pre;
};

EncodeScratch& scratch() {
  thread_local EncodeScratch s;
  return s;
}

}  // namespace tokenizer_detail

void Tokenizer::Impl::encode(std::string_view text, bool add_special_tokens, std::vector<int32_t>& ids) const {
  const size_t bad = utf8::find_invalid(text);
  DIST_CHECK(bad == std::string_view::npos, "cannot tokenize text that is not valid UTF-8 (byte ", bad, " of ",
             text.size(), ")");
  auto& s = tokenizer_detail::scratch();
  WordCache& cache = WordCache::for_thread(model->cache_owner());
  const size_t first = ids.size();

  s.raw_segments.clear();
  added.split(text, false, s.raw_segments);
  for (const TextSegment& raw : s.raw_segments) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string_view segment = text.substr(raw.begin, raw.end - raw.begin);
    if (normalizer != nullptr && normalizer->normalize(segment, s.normalized)) segment = s.normalized;
    s.normalized_segments.clear();
    added.split(segment, true, s.normalized_segments);
    for (const TextSegment& part : s.normalized_segments) {
      if (part.id >= 0) {
        ids.push_back(part.id);
        continue;
      }
      auto& pre = s.pre;
      pre.pieces.clear();
      pre.owned.clear();
      pre.pieces.push_back({segment.substr(part.begin, part.end - part.begin), false});
      if (pre_tokenizer != nullptr) pre_tokenizer->pre_tokenize(pre);
      for (const Piece& piece : pre.pieces) model->encode(piece, cache, ids);
    }
  }
  if (post_processor != nullptr && add_special_tokens) {
    std::vector<int32_t> sequence(ids.begin() + first, ids.end());
    post_processor->process(sequence, true);
    ids.resize(first);
    ids.insert(ids.end(), sequence.begin(), sequence.end());
  }
}

std::string Tokenizer::Impl::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = nullptr;
    if (const AddedToken* a = added.find(id)) token = a->normalized ? &a->normalized_content : &a->content;
    else token = model->id_to_token(id);
    if (token == nullptr) continue;
    if (skip_special_tokens) {
      // The reference skips a token whose string is the content of a special token.
      const AddedToken* same = added.find(*token);
      if (same != nullptr && same->special) continue;
    }
    tokens.push_back(*token);
  }
  if (decoder == nullptr) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::optional<int32_t> Tokenizer::Impl::token_to_id(std::string_view token) const {
  if (const AddedToken* a = added.find(token)) return a->id;
  const int32_t id = model->token_to_id(token);
  if (id >= 0) return id;
  return std::nullopt;
}

Tokenizer Tokenizer::load(const std::string& dir) { return Tokenizer(load_tokenizer_impl(dir)); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->encode(text, add_special_tokens, ids);
  return ids;
}

void Tokenizer::encode_into(std::string_view text, std::vector<int32_t>& ids, bool add_special_tokens) const {
  impl_->encode(text, add_special_tokens, ids);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

int Tokenizer::vocab_size() const { return std::max(impl_->model->max_id(), impl_->added.max_id()) + 1; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->token_to_id(token); }

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = impl_->added.find(id)) return a->content;
  if (const std::string* t = impl_->model->id_to_token(id)) return *t;
  DIST_FAIL(impl_->directory, ": token id ", id, " is not in the vocabulary (vocab_size ", vocab_size(), ")");
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (const AddedToken* a = impl_->added.find(id)) return a->content;
  const std::string* t = impl_->model->id_to_token(id);
  DIST_CHECK(t != nullptr, impl_->directory, ": token id ", id, " is not in the vocabulary");
  std::string bytes;
  if (byte_level::unmap_chars(*t, bytes)) return bytes;
  return *t;
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = impl_->added.find(id);
  return a != nullptr && a->special;
}

std::vector<std::string> Tokenizer::special_token_texts() const {
  std::vector<std::string> out;
  for (const AddedToken& a : impl_->added.tokens())
    if (a.special) out.push_back(a.content);
  return out;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad_id; }
const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }
const std::string& Tokenizer::pad_token() const { return impl_->pad_token; }
const std::string& Tokenizer::chat_template() const { return impl_->config.chat_template; }
const std::string& Tokenizer::chat_template_origin() const { return impl_->config.chat_template_origin; }
std::optional<int64_t> Tokenizer::model_max_length() const { return impl_->config.model_max_length; }
const std::string& Tokenizer::directory() const { return impl_->directory; }

}  // namespace distillery::text
