// Token-level losses on top of the final hidden states.
#pragma once

#include <torch/torch.h>

#include "common/ignore_index.h"
#include "parallel/tp_ops.h"

namespace distillery {

// Sum over tokens of cross-entropy(hidden @ weight^T, targets), computed in fp32 in chunks of
// `chunk_tokens` rows: the [tokens, vocab] fp32 logits never exist at once. Gradients for hidden
// and weight are formed chunk by chunk during the forward and scaled in backward.
//   hidden  [N, H] (only the positions that have a target), weight [V, H], targets [N] int64.
// Returns a 0-dim fp32 tensor: the summed loss (divide by the step's target-token count outside).
torch::Tensor fused_linear_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                             const torch::Tensor& targets, int64_t chunk_tokens);

// Rows of hidden [B, T, H] whose target is not kIgnoreIndex, and those targets: ([N, H], [N]).
std::pair<torch::Tensor, torch::Tensor> select_targets(const torch::Tensor& hidden, const torch::Tensor& targets);

}  // namespace distillery
