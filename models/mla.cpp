#include "models/mla.h"

#include "parallel/tp_ops.h"
#include "common/torch_compat.h"

namespace distillery {

torch::Tensor deinterleave_rope(const torch::Tensor& x) {
  auto sizes = x.sizes().vec();
  const int64_t d = sizes.back();
  sizes.back() = d / 2;
  sizes.push_back(2);
  auto pairs = x.reshape(sizes);                                  // [.., D/2, 2]
  return pairs.transpose(-1, -2).reshape(x.sizes());              // [.., evens | odds]
}

MlaAttentionImpl::MlaAttentionImpl(const TransformerConfig& c, const parallel::ModelParallel& mp)
    : cfg_(c.mla), heads_(c.num_attention_heads) {
  const auto col = TpLinear::column(mp);
  // DeepSeek builds the latent norms with RMSNorm's default eps, not config.rms_norm_eps.
  const double latent_eps = 1e-6;
  const int64_t qk_head = cfg_.qk_nope_head_dim + cfg_.qk_rope_head_dim;
  if (cfg_.q_lora_rank == 0) {
    q_proj = register_module("q_proj", Linear(c.hidden_size, heads_ * qk_head, false, col));
  } else {
    q_a_proj = register_module("q_a_proj", Linear(c.hidden_size, cfg_.q_lora_rank, c.attention_bias));
    q_a_layernorm = register_module("q_a_layernorm", RMSNorm(cfg_.q_lora_rank, latent_eps));
    q_b_proj = register_module("q_b_proj", Linear(cfg_.q_lora_rank, heads_ * qk_head, false, col));
  }
  kv_a_proj_with_mqa = register_module(
      "kv_a_proj_with_mqa", Linear(c.hidden_size, cfg_.kv_lora_rank + cfg_.qk_rope_head_dim, c.attention_bias));
  kv_a_layernorm = register_module("kv_a_layernorm", RMSNorm(cfg_.kv_lora_rank, latent_eps));
  kv_b_proj = register_module(
      "kv_b_proj", Linear(cfg_.kv_lora_rank, heads_ * (cfg_.qk_nope_head_dim + cfg_.v_head_dim), false, col));
  o_proj = register_module("o_proj",
                           Linear(heads_ * cfg_.v_head_dim, c.hidden_size, c.attention_bias, TpLinear::row(mp)));
  heads_ /= mp.tp_size();
  if (mp.tp_size() > 1) tp_ = mp.tp;
}

torch::Tensor MlaAttentionImpl::forward(const torch::Tensor& x, const AttentionInputs& in, KvLayer* cache) {
  const int64_t B = x.size(0), T = x.size(1), H = heads_;
  const int64_t nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim, dv = cfg_.v_head_dim;
  auto q = q_proj ? q_proj(x) : q_b_proj(q_a_layernorm(q_a_proj(x)));    // [B, T, H*(nope+rope)]
  q = q.view({B, T, H, nope + rope}).transpose(1, 2);                     // [B, H, T, nope+rope]
  auto q_nope = q.narrow(-1, 0, nope), q_rot = q.narrow(-1, nope, rope);
  auto ckv = kv_a_proj_with_mqa(x);                                       // [B, T, kv_lora+rope]
  auto latent = ckv.narrow(-1, 0, cfg_.kv_lora_rank);
  // One rope key for all heads; under tp only this rank's heads use it, so its gradient is summed.
  auto k_rot = parallel::copy_to_tp(ckv.narrow(-1, cfg_.kv_lora_rank, rope), tp_).view({B, 1, T, rope});
  auto kv = kv_b_proj(kv_a_layernorm(latent)).view({B, T, H, nope + dv}).transpose(1, 2);  // [B, H, T, nope+v]
  auto k_nope = kv.narrow(-1, 0, nope), v = kv.narrow(-1, nope, dv);
  if (cfg_.rope_interleave) q_rot = deinterleave_rope(q_rot), k_rot = deinterleave_rope(k_rot);
  q_rot = apply_rotary(q_rot, in.cos, in.sin);
  k_rot = apply_rotary(k_rot, in.cos, in.sin).expand({B, H, T, rope});
  auto query = torch::cat({q_nope, q_rot}, -1);                           // [B, H, T, nope+rope]
  auto key = torch::cat({k_nope, k_rot}, -1);
  if (cache) std::tie(key, v) = cache->append(key, v.contiguous());
  auto out = compat::attention(query, key, v.contiguous(), in.allowed, cfg_.softmax_scale);  // [B, H, T, v]
  return o_proj(out.transpose(1, 2).reshape({B, T, H * dv}));             // [B, T, hidden]
}

}  // namespace distillery
