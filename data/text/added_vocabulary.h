// Added tokens (tokenizer.json "added_tokens"): special tokens such as <|im_start|> and extra
// words, matched in the text before pre-tokenization so they are never split.
//
// As in the reference, tokens with normalized=false are found in the raw text, the rest in the
// normalized text; among tokens starting at the same place the longest wins; single_word,
// lstrip and rstrip apply to each match exactly as the reference's find_matches does.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/text/hash_tables.h"

namespace distillery::text {

class Normalizer;
class Regex;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
  std::string normalized_content;  // content after the normalizer (normalized tokens only)
};

// A stretch of text, or an added token, in the order found.
struct TextSegment {
  size_t begin, end;  // byte offsets into the searched text
  int32_t id;         // the added token, or -1 for plain text
};

class AddedVocabulary {
 public:
  AddedVocabulary();
  ~AddedVocabulary();
  AddedVocabulary(AddedVocabulary&&) noexcept;
  AddedVocabulary& operator=(AddedVocabulary&&) noexcept;

  // Registers `token` under token.id, replacing an earlier token with that id or content.
  void add(AddedToken token);
  // Computes normalized contents and builds the matchers; call after the last add().
  void build(const Normalizer* normalizer);

  // Splits `text` into plain stretches and added tokens, using the raw-text tokens
  // (normalized=false) or the normalized-text ones; appends to `out`.
  void split(std::string_view text, bool normalized_tokens, std::vector<TextSegment>& out) const;

  const AddedToken* find(int32_t id) const;
  const AddedToken* find(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }
  int32_t max_id() const;

 private:
  struct Trie;
  std::vector<AddedToken> tokens_;  // sorted by id after build()
  StringIdMap by_content_;          // content -> index into tokens_
  std::unique_ptr<Trie> raw_trie_;
  std::unique_ptr<Trie> normalized_trie_;
  std::unique_ptr<Regex> word_char_;  // Rust regex's \w, for single_word
};

}  // namespace distillery::text
