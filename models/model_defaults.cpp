#include "models/model_defaults.h"

#include <map>

namespace distillery {
namespace {

using json = nlohmann::json;

// The one table of per-family defaults. Source: the __init__ defaults of
// transformers/models/<family>/configuration_<family>.py in transformers 4.57 (LlamaConfig,
// MistralConfig, Qwen2Config, Qwen3Config, MixtralConfig, Qwen2MoeConfig, Qwen3MoeConfig,
// DeepseekV2Config, DeepseekV3Config). Entries marked "modelling code" are not arguments of the
// config class but what the family's modelling code does without the key (DeepSeek's own
// remote code for scoring_func / topk_method / moe_layer_freq / num_nextn_predict_layers).
// Keep docs/models.md in step with this table.
std::map<std::string, json> make_table() {
  // Keys every family's class has, with the same meaning.
  auto base = [](json j) {
    j["hidden_act"] = "silu";
    j["initializer_range"] = 0.02;
    j["tie_word_embeddings"] = false;
    j["rope_scaling"] = nullptr;
    j["attention_dropout"] = 0.0;
    if (!j.contains("rope_theta")) j["rope_theta"] = 10000.0;
    if (!j.contains("rms_norm_eps")) j["rms_norm_eps"] = 1e-6;
    return j;
  };
  std::map<std::string, json> t;
  t["llama"] = base({{"vocab_size", 32000},
                     {"hidden_size", 4096},
                     {"intermediate_size", 11008},
                     {"num_hidden_layers", 32},
                     {"num_attention_heads", 32},
                     {"num_key_value_heads", nullptr},  // = num_attention_heads
                     {"head_dim", nullptr},             // = hidden_size / num_attention_heads
                     {"max_position_embeddings", 2048},
                     {"attention_bias", false},
                     {"mlp_bias", false},
                     {"pretraining_tp", 1}});
  t["mistral"] = base({{"vocab_size", 32000},
                       {"hidden_size", 4096},
                       {"intermediate_size", 14336},
                       {"num_hidden_layers", 32},
                       {"num_attention_heads", 32},
                       {"num_key_value_heads", 8},
                       {"head_dim", nullptr},
                       {"max_position_embeddings", 4096 * 32},
                       {"sliding_window", 4096}});  // every layer; null: none
  t["qwen2"] = base({{"vocab_size", 151936},
                     {"hidden_size", 4096},
                     {"intermediate_size", 22016},
                     {"num_hidden_layers", 32},
                     {"num_attention_heads", 32},
                     {"num_key_value_heads", 32},
                     {"head_dim", nullptr},  // not a Qwen2Config argument; the model reads it when present
                     {"max_position_embeddings", 32768},
                     {"use_sliding_window", false},
                     {"sliding_window", 4096},
                     {"max_window_layers", 28},
                     {"layer_types", nullptr}});
  t["qwen3"] = base({{"vocab_size", 151936},
                     {"hidden_size", 4096},
                     {"intermediate_size", 22016},
                     {"num_hidden_layers", 32},
                     {"num_attention_heads", 32},
                     {"num_key_value_heads", 32},
                     {"head_dim", 128},  // not hidden_size / num_attention_heads
                     {"max_position_embeddings", 32768},
                     {"attention_bias", false},
                     {"use_sliding_window", false},
                     {"sliding_window", 4096},
                     {"max_window_layers", 28},
                     {"layer_types", nullptr}});
  t["mixtral"] = base({{"vocab_size", 32000},
                       {"hidden_size", 4096},
                       {"intermediate_size", 14336},
                       {"num_hidden_layers", 32},
                       {"num_attention_heads", 32},
                       {"num_key_value_heads", 8},
                       {"head_dim", nullptr},
                       {"max_position_embeddings", 4096 * 32},
                       {"rope_theta", 1e6},
                       {"rms_norm_eps", 1e-5},
                       {"sliding_window", nullptr},
                       {"num_local_experts", 8},
                       {"num_experts_per_tok", 2},
                       {"router_aux_loss_coef", 0.001},
                       {"router_jitter_noise", 0.0}});
  t["qwen2_moe"] = base({{"vocab_size", 151936},
                         {"hidden_size", 2048},
                         {"intermediate_size", 5632},
                         {"num_hidden_layers", 24},
                         {"num_attention_heads", 16},
                         {"num_key_value_heads", 16},
                         {"head_dim", nullptr},
                         {"max_position_embeddings", 32768},
                         {"use_sliding_window", false},
                         {"sliding_window", 4096},
                         {"max_window_layers", 28},
                         {"layer_types", nullptr},
                         {"qkv_bias", true},
                         {"num_experts", 60},
                         {"num_experts_per_tok", 4},
                         {"moe_intermediate_size", 1408},
                         {"shared_expert_intermediate_size", 5632},
                         {"decoder_sparse_step", 1},
                         {"mlp_only_layers", nullptr},  // = []
                         {"norm_topk_prob", false},
                         {"router_aux_loss_coef", 0.001}});
  t["qwen3_moe"] = base({{"vocab_size", 151936},
                         {"hidden_size", 2048},
                         {"intermediate_size", 6144},
                         {"num_hidden_layers", 24},
                         {"num_attention_heads", 32},
                         {"num_key_value_heads", 4},
                         {"head_dim", nullptr},  // not a Qwen3MoeConfig argument; hidden_size / heads when absent
                         {"max_position_embeddings", 32768},
                         {"attention_bias", false},
                         {"use_sliding_window", false},
                         {"sliding_window", 4096},
                         {"max_window_layers", 28},
                         {"layer_types", nullptr},
                         {"num_experts", 128},
                         {"num_experts_per_tok", 8},
                         {"moe_intermediate_size", 768},
                         {"decoder_sparse_step", 1},
                         {"mlp_only_layers", nullptr},
                         {"norm_topk_prob", false},
                         {"router_aux_loss_coef", 0.001}});
  t["deepseek_v2"] = base({{"vocab_size", 32000},
                           {"hidden_size", 4096},
                           {"intermediate_size", 11008},
                           {"num_hidden_layers", 32},
                           {"num_attention_heads", 32},
                           {"num_key_value_heads", nullptr},
                           {"max_position_embeddings", 2048},
                           {"attention_bias", false},
                           {"q_lora_rank", 1536},  // null: a plain q_proj
                           {"kv_lora_rank", 512},
                           {"qk_nope_head_dim", 128},
                           {"qk_rope_head_dim", 64},
                           {"v_head_dim", 128},
                           {"rope_interleave", true},  // modelling code: always interleaved
                           {"n_routed_experts", 64},   // null: a dense model
                           {"num_experts_per_tok", nullptr},
                           {"moe_intermediate_size", 1407},
                           {"n_shared_experts", 2},
                           {"first_k_dense_replace", 0},
                           {"moe_layer_freq", 1},        // modelling code
                           {"scoring_func", "softmax"},  // modelling code
                           {"topk_method", "greedy"},
                           {"n_group", nullptr},
                           {"topk_group", nullptr},
                           {"norm_topk_prob", false},
                           {"routed_scaling_factor", 1.0},
                           {"num_nextn_predict_layers", 0}});  // modelling code: none
  t["deepseek_v3"] = base({{"vocab_size", 129280},
                           {"hidden_size", 7168},
                           {"intermediate_size", 18432},
                           {"num_hidden_layers", 61},
                           {"num_attention_heads", 128},
                           {"num_key_value_heads", 128},
                           {"max_position_embeddings", 4096},
                           {"attention_bias", false},
                           {"q_lora_rank", 1536},
                           {"kv_lora_rank", 512},
                           {"qk_nope_head_dim", 128},
                           {"qk_rope_head_dim", 64},
                           {"v_head_dim", 128},
                           {"rope_interleave", true},
                           {"n_routed_experts", 256},
                           {"num_experts_per_tok", 8},
                           {"moe_intermediate_size", 2048},
                           {"n_shared_experts", 1},
                           {"first_k_dense_replace", 3},
                           {"moe_layer_freq", 1},        // modelling code
                           {"scoring_func", "sigmoid"},  // modelling code
                           {"topk_method", "noaux_tc"},  // modelling code
                           {"n_group", 8},
                           {"topk_group", 4},
                           {"norm_topk_prob", true},
                           {"routed_scaling_factor", 2.5},
                           {"num_nextn_predict_layers", 0}});  // modelling code: MTP layers are not loaded
  return t;
}

}  // namespace

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> names = {"llama",   "qwen2",     "qwen3",     "mistral",    "mixtral",
                                                 "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"};
  return names;
}

const nlohmann::json* family_defaults(const std::string& model_type) {
  static const std::map<std::string, json> table = make_table();
  auto it = table.find(model_type);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace distillery
