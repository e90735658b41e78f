#include "trainer/transformer.h"

#include <cmath>

#include "trainer/torch_compat.h"

namespace distillery {
namespace nn = torch::nn;

RotaryEmbedding::RotaryEmbedding(const TransformerConfig& cfg) {
  const int64_t d = cfg.head_dim;
  auto inv = 1.0 / torch::pow(cfg.rope_theta, torch::arange(0, d, 2, torch::kFloat64) / static_cast<double>(d));
  const auto& rs = cfg.rope_scaling;
  if (rs.type == "linear") {
    inv = inv / rs.factor;
  } else if (rs.type == "llama3") {
    // Llama 3.1: long wavelengths are divided by `factor`, short ones kept, the band between blended.
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    auto wavelen = 2 * M_PI / inv;
    auto scaled = torch::where(wavelen > low_wavelen, inv / rs.factor, inv);
    auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto blended = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = torch::where(medium, blended, scaled);
  }
  inv_freq_ = inv.to(torch::kFloat32);
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::tables(const torch::Tensor& position_ids) const {
  auto inv = inv_freq_.to(position_ids.device());
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv;  // [B, T, D/2]
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);              // [B, 1, T, D]
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);  // rotate_half
  return (x * cos.to(x.scalar_type())) + (rotated * sin.to(x.scalar_type()));
}

torch::Tensor attention_mask(const torch::Tensor& doc_ids, int64_t seq_len, std::optional<int64_t> sliding_window,
                             torch::Device device) {
  auto idx = torch::arange(seq_len, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto q = idx.unsqueeze(1), k = idx.unsqueeze(0);
  auto allowed = k <= q;                                              // [T, T] causal
  if (sliding_window) allowed = allowed.logical_and((q - k) < *sliding_window);
  allowed = allowed.unsqueeze(0).unsqueeze(0);                        // [1, 1, T, T]
  if (doc_ids.defined()) {
    auto same = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1);         // [B, T, T]
    allowed = allowed.logical_and(same.unsqueeze(1));                 // [B, 1, T, T]
  }
  return allowed;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * h.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const TransformerConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, heads_ * head_dim_, c.qkv_bias));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  o_proj = register_module("o_proj", Linear(heads_ * head_dim_, c.hidden_size, c.o_bias));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, c.rms_norm_eps));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const AttentionInputs& in) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = q_proj(x).view({B, T, heads_, head_dim_});      // [B, T, H, D]
  auto k = k_proj(x).view({B, T, kv_heads_, head_dim_});   // [B, T, Hkv, D]
  auto v = v_proj(x).view({B, T, kv_heads_, head_dim_});
  if (q_norm) q = q_norm(q), k = k_norm(k);
  q = apply_rotary(q.transpose(1, 2), in.cos, in.sin);     // [B, H, T, D]
  k = apply_rotary(k.transpose(1, 2), in.cos, in.sin);     // [B, Hkv, T, D]
  v = v.transpose(1, 2);
  if (kv_heads_ != heads_) {                               // GQA: each kv head serves H/Hkv query heads
    k = k.repeat_interleave(heads_ / kv_heads_, 1);
    v = v.repeat_interleave(heads_ / kv_heads_, 1);
  }
  auto out = compat::attention(q, k, v, in.allowed, 1.0 / std::sqrt(static_cast<double>(head_dim_)));
  return o_proj(out.transpose(1, 2).reshape({B, T, heads_ * head_dim_}));  // [B, T, hidden]
}

MlpImpl::MlpImpl(const TransformerConfig& c) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const TransformerConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const AttentionInputs& in) {
  auto h = x + self_attn(input_layernorm(x), in);
  return h + mlp(post_attention_layernorm(h));
}

DecoderImpl::DecoderImpl(const TransformerConfig& c) {
  embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(TransformerConfig cfg) : cfg_(std::move(cfg)), rope_(cfg_) {
  model = register_module("model", Decoder(cfg_));
  if (!cfg_.tie_word_embeddings)
    lm_head = register_module("lm_head", Linear(cfg_.hidden_size, cfg_.vocab_size, false));
}

torch::Tensor CausalLMImpl::forward(const ForwardInputs& in) {
  const int64_t B = in.input_ids.size(0), T = in.input_ids.size(1);
  auto positions = in.position_ids.defined()
                       ? in.position_ids
                       : torch::arange(T, in.input_ids.options()).unsqueeze(0).expand({B, T});
  AttentionInputs attn;
  std::tie(attn.cos, attn.sin) = rope_.tables(positions);
  attn.allowed = attention_mask(in.doc_ids, T, cfg_.sliding_window, in.input_ids.device());
  auto h = model->embed_tokens(in.input_ids);  // [B, T, hidden]
  for (const auto& layer : *model->layers) h = layer->as<DecoderLayer>()->forward(h, attn);
  return model->norm(h);
}

torch::Tensor CausalLMImpl::output_weight() {
  return lm_head ? lm_head->effective_weight() : model->embed_tokens->weight;
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& hidden) {
  return torch::matmul(hidden.to(torch::kFloat32), output_weight().to(torch::kFloat32).t());
}

void CausalLMImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& np : named_parameters()) {
    const std::string& name = np.key();
    auto& p = np.value();
    const bool is_norm = name.find("norm.weight") != std::string::npos || name.find("layernorm") != std::string::npos;
    if (is_norm) {
      p.fill_(1.0);
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      p.zero_();
    } else {
      // Draw in fp32 on CPU from our own generator so init is identical on every device.
      auto w = at::normal(0.0, cfg_.initializer_range, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      p.copy_(w);
    }
  }
}

}  // namespace distillery
