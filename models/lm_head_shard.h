// What the LM-head ops (lm_head.h) share: this rank's slice of the vocabulary, where given ids fall
// in it, the per-chunk exchange of statistics and the chunked loop. Internal to models/lm_head*.cpp.
#pragma once

#include <torch/torch.h>

#include "models/lm_head.h"

namespace distillery::lm_head_detail {

// This rank's columns of the logits: vocabulary ids [start, start + rows) of vocab().
struct VocabShard {
  parallel::Communicator* tp = nullptr;  // null: one rank holds the whole vocabulary
  int64_t start = 0, rows = 0;

  // The shard of a [V/tp, H] output weight on this rank of `tp` (null or one rank: tp=1).
  static VocabShard of(const torch::Tensor& weight, parallel::Communicator* tp);
  int size() const { return tp ? tp->size() : 1; }
  int64_t vocab() const { return rows * size(); }
  // Every rank's statistics `mine` -> [tp, ...mine's shape], rank order (parallel::gather_shard_stats).
  torch::Tensor gather(const torch::Tensor& mine) const;
  // t <- its sum over tp, in place (parallel::sum_shard_partials_).
  void sum_(torch::Tensor& t) const;
};

// The communicator travels through autograd as an int64 (as in parallel/tp_ops.cpp): the caller's
// shared_ptr outlives every graph built from it.
int64_t comm_handle(const TpGroup& tp);
parallel::Communicator* comm_of(int64_t handle);

// Global ids [...] (in range, or kIgnoreIndex) on this shard.
struct ShardIds {
  torch::Tensor local;  // [...] id - start where owned, else 0 (any valid column, for gather)
  torch::Tensor owned;  // [...] bool: the id is one of this shard's columns
  ShardIds narrow(int64_t start, int64_t len) const { return {local.narrow(0, start, len), owned.narrow(0, start, len)}; }
};
ShardIds shard_ids(const torch::Tensor& ids, const VocabShard& shard);

// The shapes every op checks first (internal invariants; user errors are checked by each op).
void check_student(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t chunk_tokens);

// Whether an op on hidden and weight must form gradients (grad mode on, and one requires grad).
inline bool wants_grad(const torch::Tensor& hidden, const torch::Tensor& weight) {
  return torch::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
}

// Logits of one chunk of rows in fp32: h [c, H] (any dtype) @ w32^T -> [c, V/tp].
inline torch::Tensor chunk_logits(const torch::Tensor& h, const torch::Tensor& w32) {
  return torch::matmul(h.to(torch::kFloat32), w32.t());
}

// For each chunk [start, start + len) of n rows in order: fn(start, len).
template <typename Fn>
void for_each_chunk(int64_t n, int64_t chunk, Fn&& fn) {
  for (int64_t s = 0; s < n; s += chunk) fn(s, std::min(chunk, n - s));
}

// The result of an op on N = 0 rows: [] (a sum) or [0] (per token) fp32 zeros, still connected to
// hidden and weight so a backward gives them (zero) gradients.
torch::Tensor empty_result(const torch::Tensor& hidden, const torch::Tensor& weight, bool per_token);

// Gradients a scalar loss forms during its forward (the chunked CE and divergences): hidden's
// (partial per rank until finish() sums it over tp) and weight's, each only when wanted.
struct PrecomputedGrads {
  torch::Tensor d_hidden;  // [N, H]: fp32 under tp (summed once), else hidden's dtype
  torch::Tensor d_weight;  // [V/tp, H] fp32
  // Wants a gradient for each input that requires one, when grad mode is on (so: before any
  // NoGradGuard).
  PrecomputedGrads(const torch::Tensor& hidden, const torch::Tensor& weight, const VocabShard& shard);
  // Wants the gradients it is told to (a backward's needs_input_grad).
  PrecomputedGrads(const torch::Tensor& hidden, const torch::Tensor& weight, const VocabShard& shard,
                   bool want_hidden, bool want_weight);
  bool wanted() const { return d_hidden.defined() || d_weight.defined(); }
  // Adds the chunk starting at row `start`: g = dLoss/dlogits [c, V/tp] fp32, h32 its rows [c, H] fp32.
  void add(int64_t start, const torch::Tensor& g, const torch::Tensor& h32, const torch::Tensor& w32);
  // {d_hidden summed over tp, d_weight}, each in its input's dtype (undefined where not wanted).
  std::vector<torch::Tensor> finish(const torch::Tensor& hidden, const torch::Tensor& weight, const VocabShard& shard);
};

// `total` (0-dim, computed without autograd) as a function of hidden and weight whose backward is
// the saved gradients {d_hidden, d_weight} (from PrecomputedGrads::finish) times the incoming
// gradient: no collective and no recompute in backward. Without gradients, total itself.
torch::Tensor with_precomputed_grads(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& total, const std::vector<torch::Tensor>& grads);

}  // namespace distillery::lm_head_detail
