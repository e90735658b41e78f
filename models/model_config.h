// TransformerConfig: a Hugging Face config.json read into typed fields, for the dense decoder
// families llama (incl. Llama 3.x rope scaling), qwen2, qwen3 and mistral, and the
// mixture-of-experts families mixtral, qwen2_moe, qwen3_moe, deepseek_v2 and deepseek_v3
// (the DeepSeek ones with multi-head latent attention). Missing keys take transformers' defaults
// for the family (models/model_defaults.h); see docs/models.md and docs/moe.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace distillery {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3 | yarn
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, yarn
  double beta_fast = 32.0;        // yarn: rotations above which a dimension is extrapolated
  double beta_slow = 1.0;         // yarn: rotations below which it is interpolated
  double mscale = 0.0;            // yarn (DeepSeek): 0 when absent
  double mscale_all_dim = 0.0;    // yarn (DeepSeek): 0 when absent
  bool truncate = true;           // yarn: floor/ceil the correction range
  // yarn: the factor cos/sin are multiplied by ("attention_factor"; derived from mscale when absent).
  double attention_factor = 1.0;
};

// The sparse feed-forward of the MoE families: a router picks num_experts_per_tok of
// num_experts routed experts per token (dropless), plus optional always-on shared experts.
struct MoeConfig {
  int64_t num_experts = 0;             // routed experts per MoE layer; 0 for dense models
  int64_t num_experts_per_tok = 0;     // k
  int64_t moe_intermediate_size = 0;   // each routed expert's hidden width
  std::vector<bool> sparse_layer;      // per decoder layer: MoE block (true) or dense MLP
  std::string scoring_func = "softmax";  // softmax | sigmoid (deepseek_v3)
  std::string topk_method = "greedy";    // greedy | group_limited_greedy (v2) | noaux_tc (v3)
  int64_t n_group = 1;                 // expert groups for group-limited routing
  int64_t topk_group = 1;              // groups a token may use
  bool norm_topk_prob = false;         // renormalize the k selected weights to sum to 1
  // deepseek_v2: routed_scaling_factor multiplies only weights that were not renormalized.
  bool scale_only_unnormalized = false;
  double routed_scaling_factor = 1.0;
  bool score_correction_bias = false;  // noaux_tc: gate.e_score_correction_bias, used for selection only
  int64_t shared_intermediate_size = 0;  // width of the shared expert MLP; 0: none
  bool shared_expert_gate = false;     // qwen2_moe: sigmoid(shared_expert_gate(x)) scales the shared expert
  double router_jitter_noise = 0.0;    // mixtral: multiplicative input noise while training
  std::optional<double> router_aux_loss_coef;  // from config.json, the recipe's default aux coefficient
  // Hugging Face module names of the family.
  std::string block_name = "mlp";            // mixtral: block_sparse_moe
  std::string shared_name = "shared_expert";  // deepseek: shared_experts
  bool w123_names = false;                    // mixtral experts: w1 (gate), w3 (up), w2 (down)

  bool enabled() const { return num_experts > 0; }
  int64_t num_sparse_layers() const;
};

// DeepSeek multi-head latent attention: queries and keys/values through low-rank latents, with
// a decoupled rotary part shared by all heads.
struct MlaConfig {
  bool enabled = false;
  int64_t q_lora_rank = 0;   // 0 (config null): a plain q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool rope_interleave = true;  // rope dims stored as interleaved pairs (DeepSeek's layout)
  double softmax_scale = 0;     // 1/sqrt(qk_nope + qk_rope), times yarn mscale^2
};

struct TransformerConfig {
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;       // the rotary width (MLA: qk_rope_head_dim)
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;      // qwen2, qwen2_moe: always; llama/qwen3: attention_bias
  bool o_bias = false;        // llama/qwen3: attention_bias
  bool mlp_bias = false;      // llama: mlp_bias
  bool qk_norm = false;       // qwen3: RMSNorm on q and k per head
  bool attention_bias = false;  // MLA: q_a_proj, kv_a_proj_with_mqa and o_proj biases
  // Per decoder layer: the sliding attention window (a query attends keys at distance < window),
  // or none for full attention. mistral / mixtral: every layer; qwen2 / qwen3: the layers
  // transformers makes sliding (index >= max_window_layers, or layer_types). See docs/models.md.
  std::vector<std::optional<int64_t>> layer_window;
  MoeConfig moe;
  MlaConfig mla;
  // deepseek_v3: multi-token-prediction layers stored after the last layer; not part of the model.
  int64_t num_nextn_predict_layers = 0;
  nlohmann::json raw;         // the file as read, written back unchanged with saved models

  // True when some layer uses a sliding window.
  bool has_sliding_window() const;

  // Parses and validates as transformers reads the file: a missing key takes the default of
  // transformers' config class for the model_type (models/model_defaults.h); a key that changes
  // the math and is not implemented -> UserError naming `origin`, the key and its value.
  static TransformerConfig from_json(const nlohmann::json& j, const std::string& origin);
  // from_json of MODEL_DIR/config.json.
  static TransformerConfig load(const std::string& model_dir);
};

}  // namespace distillery
