#include "parallel/tp_ops.h"

namespace distillery::parallel {
namespace tp_ops_detail {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor summed(const torch::Tensor& t, Communicator& comm) {
  auto out = t.contiguous().clone();
  comm.allreduce(out);
  return out;
}

// The communicator travels in ctx->saved_data as a raw pointer: the caller's shared_ptr (held by
// the model for its lifetime) outlives every graph built from it.
class CopyToTp : public torch::autograd::Function<CopyToTp> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t comm) {
    ctx->saved_data["comm"] = comm;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    return {summed(g[0], *comm), torch::Tensor()};
  }
};

class ReduceFromTp : public torch::autograd::Function<ReduceFromTp> {
 public:
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x, int64_t comm) {
    return summed(x, *reinterpret_cast<Communicator*>(comm));
  }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0], torch::Tensor()}; }
};

int64_t handle(const std::shared_ptr<Communicator>& c) { return reinterpret_cast<int64_t>(c.get()); }

}  // namespace tp_ops_detail

torch::Tensor copy_to_tp(const torch::Tensor& x, const std::shared_ptr<Communicator>& tp) {
  if (!tp || tp->size() == 1) return x;
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return x;
  return tp_ops_detail::CopyToTp::apply(x, tp_ops_detail::handle(tp));
}

torch::Tensor reduce_from_tp(const torch::Tensor& x, const std::shared_ptr<Communicator>& tp) {
  if (!tp || tp->size() == 1) return x;
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return tp_ops_detail::summed(x, *tp);
  return tp_ops_detail::ReduceFromTp::apply(x, tp_ops_detail::handle(tp));
}

std::vector<torch::Tensor> scale_precomputed_grads(const std::vector<torch::Tensor>& saved, const torch::Tensor& g) {
  std::vector<torch::Tensor> out;
  for (const auto& t : saved) out.push_back(t.defined() ? t * g.to(t.scalar_type()) : torch::Tensor());
  return out;
}

torch::Tensor sum_over_tp(torch::Tensor t, const std::shared_ptr<Communicator>& tp) {
  if (!tp || tp->size() == 1) return t;
  t = t.contiguous();
  tp->allreduce(t);
  return t;
}

}  // namespace distillery::parallel
