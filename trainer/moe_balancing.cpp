#include "trainer/moe_balancing.h"

#include "models/moe_losses.h"

namespace distillery {

MoeBalancing::MoeBalancing(const MoeSection& cfg, CausalLM model)
    : cfg_(cfg), model_(std::move(model)) {
  const auto& mc = model_->config().moe;
  active_ = mc.enabled() && mc.num_sparse_layers() > 0;
}

MoeBalancing::~MoeBalancing() { model_->record_routing(nullptr); }

void MoeBalancing::begin_micro_batch() {
  if (!active_) return;
  recorded_.clear();
  model_->record_routing(&recorded_);
}

torch::Tensor MoeBalancing::finish_micro_batch(torch::Tensor loss, int64_t step_tokens, MetricSums& metrics) {
  if (!active_) return loss;
  model_->record_routing(nullptr);
  const auto& mc = model_->config();
  const double aux_coef = cfg_.aux_coef_for(mc), z_coef = cfg_.z_loss_coef;
  for (const RouterStats& router : recorded_) {
    auto terms = moe_loss_terms(router, mc.moe.num_experts, step_tokens);
    if (aux_coef > 0) loss = loss + aux_coef * terms.aux;
    if (z_coef > 0) loss = loss + z_coef * terms.z;
    const double share = static_cast<double>(terms.tokens) / static_cast<double>(std::max<int64_t>(1, step_tokens));
    step_counts_ = step_counts_.defined() ? step_counts_ + terms.layer_counts.cpu() : terms.layer_counts.cpu();
    metrics.add("moe_aux_loss", terms.aux.item<double>());
    metrics.add("moe_z_loss", terms.z.item<double>());
    metrics.add("moe_load_max_over_mean", terms.load_max_over_mean * share);
    metrics.add("moe_load_min_over_mean", terms.load_min_over_mean * share);
  }
  recorded_.clear();
  return loss;
}

void MoeBalancing::end_step(parallel::Communicator& dp) {
  if (!active_) return;
  auto counts = std::move(step_counts_);
  step_counts_ = torch::Tensor();
  if (cfg_.bias_update_rate == 0 || !counts.defined()) return;
  counts = counts.to(torch::kFloat64).contiguous();
  dp.allreduce(counts);  // every dp rank (ep ranks included) routed its own tokens
  update_correction_bias(model_, counts, cfg_.bias_update_rate);
}

}  // namespace distillery
