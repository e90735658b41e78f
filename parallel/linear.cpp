#include "parallel/linear.h"

namespace distillery {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (has_bias) bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor LinearImpl::base_forward(const torch::Tensor& x) const { return torch::linear(x, weight, bias); }

torch::Tensor LinearImpl::effective_weight() { return adapter_ ? adapter_->merged_weight(*this) : weight; }

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  return adapter_ ? adapter_->forward(x, *this) : base_forward(x);
}

void LinearImpl::attach_adapter(const std::string& name, std::shared_ptr<LinearAdapter> adapter) {
  detach_adapter();
  adapter_ = register_module(name, std::move(adapter));
  adapter_name_ = name;
}

void LinearImpl::detach_adapter() {
  if (!adapter_) return;
  unregister_module(adapter_name_);
  adapter_.reset();
  adapter_name_.clear();
}

}  // namespace distillery
