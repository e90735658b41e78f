// The linear layer every model projection is built from. With tp=1 it is y = x W^T + b, W [out, in].
// An adapter (LoRA, DoRA) can be attached by a separate pass; the layer then delegates its
// forward to it, so model code never changes when a model is adapted.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace distillery {

class LinearImpl;

// Computes the adapted output of `base` for input x (e.g. base(x) + scale * B(A(x))).
class LinearAdapter : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, LinearImpl& base) = 0;
  // The single [out, in] weight equivalent to forward without dropout: for merging, and for callers that
  // need a weight rather than a call (the fused lm_head + loss).
  virtual torch::Tensor merged_weight(LinearImpl& base) = 0;
};

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  // The frozen base computation, ignoring any adapter.
  torch::Tensor base_forward(const torch::Tensor& x) const;
  // `weight`, or the adapter's merged weight when one is attached.
  torch::Tensor effective_weight();
  // Registers `adapter` as child module `name` (its parameters become "<this>.<name>.*").
  void attach_adapter(const std::string& name, std::shared_ptr<LinearAdapter> adapter);
  std::shared_ptr<LinearAdapter> adapter() const { return adapter_; }
  void detach_adapter();

  int64_t in_features, out_features;
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined

 private:
  std::shared_ptr<LinearAdapter> adapter_;
  std::string adapter_name_;
};
TORCH_MODULE(Linear);

}  // namespace distillery
