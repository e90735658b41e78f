// DeepSeek-V2/V3 multi-head latent attention with Hugging Face's module tree:
//   q_proj [H*(nope+rope), hidden]                       when q_lora_rank is null, else
//   q_a_proj [q_lora, hidden], q_a_layernorm, q_b_proj [H*(nope+rope), q_lora]
//   kv_a_proj_with_mqa [kv_lora + rope, hidden], kv_a_layernorm, kv_b_proj [H*(nope+v), kv_lora]
//   o_proj [hidden, H*v]
// Each head's query/key is [nope | rope]: the nope part of the key comes from the compressed
// latent per head, the rope part is one rotated key shared by all heads.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

namespace distillery {

// DeepSeek stores each rope vector as interleaved pairs (x0, x1), (x2, x3), ...; Hugging Face's
// rope_interleave reorders it to [x0, x2, ..., x1, x3, ...] so rotate_half rotates those pairs.
// x [.., D] -> [.., D].
torch::Tensor deinterleave_rope(const torch::Tensor& x);

class MlaAttentionImpl : public torch::nn::Module {
 public:
  // Under tp each rank holds H/tp heads: q_proj / q_b_proj and kv_b_proj are column-parallel,
  // o_proj row-parallel; the latent projections and their norms are whole on every rank.
  MlaAttentionImpl(const TransformerConfig& cfg, const parallel::ModelParallel& mp = {});
  // x [B, T, hidden]; `in` holds cos/sin over qk_rope_head_dim and the packed-document mask.
  // With `cache`: attends to its keys first and appends this call's (per-head keys and values).
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in, KvLayer* cache = nullptr);
  Linear q_proj{nullptr};                         // q_lora_rank null
  Linear q_a_proj{nullptr}, q_b_proj{nullptr};    // q_lora_rank set
  RMSNorm q_a_layernorm{nullptr};
  Linear kv_a_proj_with_mqa{nullptr}, kv_b_proj{nullptr}, o_proj{nullptr};
  RMSNorm kv_a_layernorm{nullptr};

 private:
  MlaConfig cfg_;
  int64_t heads_;  // this rank's
  std::shared_ptr<parallel::Communicator> tp_;
};
TORCH_MODULE(MlaAttention);

}  // namespace distillery
