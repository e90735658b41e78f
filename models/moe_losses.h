// The router's auxiliary losses and load statistics, from the RouterStats a forward collected.
//
// Load balancing (Switch Transformer; Hugging Face's load_balancing_loss_func):
//   aux = E * sum_e f_e * P_e,  f_e = (tokens routed to e) / tokens,  P_e = mean over tokens of p(e | token),
// where the token set spans all MoE layers (HF concatenates the layers' logits), so aux = k for
// perfectly uniform routing. distillery evaluates it per packed row (one sequence) and averages
// the rows weighted by their tokens, which makes the step's value independent of how rows are
// split into micro-batches and dp ranks (docs/moe.md).
// Router z-loss (ST-MoE): mean over tokens and MoE layers of logsumexp(logits)^2.
#pragma once

#include <torch/torch.h>

#include "models/transformer.h"

namespace distillery {

// aux for groups of tokens: counts, prob_sums [G, E] (tokens routed to e; summed p(e | token)),
// tokens [G] (tokens in the group, counted once per layer). Groups with no tokens give 0. -> [G]
torch::Tensor load_balancing_loss(const torch::Tensor& counts, const torch::Tensor& prob_sums,
                                  const torch::Tensor& tokens, int64_t num_experts);

struct MoeLossTerms {
  torch::Tensor aux;     // 0-dim: sum over this micro-batch's rows of aux(row) * tokens(row) / step_tokens
  torch::Tensor z;       // 0-dim: sum over its tokens and layers of lse^2 / (layers * step_tokens)
  double load_max_over_mean = 0;  // micro-batch load imbalance, averaged over MoE layers
  double load_min_over_mean = 0;
  int64_t tokens = 0;    // real tokens in the micro-batch
  torch::Tensor layer_counts;  // [L, E] fp32: tokens routed to each expert of each MoE layer (no gradient)
};

// The micro-batch's share of the step's auxiliary losses: summing over all micro-batches (and dp
// ranks) gives the token-weighted means. step_tokens: real tokens in the whole optimizer step.
MoeLossTerms moe_loss_terms(const RouterStats& stats, int64_t num_experts, int64_t step_tokens);

// DeepSeek-V3's auxiliary-loss-free balancing (Wang et al. 2024, "Auxiliary-Loss-Free Load Balancing"):
// after an optimizer step, each MoE layer's gate.e_score_correction_bias moves by `rate` towards
// balance: + for experts that received fewer tokens than the layer's mean, - for more.
// counts [L, E]: the step's tokens per expert on all ranks, in MoE-layer order. No-op for rate 0.
void update_correction_bias(CausalLM& model, const torch::Tensor& counts, double rate);

}  // namespace distillery
