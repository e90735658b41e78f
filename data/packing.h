// Packing examples into rows of max_seq_len tokens, and the seeded, resumable stream of rows
// that feeds optimizer steps. Documents keep their boundaries: position ids restart at 0 for
// each, doc ids keep attention inside each, and the last token of a document predicts nothing.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "data/example_store.h"

namespace distillery {

struct RowPiece {
  uint32_t example;
  int32_t length;  // tokens taken from the example's start (after truncation)
};
using PackedRow = std::vector<RowPiece>;

struct PackStats {
  int64_t truncated = 0, dropped = 0;
};

// Greedily fills rows in `order` (one example per row when !packing); an example longer than
// max_seq_len is cut (truncation "right") or skipped ("drop"), counted in stats.
std::vector<PackedRow> pack_rows(const ExampleStore& store, const std::vector<uint32_t>& order, int64_t max_seq_len,
                                 const std::string& truncation, bool packing, PackStats* stats);

struct PackedBatch {
  torch::Tensor input_ids;     // [B, T] int64 (padding: pad id 0)
  torch::Tensor targets;       // [B, T] int64: the next token of the same document, or -100
  torch::Tensor position_ids;  // [B, T] int64, restarting per document
  torch::Tensor doc_ids;       // [B, T] int64, -1 for padding
  int64_t num_targets = 0;
  int64_t num_tokens = 0;      // non-padding tokens
};

PackedBatch make_packed_batch(const ExampleStore& store, const std::vector<PackedRow>& rows, int64_t max_seq_len);
int64_t count_targets(const ExampleStore& store, const PackedRow& row);

// The endless stream of rows, epoch after epoch, each epoch in a permutation seeded by
// (seed, epoch). Its position is two integers, saved in checkpoints.
class RowStream {
 public:
  RowStream(const ExampleStore& store, int64_t max_seq_len, std::string truncation, bool packing, bool shuffle,
            uint64_t seed);
  // The next `n` rows (crossing into the next epoch when needed).
  std::vector<PackedRow> take(int64_t n);
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return pos_; }
  void seek(int64_t epoch, int64_t position);
  int64_t rows_per_epoch() const { return static_cast<int64_t>(rows_.size()); }
  const PackStats& stats() const { return stats_; }

 private:
  void build_epoch();
  const ExampleStore& store_;
  int64_t max_seq_len_;
  std::string truncation_;
  bool packing_;
  bool shuffle_;
  uint64_t seed_;
  int64_t epoch_ = 0, pos_ = 0;
  std::vector<PackedRow> rows_;
  PackStats stats_;
};

}  // namespace distillery
