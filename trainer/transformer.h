// The dense decoder-only transformer of the llama / qwen2 / qwen3 / mistral families, with the
// Hugging Face module tree, so named_parameters() are exactly the checkpoint's tensor names
// (model.layers.0.self_attn.q_proj.weight, ...). Variants are chosen at construction.
//
// Packed rows: `position_ids` restart at 0 for every document and `doc_ids` label each token's
// document, so attention never crosses a document boundary.
#pragma once

#include <torch/torch.h>

#include "parallel/linear.h"
#include "trainer/model_config.h"

namespace distillery {

// Rotary embedding tables for given positions (HF rotate_half convention).
class RotaryEmbedding {
 public:
  explicit RotaryEmbedding(const TransformerConfig& cfg);
  // cos, sin: [B, 1, T, head_dim] float32 for position_ids [B, T].
  std::pair<torch::Tensor, torch::Tensor> tables(const torch::Tensor& position_ids) const;
  const torch::Tensor& inv_freq() const { return inv_freq_; }

 private:
  torch::Tensor inv_freq_;  // [head_dim / 2] float32
};

// x [B, H, T, D] rotated by cos/sin [B, 1, T, D].
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// [B, 1, T, T] bool: query i may attend key j (same document, causal, within the sliding window).
torch::Tensor attention_mask(const torch::Tensor& doc_ids, int64_t seq_len, std::optional<int64_t> sliding_window,
                             torch::Device device);

struct AttentionInputs {
  torch::Tensor cos, sin;  // [B, 1, T, D]
  torch::Tensor allowed;   // [B, 1, T, T]
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

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

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const TransformerConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const TransformerConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
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
