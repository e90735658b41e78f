#include "models/moe.h"

#include "parallel/expert_dispatch.h"
#include "parallel/tp_ops.h"
#include "common/error.h"

namespace distillery {

RouterImpl::RouterImpl(int64_t hidden, int64_t num_experts, bool correction_bias) {
  weight = register_parameter("weight", torch::empty({num_experts, hidden}));
  // A buffer, as in Hugging Face: saved with the model, adjusted by balancing rules, never by gradients.
  if (correction_bias) e_score_correction_bias = register_buffer("e_score_correction_bias", torch::zeros({num_experts}));
}

torch::Tensor RouterImpl::forward(const torch::Tensor& x) {
  // fp32 logits: routing decisions and the softmax are sensitive to rounding in bf16.
  return torch::linear(x.to(torch::kFloat32), weight.to(torch::kFloat32));
}

RoutedExpertsImpl::RoutedExpertsImpl(const TransformerConfig& c, int64_t first, int64_t count,
                                     const parallel::ModelParallel& mp)
    : first_(first), total_(c.moe.num_experts), mp_(mp) {
  if (count < 0) count = total_ - first;
  DIST_ASSERT(first >= 0 && first + count <= total_, "experts [", first, ", ", first + count, ") of ", total_);
  DIST_ASSERT(mp.ep_size() == 1 || (count * mp.ep_size() == total_ && first == mp.ep_rank() * count),
              "experts [", first, ", ", first + count, ") are not ep rank ", mp.ep_rank(), "'s share");
  for (int64_t e = first; e < first + count; ++e)
    experts_.push_back(register_module(std::to_string(e), Mlp(c.hidden_size, c.moe.moe_intermediate_size, /*bias=*/false,
                                                              c.moe.w123_names, mp, /*collective=*/false)));
}

torch::Tensor RoutedExpertsImpl::run_grouped(const torch::Tensor& x_sorted, const std::vector<int64_t>& counts) {
  // Under tp: one copy_to_tp for every expert's input, one reduce_from_tp for all outputs, before the
  // routing weights touch them (their gradient needs the whole output).
  auto in = parallel::copy_to_tp(x_sorted, mp_.tp);
  std::vector<torch::Tensor> outs;
  int64_t offset = 0;
  for (size_t i = 0; i < experts_.size(); ++i) {
    outs.push_back(experts_[i]->forward(in.narrow(0, offset, counts[i])));  // [counts[i], hidden]
    offset += counts[i];
  }
  return parallel::reduce_from_tp(torch::cat(outs), mp_.tp);
}

parallel::LocalExperts RoutedExpertsImpl::local_experts() {
  return {first_, count(), [this](const torch::Tensor& xs, const std::vector<int64_t>& n) { return run_grouped(xs, n); }};
}

torch::Tensor RoutedExpertsImpl::forward(const torch::Tensor& x, const torch::Tensor& experts,
                                         const torch::Tensor& weights) {
  if (mp_.ep_size() > 1) return parallel::expert_parallel_moe(x, experts, weights, local_experts(), mp_.ep);
  const int64_t k = experts.size(1);
  auto slots = experts.reshape({-1});                                       // [N*k] expert of each token slot
  auto order = std::get<1>(torch::sort(slots, /*stable=*/true, 0, false));  // slots grouped by expert
  auto per_expert = torch::bincount(slots, {}, total_).cpu();               // [E]
  const auto* c = per_expert.data_ptr<int64_t>();
  int64_t skip = 0, local = 0;
  for (int64_t e = 0; e < first_; ++e) skip += c[e];
  std::vector<int64_t> counts(c + first_, c + first_ + count());
  for (auto n : counts) local += n;
  auto mine = order.narrow(0, skip, local);                                 // this module's slots, by expert
  auto token = torch::div(mine, k, "floor");                                // [M] token of each slot
  auto y = run_grouped(x.index_select(0, token), counts);                   // [M, hidden]
  auto w = weights.reshape({-1}).index_select(0, mine).unsqueeze(1);        // [M, 1] fp32
  // Accumulate the weighted outputs in fp32, as DeepSeek does, then return in the model dtype.
  auto out = torch::zeros(x.sizes(), x.options().dtype(torch::kFloat32));
  return out.index_add(0, token, y.to(torch::kFloat32) * w).to(x.scalar_type());
}

SparseMoeBlockImpl::SparseMoeBlockImpl(const TransformerConfig& c, const parallel::ModelParallel& mp) : cfg_(c.moe) {
  gate = register_module("gate", Router(c.hidden_size, cfg_.num_experts, cfg_.score_correction_bias));
  const int64_t per_rank = cfg_.num_experts / mp.ep_size();
  experts = register_module("experts", RoutedExperts(c, mp.ep_rank() * per_rank, per_rank, mp));
  if (cfg_.shared_intermediate_size > 0)
    shared_expert = register_module(cfg_.shared_name, Mlp(c.hidden_size, cfg_.shared_intermediate_size, false, false, mp));
  if (cfg_.shared_expert_gate) shared_expert_gate = register_module("shared_expert_gate", Linear(c.hidden_size, 1, false));
}

torch::Tensor SparseMoeBlockImpl::forward(const torch::Tensor& x, RouterStats* stats) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), E = cfg_.num_experts;
  auto h = x;
  if (is_training() && cfg_.router_jitter_noise > 0)  // Mixtral: multiplicative noise on the block's input
    h = h * torch::empty_like(h).uniform_(1.0 - cfg_.router_jitter_noise, 1.0 + cfg_.router_jitter_noise);
  auto flat = h.reshape({B * T, H});                              // [N, H]
  auto logits = gate(flat);                                       // [N, E] fp32
  Routing r = route_tokens(logits, cfg_, gate->e_score_correction_bias);
  if (stats) {
    auto m = stats->token_mask.reshape({B * T, 1}).to(torch::kFloat32);  // [N, 1]
    auto chosen = torch::zeros({B * T, E}, logits.options())
                      .scatter_add_(1, r.experts, torch::ones(r.experts.sizes(), logits.options()));
    stats->prob_sums.push_back((r.probs * m).view({B, T, E}).sum(1));
    stats->counts.push_back((chosen * m).view({B, T, E}).sum(1));
    stats->z_sums.push_back((torch::logsumexp(logits, -1, true).pow(2) * m).view({B, T}).sum(1));
  }
  auto out = experts(flat, r.experts, r.weights);                 // [N, H]
  if (shared_expert) {
    auto s = shared_expert(flat);
    if (shared_expert_gate) s = torch::sigmoid(shared_expert_gate(flat)) * s;
    out = out + s;
  }
  return out.view({B, T, H});
}

}  // namespace distillery
