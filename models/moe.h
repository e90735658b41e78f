// The sparse feed-forward of the MoE families with Hugging Face's module tree:
//   <block>.gate.weight [E, hidden] (+ .e_score_correction_bias [E] for DeepSeek-V3)
//   <block>.experts.<e>.{gate_proj,up_proj,down_proj} (Mixtral: w1, w3, w2)
//   <block>.shared_expert(s).* and, for Qwen2-MoE, <block>.shared_expert_gate.weight [1, hidden]
// Dropless: every token reaches its k experts. The model does no communication: an expert-parallel
// pass builds RoutedExperts with a slice of the expert list and moves tokens around run_grouped().
#pragma once

#include <torch/torch.h>

#include <vector>

#include "models/layers.h"
#include "parallel/expert_dispatch.h"
#include "models/moe_routing.h"

namespace distillery {

// What a forward's MoE layers report for the auxiliary losses and metrics (models/moe_losses.h).
// The caller sets token_mask; each MoE layer appends one entry to each list.
struct RouterStats {
  torch::Tensor token_mask;              // [B, T] bool: real tokens (padding excluded from every statistic)
  std::vector<torch::Tensor> prob_sums;  // [B, E] fp32: per row, sum over its tokens of p(e | token); differentiable
  std::vector<torch::Tensor> counts;     // [B, E] fp32: per row, tokens routed to e (no gradient)
  std::vector<torch::Tensor> z_sums;     // [B] fp32: per row, sum over its tokens of logsumexp(logits)^2; differentiable
};

// The router: logits = x W^T in fp32, W [E, hidden].
class RouterImpl : public torch::nn::Module {
 public:
  RouterImpl(int64_t hidden, int64_t num_experts, bool correction_bias);
  torch::Tensor forward(const torch::Tensor& x);  // [N, E] fp32
  torch::Tensor weight;                 // [E, hidden]
  torch::Tensor e_score_correction_bias;  // [E] buffer (noaux_tc), or undefined
};
TORCH_MODULE(Router);

class RoutedExpertsImpl : public torch::nn::Module {
 public:
  // Holds experts [first, first + count) of cfg.moe.num_experts (count < 0: all), each registered
  // under its global index so checkpoint names do not depend on how experts are sharded.
  // Under tp each expert's width is split (gate/up column-, down row-parallel); run_grouped applies the
  // tp collectives once for all experts. With mp.ep set, forward dispatches tokens to the experts'
  // ranks (parallel/expert_dispatch.h) and this module must hold the ep rank's slice.
  explicit RoutedExpertsImpl(const TransformerConfig& cfg, int64_t first = 0, int64_t count = -1,
                             const parallel::ModelParallel& mp = {});
  // sum_j weights[n, j] * expert_{experts[n, j]}(x[n]) over the experts held here: [N, hidden].
  // Token slots are sorted by expert so each expert runs once on all of its tokens.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights);
  // x_sorted [M, hidden] holds counts[i] rows for local expert i, in order: returns their outputs.
  // Every expert runs (on zero rows if it has none) so every expert parameter gets a gradient.
  torch::Tensor run_grouped(const torch::Tensor& x_sorted, const std::vector<int64_t>& counts);
  int64_t first() const { return first_; }
  int64_t count() const { return static_cast<int64_t>(experts_.size()); }
  int64_t total() const { return total_; }
  // These experts as parallel/expert_dispatch.h sees them (valid while this module lives).
  parallel::LocalExperts local_experts();
  Mlp& expert(int64_t global_index) { return experts_.at(global_index - first_); }

 private:
  int64_t first_, total_;
  std::vector<Mlp> experts_;
  parallel::ModelParallel mp_;
};
TORCH_MODULE(RoutedExperts);

class SparseMoeBlockImpl : public torch::nn::Module {
 public:
  // Experts [ep_rank E/ep, (ep_rank+1) E/ep) under expert parallelism; router and shared expert on every rank.
  SparseMoeBlockImpl(const TransformerConfig& cfg, const parallel::ModelParallel& mp = {});
  // x [B, T, hidden] -> [B, T, hidden]; appends this layer's routing statistics to `stats` when given.
  torch::Tensor forward(const torch::Tensor& x, RouterStats* stats = nullptr);
  Router gate{nullptr};
  RoutedExperts experts{nullptr};
  Mlp shared_expert{nullptr};        // registered as shared_expert (qwen2_moe) or shared_experts (deepseek)
  Linear shared_expert_gate{nullptr};  // qwen2_moe

 private:
  MoeConfig cfg_;
};
TORCH_MODULE(SparseMoeBlock);

}  // namespace distillery
