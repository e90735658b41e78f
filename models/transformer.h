// The decoder-only transformer of the llama / qwen2 / qwen3 / mistral families and the MoE families
// mixtral / qwen2_moe / qwen3_moe / deepseek_v2 / deepseek_v3, with the Hugging Face module tree,
// so named_parameters() (and the router buffers) are exactly the checkpoint's tensor names
// (model.layers.0.self_attn.q_proj.weight, ...). Variants are chosen at construction.
//
// Packed rows: `position_ids` restart at 0 for every document and `doc_ids` label each token's
// document, so attention never crosses a document boundary.
//
// Tensor parallelism (ModelParallel::tp): attention heads, MLP and expert widths, and the vocabulary
// are split over the tp group (docs/parallelism.md); parameter names stay the checkpoint's, holding
// this rank's slice. Expert parallelism (ModelParallel::ep): each rank holds E/ep routed experts.
#pragma once

#include <torch/torch.h>

#include <deque>

#include "parallel/embedding.h"
#include "parallel/linear.h"
#include "models/layers.h"
#include "models/lm_head.h"
#include "models/mla.h"
#include "models/model_config.h"
#include "models/moe.h"

namespace distillery {

class AttentionImpl : public torch::nn::Module {
 public:
  // Under tp each rank holds H/tp query heads and Hkv/tp key/value heads, or, when tp > Hkv, the
  // one key/value head its query heads use (replicated over tp/Hkv ranks).
  AttentionImpl(const TransformerConfig& cfg, const parallel::ModelParallel& mp = {});
  // [B, T, hidden]; with `cache`, attends to its keys first and appends this call's.
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in, KvLayer* cache = nullptr);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qwen3 only

 private:
  int64_t heads_, kv_heads_, head_dim_;  // this rank's
  std::shared_ptr<parallel::Communicator> tp_;
};
TORCH_MODULE(Attention);

// One attention and one feed-forward variant, chosen by the config for layer `index`.
class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const TransformerConfig& cfg, int64_t index, const parallel::ModelParallel& mp = {});
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in, RouterStats* router = nullptr,
                        KvLayer* cache = nullptr);
  Attention self_attn{nullptr};     // GQA attention ("self_attn")
  MlaAttention mla{nullptr};        // DeepSeek MLA, also named "self_attn"
  Mlp mlp{nullptr};                 // dense feed-forward ("mlp")
  SparseMoeBlock moe{nullptr};      // MoE feed-forward ("mlp"; Mixtral: "block_sparse_moe")
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

class DecoderImpl : public torch::nn::Module {
 public:
  DecoderImpl(const TransformerConfig& cfg, const parallel::ModelParallel& mp = {});
  VocabEmbedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Decoder);

// Keys and values of every attention layer and the documents of the cached positions, for
// incremental decoding (generation/generate.h). Empty before the first forward that uses it.
struct KvCache {
  std::vector<KvLayer> layers;
  torch::Tensor doc_ids;  // [B, past]: the cached positions' document ids (-1: padding)
  int64_t length() const { return doc_ids.defined() ? doc_ids.size(1) : 0; }
};

// What a forward needs besides token ids. Undefined position_ids/doc_ids mean one document per row.
struct ForwardInputs {
  torch::Tensor input_ids;     // [B, T] int64
  torch::Tensor position_ids;  // [B, T] int64
  torch::Tensor doc_ids;       // [B, T] int64
  RouterStats* router = nullptr;  // MoE models: collects routing statistics when set (token_mask filled in)
  // Incremental decoding: these T positions follow the cache's (position_ids and doc_ids required);
  // their keys and values are appended to it.
  KvCache* cache = nullptr;
};

class CausalLMImpl : public torch::nn::Module {
 public:
  // `mp`: the tensor- and expert-parallel groups this rank's shard belongs to (default: whole model).
  explicit CausalLMImpl(TransformerConfig cfg, parallel::ModelParallel mp = {});
  // Final-norm hidden states [B, T, hidden]; the loss applies lm_head in chunks (models/lm_head.h).
  torch::Tensor forward(const ForwardInputs& in);
  // [.., vocab] logits for hidden states [.., hidden], in fp32 (under tp gathered over the group,
  // without gradient: for inspection and generation, never for the loss).
  torch::Tensor logits(const torch::Tensor& hidden);
  // lm_head.weight (merged with its adapter when LoRA targets it), or the embedding matrix when tied:
  // [vocab, hidden], under tp this rank's vocabulary rows [vocab_start(), vocab_start() + V/tp).
  torch::Tensor output_weight();
  int64_t vocab_start() const { return model->embed_tokens->vocab_start(); }
  // The LM-head ops of models/lm_head.h through this model's output weight and tp group: hidden
  // [N, H] (final hidden states of the scored positions, e.g. from select_targets), chunked in fp32,
  // vocab-parallel under tp (never forming [N, V] logits), identical on every tp rank.
  //   cross_entropy_sum  0-dim summed cross-entropy of targets [N] (SFT)
  //   token_log_probs    [N] log p(target) (GRPO's policy / old / reference log-probs)
  //   token_entropy      [N] entropy of the next-token distribution, in nats
  //   generalized_jsd_sum  0-dim summed TRL generalized JSD against a teacher (distillation)
  torch::Tensor cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& targets, int64_t chunk_tokens);
  torch::Tensor token_log_probs(const torch::Tensor& hidden, const torch::Tensor& targets, int64_t chunk_tokens);
  torch::Tensor token_entropy(const torch::Tensor& hidden, int64_t chunk_tokens);
  torch::Tensor generalized_jsd_sum(const torch::Tensor& hidden, const DenseTeacher& teacher, GeneralizedJsd divergence,
                                    int64_t chunk_tokens);
  torch::Tensor generalized_jsd_sum(const torch::Tensor& hidden, const TopKTeacher& teacher, GeneralizedJsd divergence,
                                    int64_t chunk_tokens);
  const parallel::ModelParallel& parallel() const { return mp_; }
  // While set, every forward in training mode with grad enabled and no ForwardInputs::router appends
  // its routing statistics to *sink (the loop's MoE balancing, trainer/moe_balancing.h); nullptr stops.
  // Forwards under no_grad (generation, evaluation, reference passes) never record.
  void record_routing(std::deque<RouterStats>* sink) { routing_sink_ = sink; }
  // Routed experts each MoE layer holds on this rank (num_experts / ep); 0 for dense models.
  int64_t experts_per_rank() const { return cfg_.moe.enabled() ? cfg_.moe.num_experts / mp_.ep_size() : 0; }
  // HF's _init_weights: Linear/Embedding ~ N(0, initializer_range), biases 0, norms 1.
  void init_weights(uint64_t seed);

  const TransformerConfig& config() const { return cfg_; }
  Decoder model{nullptr};
  Linear lm_head{nullptr};  // absent when tie_word_embeddings

 private:
  TransformerConfig cfg_;
  parallel::ModelParallel mp_;
  RotaryEmbedding rope_;
  std::deque<RouterStats>* routing_sink_ = nullptr;
};
TORCH_MODULE(CausalLM);

}  // namespace distillery
