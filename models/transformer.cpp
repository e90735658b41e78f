#include "models/transformer.h"

#include <cmath>
#include <map>
#include <optional>

#include "parallel/tp_ops.h"
#include "parallel/vocab_parallel.h"
#include "common/error.h"
#include "models/lm_head.h"
#include "common/torch_compat.h"

namespace distillery {
namespace nn = torch::nn;

AttentionImpl::AttentionImpl(const TransformerConfig& c, const parallel::ModelParallel& mp)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  const int64_t tp = mp.tp_size();
  const int64_t kv_parts = std::min<int64_t>(kv_heads_, tp);  // tp > Hkv: each kv head on tp/Hkv ranks
  const auto q_tp = TpLinear::column(mp, false), kv_tp = TpLinear::column_replicated(mp, kv_parts, false);
  q_proj = register_module("q_proj", Linear(c.hidden_size, heads_ * head_dim_, c.qkv_bias, q_tp));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias, kv_tp));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias, kv_tp));
  o_proj = register_module("o_proj", Linear(heads_ * head_dim_, c.hidden_size, c.o_bias, TpLinear::row(mp)));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, c.rms_norm_eps, tp > 1));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, c.rms_norm_eps, tp > 1));
  }
  heads_ /= tp;
  kv_heads_ /= kv_parts;
  if (tp > 1) tp_ = mp.tp;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x_in, const AttentionInputs& in, KvLayer* cache) {
  const int64_t B = x_in.size(0), T = x_in.size(1);
  auto x = parallel::copy_to_tp(x_in, tp_);                // one copy for q, k and v
  auto q = q_proj(x).view({B, T, heads_, head_dim_});      // [B, T, H, D]
  auto k = k_proj(x).view({B, T, kv_heads_, head_dim_});   // [B, T, Hkv, D]
  auto v = v_proj(x).view({B, T, kv_heads_, head_dim_});
  if (q_norm) q = q_norm(q), k = k_norm(k);
  q = apply_rotary(q.transpose(1, 2), in.cos, in.sin);     // [B, H, T, D]
  k = apply_rotary(k.transpose(1, 2), in.cos, in.sin);     // [B, Hkv, T, D]
  v = v.transpose(1, 2);
  if (cache) std::tie(k, v) = cache->append(k, v);         // [B, Hkv, past + T, D]
  if (kv_heads_ != heads_) {                               // GQA: each kv head serves H/Hkv query heads
    k = k.repeat_interleave(heads_ / kv_heads_, 1);
    v = v.repeat_interleave(heads_ / kv_heads_, 1);
  }
  auto out = compat::attention(q, k, v, in.allowed, 1.0 / std::sqrt(static_cast<double>(head_dim_)));
  return o_proj(out.transpose(1, 2).reshape({B, T, heads_ * head_dim_}));  // [B, T, hidden]
}

DecoderLayerImpl::DecoderLayerImpl(const TransformerConfig& c, int64_t index, const parallel::ModelParallel& mp) {
  if (c.mla.enabled)
    mla = register_module("self_attn", MlaAttention(c, mp));
  else
    self_attn = register_module("self_attn", Attention(c, mp));
  if (c.moe.enabled() && c.moe.sparse_layer.at(index))
    moe = register_module(c.moe.block_name, SparseMoeBlock(c, mp));
  else
    mlp = register_module("mlp", Mlp(c, mp));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const AttentionInputs& in, RouterStats* router,
                                        KvLayer* cache) {
  auto a = input_layernorm(x);
  auto h = x + (mla ? mla->forward(a, in, cache) : self_attn->forward(a, in, cache));
  auto f = post_attention_layernorm(h);
  return h + (moe ? moe(f, router) : mlp(f));
}

DecoderImpl::DecoderImpl(const TransformerConfig& c, const parallel::ModelParallel& mp) {
  embed_tokens = register_module("embed_tokens", VocabEmbedding(c.vocab_size, c.hidden_size, mp));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c, i, mp));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(TransformerConfig cfg, parallel::ModelParallel mp)
    : cfg_(std::move(cfg)), mp_(std::move(mp)), rope_(cfg_) {
  if (cfg_.layer_window.empty()) cfg_.layer_window.assign(cfg_.num_hidden_layers, std::nullopt);  // built in code
  DIST_ASSERT(static_cast<int64_t>(cfg_.layer_window.size()) == cfg_.num_hidden_layers,
              "layer_window has one entry per layer");
  model = register_module("model", Decoder(cfg_, mp_));
  // Vocabulary rows split like the embedding's; the loss reduces over tp itself (no copy_to_tp).
  if (!cfg_.tie_word_embeddings)
    lm_head = register_module("lm_head", Linear(cfg_.hidden_size, cfg_.vocab_size, false, TpLinear::column(mp_, false)));
}

