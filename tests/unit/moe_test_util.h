// Tiny configs of the mixture-of-experts families, in Hugging Face config.json form: 2 layers,
// hidden 32, a handful of experts, so every test runs in milliseconds.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tests/unit/test_util.h"

namespace distillery::testing {

inline nlohmann::json tiny_moe_config(const std::string& model_type) {
  nlohmann::json j = tiny_config("llama");
  j.erase("rope_scaling");
  j["model_type"] = model_type;
  if (model_type == "mixtral") {
    j["intermediate_size"] = 24;
    j["num_local_experts"] = 4;
    j["num_experts_per_tok"] = 2;
    j["router_aux_loss_coef"] = 0.02;
    j["sliding_window"] = nullptr;
  } else if (model_type == "qwen2_moe") {
    j["num_experts"] = 4;
    j["num_experts_per_tok"] = 2;
    j["moe_intermediate_size"] = 16;
    j["shared_expert_intermediate_size"] = 24;
    j["norm_topk_prob"] = false;
    j["decoder_sparse_step"] = 2;  // layer 0 dense, layer 1 sparse
    j["mlp_only_layers"] = nlohmann::json::array();
  } else if (model_type == "qwen3_moe") {
    j["head_dim"] = 16;
    j["num_experts"] = 4;
    j["num_experts_per_tok"] = 2;
    j["moe_intermediate_size"] = 16;
    j["norm_topk_prob"] = true;
    j["decoder_sparse_step"] = 1;
    j["mlp_only_layers"] = {0};
  } else if (model_type == "deepseek_v3") {
    j["num_key_value_heads"] = 4;
    j["n_routed_experts"] = 8;
    j["num_experts_per_tok"] = 2;
    j["moe_intermediate_size"] = 16;
    j["n_shared_experts"] = 1;
    j["first_k_dense_replace"] = 1;
    j["n_group"] = 4;
    j["topk_group"] = 2;
    j["norm_topk_prob"] = true;
    j["routed_scaling_factor"] = 2.5;
    j["scoring_func"] = "sigmoid";
    j["topk_method"] = "noaux_tc";
    j["q_lora_rank"] = 16;
    j["kv_lora_rank"] = 8;
    j["qk_nope_head_dim"] = 8;
    j["qk_rope_head_dim"] = 4;
    j["v_head_dim"] = 6;
    j["num_nextn_predict_layers"] = 1;
    j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64},
                         {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 0.8}};
  } else if (model_type == "deepseek_v2") {
    j["num_key_value_heads"] = 4;
    j["n_routed_experts"] = 4;
    j["num_experts_per_tok"] = 2;
    j["moe_intermediate_size"] = 16;
    j["n_shared_experts"] = 2;
    j["first_k_dense_replace"] = 0;
    j["topk_method"] = "group_limited_greedy";
    j["n_group"] = 2;
    j["topk_group"] = 1;
    j["q_lora_rank"] = nullptr;  // V2-Lite: a plain q_proj
    j["kv_lora_rank"] = 8;
    j["qk_nope_head_dim"] = 8;
    j["qk_rope_head_dim"] = 4;
    j["v_head_dim"] = 8;
  }
  return j;
}

}  // namespace distillery::testing
