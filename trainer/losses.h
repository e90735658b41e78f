// Token-level losses on top of the final hidden states.
#pragma once

#include <torch/torch.h>

namespace distillery {

constexpr int64_t kIgnoreIndex = -100;

// Sum over tokens of cross-entropy(hidden @ weight^T, targets), computed in fp32 in chunks of
// `chunk_tokens` rows: the [tokens, vocab] fp32 logits never exist at once. Gradients for hidden
// and weight are formed chunk by chunk during the forward and scaled in backward.
//   hidden  [N, H] (only the positions that have a target), weight [V, H], targets [N] int64.
// Returns a 0-dim fp32 tensor: the summed loss (divide by the step's target-token count outside).
torch::Tensor fused_linear_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                             const torch::Tensor& targets, int64_t chunk_tokens);

// The backward of a loss whose gradients were formed during its forward: each saved gradient (or
// undefined) times the incoming gradient of the scalar loss.
std::vector<torch::Tensor> scale_precomputed_grads(const std::vector<torch::Tensor>& saved, const torch::Tensor& g);

// Rows of hidden [B, T, H] whose target is not kIgnoreIndex, and those targets: ([N, H], [N]).
std::pair<torch::Tensor, torch::Tensor> select_targets(const torch::Tensor& hidden, const torch::Tensor& targets);

}  // namespace distillery
