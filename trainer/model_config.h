// TransformerConfig: a Hugging Face config.json read into typed fields, for the dense decoder
// families llama (incl. Llama 3.x rope scaling), qwen2, qwen3 and mistral.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace distillery {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct TransformerConfig {
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;      // qwen2: always; llama/qwen3: attention_bias
  bool o_bias = false;        // llama/qwen3: attention_bias
  bool mlp_bias = false;      // llama: mlp_bias
  bool qk_norm = false;       // qwen3: RMSNorm on q and k per head
  std::optional<int64_t> sliding_window;  // mistral (and qwen2 with use_sliding_window)
  nlohmann::json raw;         // the file as read, written back unchanged with saved models

  // Parses and validates; any unsupported value -> UserError naming `origin` and the field.
  static TransformerConfig from_json(const nlohmann::json& j, const std::string& origin);
  static TransformerConfig load(const std::string& model_dir);
};

}  // namespace distillery
