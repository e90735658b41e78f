// The decoder-only transformer of the llama / qwen2 / qwen3 / mistral families and the MoE families
// mixtral / qwen2_moe / qwen3_moe / deepseek_v2 / deepseek_v3, with the Hugging Face module tree,
// so named_parameters() (and the router buffers) are exactly the checkpoint's tensor names
// (model.layers.0.self_attn.q_proj.weight, ...). Variants are chosen at construction.
//
// Packed rows: `position_ids` restart at 0 for every document and `doc_ids` label each token's
// document, so attention never crosses a document boundary.
#pragma once

#include <torch/torch.h>

#include "parallel/linear.h"
#include "trainer/layers.h"
#include "trainer/mla.h"
#include "trainer/model_config.h"
#include "trainer/moe.h"

namespace distillery {

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const TransformerConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in);  // [B, T, hidden]
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qwen3 only

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

// One attention and one feed-forward variant, chosen by the config for layer `index`.
class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const TransformerConfig& cfg, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in, RouterStats* router = nullptr);
  Attention self_attn{nullptr};     // GQA attention ("self_attn")
  MlaAttention mla{nullptr};        // DeepSeek MLA, also named "self_attn"
  Mlp mlp{nullptr};                 // dense feed-forward ("mlp")
  SparseMoeBlock moe{nullptr};      // MoE feed-forward ("mlp"; Mixtral: "block_sparse_moe")
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const TransformerConfig& cfg);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Decoder);

// What a forward needs besides token ids. Undefined position_ids/doc_ids mean one document per row.
struct ForwardInputs {
  torch::Tensor input_ids;     // [B, T] int64
  torch::Tensor position_ids;  // [B, T] int64
  torch::Tensor doc_ids;       // [B, T] int64
  RouterStats* router = nullptr;  // MoE models: collects routing statistics when set (token_mask filled in)
};

class CausalLMImpl : public torch::nn::Module {
 public:
  explicit CausalLMImpl(TransformerConfig cfg);
  // Final-norm hidden states [B, T, hidden]; the loss applies lm_head in chunks (trainer/losses.h).
  torch::Tensor forward(const ForwardInputs& in);
  // [.., vocab] logits for hidden states [.., hidden], in fp32.
  torch::Tensor logits(const torch::Tensor& hidden);
  // lm_head.weight (merged with its adapter when LoRA targets it), or the embedding matrix when tied: [vocab, hidden].
  torch::Tensor output_weight();
  // HF's _init_weights: Linear/Embedding ~ N(0, initializer_range), biases 0, norms 1.
  void init_weights(uint64_t seed);

  const TransformerConfig& config() const { return cfg_; }
  Decoder model{nullptr};
  Linear lm_head{nullptr};  // absent when tie_word_embeddings

 private:
  TransformerConfig cfg_;
  RotaryEmbedding rope_;
};
TORCH_MODULE(CausalLM);

}  // namespace distillery
