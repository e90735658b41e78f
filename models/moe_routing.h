// Router decisions: which k experts each token goes to and with what weight, as the gates of
// Mixtral, Qwen2/3-MoE and DeepSeek-V2/V3 compute them (docs/moe.md).
#pragma once

#include <torch/torch.h>

#include "models/model_config.h"

namespace distillery {

struct Routing {
  torch::Tensor experts;  // [N, k] int64: the chosen experts
  torch::Tensor weights;  // [N, k] fp32: their combine weights, differentiable w.r.t. the logits
  torch::Tensor probs;    // [N, E] fp32: the router's distribution over experts (load-balancing loss)
};

// logits [N, E] fp32. correction_bias [E] (noaux_tc) is added to the scores for choosing experts
// only; the weights are the unbiased scores.
//   softmax scoring: p = softmax(logits); sigmoid scoring: s = sigmoid(logits), probs = s / sum(s).
//   greedy: top-k of the scores. group_limited_greedy / noaux_tc: experts form n_group groups, a
//   group scores its max (v2) or the sum of its top-2 (v3) and only the best topk_group groups
//   compete. norm_topk_prob renormalizes the k weights; routed_scaling_factor multiplies them.
Routing route_tokens(const torch::Tensor& logits, const MoeConfig& cfg, const torch::Tensor& correction_bias);

}  // namespace distillery
