#include "models/lm_head_shard.h"

#include "common/error.h"
#include "parallel/tp_ops.h"
#include "parallel/vocab_parallel.h"

namespace distillery::lm_head_detail {

VocabShard VocabShard::of(const torch::Tensor& weight, parallel::Communicator* tp) {
  VocabShard s;
  if (tp && tp->size() > 1) s.tp = tp;
  s.rows = weight.size(0);
  s.start = s.tp ? s.tp->rank() * s.rows : 0;
  return s;
}

torch::Tensor VocabShard::gather(const torch::Tensor& mine) const { return parallel::gather_shard_stats(mine, tp); }

void VocabShard::sum_(torch::Tensor& t) const { parallel::sum_shard_partials_(t, tp); }

int64_t comm_handle(const TpGroup& tp) { return reinterpret_cast<int64_t>(tp.get()); }
parallel::Communicator* comm_of(int64_t handle) { return reinterpret_cast<parallel::Communicator*>(handle); }

ShardIds shard_ids(const torch::Tensor& ids, const VocabShard& shard) {
  auto local = ids - shard.start;
  auto owned = local.ge(0).logical_and(local.lt(shard.rows));  // kIgnoreIndex is never owned
  return {local.masked_fill(owned.logical_not(), 0), owned};
}

void check_student(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t chunk_tokens) {
  DIST_ASSERT(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1), "hidden ",
              hidden.sizes(), " weight ", weight.sizes());
  DIST_ASSERT(chunk_tokens > 0, "chunk_tokens ", chunk_tokens);
}

torch::Tensor empty_result(const torch::Tensor& hidden, const torch::Tensor& weight, bool per_token) {
  auto h = per_token ? hidden.sum(1) : hidden.sum();  // [0] or []
  return (h * 0 + weight.sum() * 0).to(torch::kFloat32);
}

PrecomputedGrads::PrecomputedGrads(const torch::Tensor& hidden, const torch::Tensor& weight, const VocabShard& shard)
    : PrecomputedGrads(hidden, weight, shard, torch::GradMode::is_enabled() && hidden.requires_grad(),
                       torch::GradMode::is_enabled() && weight.requires_grad()) {}

PrecomputedGrads::PrecomputedGrads(const torch::Tensor& hidden, const torch::Tensor& weight, const VocabShard& shard,
                                   bool want_hidden, bool want_weight) {
  // Under tp each rank's partial hidden gradient stays fp32 until it is summed over tp, once.
  if (want_hidden)
    d_hidden = torch::empty(hidden.sizes(), shard.tp ? hidden.options().dtype(torch::kFloat32) : hidden.options());
  if (want_weight) d_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
}

void PrecomputedGrads::add(int64_t start, const torch::Tensor& g, const torch::Tensor& h32, const torch::Tensor& w32) {
  if (d_hidden.defined()) d_hidden.narrow(0, start, g.size(0)).copy_(torch::matmul(g, w32));
  if (d_weight.defined()) d_weight.addmm_(g.t(), h32);
}

std::vector<torch::Tensor> PrecomputedGrads::finish(const torch::Tensor& hidden, const torch::Tensor& weight,
                                                    const VocabShard& shard) {
  torch::Tensor dh, dw;
  if (d_hidden.defined()) {
    shard.sum_(d_hidden);
    dh = d_hidden.to(hidden.scalar_type());
  }
  if (d_weight.defined()) dw = d_weight.to(weight.scalar_type());
  return {dh, dw};
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The saved gradients travel as one non-tensor argument: autograd's apply() takes every tensor
// argument for an input, and an undefined one has no device to record.
struct SavedGrads {
  torch::Tensor d_hidden, d_weight;
};

class PrecomputedGradsFunction : public torch::autograd::Function<PrecomputedGradsFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& total, const SavedGrads& grads) {
    ctx->save_for_backward({grads.d_hidden, grads.d_weight});
    return total.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto grads = parallel::scale_precomputed_grads(ctx->get_saved_variables(), grad_out[0]);
    return {grads[0], grads[1], torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor with_precomputed_grads(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& total, const std::vector<torch::Tensor>& grads) {
  DIST_ASSERT(grads.size() == 2);
  if (!grads[0].defined() && !grads[1].defined()) return total;
  return PrecomputedGradsFunction::apply(hidden, weight, total, SavedGrads{grads[0], grads[1]});
}

}  // namespace distillery::lm_head_detail
