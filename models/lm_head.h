// Token-level ops on top of the final hidden states: the output projection (lm_head) fused with
// what an algorithm needs from the next-token distribution, one implementation for one rank and
// for a vocabulary split over tensor parallelism.
//
// Common to every op:
//   hidden  [N, H]    the positions to score (select_targets picks them from [B, T, H]); any
//                     floating dtype; identical on every tp rank. Under tp it must NOT come
//                     through copy_to_tp: the ops sum its gradient over tp themselves.
//   weight  [V/tp, H] the output weight's rows this rank holds (CausalLM::output_weight()): rank r
//                     of the tp group holds vocabulary ids [r*V/tp, (r+1)*V/tp); with tp null or of
//                     size 1 it is the whole [V, H]. Gets this rank's rows of the full gradient, in
//                     its own dtype (a LoRA lm_head passes the gradient on to its adapters).
//   chunk_tokens      rows per chunk: logits exist only as [chunk_tokens, V/tp] fp32 at a time, never
//                     as [N, V] (nor [N, V/tp]) anywhere.
//   tp                the tensor-parallel group (null or one rank: tp=1).
// Everything is computed in fp32; results are identical (bitwise) on every tp rank, and equal to
// the tp=1 result up to fp32 summation order. Ids and targets are global vocabulary ids, checked
// before any collective (UserError naming the range). Collectives are the same on every tp rank
// for the same inputs, and there are none when N == 0 (a tp group shares N; dp replicas may differ).
// Tensors follow hidden's device.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "common/ignore_index.h"
#include "parallel/communicator.h"

namespace distillery {

using TpGroup = std::shared_ptr<parallel::Communicator>;

// Sum over tokens of cross-entropy(hidden @ weight^T, targets) (torch's cross_entropy with
// reduction=sum): sum_n lse_n - logit_n[target_n].
//   targets [N] int64 global ids in [0, V), or kIgnoreIndex (-100: adds 0, no gradient).
// Returns a 0-dim fp32 tensor: the summed loss (divide by the step's target-token count outside).
// Gradients are formed chunk by chunk during the forward (softmax - onehot) and scaled in backward,
// so backward makes no collective and recomputes nothing.
// Collectives: one allgather of [2, c] (each rank's log-sum-exp and target logit) per chunk, plus one
// allreduce of [N, H] fp32 when hidden requires grad. tp=1 keeps the arithmetic of the original
// single-rank version bit for bit.
torch::Tensor fused_linear_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                             const torch::Tensor& targets, int64_t chunk_tokens,
                                             const TpGroup& tp = nullptr);

// Per-token log-probability of the targets, log softmax(hidden @ weight^T)[n, target_n] (GRPO's
// policy, old-policy and reference log-probs; TRL's selective_log_softmax).
//   targets [N] int64 global ids, or kIgnoreIndex (-100: log-prob 0, no gradient).
// Returns [N] fp32. Differentiable in hidden and weight: backward recomputes each chunk's logits
// from the saved log-sum-exps (the upstream gradient [N] must be the same on every tp rank).
// Collectives: forward one allgather of [2, c] per chunk; backward one allreduce of [N, H] fp32 when
// hidden requires grad.
torch::Tensor fused_linear_token_log_probs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                           const torch::Tensor& targets, int64_t chunk_tokens,
                                           const TpGroup& tp = nullptr);

// Per-token entropy of the next-token distribution, H_n = -sum_v p_nv log p_nv, p = softmax(hidden @
// weight^T), in nats. Returns [N] fp32. Differentiable (dH/dlogit_v = -p_v (log p_v + H)), by the same
// recomputing backward as fused_linear_token_log_probs; callers that only log it run it under no_grad.
// Collectives: forward one allgather of [2, c] per chunk; backward as fused_linear_token_log_probs.
torch::Tensor fused_linear_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t chunk_tokens,
                                   const TpGroup& tp = nullptr);

// Rows of hidden [B, T, H] whose target is not kIgnoreIndex, and those targets: ([N, H], [N]).
std::pair<torch::Tensor, torch::Tensor> select_targets(const torch::Tensor& hidden, const torch::Tensor& targets);

}  // namespace distillery
