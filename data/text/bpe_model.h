// The "model" of tokenizer.json when its type is BPE: a vocabulary and ranked merges.
//
// A word starts as one symbol per character (per byte for byte-level pieces) and the adjacent
// pair with the lowest merge rank is merged, leftmost first, until no pair merges - the result
// the reference's priority-queue loop produces. With ignore_merges, a word that is itself in the
// vocabulary is one token. unk_token, fuse_unk, byte_fallback, continuing_subword_prefix and
// end_of_word_suffix follow the reference; dropout (random merges) is rejected.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/text/hash_tables.h"
#include "data/text/json_node.h"
#include "data/text/pre_tokenizer.h"

namespace distillery::text {

class WordCache;

class BpeModel {
 public:
  // Builds the model described at `node` ("model" of tokenizer.json).
  static std::unique_ptr<BpeModel> parse(const JsonNode& node);

  // Appends the token ids of one piece. `cache` must be WordCache::for_thread(cache_owner()).
  void encode(const Piece& piece, WordCache& cache, std::vector<int32_t>& out) const;

  // -1 when the token is not in the vocabulary.
  int32_t token_to_id(std::string_view token) const { return vocab_.find(token); }
  // nullptr when no token has this id.
  const std::string* id_to_token(int32_t id) const;
  // Number of vocabulary entries (what the reference calls the model's vocab size).
  size_t vocab_entries() const { return vocab_.size(); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  uint64_t cache_owner() const { return cache_owner_; }

 private:
  BpeModel() = default;
  // The ids of `word` (byte-level or not) before caching.
  void tokenize_word(std::string_view word, bool byte_level, std::vector<int32_t>& out) const;
  // Initial symbols of a word read as characters, with prefixes, unk and byte fallback.
  void initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const;
  void merge(std::vector<int32_t>& symbols) const;
  void merge_long(std::vector<int32_t>& symbols) const;

  StringIdMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_used_;
  StringIdMap raw_vocab_;              // the bytes a byte-level token stands for -> id
  std::array<int32_t, 256> byte_ids_;  // id of the token of each single byte, -1 if none
  bool bytes_complete_ = false;        // every byte has a token: the fast byte-level path applies
  MergeMap merges_;
  int32_t unk_id_ = -1;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  std::array<int32_t, 256> byte_fallback_ids_;  // "<0x41>"-style tokens
  bool ignore_merges_ = false;
  uint64_t cache_owner_ = 0;
};

}  // namespace distillery::text
