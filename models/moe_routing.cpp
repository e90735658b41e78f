#include "models/moe_routing.h"

#include <limits>

namespace distillery {

Routing route_tokens(const torch::Tensor& logits, const MoeConfig& cfg, const torch::Tensor& correction_bias) {
  const int64_t n = logits.size(0), e = cfg.num_experts, k = cfg.num_experts_per_tok;
  const bool sigmoid = cfg.scoring_func == "sigmoid";
  auto scores = sigmoid ? torch::sigmoid(logits) : torch::softmax(logits, -1);  // [N, E]
  Routing r;
  {
    // Selection is not differentiable; the bias steers it without entering the weights.
    torch::NoGradGuard no_grad;
    auto choice = scores.detach();
    if (correction_bias.defined()) choice = choice + correction_bias.to(torch::kFloat32).unsqueeze(0);
    if (cfg.topk_method != "greedy" && cfg.topk_group < cfg.n_group) {
      const int64_t g = cfg.n_group, per = e / g;
      auto grouped = choice.view({n, g, per});
      auto group_score = cfg.topk_method == "noaux_tc" ? std::get<0>(grouped.topk(2, -1)).sum(-1)  // [N, G]
                                                       : grouped.amax(-1);
      auto best = std::get<1>(group_score.topk(cfg.topk_group, -1));                               // [N, topk_group]
      auto keep = torch::zeros({n, g}, choice.options().dtype(torch::kBool)).scatter_(1, best, true);
      keep = keep.unsqueeze(-1).expand({n, g, per}).reshape({n, e});
      choice = choice.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
    }
    r.experts = std::get<1>(choice.topk(k, -1));  // [N, k]
  }
  auto w = scores.gather(1, r.experts);  // [N, k]
  const bool normalized = cfg.norm_topk_prob;
  if (normalized) w = w / (w.sum(-1, /*keepdim=*/true) + 1e-20);
  if (cfg.routed_scaling_factor != 1.0 && !(normalized && cfg.scale_only_unnormalized))
    w = w * cfg.routed_scaling_factor;
  r.weights = w;
  r.probs = sigmoid ? scores / scores.sum(-1, /*keepdim=*/true) : scores;
  return r;
}

}  // namespace distillery
