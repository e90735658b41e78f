#include "models/lm_head.h"

#include "common/error.h"

namespace distillery {
namespace {

struct ChunkLoss {
  torch::Tensor logits;  // [c, V] fp32
  torch::Tensor lse;     // [c]
  torch::Tensor loss;    // 0-dim: sum of the chunk's token losses
};

// logits = h @ w32^T in fp32 and the chunk's summed cross-entropy.
ChunkLoss chunk_loss(const torch::Tensor& h, const torch::Tensor& w32, const torch::Tensor& t) {
  ChunkLoss c;
  c.logits = torch::matmul(h.to(torch::kFloat32), w32.t());           // [c, V]
  c.lse = torch::logsumexp(c.logits, -1);                              // [c]
  c.loss = (c.lse - c.logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum();
  return c;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class FusedLinearCrossEntropy : public torch::autograd::Function<FusedLinearCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, int64_t chunk) {
    const bool grad_h = hidden.requires_grad(), grad_w = weight.requires_grad();
    const int64_t n = hidden.size(0);
    auto w32 = weight.to(torch::kFloat32);
    auto total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    torch::Tensor dh, dw;
    if (grad_h) dh = torch::empty_like(hidden);
    if (grad_w) dw = torch::zeros_like(w32);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t len = std::min(chunk, n - s);
      auto h = hidden.narrow(0, s, len).to(torch::kFloat32);         // [c, H]
      auto t = targets.narrow(0, s, len);                             // [c]
      ChunkLoss c = chunk_loss(h, w32, t);
      total += c.loss;
      if (grad_h || grad_w) {
        // d(sum CE)/d logits = softmax - onehot(target)
        auto g = c.logits.sub_(c.lse.unsqueeze(1)).exp_();
        g.scatter_add_(1, t.unsqueeze(1), -torch::ones({len, 1}, g.options()));
        if (grad_h) dh.narrow(0, s, len).copy_(torch::matmul(g, w32));
        if (grad_w) dw.addmm_(g.t(), h);
      }
    }
    ctx->save_for_backward({grad_h ? dh : torch::Tensor(), grad_w ? dw.to(weight.scalar_type()) : torch::Tensor()});
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto grads = parallel::scale_precomputed_grads(ctx->get_saved_variables(), grad_out[0]);
    return {grads[0], grads[1], torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_linear_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                             const torch::Tensor& targets, int64_t chunk_tokens) {
  DIST_ASSERT(hidden.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0));
  if (hidden.size(0) == 0) return (hidden.sum() * 0 + weight.sum() * 0).to(torch::kFloat32);
  if (!torch::GradMode::is_enabled()) {
    torch::Tensor total = torch::zeros({}, torch::kFloat32);
    const auto w32 = weight.to(torch::kFloat32);
    for (int64_t s = 0; s < hidden.size(0); s += chunk_tokens) {
      const int64_t len = std::min(chunk_tokens, hidden.size(0) - s);
      total += chunk_loss(hidden.narrow(0, s, len), w32, targets.narrow(0, s, len)).loss;
    }
    return total;
  }
  return FusedLinearCrossEntropy::apply(hidden, weight, targets, chunk_tokens);
}

std::pair<torch::Tensor, torch::Tensor> select_targets(const torch::Tensor& hidden, const torch::Tensor& targets) {
  auto flat_t = targets.reshape({-1});
  auto keep = (flat_t != kIgnoreIndex).nonzero().squeeze(1);                  // [N]
  auto flat_h = hidden.reshape({-1, hidden.size(-1)});                        // [B*T, H]
  return {flat_h.index_select(0, keep), flat_t.index_select(0, keep)};
}

}  // namespace distillery