torch::Tensor CausalLMImpl::cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& targets,
                                              int64_t chunk_tokens) {
  return fused_linear_cross_entropy_sum(hidden, output_weight(), targets, chunk_tokens, mp_.tp);
}

torch::Tensor CausalLMImpl::token_log_probs(const torch::Tensor& hidden, const torch::Tensor& targets,
                                            int64_t chunk_tokens) {
  return fused_linear_token_log_probs(hidden, output_weight(), targets, chunk_tokens, mp_.tp);
}

torch::Tensor CausalLMImpl::token_entropy(const torch::Tensor& hidden, int64_t chunk_tokens) {
  return fused_linear_entropy(hidden, output_weight(), chunk_tokens, mp_.tp);
}

torch::Tensor CausalLMImpl::generalized_jsd_sum(const torch::Tensor& hidden, const DenseTeacher& teacher,
                                                GeneralizedJsd divergence, int64_t chunk_tokens) {
  return fused_linear_generalized_jsd_sum(hidden, output_weight(), teacher, divergence, chunk_tokens, mp_.tp);
}

torch::Tensor CausalLMImpl::generalized_jsd_sum(const torch::Tensor& hidden, const TopKTeacher& teacher,
                                                GeneralizedJsd divergence, int64_t chunk_tokens) {
  return fused_linear_generalized_jsd_sum(hidden, output_weight(), teacher, divergence, chunk_tokens, mp_.tp);
}

torch::Tensor CausalLMImpl::forward(const ForwardInputs& in) {
  const int64_t B = in.input_ids.size(0), T = in.input_ids.size(1);
  auto positions = in.position_ids.defined()
                       ? in.position_ids
                       : torch::arange(T, in.input_ids.options()).unsqueeze(0).expand({B, T});
  AttentionInputs attn;
  std::tie(attn.cos, attn.sin) = rope_.tables(positions);
  // One mask per distinct window (full attention is the window nullopt); each layer picks its own.
  std::map<std::optional<int64_t>, torch::Tensor> masks;
  torch::Tensor keys;
  if (in.cache) {
    DIST_ASSERT(in.position_ids.defined() && in.doc_ids.defined(), "a cached forward needs position_ids and doc_ids");
    keys = in.cache->doc_ids.defined() ? torch::cat({in.cache->doc_ids, in.doc_ids}, 1) : in.doc_ids;
    in.cache->doc_ids = keys;
    in.cache->layers.resize(model->layers->size());
  }
  for (const auto& w : cfg_.layer_window) {
    if (masks.count(w)) continue;
    masks[w] = in.cache ? attention_mask_after(in.doc_ids, keys, w)
                        : attention_mask(in.doc_ids, T, w, in.input_ids.device());
  }
  RouterStats* router = in.router;
  if (!router && routing_sink_ && is_training() && torch::GradMode::is_enabled())
    router = &routing_sink_->emplace_back();
  if (router && !router->token_mask.defined())  // padding is doc -1; without doc_ids every token is real
    router->token_mask = in.doc_ids.defined() ? in.doc_ids >= 0
                                                 : torch::ones({B, T}, in.input_ids.options().dtype(torch::kBool));
  auto h = model->embed_tokens(in.input_ids);  // [B, T, hidden]
  for (size_t i = 0; i < model->layers->size(); ++i) {
    attn.allowed = masks.at(cfg_.layer_window.at(i));
    h = model->layers[i]->as<DecoderLayer>()->forward(h, attn, router, in.cache ? &in.cache->layers[i] : nullptr);
  }
  return model->norm(h);
}

torch::Tensor CausalLMImpl::output_weight() {
  return lm_head ? lm_head->effective_weight() : model->embed_tokens->weight;
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& hidden) {
  auto local = torch::matmul(hidden.to(torch::kFloat32), output_weight().to(torch::kFloat32).t());  // [.., V/tp]
  return parallel::gather_vocab_columns(local, mp_.tp);                                             // [.., V]
}

void CausalLMImpl::init_weights(uint64_t seed) {
  DIST_ASSERT(mp_.tp_size() == 1 && mp_.ep_size() == 1, "init_weights draws whole models; load shards from a model dir");
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
