// Building blocks every decoder variant shares: rotary embeddings (default, linear, llama3, yarn),
// the packed-document attention mask, RMSNorm and the gated SiLU MLP (dense layers, routed and
// shared experts alike).
#pragma once

#include <torch/torch.h>

#include <optional>

#include "parallel/linear.h"
#include "models/model_config.h"

namespace distillery {

// Rotary embedding tables for given positions (HF rotate_half convention) over cfg.head_dim
// dimensions (MLA: the qk_rope_head_dim part).
class RotaryEmbedding {
 public:
  explicit RotaryEmbedding(const TransformerConfig& cfg);
  // cos, sin: [B, 1, T, head_dim] float32 for position_ids [B, T], both times attention_scaling().
  std::pair<torch::Tensor, torch::Tensor> tables(const torch::Tensor& position_ids) const;
  const torch::Tensor& inv_freq() const { return inv_freq_; }
  // yarn: rope_scaling's attention factor; 1 for the other types.
  double attention_scaling() const { return attention_scaling_; }

 private:
  torch::Tensor inv_freq_;  // [head_dim / 2] float32
  double attention_scaling_ = 1.0;
};

// x [B, H, T, D] rotated by cos/sin [B, 1, T, D].
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// [B, 1, T, T] bool: query i may attend key j (same document, causal, within the sliding window).
torch::Tensor attention_mask(const torch::Tensor& doc_ids, int64_t seq_len, std::optional<int64_t> sliding_window,
                             torch::Device device);

// [B, 1, Tq, past + Tq] bool for queries that follow `past` cached keys: query i (absolute index
// past + i) may attend key j when j <= past + i, both are in the same document and, with a
// window, past + i - j < window. q_doc [B, Tq], k_doc [B, past + Tq].
torch::Tensor attention_mask_after(const torch::Tensor& q_doc, const torch::Tensor& k_doc,
                                   std::optional<int64_t> sliding_window);

struct AttentionInputs {
  torch::Tensor cos, sin;  // [B, 1, T, D]
  torch::Tensor allowed;   // [B, 1, T, past + T]
};

// One attention layer's keys and values so far, for incremental decoding: [B, heads, past, D]
// as the layer uses them (after rotary; this rank's heads under tp). Empty before the first call.
struct KvLayer {
  torch::Tensor k, v;
  // Appends this call's k/v (dim 2) and returns everything cached so far.
  std::pair<torch::Tensor, torch::Tensor> append(const torch::Tensor& k_new, const torch::Tensor& v_new);
};

class RMSNormImpl : public torch::nn::Module, public parallel::TpSharded {
 public:
  // tp_partial: the norm is applied to this rank's attention heads only (qk_norm under tp), so its
  // gradient is summed over tp.
  RMSNormImpl(int64_t dim, double eps, bool tp_partial = false);
  torch::Tensor forward(const torch::Tensor& x);
  std::vector<std::pair<std::string, parallel::TpShard>> tp_shards() const override;
  torch::Tensor weight;

 private:
  double eps_;
  bool tp_partial_;
};
TORCH_MODULE(RMSNorm);

// down(silu(gate(x)) * up(x)). Mixtral names its experts' projections w1 (gate), w3 (up), w2 (down).
// Under tp, gate/up are column- and down row-parallel over the intermediate width; collective=false
// leaves the input's copy_to_tp and the output's reduce_from_tp to the caller (routed experts).
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const TransformerConfig& cfg, const parallel::ModelParallel& mp = {});  // a dense layer
  MlpImpl(int64_t hidden, int64_t intermediate, bool bias, bool w123_names = false,
          const parallel::ModelParallel& mp = {}, bool collective = true);
  torch::Tensor forward(const torch::Tensor& x);
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  std::shared_ptr<parallel::Communicator> copy_tp_;  // set when forward applies copy_to_tp itself
};
TORCH_MODULE(Mlp);

}  // namespace distillery
