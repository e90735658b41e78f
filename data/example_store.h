// Tokenized training examples held compactly: one flat int32 array of ids and one of labels
// (labels aligned with ids, Hugging Face style; kIgnoreIndex = not trained on).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/data_config.h"

namespace distillery {

class ExampleStore {
 public:
  void add(const std::vector<int32_t>& ids, const std::vector<int32_t>& labels);
  size_t size() const { return begin_.size(); }
  int64_t length(size_t i) const { return static_cast<int64_t>(end_[i] - begin_[i]); }
  const int32_t* ids(size_t i) const { return ids_.data() + begin_[i]; }
  const int32_t* labels(size_t i) const { return labels_.data() + begin_[i]; }
  // Tokens that are trained on when the example is cut to its first `len` tokens
  // (position t predicts labels[t + 1]).
  int64_t targets(size_t i, int64_t len) const;
  int64_t total_tokens() const { return static_cast<int64_t>(ids_.size()); }
  // Examples with no target at all (targets(i, length(i)) == 0): they cost compute and teach nothing.
  size_t without_targets() const { return without_targets_; }

 private:
  std::vector<int32_t> ids_, labels_;
  std::vector<uint64_t> begin_, end_;
  size_t without_targets_ = 0;
};

// Reads `data.format: tokenized` JSONL ({"input_ids": [...], "labels": [...]}; labels optional,
// defaulting to input_ids). Ids are checked against `vocab_size`; errors name file:line.
ExampleStore load_tokenized_jsonl(const std::string& path, int64_t vocab_size);

}  // namespace distillery
