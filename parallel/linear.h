// The linear layer every model projection is built from: y = x W^T + b, W [out, in], optionally
// split over the tensor-parallel group (Megatron's column- and row-parallel layers):
//   column: W holds out/tp rows; the input goes through copy_to_tp, the output stays split.
//   row:    W holds in/tp columns of an input that is already split; the partial outputs are
//           summed over tp (reduce_from_tp), then the bias (whole on every rank) is added.
// in_features/out_features are this rank's sizes. An adapter (LoRA, DoRA) can be attached by a
// separate pass; the layer then delegates its (local) computation to it, so model code never
// changes when a model is adapted.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "parallel/tp_shard.h"

namespace distillery {

class LinearImpl;

// Computes the adapted output of `base` for input x (e.g. base(x) + scale * B(A(x))), on this
// rank's shard: the layer applies the tp collectives around it.
class LinearAdapter : public torch::nn::Module, public parallel::TpSharded {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, LinearImpl& base) = 0;
  // The single [out, in] weight equivalent to forward without dropout: for merging, and for callers that
  // need a weight rather than a call (the fused lm_head + loss).
  virtual torch::Tensor merged_weight(LinearImpl& base) = 0;
};

enum class TpStyle { kNone, kColumn, kRow };

// How a Linear is split: `parts` slices (tp size, or fewer when replicated), this rank holding
// slice `index`. collective=false leaves the copy_to_tp of a column layer's input, or the
// reduce_from_tp of a row layer's output, to the caller, who applies it once for several layers
// (gate and up projections reading one input, the experts of a MoE layer).
struct TpLinear {
  TpStyle style = TpStyle::kNone;
  std::shared_ptr<parallel::Communicator> comm;
  int64_t index = 0, parts = 1;
  bool collective = true;

  // Split over all of `tp` (no-op style when tp has one rank).
  static TpLinear column(const parallel::ModelParallel& mp, bool collective = true);
  static TpLinear row(const parallel::ModelParallel& mp, bool collective = true);
  // Column split into `parts` slices of which tp rank r holds slice r / (tp / parts).
  static TpLinear column_replicated(const parallel::ModelParallel& mp, int64_t parts, bool collective = true);
};

class LinearImpl : public torch::nn::Module, public parallel::TpSharded {
 public:
  // in/out: the full (checkpoint) sizes; the layer holds its shard of them.
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, TpLinear tp = {});
  torch::Tensor forward(const torch::Tensor& x);
  // The frozen local computation, ignoring any adapter: x W^T (+ b, except row-parallel, where the
  // bias is added once after the reduction).
  torch::Tensor base_forward(const torch::Tensor& x) const;
  // The bias base_forward adds: undefined for row-parallel layers.
  torch::Tensor local_bias() const;
  // `weight`, or the adapter's merged weight when one is attached (this rank's shard).
  torch::Tensor effective_weight();
  // Registers `adapter` as child module `name` (its parameters become "<this>.<name>.*").
  void attach_adapter(const std::string& name, std::shared_ptr<LinearAdapter> adapter);
  std::shared_ptr<LinearAdapter> adapter() const { return adapter_; }
  void detach_adapter();
  // false: forward and effective_weight ignore the adapter (it stays attached), e.g. for GRPO's
  // reference policy = the base model (AdaptersDisabled in models/peft/lora.h).
  void set_adapter_enabled(bool enabled) { adapter_enabled_ = enabled; }
  bool adapter_enabled() const { return adapter_enabled_; }
  std::vector<std::pair<std::string, parallel::TpShard>> tp_shards() const override;

  const TpLinear& tp() const { return tp_; }
  // The placement of a tensor laid out [out, in] like the weight (dim 0 / 1 split) or [out] / [in].
  parallel::TpShard out_shard() const;  // dim 0 when column-parallel
  parallel::TpShard in_shard() const;   // dim 1 of [out, in] when row-parallel

  int64_t in_features, out_features;
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined

 private:
  bool active_adapter() const { return adapter_ && adapter_enabled_; }
  TpLinear tp_;
  std::shared_ptr<LinearAdapter> adapter_;
  std::string adapter_name_;
  bool adapter_enabled_ = true;
};
TORCH_MODULE(Linear);

}  // namespace distillery
