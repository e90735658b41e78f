#include "models/moe_losses.h"

#include "common/error.h"

namespace distillery {

torch::Tensor load_balancing_loss(const torch::Tensor& counts, const torch::Tensor& prob_sums,
                                  const torch::Tensor& tokens, int64_t num_experts) {
  auto n = tokens.to(torch::kFloat32).clamp_min(1).unsqueeze(1);   // [G, 1]
  auto f = counts / n, p = prob_sums / n;                          // [G, E]
  return static_cast<double>(num_experts) * (f * p).sum(1);        // [G]
}

MoeLossTerms moe_loss_terms(const RouterStats& stats, int64_t num_experts, int64_t step_tokens) {
  DIST_ASSERT(!stats.counts.empty() && stats.token_mask.defined(), "no MoE layer reported routing statistics");
  const auto layers = static_cast<int64_t>(stats.counts.size());
  const double denom = static_cast<double>(std::max<int64_t>(1, step_tokens));
  auto row_tokens = stats.token_mask.to(torch::kFloat32).sum(1);     // [B]
  auto counts = torch::stack(stats.counts).sum(0);                   // [B, E] over layers
  auto probs = torch::stack(stats.prob_sums).sum(0);                 // [B, E]
  MoeLossTerms t;
  t.aux = (load_balancing_loss(counts, probs, row_tokens * layers, num_experts) * row_tokens).sum() / denom;
  t.z = torch::stack(stats.z_sums).sum() / (denom * layers);
  t.tokens = static_cast<int64_t>(row_tokens.sum().item<double>());
  // Per layer over the whole micro-batch: how far the busiest and idlest experts are from the mean.
  auto per_layer = torch::stack(stats.counts).sum(1);                // [L, E]
  t.layer_counts = per_layer.detach();
  auto mean = per_layer.mean(1).clamp_min(1e-9);                     // [L]
  t.load_max_over_mean = (std::get<0>(per_layer.max(1)) / mean).mean().item<double>();
  t.load_min_over_mean = (std::get<0>(per_layer.min(1)) / mean).mean().item<double>();
  return t;
}

void update_correction_bias(CausalLM& model, const torch::Tensor& counts, double rate) {
  if (rate == 0) return;
  torch::NoGradGuard no_grad;
  int64_t layer = 0;
  for (const auto& m : *model->model->layers) {
    auto& block = m->as<DecoderLayer>()->moe;
    if (!block) continue;
    DIST_ASSERT(layer < counts.size(0), "correction-bias update: ", counts.size(0), " layers of counts");
    auto& bias = block->gate->e_score_correction_bias;
    DIST_ASSERT(bias.defined(), "correction-bias update on a router without e_score_correction_bias");
    auto c = counts[layer++].to(torch::kFloat32);
    bias.add_((c.mean() - c).sign().to(bias.device()) * rate);
  }
  DIST_ASSERT(layer == counts.size(0), "correction-bias update: ", counts.size(0), " layers of counts, model has ", layer);
}

}  // namespace distillery
